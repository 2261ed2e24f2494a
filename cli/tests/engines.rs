//! Every statement igloo renders for the schema fixtures, the templates and what `igloo import
//! prisma` makes of the import cases is executed on real ClickHouse: 18.16 (Debian's server,
//! started by igloo's own launcher) and current ClickHouse (chdb-core in-process). Needs both
//! installed: `bash scripts/install-engines.sh`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use igloo_cli::infra::clickhouse::{free_port, NativeClickHouse, NativeConfig};
use igloo_schemas::plan::{plan, Observed};
use igloo_schemas::sql::quote;
use igloo_schemas::{check_for, Dialect, SourceFile};

struct Case {
    name: String,
    files: Vec<SourceFile>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Valid fixtures, one case each, and each template's schema directory.
fn cases() -> Vec<Case> {
    let root = workspace();
    let mut cases = Vec::new();
    let mut fixtures: Vec<PathBuf> =
        std::fs::read_dir(root.join("schemas/tests/fixtures")).unwrap().map(|e| e.unwrap().path()).collect();
    fixtures.sort();
    for path in fixtures {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        cases.push(Case { name, files: vec![SourceFile::new(path.display().to_string(), text)] });
    }
    for template in ["ts", "python", "timeseries"] {
        let dir = root.join("templates").join(template).join("schema");
        let files = igloo_cli::schema_files::load_dir(&dir, &root).unwrap();
        cases.push(Case { name: format!("template_{template}"), files });
    }
    cases
}

/// What `igloo import prisma` makes of each application schema in `schemas/tests/import/`
/// (a file, or a directory in Prisma's `prismaSchemaFolder` layout), for `dialect`.
fn imported(dialect: Dialect) -> Vec<Case> {
    let root = workspace();
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(root.join("schemas/tests/import")).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let files = igloo_cli::schema_files::load_paths(std::slice::from_ref(path), &root).unwrap();
            let options = igloo_schemas::import::ImportOptions { models: None, dialect };
            let out = igloo_schemas::import::import_prisma(&files, &options).expect("imports");
            let name = format!("import_{}", path.file_stem().unwrap().to_string_lossy());
            Case { files: vec![SourceFile::new(format!("{name}.prisma"), out.schema)], name }
        })
        .collect()
}

/// igloo's own tables and the queries over them (the writer's offsets log with its
/// idempotency keys — an old table gaining the column by ALTER —, claims, keys, migrations,
/// dead letters), as one case.
fn internal_case(dialect: Dialect) -> (String, String, Vec<String>, Vec<String>) {
    use igloo_schemas::internal::{self, IDEMPOTENCY_COLUMN, OFFSETS_TABLE, OFFSET_LOG_COLUMNS};
    use igloo_schemas::sql::internal::{claim_sql, keys_sql, writer_sql, LoggedRange};
    use igloo_schemas::sql::{CreateDatabase, InsertJsonRows, Statement};
    let db = "t_igloo_internal".to_string();
    let render = |s: Statement| s.render_for(dialect, None);
    let mut old_offsets = internal::offsets_table(&db);
    old_offsets.columns.retain(|c| c.name != IDEMPOTENCY_COLUMN);
    let mut statements = render(Statement::CreateDatabase(CreateDatabase { name: db.clone() }));
    for table in [
        old_offsets,
        internal::claims_table(&db),
        internal::keys_table(&db),
        internal::migrations_table(&db),
        internal::dlq_table(&db),
    ] {
        statements.extend(render(Statement::CreateTable(Box::new(table))));
    }
    statements.extend(render(Statement::AlterTable(Box::new(internal::offsets_idempotency_column(&db)))));
    let insert = InsertJsonRows {
        database: db.clone(),
        table: OFFSETS_TABLE.into(),
        columns: OFFSET_LOG_COLUMNS.map(String::from).to_vec(),
    };
    let row = serde_json::json!({"topic": "t", "partition": 0, "first_offset": 0, "last_offset": 9, "rows": 10, IDEMPOTENCY_COLUMN: ["0:a", "1:it's"]});
    statements.push(format!("{}\n{row}\n", insert.render()));
    let range = |partition, keys: &[&str]| LoggedRange {
        partition,
        epoch: 7,
        first: 10,
        last: 19,
        rows: 10,
        keys: keys.iter().map(|k| k.to_string()).collect(),
    };
    // The offsets stage is a session's temporary table; here (one request per statement) a
    // Memory table of the same name in the default database stands in for it.
    let (stage, body) = claim_sql::insert_offsets_stage(&[range(0, &["2:a", "3:it's"]), range(1, &[])]);
    statements.extend([
        claim_sql::create_offsets_stage().replacen("TEMPORARY TABLE", "TABLE", 1),
        claim_sql::truncate_offsets_stage(),
        format!("{stage}\n{body}"),
        claim_sql::gated_offsets(&db, "t", "w"),
        writer_sql::logged_idempotency(&db, "t", None, 86_400),
        writer_sql::logged_idempotency(&db, "t", Some(0), 86_400),
        writer_sql::committed_offsets(&db, "t"),
        claim_sql::current_claims(&db, "t"),
        keys_sql::current(&db),
    ]);
    let tables = [OFFSETS_TABLE, internal::CLAIMS_TABLE, internal::KEYS_TABLE]
        .iter()
        .map(|t| format!("{}.{}", quote::ident(&db), quote::ident(t)))
        .collect();
    ("igloo_internal".into(), db, statements, tables)
}

