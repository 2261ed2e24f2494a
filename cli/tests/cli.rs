//! End-to-end tests of the `igloo` binary: init → check → plan, and the bad-input paths.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn igloo(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("igloo").unwrap();
    cmd.current_dir(dir).env_remove("IGLOO_CLICKHOUSE_TARGET").env_remove("IGLOO_CLICKHOUSE_DATABASE");
    cmd
}

fn init(dir: &Path, name: &str, template: &str) {
    igloo(dir).args(["init", name, "--template", template, "--yes"]).assert().success();
}

#[test]
fn version_and_help_with_examples() {
    let tmp = tempfile::tempdir().unwrap();
    igloo(tmp.path()).arg("--version").assert().success().stdout(contains(env!("CARGO_PKG_VERSION")));
    for cmd in [vec!["--help"], vec!["init", "--help"], vec!["check", "--help"], vec!["plan", "--help"]] {
        igloo(tmp.path()).args(&cmd).assert().success().stdout(contains("Examples:"));
    }
}

#[test]
fn every_template_inits_checks_and_plans_for_both_dialects() {
    let tmp = tempfile::tempdir().unwrap();
    for (template, model, models) in [
        ("ts", "PageView", "2 models"),
        ("python", "SensorReading", "2 models"),
        ("timeseries", "Measurement", "1 model"),
    ] {
        let name = format!("app-{template}");
        init(tmp.path(), &name, template);
        let project = tmp.path().join(&name);
        for file in
            ["igloo.yaml", ".gitignore", "README.md", "transforms/README.md", "views/README.md", "apis/README.md"]
        {
            assert!(project.join(file).is_file(), "{template}: {file} missing");
        }
        let yaml = std::fs::read_to_string(project.join("igloo.yaml")).unwrap();
        assert!(
            yaml.contains(&format!("name: {name}")) && yaml.contains(&format!("database: app_{template}")),
            "{yaml}"
        );
        igloo(&project).arg("check").assert().success().stderr(contains(format!("✓ {models}")));
        for target in ["18.16", "current"] {
            igloo(&project)
                .args(["plan", "--offline", "--target", target])
                .assert()
                .success()
                .stdout(contains(format!("CREATE TABLE IF NOT EXISTS `app_{template}`.`{model}`")))
                .stdout(contains(format!("+ topic {model}")));
        }
    }
    let ts = std::fs::read_to_string(tmp.path().join("app-timeseries/schema/measurement.prisma")).unwrap();
    assert!(ts.contains("values Float[]") && ts.contains("@@id([tag, time])"));
}

#[test]
fn init_refuses_non_empty_directory_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("shop")).unwrap();
    std::fs::write(tmp.path().join("shop/notes.txt"), "mine").unwrap();
    igloo(tmp.path())
        .args(["init", "shop", "--yes"])
        .assert()
        .failure()
        .stderr(contains("is not empty"))
        .stderr(contains("--force"));
    assert!(!tmp.path().join("shop/igloo.yaml").exists(), "nothing written on refusal");
    igloo(tmp.path()).args(["init", "shop", "--yes", "--force"]).assert().success();
    assert_eq!(std::fs::read_to_string(tmp.path().join("shop/notes.txt")).unwrap(), "mine");
    assert!(tmp.path().join("shop/igloo.yaml").is_file());
}

#[test]
fn init_rejects_bad_names_and_uses_defaults_without_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    igloo(tmp.path())
        .args(["init", "1shop", "--yes"])
        .assert()
        .failure()
        .stderr(contains("`1shop` is not a valid project name"));
    igloo(tmp.path())
        .args(["init", "ok", "--name", "bad name", "--yes"])
        .assert()
        .failure()
        .stderr(contains("not a valid project name"));
    igloo(tmp.path()).args(["init", "--template", "nope"]).assert().failure().stderr(contains("invalid value 'nope'"));
    // No terminal (assert_cmd pipes stdin): defaults, no prompt, no hang.
    igloo(tmp.path()).arg("init").assert().success().stdout(contains("TypeScript project `igloo-app`"));
    assert!(tmp.path().join("igloo-app/schema/models.prisma").is_file());
}

#[test]
fn check_reports_every_error_with_location_snippet_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "shop", "ts");
    let project = tmp.path().join("shop");
    std::fs::write(
        project.join("schema/broken.prisma"),
        "model Order {\n  id    String @id\n  total Strng\n  note  String @defualt(\"x\")\n}\n",
    )
    .unwrap();
    igloo(&project)
        .arg("check")
        .assert()
        .code(1)
        .stderr(contains("error: unknown type `Strng`"))
        .stderr(contains("--> schema/broken.prisma:3:9"))
        .stderr(contains("3 |   total Strng\n  |         ^^^^^"))
        .stderr(contains("hint: did you mean `String`?"))
        .stderr(contains("unknown attribute `@defualt`"))
        .stderr(contains("✗ 2 errors in 2 files"));
    igloo(&project)
        .args(["plan", "--offline"])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(contains("unknown type `Strng`"));
}

