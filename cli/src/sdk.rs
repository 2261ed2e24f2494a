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
    let stem = project.replace('-', "_");
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
