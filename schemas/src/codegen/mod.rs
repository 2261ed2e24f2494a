//! SDK code generated from the IR and the consumption APIs: model types, typed ingest
//! functions per model, samples helpers per time series, and typed functions per consumption
//! API, for TypeScript (`ts.rs`, against the `igloo-sdk` npm package in `sdk-ts/`) and Python
//! (`py.rs`, against the `igloo-sdk` package in `sdk-py/`). Pure and deterministic: the same
//! input gives the same text, so users' diffs stay small (snapshot-tested).

mod py;
mod surface;
mod ts;

pub use py::python;
pub use ts::typescript;

use std::collections::BTreeMap;

use crate::consumption::ConsumptionApi;
use crate::ir::Ir;

/// What a generated module is made from.
pub struct SdkInput<'a> {
    pub ir: &'a Ir,
    pub apis: &'a [ConsumptionApi],
    /// Result columns `(name, ClickHouse type)` per API, when a running ClickHouse described
    /// them (`sql::consumption::describe_api`); other APIs' rows are generic records.
    pub columns: &'a BTreeMap<String, Vec<(String, String)>>,
}

/// A generated function's name in each language.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FnName {
    pub ts: String,
    pub py: String,
}

/// `ingestMeasurement` / `ingest_measurement`: POST /ingest/<model>.
pub fn ingest_fn(model: &str) -> FnName {
    FnName { ts: format!("ingest{model}"), py: format!("ingest_{}", snake(model)) }
}

/// `samplesMeasurement` / `samples_measurement`: GET /api/<model>/samples.
pub fn samples_fn(model: &str) -> FnName {
    FnName { ts: format!("samples{model}"), py: format!("samples_{}", snake(model)) }
}

/// `tagStats` / `tag_stats`: GET /consumption/<api>.
pub fn api_fn(api: &str) -> FnName {
    FnName { ts: camel(api), py: snake(api) }
}

/// The generated module's file stem: `sdk/<stem>.ts`, `sdk/<stem>.py`.
pub fn module_stem(project: &str) -> String {
    project.replace('-', "_")
}

/// How a field's value looks in a record on the model's topic, which is what transforms
/// receive: normalized by ingest, with every field present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowShape {
    /// Strings, UUIDs, dates, times as `YYYY-MM-DD hh:mm:ss[.fff]` (UTC), `Json` as its text,
    /// and 64-bit integers as strings of digits (exact in every language).
    Text,
    Bool,
    Int,
    Float,
    /// `Decimal`: a number or a numeric string, as it was sent.
    Decimal,
    Enum,
}

fn row_shape(f: &crate::ir::Field) -> RowShape {
    use crate::ir::{BaseType, NativeType, ScalarType};
    match &f.ty.base {
        BaseType::Enum(_) => RowShape::Enum,
        BaseType::Scalar(s) => match s {
            ScalarType::String
            | ScalarType::Bytes
            | ScalarType::Uuid
            | ScalarType::Date
            | ScalarType::DateTime
            | ScalarType::Json => RowShape::Text,
            ScalarType::Boolean => RowShape::Bool,
            ScalarType::Float => RowShape::Float,
            ScalarType::Decimal => RowShape::Decimal,
            ScalarType::Int | ScalarType::BigInt => match f.ty.native {
                Some(NativeType::Int64 | NativeType::UInt64) => RowShape::Text,
                Some(_) => RowShape::Int,
                None if *s == ScalarType::BigInt => RowShape::Text,
                None => RowShape::Int,
            },
        },
    }
}

/// A ClickHouse result type as a language type: `scalar` maps the base types.
fn ch_type(ty: &str, lang: Lang) -> String {
    let inner = |prefix: &str| ty.strip_prefix(prefix).and_then(|t| t.strip_suffix(')'));
    if let Some(t) = inner("Nullable(") {
        return match lang {
            Lang::Ts => format!("{} | null", ch_type(t, lang)),
            Lang::Py => format!("Union[{}, None]", ch_type(t, lang)),
        };
    }
    if let Some(t) = inner("LowCardinality(") {
        return ch_type(t, lang);
    }
    if let Some(t) = inner("Array(") {
        return match lang {
            Lang::Ts => format!("Array<{}>", ch_type(t, lang)),
            Lang::Py => format!("list[{}]", ch_type(t, lang)),
        };
    }
    let base = ty.split('(').next().unwrap_or(ty);
    let (ts, py) = match base {
        "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" => ("number", "int"),
        "Float32" | "Float64" | "Decimal" | "Decimal32" | "Decimal64" | "Decimal128" => ("number", "float"),
        "String" | "FixedString" | "Date" | "Date32" | "DateTime" | "DateTime64" | "UUID" | "Enum8" | "Enum16" => {
            ("string", "str")
        }
        "Bool" => ("boolean", "bool"),
        _ => ("unknown", "Any"),
    };
    match lang {
        Lang::Ts => ts.into(),
        Lang::Py => py.into(),
    }
}

#[derive(Clone, Copy)]
enum Lang {
    Ts,
    Py,
}

/// `tag_stats` / `tag-stats` → `TagStats`.
fn pascal(name: &str) -> String {
    name.split(['_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// `TagStats` / `tag-stats` → `tag_stats`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '-' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `tag_stats` → `tagStats`.
fn camel(name: &str) -> String {
    let p = pascal(name);
    let mut c = p.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clickhouse_types() {
        assert_eq!(ch_type("Nullable(Array(LowCardinality(String)))", Lang::Ts), "Array<string> | null");
        assert_eq!(ch_type("UInt64", Lang::Py), "int");
        assert_eq!(ch_type("DateTime('UTC')", Lang::Py), "str");
        assert_eq!(ch_type("AggregateFunction(count)", Lang::Ts), "unknown");
    }

    #[test]
    fn names() {
        assert_eq!(pascal("tag_stats"), "TagStats");
        assert_eq!(pascal("tag-stats"), "TagStats");
        assert_eq!(snake("PageView"), "page_view");
        assert_eq!(snake("tag-stats"), "tag_stats");
        assert_eq!(camel("tag_stats"), "tagStats");
        assert_eq!(camel("Measurement"), "measurement");
    }
}
