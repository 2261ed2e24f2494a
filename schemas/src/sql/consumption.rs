//! Request values into SQL: consumption API parameters (typed, then rendered as literals — the
//! only way a request value enters a query, since ClickHouse 18.16 has no query parameters) and
//! raw exports of a model's table.

use std::collections::HashMap;

use crate::consumption::{ConsumptionApi, ParamType, Piece};

use super::quote::{ident, string};

/// An output format a client can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// A JSON array of objects (streamed from JSONEachRow).
    Json,
    Ndjson,
    Csv,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s {
            "json" => Some(OutputFormat::Json),
            "ndjson" | "jsonl" => Some(OutputFormat::Ndjson),
            "csv" => Some(OutputFormat::Csv),
            _ => None,
        }
    }

    fn clickhouse(self) -> &'static str {
        match self {
            OutputFormat::Json | OutputFormat::Ndjson => "JSONEachRow",
            OutputFormat::Csv => "CSVWithNames",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::Ndjson => "application/x-ndjson",
            OutputFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `{0}` is required")]
    Missing(String),
    #[error("parameter `{name}` must be {expected}: {reason}")]
    Invalid { name: String, expected: &'static str, reason: String },
    #[error("unknown parameter `{name}`; this API takes {known}")]
    Unknown { name: String, known: String },
}

impl ParamError {
    /// The request parameter at fault.
    pub fn parameter(&self) -> &str {
        match self {
            ParamError::Missing(name) | ParamError::Invalid { name, .. } | ParamError::Unknown { name, .. } => name,
        }
    }
}

/// A request value that is not of its parameter's type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct LiteralError {
    pub reason: &'static str,
}

/// A value of `ty` written as text, as a SQL literal.
pub fn typed_literal(ty: ParamType, text: &str) -> Result<String, LiteralError> {
    let bad = |reason: &'static str| LiteralError { reason };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match ty {
        ParamType::String => Ok(string(text)),
        ParamType::Int => text.parse::<i32>().map(|v| v.to_string()).map_err(|_| bad("not a 32-bit integer")),
        ParamType::BigInt => text.parse::<i64>().map(|v| v.to_string()).map_err(|_| bad("not a 64-bit integer")),
        ParamType::Float => match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(format!("{v:?}")),
            _ => Err(bad("not a finite number")),
        },
        ParamType::Boolean => match text {
            "true" | "1" => Ok("1".into()),
            "false" | "0" => Ok("0".into()),
            _ => Err(bad("not true or false")),
        },
        ParamType::DateTime => {
            if digits(text) {
                let secs: u32 = text.parse().map_err(|_| bad("seconds out of range"))?;
                return Ok(format!("toDateTime({secs}, 'UTC')"));
            }
            let ok = text.len() == 19
                && text.char_indices().all(|(i, c)| match i {
                    4 | 7 => c == '-',
                    10 => c == ' ' || c == 'T',
                    13 | 16 => c == ':',
                    _ => c.is_ascii_digit(),
                });
            if !ok {
                return Err(bad("not seconds since the epoch or YYYY-MM-DD HH:MM:SS"));
            }
            Ok(format!("toDateTime({}, 'UTC')", string(&text.replace('T', " "))))
        }
        ParamType::Date => {
            let ok = text.len() == 10
                && text.char_indices().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
            if !ok {
                return Err(bad("not YYYY-MM-DD"));
            }
            Ok(format!("toDate({})", string(text)))
        }
    }
}

/// The API's query with every placeholder replaced by its typed literal, in `format`.
/// `values` are the request's parameters; `format` is not one of them.
pub fn render_api(
    api: &ConsumptionApi,
    values: &HashMap<String, String>,
    format: OutputFormat,
) -> Result<String, ParamError> {
    for name in values.keys() {
        if name != "format" && api.param(name).is_none() {
            let known: Vec<String> = api.params.iter().map(|p| format!("`{}`", p.name)).collect();
            let known = if known.is_empty() { "no parameters".to_string() } else { known.join(", ") };
            return Err(ParamError::Unknown { name: name.clone(), known });
        }
    }
    let mut sql = String::new();
    for piece in &api.body {
        match piece {
            Piece::Sql(s) => sql += s,
            Piece::Param(name) => {
                let p = api.param(name).expect("placeholders are declared (checked when parsed)");
                let text = values.get(name).or(p.default.as_ref()).ok_or_else(|| ParamError::Missing(name.clone()))?;
                let literal = typed_literal(p.ty, text).map_err(|reason| ParamError::Invalid {
                    name: name.clone(),
                    expected: p.ty.name(),
                    reason: reason.to_string(),
                })?;
                sql += &literal;
            }
        }
    }
    Ok(format!("{sql}\nFORMAT {}", format.clickhouse()))
}

