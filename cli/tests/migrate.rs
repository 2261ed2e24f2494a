//! `igloo migrate` against engines it did not start (external mode, as in CI and deploys):
//! dry run, apply, nothing to do, status with pending and drift, consent and exit code 2, the
//! migration lock (a second run waits, then fails naming the holder; two runs at once never
//! both apply), and `--release-lock`. Real ClickHouse 18.16 and tansu, started by an
//! `igloo dev --no-server` of another project.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod support;
use support::*;

/// `igloo migrate …` in `root` against the engines at `ports`, as external clusters.
fn migrate(root: &std::path::Path, ports: &Ports) -> Command {
    let mut cmd = igloo(root, ports);
    cmd.arg("migrate")
        .env("IGLOO_INFRA_MODE", "external")
        .env("IGLOO_CLICKHOUSE_URL", format!("http://127.0.0.1:{}", ports.http))
        .env("IGLOO_BROKER_BOOTSTRAP_SERVERS", format!("127.0.0.1:{}", ports.broker))
        .env("IGLOO_CLICKHOUSE_DATABASE", "app")
        // The broker is shared with the engines' own project: keep to our topics.
        .env("IGLOO_BROKER_TOPIC_PREFIX", "app.");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String) {
    let Output { status, stdout, stderr } = cmd.output().unwrap();
    (status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr)))
}

fn json(cmd: &mut Command) -> (i32, Value) {
    let out = cmd.arg("--json").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn query(ports: &Ports, sql: &str) -> String {
    ports.clickhouse().execute(sql).unwrap().trim().to_string()
}

#[test]
fn migrate_plans_applies_records_locks_and_reports_drift() {
    let tmp = tempfile::tempdir().unwrap();
    // The engines: another project's `igloo dev --no-server`.
    let (mut dev, ports) = engines_elsewhere(tmp.path());

    let app_dir = tmp.path().join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    let root = project_from(&app_dir, "ts");

    // Dry run: the plan, nothing created.
    let (code, out) = run(migrate(&root, &ports).arg("--dry-run"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("+ table app.PageView"), "{out}");
    assert_eq!(query(&ports, "SELECT count() FROM system.databases WHERE name = 'app'"), "0");

    // Apply: every step, recorded with the schema's fingerprint.
    let (code, v) = json(&mut migrate(&root, &ports));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "applied", "{v}");
    let fingerprint = v["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.len(), 16);
    assert!(v["applied"].as_array().unwrap().len() >= 4, "{v}");
    assert_eq!(query(&ports, "SELECT count() FROM system.tables WHERE database = 'app' AND name = 'PageView'"), "1");
    assert_eq!(
        query(&ports, "SELECT count(), any(fingerprint) FROM app._igloo_migrations WHERE steps > 0"),
        format!("1\t{fingerprint}")
    );
    // Again: nothing to do, nothing recorded.
    let (code, out) = run(&mut migrate(&root, &ports));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("up to date"), "{out}");
    let (_, status) = json(migrate(&root, &ports).arg("--status"));
    assert_eq!(
        (status["pending"].as_array().unwrap().len(), status["drift"].as_array().unwrap().len()),
        (0, 0),
        "{status}"
    );
    assert_eq!(status["applied"][0]["fingerprint"], fingerprint.as_str());
    assert_eq!(status["notes"], serde_json::json!([]), "another project's topics are not ours: {status}");
    assert!(v["plan"]["steps"].as_array().unwrap().iter().any(|s| s["topic"]["name"] == "app.PageView"), "{v}");

    // Drift: a table dropped outside igloo.
    query(&ports, "DROP TABLE app.SectionView");
    let (_, status) = json(migrate(&root, &ports).arg("--status"));
    assert_eq!(status["drift"], serde_json::json!(["+ table app.SectionView (4 columns)"]), "{status}");
    assert!(status["pending"].as_array().unwrap().is_empty(), "{status}");
    let (code, out) = run(migrate(&root, &ports).arg("--status"));
    assert_eq!(code, 0);
    assert!(out.contains("changed outside igloo"), "{out}");
    assert_eq!(run(&mut migrate(&root, &ports)).0, 0);

    // Pending: the schema changed.
    let schema = root.join("schema/models.prisma");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(
        &schema,
        text.replace("  loadMs    Int      @db.UInt32\n", "  loadMs    Int      @db.UInt32\n  country   String?\n"),
    )
    .unwrap();
    let (_, status) = json(migrate(&root, &ports).arg("--status"));
    assert_eq!(status["pending"], serde_json::json!(["+ column PageView.country"]), "{status}");
    assert!(status["drift"].as_array().unwrap().is_empty());

    // The lock: held by someone else, a run waits, then fails naming the holder.
    query(&ports, "CREATE TABLE app._igloo_migration_lock ENGINE = Log AS SELECT 'ci@runner-7 pid 42' AS holder, toUnixTimestamp(now()) AS since");
    let (code, out) = run(migrate(&root, &ports).args(["--lock-timeout", "1"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ci@runner-7 pid 42") && out.contains("--release-lock"), "{out}");
    assert_eq!(
        query(
            &ports,
            "SELECT count() FROM system.columns WHERE database = 'app' AND table = 'PageView' AND name = 'country'"
        ),
        "0"
    );
    // A run that waits proceeds once the holder is gone.
    let waiting = migrate(&root, &ports)
        .arg("--lock-timeout")
        .arg("60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut waiting = Dev::attach(waiting);
    waiting.expect("waiting for the migration lock, held by ci@runner-7 pid 42", Duration::from_secs(20));
    let (code, out) = run(migrate(&root, &ports).arg("--release-lock"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("held by ci@runner-7 pid 42"), "{out}");
    waiting.expect("applied 1 step", Duration::from_secs(20));
    assert!(waiting.wait_exit(Duration::from_secs(10)).success());
    assert_eq!(
        query(&ports, "SELECT count() FROM system.tables WHERE database = 'app' AND name = '_igloo_migration_lock'"),
        "0"
    );

    // Two runs at once: one applies, the other finds nothing to do.
    std::fs::write(
        &schema,
        std::fs::read_to_string(&schema)
            .unwrap()
            .replace("  country   String?\n", "  country   String?\n  city      String?\n"),
    )
    .unwrap();
    let both: Vec<_> =
        (0..2).map(|_| migrate(&root, &ports).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    let outs: Vec<Output> = both.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    assert!(outs.iter().all(|o| o.status.success()), "{outs:?}");
    assert_eq!(
        query(&ports, "SELECT count() FROM app._igloo_migrations WHERE plan LIKE '%PageView.city%'"),
        "1",
        "the column was applied by exactly one run"
    );

    // Consent: a destructive step without it waits, exit code 2; with it, applied.
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, text.replace("  city      String?\n", "")).unwrap();
    let (code, out) = run(&mut migrate(&root, &ports));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("held back: - column PageView.city") && out.contains("--allow-destructive"), "{out}");
    let (code, v) = json(migrate(&root, &ports).arg("--allow-destructive"));
    assert_eq!((code, v["status"].as_str()), (0, Some("applied")), "{v}");

    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}