#[test]
fn check_json_prints_ir_and_located_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "ts1", "timeseries");
    let project = tmp.path().join("ts1");
    let out = igloo(&project).args(["check", "--json"]).assert().success().get_output().stdout.clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let m = &v["ir"]["models"][0];
    assert_eq!(m["name"], "Measurement");
    assert_eq!(m["primary_key"], serde_json::json!(["tag", "time"]));
    assert_eq!(m["fields"][2]["type"]["arity"], "list");
    assert_eq!(m["topic"]["partitions"], 4);
    std::fs::write(project.join("schema/more.prisma"), "model X {\n  id Strng @id\n}\n").unwrap();
    let out = igloo(&project).args(["check", "--json"]).assert().code(1).get_output().stdout.clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["diagnostics"][0]["file"], "schema/more.prisma");
    assert_eq!(v["diagnostics"][0]["line"], 2);
    assert_eq!(v["diagnostics"][0]["hint"], "did you mean `String`?");
}

#[test]
fn target_specific_errors_and_explicit_paths() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.prisma"), "model T {\n  at DateTime @id @db.DateTime64(3)\n}\n").unwrap();
    igloo(tmp.path()).args(["check", "t.prisma", "--target", "current"]).assert().success();
    igloo(tmp.path())
        .args(["check", "t.prisma", "--target", "18.16"])
        .assert()
        .code(1)
        .stderr(contains("`@db.DateTime64(3)` is not available on ClickHouse 18.16"))
        .stderr(contains("hint: it needs ClickHouse 20.1 or newer"));
    igloo(tmp.path())
        .args(["check", "t.prisma", "--target", "eighteen"])
        .assert()
        .code(2)
        .stderr(contains("not a ClickHouse version"));
    igloo(tmp.path())
        .args(["plan", "--offline", "--sql", "t.prisma"])
        .assert()
        .success()
        .stdout(contains("DateTime64(3, 'UTC')"));
    let out = igloo(tmp.path())
        .args(["plan", "--offline", "--json", "t.prisma"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let kinds: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["create_database", "create_topic", "create_topic", "create_table"]);
    assert_eq!(v["steps"][1]["topic"]["name"], "_igloo_dlq");
}

#[test]
fn clear_errors_outside_projects_and_for_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    igloo(tmp.path()).arg("check").assert().failure().stderr(contains("no igloo.yaml")).stderr(contains("igloo init"));
    init(tmp.path(), "p", "ts");
    let project = tmp.path().join("p");
    let port = igloo_cli::infra::clickhouse::free_port().unwrap().to_string();
    igloo(&project)
        .arg("plan")
        .env("IGLOO_CLICKHOUSE_HTTP_PORT", &port)
        .env("IGLOO_INFRA_MODE", "native")
        .assert()
        .failure()
        .stderr(contains("cannot plan against the running engines"))
        .stderr(contains("--offline"))
        .stderr(contains(format!("http://127.0.0.1:{port} does not answer /ping")));
    std::fs::write(project.join("igloo.yaml"), "name: p\nclickhose:\n  target: current\n").unwrap();
    igloo(&project).arg("check").assert().failure().stderr(contains("igloo.yaml")).stderr(contains("clickhose"));
    std::fs::write(project.join("igloo.yaml"), "name: p\n").unwrap();
    igloo(&project)
        .arg("check")
        .env("IGLOO_CLICKHOUSE_TARGET", "18.16")
        .assert()
        .success()
        .stderr(contains("(ClickHouse 18.16)"));
    std::fs::remove_file(project.join("schema/models.prisma")).unwrap();
    igloo(&project).arg("check").assert().failure().stderr(contains("no schema files"));
    // -C runs as if started elsewhere.
    std::fs::write(project.join("schema/a.prisma"), "model A {\n  id String @id\n}\n").unwrap();
    // The template's transform names models this schema no longer has.
    igloo(tmp.path())
        .args(["-C", "p", "check"])
        .assert()
        .failure()
        .stderr(contains("transforms/PageView__SectionView.ts: `PageView` is not a model of the schema (models: A)"));
    std::fs::remove_file(project.join("transforms/PageView__SectionView.ts")).unwrap();
    igloo(tmp.path()).args(["-C", "p", "check"]).assert().success();
}
