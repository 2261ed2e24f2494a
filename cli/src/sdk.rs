//! Writing the generated SDK module of a project (the text comes from
//! `igloo_schemas::codegen`): `sdk/<project>.ts` or `sdk/<project>.py`, only when it changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use igloo_schemas::codegen::{python, typescript, SdkInput};
use igloo_schemas::consumption::ConsumptionApi;
use igloo_schemas::sql::consumption::describe_api;
use igloo_schemas::Ir;

use crate::infra::clickhouse::ClickHouseHttp;

/// Result columns per API, as ClickHouse describes them; APIs it cannot describe (e.g. a table
/// not created yet) are left out and typed as generic records.
pub type ApiColumns = BTreeMap<String, Vec<(String, String)>>;

pub fn describe(ch: &ClickHouseHttp, database: &str, apis: &[ConsumptionApi]) -> ApiColumns {
    apis.iter().filter_map(|api| Some((api.name.clone(), ch.describe(database, &describe_api(api)).ok()?))).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Ts,
    Py,
}

/// The file the module goes to in `dir`: the project name, `-` as `_`.
pub fn module_path(dir: &Path, project: &str, lang: Lang) -> PathBuf {
    let stem = igloo_schemas::codegen::module_stem(project);
    dir.join(match lang {
        Lang::Ts => format!("{stem}.ts"),
        Lang::Py => format!("{stem}.py"),
    })
}

/// Writes the module; `Ok(true)` when the file changed.
pub fn write(path: &Path, ir: &Ir, apis: &[ConsumptionApi], columns: &ApiColumns, lang: Lang) -> std::io::Result<bool> {
    let input = SdkInput { ir, apis, columns };
    let text = match lang {
        Lang::Ts => typescript(&input),
        Lang::Py => python(&input),
    };
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)?;
    Ok(true)
}

/// The SDK languages a project needs: igloo.yaml's, plus each language a transform is in
/// (a transform imports its types from `sdk/`).
pub fn project_langs(project: &igloo_server::config::Project) -> Vec<Lang> {
    let mut langs = vec![project_lang(project)];
    let files = std::fs::read_dir(project.root.join("transforms"))
        .map(|e| e.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect::<Vec<_>>())
        .unwrap_or_default();
    for name in files {
        let lang = match igloo_server::transform::spec::parse_name(&name) {
            Some((_, _, igloo_server::transform::spec::Lang::Ts)) => Lang::Ts,
            Some((_, _, igloo_server::transform::spec::Lang::Py)) => Lang::Py,
            None => continue,
        };
        if !langs.contains(&lang) {
            langs.push(lang);
        }
    }
    langs
}

/// Writes the project's SDK modules that do not exist yet, without engines (API rows typed as
/// generic records; `igloo dev` types them). Returns the paths written.
pub fn write_missing(
    project: &igloo_server::config::Project,
    ir: &Ir,
    apis: &[ConsumptionApi],
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for lang in project_langs(project) {
        let path = module_path(&project.root.join("sdk"), &project.config.name, lang);
        if !path.exists() && write(&path, ir, apis, &ApiColumns::new(), lang)? {
            written.push(path);
        }
    }
    Ok(written)
}

/// The language `igloo.yaml` names for the project's SDK module.
pub fn project_lang(project: &igloo_server::config::Project) -> Lang {
    match project.config.language {
        igloo_server::config::Language::Ts => Lang::Ts,
        igloo_server::config::Language::Python => Lang::Py,
    }
}
