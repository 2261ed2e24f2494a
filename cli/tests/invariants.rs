//! Architecture invariants of docs/ARCHITECTURE.md, checked over the source tree (the text of
//! `cli/src`, `server/src` and `schemas/src`; test modules and `tests/` are not product code).
//! An invariant nobody checks decays: each rule here names the one owner of a concept.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `(path relative to the repo, product lines)` of every `.rs` file under the crates' `src/`.
/// A file's product code ends at its `#[cfg(test)]` module; `plan/tests.rs`-style files whose
/// name is `tests.rs` are test code.
fn product_sources() -> Vec<(String, Vec<(usize, String)>)> {
    let mut out = Vec::new();
    for krate in ["cli", "server", "schemas"] {
        let mut stack = vec![repo().join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let lines = text
                        .lines()
                        .enumerate()
                        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
                        .map(|(i, l)| (i + 1, l.to_string()))
                        .collect();
                    let rel = path.strip_prefix(repo()).unwrap().display().to_string();
                    out.push((rel, lines));
                }
            }
        }
    }
    out.sort();
    assert!(out.len() > 50, "the walk found the sources");
    out
}

/// The string literals of a line (plain `"…"` ones; raw strings hold page assets and configs).
fn literals(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    let mut current: Option<String> = None;
    while let Some(c) = chars.next() {
        match (&mut current, c) {
            (None, '/') if chars.peek() == Some(&'/') => break,
            (None, '\'') => {
                // A char literal such as '"' must not open a string.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("\"'") || rest.starts_with("\\\"") {
                    chars.next();
                    chars.next();
                }
            }
            (None, '"') => current = Some(String::new()),
            (Some(s), '\\') => {
                s.push('\\');
                if let Some(n) = chars.next() {
                    s.push(n);
                }
            }
            (Some(_), '"') => out.push(current.take().unwrap()),
            (Some(s), c) => s.push(c),
            (None, _) => {}
        }
    }
    out
}

/// SQL shapes that only a statement has (prose like "one SELECT" does not match).
fn looks_like_sql(text: &str) -> bool {
    let t = text.to_ascii_uppercase();
    let starts = [
        "SELECT ",
        "INSERT INTO",
        "ALTER TABLE",
        "CREATE TABLE",
        "CREATE DATABASE",
        "CREATE MATERIALIZED",
        "CREATE VIEW",
        "DROP TABLE",
        "DROP VIEW",
        "OPTIMIZE TABLE",
        "RENAME TABLE",
        "SHOW TABLES",
        "DESCRIBE TABLE",
    ];
    let inner = [" FORMAT JSONEACHROW", " FORMAT TABSEPARATED", "FROM SYSTEM.", " GROUP BY ", " WHERE "];
    let stmt = t.trim_start();
    (starts.iter().any(|s| stmt.starts_with(s)) && (t.contains(" FROM ") || !stmt.starts_with("SELECT ")))
        || inner.iter().any(|s| t.contains(s))
}

#[test]
fn sql_text_is_written_only_in_schemas_sql() {
    let mut found = Vec::new();
    for (path, lines) in product_sources() {
        if path.starts_with("schemas/src/sql/") {
            continue;
        }
        for (n, line) in lines {
            // `--help` examples show users a query; they are not sent by igloo.
            if line.contains("after_help") {
                continue;
            }
            for lit in literals(&line) {
                if looks_like_sql(&lit) {
                    found.push(format!("{path}:{n}: \"{lit}\""));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL text outside schemas/src/sql/ (build a typed statement there):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_sql_detector_sees_statements_and_not_prose() {
    assert!(looks_like_sql("SELECT count() AS n FROM {} WHERE x"));
    assert!(looks_like_sql("ALTER TABLE {} DELETE WHERE a = 1"));
    assert!(looks_like_sql("SELECT partition FROM system.mutations"));
    assert!(!looks_like_sql("a view is one SELECT (or WITH … SELECT)"));
    assert!(!looks_like_sql("no query: write one SELECT after the `-- @param` lines"));
    assert_eq!(literals(r#"let a = "x \"y\" z"; // "not this""#), [r#"x \"y\" z"#]);
    assert_eq!(literals(r#"if c == '"' { f("in") }"#), ["in"]);
}

/// Public functions' signatures, joined over lines up to their body or `;`.
fn public_signatures() -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for (path, lines) in product_sources() {
        let mut i = 0;
        while i < lines.len() {
            let t = lines[i].1.trim_start();
            if t.starts_with("pub fn ") || t.starts_with("pub async fn ") || t.starts_with("pub(crate) fn ") {
                let start = lines[i].0;
                let mut sig = String::new();
                while i < lines.len() {
                    sig.push_str(lines[i].1.trim());
                    sig.push(' ');
                    if lines[i].1.contains('{') || lines[i].1.trim_end().ends_with(';') {
                        break;
                    }
                    i += 1;
                }
                out.push((path.clone(), start, sig));
            }
            i += 1;
        }
    }
    out
}

#[test]
fn no_public_function_returns_a_string_error() {
    let bad: Vec<String> = public_signatures()
        .into_iter()
        .filter(|(_, _, sig)| {
            let ret = sig.split_once("->").map_or("", |(_, r)| r);
            ret.contains("Result<") && ret.replace(' ', "").contains(",String>")
        })
        .map(|(path, n, sig)| format!("{path}:{n}: {sig}"))
        .collect();
    assert!(bad.is_empty(), "public functions returning Result<_, String> (use a thiserror enum):\n{}", bad.join("\n"));
}

/// Lines of product code outside `owner` that contain `needle`.
fn used_outside(needle: &str, owners: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, lines) in product_sources() {
        if owners.iter().any(|o| path.starts_with(o)) {
            continue;
        }
        for (n, line) in lines {
            if line.contains(needle) && !line.trim_start().starts_with("//") {
                found.push(format!("{path}:{n}: {}", line.trim()));
            }
        }
    }
    found
}

#[test]
fn kafka_clients_are_configured_only_in_the_kafka_module() {
    let found = used_outside("ClientConfig", &["server/src/kafka/"]);
    assert!(found.is_empty(), "Kafka client configuration outside server/src/kafka/:\n{}", found.join("\n"));
    let found = used_outside(".payload()", &["server/src/kafka/"]);
    assert!(found.is_empty(), "a message is decoded outside server/src/kafka/wire.rs:\n{}", found.join("\n"));
}

#[test]
fn clickhouse_is_reached_only_through_the_one_client() {
    let found = used_outside("reqwest::Client", &["server/src/clickhouse.rs"]);
    assert!(found.is_empty(), "an HTTP client outside server/src/clickhouse.rs:\n{}", found.join("\n"));
    // One HTTP client library in the build (tests included): reqwest.
    let manifests: String =
        ["Cargo.toml", "cli/Cargo.toml", "server/Cargo.toml", "schemas/Cargo.toml", "bench/Cargo.toml"]
            .iter()
            .map(|m| std::fs::read_to_string(repo().join(m)).unwrap())
            .collect();
    for other in ["ureq", "isahc", "attohttpc", "curl ="] {
        assert!(!manifests.contains(other), "{other} in a Cargo.toml: reach HTTP with reqwest");
    }
}
