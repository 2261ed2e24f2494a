//! `igloo import prisma` on application-shaped schemas written from Prisma's documented
//! grammar: each `import/*.prisma` file (or directory, for the `prismaSchemaFolder` layout)
//! is imported, its output and report snapshot-tested, and the output must pass `igloo check`
//! for its target. A first line `// target: 18.16` picks the ClickHouse version,
//! `// models: A,B` the models to keep.
//!
//! `INSTA_UPDATE=always cargo test -p igloo-schemas --test import` accepts new output.

use std::path::{Path, PathBuf};

use igloo_schemas::import::{import_prisma, ImportOptions};
use igloo_schemas::{check_for, Dialect, SourceFile};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("import dir").map(|e| e.expect("entry").path()).collect();
    cases.sort();
    cases
}

fn files_of(case: &Path) -> Vec<SourceFile> {
    let mut paths = if case.is_dir() {
        std::fs::read_dir(case).expect("case dir").map(|e| e.expect("entry").path()).collect()
    } else {
        vec![case.to_path_buf()]
    };
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let shown = p.strip_prefix(case.parent().unwrap()).unwrap().display().to_string();
            SourceFile::new(shown, std::fs::read_to_string(p).expect("read"))
        })
        .collect()
}

fn directive<'a>(files: &'a [SourceFile], key: &str) -> Option<&'a str> {
    files.iter().find_map(|f| f.text.lines().next()?.strip_prefix(key).map(str::trim))
}

#[test]
fn imports_pass_igloo_check_and_match_their_snapshots() {
    let all = cases();
    assert!(all.len() >= 12, "expected at least 12 import cases, found {}", all.len());
    for case in all {
        let name = case.file_stem().unwrap().to_string_lossy().to_string();
        let files = files_of(&case);
        let dialect = directive(&files, "// target:").map_or(Dialect::CURRENT, |v| v.parse().expect("target"));
        let models = directive(&files, "// models:").map(|v| v.split(',').map(|m| m.trim().to_string()).collect());
        let imported = import_prisma(&files, &ImportOptions { models, dialect })
            .unwrap_or_else(|e| panic!("{name}: import failed: {e}"));
        let out = [SourceFile::new(format!("{name}.igloo.prisma"), imported.schema.as_str())];
        let (_, diags) = check_for(&out, dialect);
        assert!(
            !diags.has_errors(),
            "{name}: the import does not pass igloo check:\n{}\n{}",
            imported.schema,
            diags.render(&out)
        );
        let warnings = diags.render(&out);
        insta::assert_snapshot!(
            name.clone(),
            format!(
                "{}\n--- report ---\n{}--- igloo check ---\n{}",
                imported.schema,
                imported.report.render(),
                if warnings.is_empty() { "ok\n" } else { &warnings }
            )
        );
    }
}
