//! Which files of `transforms/` are transforms, by name: `<Source>__<Destination>.ts` (run by
//! Node.js) or `.py` (run by Python 3), both models of the schema. Test files (`*.test.ts`,
//! `test_*.py`, `*_test.py`), files starting with `_` or `.`, and files without `__` are not
//! transforms (helpers and tests live beside them).

use std::path::{Path, PathBuf};

use igloo_schemas::Ir;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    Ts,
    Py,
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lang::Ts => "TypeScript",
            Lang::Py => "Python",
        })
    }
}

/// One transform, resolved against the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformSpec {
    /// The file stem: `PageView__PageVisit`.
    pub name: String,
    pub path: PathBuf,
    pub lang: Lang,
    pub source: String,
    pub destination: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: `{model}` is not a model of the schema (models: {known}); a transform is named <Source>__<Destination>")]
    UnknownModel { path: String, model: String, known: String },
    #[error("{path}: `{model}` is filled by views/{model}.sql, so a transform cannot write to it")]
    FilledByView { path: String, model: String },
    #[error("{path}: a transform cannot write to its own source `{model}` (it would read its own output forever)")]
    Loop { path: String, model: String },
    #[error("transforms/{name}.ts and transforms/{name}.py are both there; keep one")]
    Duplicate { name: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
}

/// `(source, destination, lang)` when the file name is a transform's.
pub fn parse_name(file_name: &str) -> Option<(&str, &str, Lang)> {
    let (stem, lang) = if let Some(stem) = file_name.strip_suffix(".ts") {
        (stem, Lang::Ts)
    } else if let Some(stem) = file_name.strip_suffix(".py") {
        (stem, Lang::Py)
    } else {
        return None;
    };
    if stem.starts_with(['_', '.']) || stem.starts_with("test_") || stem.ends_with("_test") || stem.contains('.') {
        return None;
    }
    let (source, destination) = stem.split_once("__")?;
    let ident = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (ident(source) && ident(destination)).then_some((source, destination, lang))
}

/// The transforms of `dir` (sorted by name), and the problems of the files that look like
/// transforms but cannot be. A missing directory has none.
pub fn discover(dir: &Path, ir: &Ir) -> (Vec<TransformSpec>, Vec<SpecError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), Vec::new()),
        Err(e) => {
            return (Vec::new(), vec![SpecError::Read { path: dir.display().to_string(), message: e.to_string() }])
        }
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some((source, destination, lang)) = parse_name(file_name) else { continue };
        let shown = format!("transforms/{file_name}");
        let name = file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem).to_string();
        if specs.iter().any(|s: &TransformSpec| s.name == name) {
            specs.retain(|s| s.name != name);
            errors.push(SpecError::Duplicate { name });
            continue;
        }
        match check(ir, &shown, source, destination) {
            Ok(()) => specs.push(TransformSpec {
                name,
                path: path.clone(),
                lang,
                source: source.into(),
                destination: destination.into(),
            }),
            Err(e) => errors.push(e),
        }
    }
    (specs, errors)
}

fn check(ir: &Ir, path: &str, source: &str, destination: &str) -> Result<(), SpecError> {
    for model in [source, destination] {
        if ir.model(model).is_none() {
            let known = ir.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(SpecError::UnknownModel { path: path.into(), model: model.into(), known });
        }
    }
    if source == destination {
        return Err(SpecError::Loop { path: path.into(), model: source.into() });
    }
    if ir.filled_by_view(destination) {
        return Err(SpecError::FilledByView { path: path.into(), model: destination.into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_name("PageView__PageVisit.ts"), Some(("PageView", "PageVisit", Lang::Ts)));
        assert_eq!(parse_name("Reading__Alert.py"), Some(("Reading", "Alert", Lang::Py)));
        for not in [
            "PageView__PageVisit.test.ts",
            "test_Reading__Alert.py",
            "Reading__Alert_test.py",
            "_helpers__x.py",
            "lib.ts",
            "README.md",
            "A__.ts",
            "__B.py",
            "A__B.js",
        ] {
            assert_eq!(parse_name(not), None, "{not}");
        }
    }
}
