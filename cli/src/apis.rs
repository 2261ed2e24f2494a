//! Reads the project's `apis/*.sql` files (the IO half; parsing is `igloo_schemas::consumption`).

use std::path::Path;

use igloo_schemas::consumption::{parse, ApiFileError, ConsumptionApi};

/// The valid APIs, sorted by name, and every problem of the invalid ones.
pub fn load(root: &Path) -> (Vec<ConsumptionApi>, Vec<ApiFileError>) {
    let mut apis = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(root.join("apis")) else { return (apis, errors) };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    for path in paths {
        let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&shown, &name, &text) {
                Ok(api) => apis.push(api),
                Err(e) => errors.extend(e),
            },
            Err(e) => errors.push(ApiFileError { path: shown, line: 1, message: format!("cannot read: {e}") }),
        }
    }
    (apis, errors)
}

/// Loads the APIs, printing each problem; the valid ones are served.
pub fn load_reporting(root: &Path) -> Vec<ConsumptionApi> {
    let (apis, errors) = load(root);
    for e in &errors {
        println!("✗ {e}");
    }
    apis
}
