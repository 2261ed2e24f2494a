//! Reads a project's schema files (`schema/**/*.prisma`) into `(path, text)` pairs for
//! `igloo_schemas::check`. The only place schema files are read from disk.

use std::path::{Path, PathBuf};

use igloo_schemas::SourceFile;

#[derive(Debug, thiserror::Error)]
pub enum SchemaFilesError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("no schema files (*.prisma) in {0}; add one, e.g. schema/models.prisma")]
    Empty(PathBuf),
}

/// All `.prisma` files under `dir` (recursively, sorted), with paths shown relative to `base`.
pub fn load_dir(dir: &Path, base: &Path) -> Result<Vec<SourceFile>, SchemaFilesError> {
    let mut paths = Vec::new();
    collect(dir, &mut paths)?;
    paths.sort();
    if paths.is_empty() {
        return Err(SchemaFilesError::Empty(dir.to_path_buf()));
    }
    paths.iter().map(|p| load_file(p, base)).collect()
}

/// Explicit paths from the command line: files as they are, directories searched.
pub fn load_paths(paths: &[PathBuf], base: &Path) -> Result<Vec<SourceFile>, SchemaFilesError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(load_dir(p, base)?);
        } else {
            files.push(load_file(p, base)?);
        }
    }
    Ok(files)
}

fn load_file(path: &Path, base: &Path) -> Result<SourceFile, SchemaFilesError> {
    let bytes = std::fs::read(path).map_err(|source| SchemaFilesError::Read { path: path.to_path_buf(), source })?;
    let shown = path.strip_prefix(base).unwrap_or(path);
    Ok(SourceFile::new(shown.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SchemaFilesError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| SchemaFilesError::Read { path: dir.to_path_buf(), source })?;
    for entry in entries {
        let path = entry.map_err(|source| SchemaFilesError::Read { path: dir.to_path_buf(), source })?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "prisma") {
            out.push(path);
        }
    }
    Ok(())
}
