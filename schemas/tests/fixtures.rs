//! Data-driven schema tests. Each `fixtures/*.prisma` file ends with the diagnostics it must
//! produce, as `//` comments (psl style); a first line `// target: 18.16` picks the ClickHouse
//! version (default: current). Valid fixtures also get IR and DDL snapshots for both dialects.
//!
//! `UPDATE_EXPECT=1 cargo test -p igloo-schemas --test fixtures` rewrites the expectations;
//! `cargo insta review` (or INSTA_UPDATE=always) the snapshots.

use std::path::{Path, PathBuf};

use igloo_schemas::plan::{plan, Observed};
use igloo_schemas::{check_for, Dialect, SourceFile};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "prisma"))
        .collect();
    files.sort();
    files
}

fn is_expectation_start(line: &str) -> bool {
    line.starts_with("// error: ") || line.starts_with("// warning: ")
}

/// Splits a fixture into its schema part and its expected diagnostics (uncommented).
fn split(text: &str) -> (&str, String) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if is_expectation_start(line) {
            let expected = text[offset..]
                .lines()
                .map(|l| l.strip_prefix("// ").unwrap_or(l.trim_start_matches("//")))
                .collect::<Vec<_>>();
            return (&text[..offset], expected.join("\n").trim_end().to_string());
        }
        offset += line.len();
    }
    (text, String::new())
}

fn target_of(text: &str) -> Dialect {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("// target: "))
        .map_or(Dialect::CURRENT, |v| v.trim().parse().expect("fixture target"))
}

#[test]
fn fixtures_produce_their_expected_diagnostics() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let all = fixtures();
    assert!(all.len() >= 30, "expected at least 30 fixtures, found {}", all.len());
    for path in all {
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let files = [SourceFile::new(name.as_str(), text.as_str())];
        let (_, diags) = check_for(&files, target_of(&text));
        let actual = diags.render(&files).trim_end().to_string();
        let (schema, expected) = split(&text);
        if actual == expected {
            continue;
        }
        if update {
            let block: Vec<String> =
                actual.lines().map(|l| if l.is_empty() { "//".to_string() } else { format!("// {l}") }).collect();
            let mut new = schema.trim_end().to_string() + "\n";
            if !block.is_empty() {
                new += &format!("\n{}\n", block.join("\n"));
            }
            std::fs::write(&path, new).expect("write fixture");
        } else {
            failures.push(format!("── {name}\n── expected:\n{expected}\n── actual:\n{actual}\n"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ (UPDATE_EXPECT=1 to accept):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_fixtures_snapshot_ir_and_ddl() {
    let mut valid = 0;
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let files = [SourceFile::new(format!("{name}.prisma"), text.as_str())];
        let (ir, diags) = check_for(&files, target_of(&text));
        if diags.has_errors() {
            continue;
        }
        valid += 1;
        insta::assert_json_snapshot!(format!("{name}__ir"), ir);
        for dialect in [Dialect::V18_16, Dialect::CURRENT] {
            if check_for(&files, dialect).1.has_errors() {
                continue;
            }
            let plan = plan(&ir, &Observed::default(), "igloo", dialect, None);
            let sql: Vec<String> = plan.steps.iter().flat_map(|s| plan.sql(s)).collect();
            insta::assert_snapshot!(
                format!("{name}__ddl_{}", dialect.to_string().replace('.', "_")),
                sql.join(";\n\n")
            );
        }
    }
    assert!(valid >= 8, "expected at least 8 valid fixtures, found {valid}");
}