/// `(case name, database, statements, tables)` for every case valid on `dialect`.
fn rendered(dialect: Dialect) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let mut out = vec![internal_case(dialect)];
    for case in cases().into_iter().chain(imported(dialect)) {
        let (ir, diags) = check_for(&case.files, dialect);
        if diags.has_errors() {
            continue;
        }
        let database = format!("t_{}", case.name);
        let plan = plan(&ir, &Observed::default(), &database, dialect, None);
        let mut statements: Vec<String> = plan.steps.iter().flat_map(|s| plan.sql(s)).collect();
        statements.extend(samples_queries(&ir, &database, dialect));
        let tables =
            ir.models.iter().map(|m| format!("{}.{}", quote::ident(&database), quote::ident(&m.table))).collect();
        out.push((case.name, database, statements, tables));
    }
    out
}

/// The samples queries of every time series, for every aggregate: they must run on the rollups
/// the plan created (empty, but parsed and type-checked by the server).
fn samples_queries(ir: &igloo_schemas::Ir, database: &str, dialect: Dialect) -> Vec<String> {
    use igloo_schemas::ir::{BaseType, ScalarType};
    use igloo_schemas::sql::timeseries::{
        series_exists, SampleAgg, SamplesPlan, SamplesQuery, SeriesValue, TimeSeriesTables,
    };
    let mut out = Vec::new();
    for model in &ir.models {
        let Some(tables) = TimeSeriesTables::for_model(model, ir, database) else { continue };
        let ts = model.timeseries.as_ref().unwrap();
        let series = match &model.field(&ts.series).unwrap().ty.base {
            BaseType::Scalar(ScalarType::Int | ScalarType::BigInt) => SeriesValue::Integer(7),
            BaseType::Enum(e) => SeriesValue::Text(ir.enum_def(e).unwrap().variants[0].name.clone()),
            _ => SeriesValue::Text("it's".into()),
        };
        out.push(series_exists(&tables, &series));
        for agg in SampleAgg::ALL {
            let q = SamplesQuery {
                tables: &tables,
                series: series.clone(),
                start: 1_000,
                end: 90_000_000,
                points: 1000,
                agg,
                raw_lookback: Some(60_000_000_000),
            };
            q.check().unwrap();
            out.push(q.hourly_events());
            out.push(q.render(dialect, SamplesPlan::Rollups));
            out.push(q.render(dialect, SamplesPlan::Raw));
        }
    }
    out
}

#[test]
fn rendered_ddl_runs_on_clickhouse_18_16() {
    let dir = tempfile::tempdir().unwrap();
    let config = NativeConfig {
        dir: dir.path().join("clickhouse"),
        http_port: free_port().unwrap(),
        tcp_port: free_port().unwrap(),
    };
    let server = NativeClickHouse::start(config, Duration::from_secs(60)).expect("start ClickHouse 18.16");
    assert_eq!(server.client.dialect().unwrap(), Dialect::V18_16, "these tests expect Debian's ClickHouse 18.16");
    let cases = rendered(Dialect::V18_16);
    assert!(cases.len() >= 10, "only {} cases render for 18.16", cases.len());
    let mut failures = Vec::new();
    let mut statements_run = 0;
    for (name, _, statements, tables) in &cases {
        for sql in statements {
            statements_run += 1;
            if let Err(e) = server.client.execute(sql) {
                failures.push(format!("{name}: {e}\n{sql}"));
            }
        }
        for table in tables {
            let exists = server.client.execute(&format!("EXISTS TABLE {table}")).unwrap_or_default();
            if exists.trim() != "1" {
                failures.push(format!("{name}: table {table} missing after CREATE"));
            }
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n\n"));
    // Re-running a plan is harmless: every statement is IF NOT EXISTS (igloo's own tables get
    // an ALTER and rows, once).
    for (_, _, statements, _) in cases.iter().filter(|c| c.0 != "igloo_internal") {
        for sql in statements {
            server.client.execute(sql).expect("statement is idempotent");
        }
    }
    eprintln!("ran {statements_run} statements from {} cases on ClickHouse 18.16", cases.len());
}

#[test]
fn rendered_ddl_runs_on_current_clickhouse_via_chdb() {
    let cases = rendered(Dialect::CURRENT);
    assert!(cases.len() >= 10, "only {} cases render for current", cases.len());
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, _, statements, tables)| serde_json::json!({"name": name, "statements": statements, "tables": tables}))
        .collect();
    let workdir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/chdb_exec.py");
    // scripts/test.sh points this at the virtualenv holding chdb-core.
    let python = std::env::var("IGLOO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(&script)
        .current_dir(workdir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run `bash scripts/install-engines.sh`"));
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chdb runner failed (is chdb-core installed? `bash scripts/install-engines.sh`):\n{stderr}"
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), cases.len());
    let failures: Vec<String> = results
        .iter()
        .filter(|r| r["ok"] != true)
        .map(|r| format!("{}: {}", r["name"], r["error"].as_str().unwrap_or("?")))
        .collect();
    assert!(failures.is_empty(), "{} failure(s) on current ClickHouse:\n{}", failures.len(), failures.join("\n\n"));
}
