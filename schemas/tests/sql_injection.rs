//! SQL injection: every payload of `corpus/sql_injection.jsonl` (one JSON string per line,
//! at least 500: quotes, comments, separators, UNION, ClickHouse table functions and clauses,
//! escapes, control and look-alike characters, numbers out of range, long runs) goes through
//! every consumption-API parameter type. Each is either refused, or becomes exactly the
//! expected literal, and the query around it stays the same text. `cli/tests/query_api.rs`
//! sends the same corpus through a real server and ClickHouse and checks that it echoes back.

use std::collections::HashMap;

use igloo_schemas::consumption::{self, ParamType};
use igloo_schemas::sql::consumption::{render_api, typed_literal, OutputFormat};
use igloo_schemas::sql::quote;

fn corpus() -> Vec<String> {
    let text = include_str!("corpus/sql_injection.jsonl");
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).expect("a JSON string")).collect()
}

/// A ClickHouse single-quoted literal read back: what the server will see as the value.
fn unquote(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'x' => {
                    let hex: String = [chars.next()?, chars.next()?].iter().collect();
                    out.push(u8::from_str_radix(&hex, 16).ok()? as char);
                }
                other => out.push(other),
            },
            // An unescaped quote inside would end the literal early.
            '\'' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// What a well-formed value of `ty` must render as.
fn canonical(ty: ParamType, text: &str) -> Option<String> {
    match ty {
        ParamType::String => Some(quote::string(text)),
        ParamType::Int => text.parse::<i32>().ok().map(|v| v.to_string()),
        ParamType::BigInt => text.parse::<i64>().ok().map(|v| v.to_string()),
        ParamType::Float => text.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| format!("{v:?}")),
        ParamType::Boolean => match text {
            "true" | "1" => Some("1".into()),
            "false" | "0" => Some("0".into()),
            _ => None,
        },
        ParamType::DateTime | ParamType::Date => None,
    }
}

#[test]
fn no_payload_changes_a_query() {
    let payloads = corpus();
    assert!(payloads.len() >= 500, "the corpus has {} payloads", payloads.len());
    let mut refused = 0;
    let mut checked = 0;
    for ty in ParamType::ALL {
        let text = format!("-- @param v {}\nSELECT {{v}} AS v, 1 AS tail\n", ty.name());
        let api = consumption::parse("apis/echo.sql", "echo", &text).expect("the API parses");
        for p in &payloads {
            checked += 1;
            let values = HashMap::from([("v".to_string(), p.clone())]);
            let literal = match typed_literal(ty, p) {
                Ok(l) => l,
                Err(_) => {
                    refused += 1;
                    assert!(
                        render_api(&api, &values, OutputFormat::Json).is_err(),
                        "{ty:?} {p:?}: refused alone, not in a query"
                    );
                    continue;
                }
            };
            match ty {
                ParamType::String => {
                    assert_eq!(literal, quote::string(p));
                    assert_eq!(unquote(&literal).as_deref(), Some(p.as_str()), "{p:?} does not read back as itself");
                }
                ParamType::DateTime | ParamType::Date => {
                    // A time is digits and separators only, inside the conversion function.
                    let inside = literal.trim_start_matches("toDateTime(").trim_start_matches("toDate(");
                    assert!(
                        inside.chars().all(|c| c.is_ascii_digit() || " -:',UTC)".contains(c)),
                        "{ty:?} {p:?} → {literal}"
                    );
                }
                _ => assert_eq!(Some(literal.clone()), canonical(ty, p), "{ty:?} {p:?}"),
            }
            let sql = render_api(&api, &values, OutputFormat::Json).expect("renders");
            let expected = format!("SELECT {literal} AS v, 1 AS tail");
            assert!(sql.starts_with(&expected), "{ty:?} {p:?}: the query became {sql}");
            assert!(sql[expected.len()..].trim_start().starts_with("FORMAT JSONEachRow"), "{ty:?} {p:?}: {sql}");
        }
    }
    println!("{checked} payload × type pairs: {refused} refused, the rest exact literals");
    assert!(refused > 0 && refused < checked);
}
