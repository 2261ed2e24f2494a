//! Project templates for `igloo init`, embedded in the binary from `templates/`. Every project
//! gets `templates/common/`, then its template's own files on top. Files ending in `.hbs` are
//! rendered with handlebars (suffix dropped); `_gitignore` becomes `.gitignore`.

use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use include_dir::{include_dir, Dir, DirEntry};
use serde::Serialize;

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../templates");

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// Web analytics models; transforms and SDK in TypeScript.
    Ts,
    /// Sensor-reading models; transforms and SDK in Python.
    Python,
    /// The reference time-series workload: time (ns), tag, ten values.
    Timeseries,
}

impl Template {
    pub const ALL: [Template; 3] = [Template::Ts, Template::Python, Template::Timeseries];

    pub fn dir_name(self) -> &'static str {
        match self {
            Template::Ts => "ts",
            Template::Python => "python",
            Template::Timeseries => "timeseries",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Template::Ts => "TypeScript",
            Template::Python => "Python",
            Template::Timeseries => "time series",
        }
    }
}

/// The values templates can use.
#[derive(Debug, Serialize)]
pub struct TemplateVars {
    pub name: String,
    /// The generated SDK module's name (`sdk/<module>.ts|.py`).
    pub module: String,
    pub database: String,
    pub language: &'static str,
    pub template_title: &'static str,
    pub timeseries: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template file {path} does not render: {message}")]
    Render { path: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Writes the template into `dest`; returns the written paths relative to `dest`.
pub fn write(template: Template, vars: &TemplateVars, dest: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    let mut written = Vec::new();
    for layer in ["common", template.dir_name()] {
        let dir = TEMPLATES.get_dir(layer).expect("template layer is embedded");
        for file in files(dir) {
            let rel = file.path().strip_prefix(layer).expect("file is under its layer");
            let (rel, contents) = render(&hb, rel, file.contents(), vars)?;
            let path = dest.join(&rel);
            let parent = path.parent().expect("file has a parent");
            std::fs::create_dir_all(parent).map_err(|source| TemplateError::Write { path: parent.into(), source })?;
            std::fs::write(&path, contents).map_err(|source| TemplateError::Write { path: path.clone(), source })?;
            written.push(rel);
        }
    }
    written.sort();
    Ok(written)
}

fn files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut out = Vec::new();
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => out.extend(files(d)),
            DirEntry::File(f) => out.push(f),
        }
    }
    out
}

fn render(
    hb: &Handlebars,
    rel: &Path,
    contents: &[u8],
    vars: &TemplateVars,
) -> Result<(PathBuf, Vec<u8>), TemplateError> {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let mut out_rel = rel.to_path_buf();
    if name == "_gitignore" {
        out_rel.set_file_name(".gitignore");
    }
    let Some(stem) = name.strip_suffix(".hbs") else {
        return Ok((out_rel, contents.to_vec()));
    };
    out_rel.set_file_name(stem);
    let text = String::from_utf8_lossy(contents);
    let rendered = hb
        .render_template(&text, vars)
        .map_err(|e| TemplateError::Render { path: rel.display().to_string(), message: e.to_string() })?;
    Ok((out_rel, rendered.into_bytes()))
}

/// One embedded template file (`templates/<path>`, e.g. `deploy/k8s/service.yaml.hbs`),
/// rendered with `vars`.
pub fn render_file(path: &str, vars: &impl Serialize) -> Result<String, TemplateError> {
    let file = TEMPLATES.get_file(path).unwrap_or_else(|| panic!("template {path} is embedded"));
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.render_template(&String::from_utf8_lossy(file.contents()), vars)
        .map_err(|e| TemplateError::Render { path: path.to_string(), message: e.to_string() })
}