/// No rows, and the API's result columns with their ClickHouse types in the `meta` of
/// ClickHouse's JSON output: the query with a neutral value for every parameter, `LIMIT 0`.
pub fn describe_api(api: &ConsumptionApi) -> String {
    let mut sql = String::new();
    for piece in &api.body {
        match piece {
            Piece::Sql(s) => sql += s,
            Piece::Param(name) => {
                let ty = api.param(name).map_or(ParamType::String, |p| p.ty);
                sql += match ty {
                    ParamType::String => "''",
                    ParamType::Int | ParamType::BigInt | ParamType::Boolean => "0",
                    ParamType::Float => "0.0",
                    ParamType::DateTime => "toDateTime(0, 'UTC')",
                    ParamType::Date => "toDate('1970-01-01')",
                };
            }
        }
    }
    format!("SELECT * FROM ({sql}) LIMIT 0 FORMAT JSON")
}

/// Every row of a table, optionally where `time_column` is in `[start, end)`.
pub struct ExportQuery<'a> {
    pub database: &'a str,
    pub table: &'a str,
    pub columns: Vec<&'a str>,
    /// The column and literal bounds (already typed by the caller via [`typed_literal`]).
    pub range: Option<(&'a str, Option<String>, Option<String>)>,
    pub format: OutputFormat,
}

impl ExportQuery<'_> {
    pub fn render(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let mut sql = format!("SELECT {} FROM {}.{}", cols.join(", "), ident(self.database), ident(self.table));
        if let Some((column, start, end)) = &self.range {
            let mut conds = Vec::new();
            if let Some(s) = start {
                conds.push(format!("{} >= {s}", ident(column)));
            }
            if let Some(e) = end {
                conds.push(format!("{} < {e}", ident(column)));
            }
            if !conds.is_empty() {
                sql += &format!(" WHERE {}", conds.join(" AND "));
            }
        }
        format!("{sql} FORMAT {}", self.format.clickhouse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_and_escaped() {
        assert_eq!(typed_literal(ParamType::String, "x' OR 1=1 --").unwrap(), "'x\\' OR 1=1 --'");
        assert_eq!(typed_literal(ParamType::String, "a\\'b").unwrap(), "'a\\\\\\'b'");
        assert!(typed_literal(ParamType::Int, "1 OR 1=1").is_err());
        assert!(typed_literal(ParamType::BigInt, "1;DROP TABLE t").is_err());
        assert!(typed_literal(ParamType::Float, "NaN").is_err());
        assert_eq!(typed_literal(ParamType::Float, "2.5").unwrap(), "2.5");
        assert_eq!(typed_literal(ParamType::Boolean, "true").unwrap(), "1");
        assert_eq!(
            typed_literal(ParamType::DateTime, "2024-01-02T03:04:05").unwrap(),
            "toDateTime('2024-01-02 03:04:05', 'UTC')"
        );
        assert!(typed_literal(ParamType::DateTime, "2024-01-02') OR ('1").is_err());
        assert_eq!(typed_literal(ParamType::Date, "2024-01-02").unwrap(), "toDate('2024-01-02')");
    }

    #[test]
    fn renders_defaults_and_rejects_unknown_or_missing() {
        let api = crate::consumption::parse(
            "apis/a.sql",
            "a",
            "-- @param tag String\n-- @param limit Int = 5\nSELECT * FROM t WHERE tag = {tag} LIMIT {limit}\n",
        )
        .unwrap();
        let v = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(
            render_api(&api, &v(&[("tag", "x'y")]), OutputFormat::Csv).unwrap(),
            "SELECT * FROM t WHERE tag = 'x\\'y' LIMIT 5\nFORMAT CSVWithNames"
        );
        assert_eq!(render_api(&api, &v(&[]), OutputFormat::Json), Err(ParamError::Missing("tag".into())));
        assert!(matches!(
            render_api(&api, &v(&[("tag", "a"), ("limit", "x")]), OutputFormat::Json),
            Err(ParamError::Invalid { .. })
        ));
        assert!(matches!(
            render_api(&api, &v(&[("tag", "a"), ("nope", "1")]), OutputFormat::Json),
            Err(ParamError::Unknown { .. })
        ));
    }
}
