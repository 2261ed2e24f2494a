//! Reads the project's `apis/*.sql` and `views/*.sql` files (the IO half; parsing is
//! `igloo_schemas::consumption` and `igloo_schemas::views`).

use std::path::Path;

use igloo_schemas::consumption::{parse, ApiFileError, ConsumptionApi};
use igloo_schemas::Ir;

/// `(path as shown, file stem, text)` of every `.sql` file in `root/dir`, sorted; unreadable
/// files become errors.
fn sql_files(root: &Path, dir: &str, errors: &mut Vec<ApiFileError>) -> Vec<(String, String, String)> {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else { return Vec::new() };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        match std::fs::read_to_string(&path) {
            Ok(text) => out.push((shown, stem, text)),
            Err(e) => errors.push(ApiFileError { path: shown, line: 1, message: format!("cannot read: {e}") }),
        }
    }
    out
}

/// The valid APIs, sorted by name, and every problem of the invalid ones.
pub fn load(root: &Path) -> (Vec<ConsumptionApi>, Vec<ApiFileError>) {
    let mut errors = Vec::new();
    let mut apis = Vec::new();
    for (shown, stem, text) in sql_files(root, "apis", &mut errors) {
        match parse(&shown, &stem, &text) {
            Ok(api) => apis.push(api),
            Err(e) => errors.extend(e),
        }
    }
    (apis, errors)
}

/// Parses `views/*.sql` against the checked schema into `ir.views`; returns the problems.
pub fn attach_views(root: &Path, ir: &mut Ir) -> Vec<ApiFileError> {
    let mut errors = Vec::new();
    let mut views = Vec::new();
    for (shown, stem, text) in sql_files(root, "views", &mut errors) {
        match igloo_schemas::views::parse(&shown, &stem, &text, ir) {
            Ok(v) => views.push(v),
            Err(e) => errors.extend(e),
        }
    }
    ir.views = views;
    errors
}

/// Loads the APIs, printing each problem; the valid ones are served.
pub fn load_reporting(root: &Path) -> Vec<ConsumptionApi> {
    let (apis, errors) = load(root);
    for e in &errors {
        println!("✗ {e}");
    }
    apis
}
