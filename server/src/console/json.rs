//! The JSON the console page reads under `/console/api/`, as typed structs. `assets/console.js`
//! declares the same shapes as JSDoc typedefs (checked by tsc); a test below keeps the two in
//! step, field by field.

use igloo_schemas::codegen::FnName;
use igloo_schemas::consumption::Param;
use igloo_schemas::ir::TimeSeries;
use serde::Serialize;

/// `GET /console/api/overview`.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub project: String,
    /// `sdk/<module>`, without the extension.
    pub sdk_module: String,
    pub database: String,
    /// The ClickHouse version.
    pub clickhouse: String,
    pub bootstrap: String,
    /// What is wrong with the project now (schema, views, migrations, transforms, engines).
    pub problems: Vec<String>,
    pub models: Vec<ModelInfo>,
    pub views: Vec<ViewInfo>,
    pub apis: Vec<ApiInfo>,
    pub transforms: Vec<TransformInfo>,
    /// Rows of `_igloo_dlq`.
    pub dead_letters: u64,
}

#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub doc: Option<String>,
    pub topic: String,
    pub partitions: u32,
    pub table: String,
    /// `None` when ClickHouse did not answer.
    pub rows: Option<u64>,
    pub ingest: bool,
    pub filled_by: Option<FilledBy>,
    pub fields: Vec<FieldInfo>,
    pub key: Vec<String>,
    pub timeseries: Option<TimeSeries>,
    pub ingest_routes: Vec<String>,
    pub samples_routes: Vec<String>,
    pub accepted: u64,
    pub rejected: u64,
    pub written: u64,
    pub dead_lettered: u64,
    pub lag: u64,
    /// Per second, over the last seconds.
    pub ingest_rate: f64,
    pub write_rate: f64,
    pub sdk: ModelSdk,
}

/// What fills a model other than ingest: `{"view": "views/M.sql"}` or `{"transform": "A__M"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilledBy {
    View(String),
    Transform(String),
}

#[derive(Debug, Serialize)]
pub struct FieldInfo {
    pub name: String,
    /// `Float[]`, `String?`, `Level`.
    #[serde(rename = "type")]
    pub ty: String,
    pub doc: Option<String>,
}

/// The generated SDK's functions for a model.
#[derive(Debug, Serialize)]
pub struct ModelSdk {
    pub ingest: FnName,
    pub samples: Option<FnName>,
}

#[derive(Debug, Serialize)]
pub struct ViewInfo {
    pub model: String,
    pub select: String,
}

#[derive(Debug, Serialize)]
pub struct ApiInfo {
    pub name: String,
    pub doc: Option<String>,
    pub params: Vec<Param>,
    pub sdk: FnName,
}

#[derive(Debug, Serialize)]
pub struct TransformInfo {
    pub name: String,
    pub source: String,
    pub destination: String,
    pub language: String,
    /// Worker slots configured, and running now.
    pub workers: usize,
    pub workers_running: u64,
    pub running: bool,
    /// Why the current file does not load.
    pub error: Option<String>,
    #[serde(rename = "in")]
    pub records_in: u64,
    pub out: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
    pub crashes: u64,
    pub lag: u64,
}

/// `GET /console/api/models/{Model}/topic`: one row of a message, newest first.
#[derive(Debug, Serialize)]
pub struct TopicRow {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    /// The row as JSON (text when it is not JSON).
    pub record: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fn_name() -> FnName {
        FnName { ts: "f".into(), py: "f".into() }
    }

    fn v<T: Serialize>(x: &T) -> serde_json::Value {
        serde_json::to_value(x).unwrap()
    }

    /// One value of each shape the console reads.
    fn samples() -> Vec<(&'static str, serde_json::Value)> {
        let model = ModelInfo {
            name: "M".into(),
            doc: None,
            topic: "M".into(),
            partitions: 1,
            table: "M".into(),
            rows: None,
            ingest: true,
            filled_by: None,
            fields: vec![],
            key: vec![],
            timeseries: None,
            ingest_routes: vec![],
            samples_routes: vec![],
            accepted: 0,
            rejected: 0,
            written: 0,
            dead_lettered: 0,
            lag: 0,
            ingest_rate: 0.0,
            write_rate: 0.0,
            sdk: ModelSdk { ingest: fn_name(), samples: None },
        };
        let transform = TransformInfo {
            name: "A__B".into(),
            source: "A".into(),
            destination: "B".into(),
            language: "Python".into(),
            workers: 1,
            workers_running: 1,
            running: true,
            error: None,
            records_in: 0,
            out: 0,
            dropped: 0,
            dead_lettered: 0,
            crashes: 0,
            lag: 0,
        };
        let overview = Overview {
            project: "p".into(),
            sdk_module: "sdk/p".into(),
            database: "d".into(),
            clickhouse: "18.16".into(),
            bootstrap: "b".into(),
            problems: vec![],
            models: vec![],
            views: vec![],
            apis: vec![],
            transforms: vec![],
            dead_letters: 0,
        };
        vec![
            ("Overview", v(&overview)),
            ("ModelInfo", v(&model)),
            ("FieldInfo", v(&FieldInfo { name: "a".into(), ty: "Int".into(), doc: None })),
            ("ModelSdk", v(&ModelSdk { ingest: fn_name(), samples: None })),
            ("ViewInfo", v(&ViewInfo { model: "M".into(), select: "".into() })),
            ("ApiInfo", v(&ApiInfo { name: "a".into(), doc: None, params: vec![], sdk: fn_name() })),
            ("TransformInfo", v(&transform)),
            ("TopicRow", v(&TopicRow { partition: 0, offset: 0, timestamp_ms: None, record: serde_json::Value::Null })),
            ("FnName", v(&fn_name())),
        ]
    }

    /// Every field each struct above serializes is a `@property` of the JSDoc typedef of the
    /// same name in console.js, and the other way round.
    #[test]
    fn console_js_declares_the_same_shapes() {
        let script = include_str!("assets/console.js");
        for (name, value) in samples() {
            let start = script
                .find(&format!("@typedef {{object}} {name}\n"))
                .unwrap_or_else(|| panic!("no `@typedef {{object}} {name}` in console.js"));
            let mut declared: Vec<String> = script[start..]
                .lines()
                .skip(1)
                .take_while(|l| l.contains("@property"))
                .filter_map(|l| l.rsplit('}').next()?.split_whitespace().next().map(str::to_string))
                .map(|p| p.trim_start_matches('[').trim_end_matches(']').to_string())
                .collect();
            declared.sort();
            let serialized: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            assert_eq!(declared, serialized, "typedef {name} in console.js");
        }
    }
}
