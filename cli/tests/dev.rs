//! `igloo dev` with real engines (ClickHouse 18.16 and tansu), started through igloo's own
//! code: tables and topics appear, saves apply, destructive edits wait for consent, data
//! survives a restart, and Ctrl-C / `igloo down` leave no engine process behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use igloo_cli::infra::clickhouse::ClickHouseHttp;
use igloo_server::kafka::admin::KafkaAdmin;
use igloo_server::kafka::{Broker, Framing};

mod support;
use support::*;

#[test]
fn dev_creates_applies_holds_back_restarts_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let ch = ClickHouseHttp::new(format!("http://127.0.0.1:{}", ports.http));
    let schema = root.join("schema/measurement.prisma");

    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("+ table devapp.Measurement", START);
    dev.expect("Ready in", START);
    assert_eq!(ch.execute("EXISTS TABLE devapp.Measurement").unwrap().trim(), "1");
    let admin =
        KafkaAdmin::connect(&Broker::new(format!("127.0.0.1:{}", ports.broker), Framing::Batch), Some(1)).unwrap();
    assert_eq!(admin.topics(Duration::from_secs(10)).unwrap().get("Measurement"), Some(&4));
    assert_eq!(ch.execute("SELECT count() FROM devapp._igloo_migrations").unwrap().trim(), "1");

    // Additive edits apply on save.
    let original = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(
        &schema,
        original.replace("  values Float[]\n", "  values Float[]\n  unit   String @default(\"m\")\n"),
    )
    .unwrap();
    dev.expect("+ column Measurement.unit", APPLY);
    assert!(columns(&ch, "Measurement").contains("'unit'"));
    std::fs::write(root.join("schema/alert.prisma"), "model Alert {\n  tag   String @id\n  level Int\n}\n").unwrap();
    dev.expect("+ table devapp.Alert", APPLY);
    assert_eq!(ch.execute("EXISTS TABLE devapp.Alert").unwrap().trim(), "1");
    assert!(admin.topics(Duration::from_secs(10)).unwrap().contains_key("Alert"));

    // A destructive edit is shown and held back without consent.
    std::fs::write(&schema, &original).unwrap();
    dev.expect("held back: - column Measurement.unit", APPLY);
    assert!(columns(&ch, "Measurement").contains("'unit'"), "column must survive without consent");

    // A broken file changes nothing.
    std::fs::write(root.join("schema/bad.prisma"), "model Bad {\n  id Strng @id\n}\n").unwrap();
    dev.expect("nothing applied, the running system is unchanged", APPLY);
    std::fs::remove_file(root.join("schema/bad.prisma")).unwrap();

    // A direct insert, not through the topic: the table writer's recovery must leave it alone
    // (regression: it once deleted such rows as if they were unlogged writes).
    ch.execute("INSERT INTO devapp.Measurement (time, tag, values, unit) VALUES (1, 'a', [1.5], 'm')").unwrap();
    let ps = igloo(&root, &ports).arg("ps").output().unwrap();
    assert!(String::from_utf8_lossy(&ps.stdout).contains("running"), "{}", String::from_utf8_lossy(&ps.stdout));

    // Ctrl-C stops igloo dev and every engine it started.
    let pids = engine_pids(&root);
    assert_eq!(pids.len(), 2);
    dev.signal(libc::SIGINT);
    let stopping = Instant::now();
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
    wait_gone(&pids);
    // Both engines stop on SIGTERM: the 10 s SIGKILL fallback, which says so, must not be what
    // ended them. (The whole stop, ingest server included, takes 2–6 s on an idle machine; the
    // bound leaves room for a loaded one.)
    let killed: Vec<String> =
        dev.output().iter().filter(|l| l.contains("did not stop after SIGTERM")).cloned().collect();
    assert!(killed.is_empty(), "{killed:?}");
    assert!(stopping.elapsed() < Duration::from_secs(20), "stopping took {:?}", stopping.elapsed());
    assert!(!root.join(".igloo/dev.json").exists());

    // Restart: the data is still there; consent applies the held-back drop.
    let mut dev = Dev::start(&root, &ports, &["--allow-destructive"]);
    dev.expect("- column Measurement.unit", START);
    dev.expect("Ready in", START);
    assert_eq!(ch.execute("SELECT count() FROM devapp.Measurement").unwrap().trim(), "1");
    assert!(!columns(&ch, "Measurement").contains("'unit'"));

    // `igloo down` from another process stops it the same way.
    let pids = engine_pids(&root);
    let down = igloo(&root, &ports).arg("down").output().unwrap();
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
    wait_gone(&pids);

    // Logs stay readable after the engines stopped.
    let logs = igloo(&root, &ports).args(["logs", "clickhouse", "-n", "3"]).output().unwrap();
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.status.success() && text.contains("==> clickhouse:") && text.lines().count() >= 2, "{text}");

    // `igloo clean` asks (refuses without a terminal) unless --yes.
    let clean = igloo(&root, &ports).arg("clean").output().unwrap();
    assert!(!clean.status.success() && String::from_utf8_lossy(&clean.stderr).contains("--yes"));
    assert!(igloo(&root, &ports).args(["clean", "--yes"]).status().unwrap().success());
    assert!(!root.join(".igloo").exists());
}

#[test]
fn dev_errors_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();

    // A busy port names itself and the setting that moves it.
    let _busy = std::net::TcpListener::bind(("127.0.0.1", ports.http)).unwrap();
    let out = igloo(&root, &ports).arg("dev").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("port {} (ClickHouse HTTP) is already in use", ports.http))
            && err.contains("clickhouse.http_port"),
        "{err}"
    );
    drop(_busy);

    // A missing broker binary names the install command.
    let out = igloo(&root, &ports).arg("dev").env("IGLOO_BROKER_ENGINE", "redpanda").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("broker.engine is `redpanda` but `redpanda` is not on PATH"),
        "{err}"
    );
    wait_gone(&[]);

    // External mode without its settings.
    let out = igloo(&root, &ports).arg("dev").env("IGLOO_INFRA_MODE", "external").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("infra.mode is external but clickhouse.url is not set") && err.contains("IGLOO_CLICKHOUSE_URL"),
        "{err}"
    );

    // A cluster needs engines igloo does not start.
    let out = igloo(&root, &ports).arg("dev").env("IGLOO_CLICKHOUSE_CLUSTER", "main").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("clickhouse.cluster: main needs a cluster, which igloo does not start")
            && err.contains("local-cluster.sh"),
        "{err}"
    );

    // `igloo plan` against engines that are not running.
    let out = igloo(&root, &ports).arg("plan").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("does not answer /ping") && err.contains("igloo dev"), "{err}");
}

#[test]
fn plan_observes_running_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ready in", START);
    let out = igloo(&root, &ports).arg("plan").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("Nothing to change."), "{stdout}");
    // The same engines seen for another database: the topic exists, the database and table
    // do not. Planning applies nothing.
    let out = igloo(&root, &ports).args(["plan", "--json"]).env("IGLOO_CLICKHOUSE_DATABASE", "other").output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = plan["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["create_database", "create_table", "create_rollup", "create_rollup", "create_rollup"]);
    let ch = ClickHouseHttp::new(format!("http://127.0.0.1:{}", ports.http));
    assert_eq!(ch.execute("SELECT count() FROM system.databases WHERE name = 'other'").unwrap().trim(), "0");
    dev.signal(libc::SIGTERM);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn sorting_key_change_rebuilds_the_table_and_keeps_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let ch = ClickHouseHttp::new(format!("http://127.0.0.1:{}", ports.http));
    let mut dev = Dev::start(&root, &ports, &["--allow-destructive"]);
    dev.expect("Ready in", START);
    ch.execute("INSERT INTO devapp.Measurement (time, tag, values) SELECT number, toString(number % 7), [toFloat64(number)] FROM system.numbers LIMIT 1000").unwrap();
    let schema = root.join("schema/measurement.prisma");
    let text = std::fs::read_to_string(&schema).unwrap();
    // A time series must stay sorted by (tag, time): this model stops being one.
    let text = text.replace("  @@timeseries(time: time, series: tag)\n", "");
    std::fs::write(&schema, text.replace("@@id([tag, time])", "@@id([time, tag])")).unwrap();
    dev.expect("rebuild for sorting key", APPLY);
    dev.expect("✓ applied", APPLY);
    let key =
        ch.execute("SELECT sorting_key FROM system.tables WHERE database = 'devapp' AND name = 'Measurement'").unwrap();
    assert_eq!(key.trim(), "time, tag");
    assert_eq!(ch.execute("SELECT count(), sum(time) FROM devapp.Measurement").unwrap().trim(), "1000\t499500");
    assert_eq!(ch.execute("SELECT count() FROM devapp._igloo_old_Measurement_1").unwrap().trim(), "1000");
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn external_mode_uses_existing_engines_and_leaves_them_running() {
    let tmp = tempfile::tempdir().unwrap();
    let host = project(tmp.path());
    let ports = Ports::free();
    let mut engines = Dev::start(&host, &ports, &[]);
    engines.expect("Ready in", START);

    // A second project that reaches the first one's engines as external clusters.
    std::fs::create_dir(tmp.path().join("other")).unwrap();
    let status = Command::new(assert_cmd::cargo::cargo_bin("igloo"))
        .current_dir(tmp.path().join("other"))
        .args(["init", "client", "--template", "python", "--yes"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let client = tmp.path().join("other/client");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("igloo"));
    cmd.current_dir(&client)
        .args(["dev"])
        .env("IGLOO_INFRA_MODE", "external")
        .env("IGLOO_CLICKHOUSE_URL", format!("http://127.0.0.1:{}", ports.http))
        .env("IGLOO_BROKER_BOOTSTRAP_SERVERS", format!("127.0.0.1:{}", ports.broker))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let mut external = Dev::attach(child);
    external.expect("+ table client.SensorReading", START);
    external.expect("Ready in", START);
    assert!(!client.join(".igloo/clickhouse").exists(), "external mode starts no engine");
    let ch = ClickHouseHttp::new(format!("http://127.0.0.1:{}", ports.http));
    assert_eq!(ch.execute("EXISTS TABLE client.SensorReading").unwrap().trim(), "1");
    external.signal(libc::SIGINT);
    assert!(external.wait_exit(Duration::from_secs(30)).success());
    // The engines belong to the first project and keep running.
    assert!(ch.ping());
    for pid in engine_pids(&host) {
        assert!(alive(pid));
    }
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_dead_engine_is_restarted_and_one_that_keeps_dying_stops_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &["--no-server"]);
    dev.expect("Ready in", START);
    let (clickhouse, broker) = (engine_pids(&root)[0], engine_pids(&root)[1]);
    unsafe { libc::kill(broker as i32, libc::SIGKILL) };
    let line = dev.expect("tansu exited", Duration::from_secs(10));
    assert!(line.contains("last lines of") && line.contains("broker.log"), "{line}");
    dev.expect("tansu restarted on", START);
    let ch = ports.clickhouse();
    assert_eq!(ch.execute("EXISTS TABLE devapp.Measurement").unwrap().trim(), "1");
    // The restarted broker still has the topic (SQLite storage survives).
    let admin =
        KafkaAdmin::connect(&Broker::new(format!("127.0.0.1:{}", ports.broker), Framing::Batch), Some(1)).unwrap();
    assert_eq!(admin.topics(Duration::from_secs(10)).unwrap().get("Measurement"), Some(&4));

    // Three more deaths within the minute: igloo dev gives up and stops the rest.
    for _ in 0..3 {
        let pid = eventually(Duration::from_secs(30), "a new broker pid", || {
            engine_pids(&root).get(1).copied().filter(|p| alive(*p))
        });
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(700));
    }
    dev.expect("giving up", Duration::from_secs(20));
    let status = dev.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "giving up is a failure");
    wait_gone(&[clickhouse]);
}

#[test]
fn docker_compose_file_is_complete() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/docker-compose.yml")).unwrap();
    let compose: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    for (service, port_var) in [("redpanda", "IGLOO_BROKER_PORT"), ("clickhouse", "IGLOO_CLICKHOUSE_HTTP_PORT")] {
        let s = &compose["services"][service];
        let image = s["image"].as_str().unwrap();
        let tag = image.rsplit(':').next().unwrap();
        assert!(
            image.contains(':') && tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{service}: image {image} must be pinned"
        );
        assert!(s["healthcheck"]["test"].is_array(), "{service}: healthcheck");
        assert!(s["volumes"][0].as_str().unwrap().contains("-data:"), "{service}: named volume");
        let port = s["ports"][0].as_str().unwrap();
        assert!(
            port.starts_with("127.0.0.1:") && port.contains(port_var),
            "{service}: loopback port from {port_var}: {port}"
        );
    }
    assert!(compose["volumes"]["redpanda-data"].is_null() && compose["volumes"].as_object().unwrap().len() == 2);
}

/// The reference deliverable (docker/reference/): the igloo stack (a one-shot migrate, then
/// igloo serve) plus the producer and the query clients as separate services of the image
/// built by docker/Dockerfile. The file's shape; tests/docker_reference.rs runs it.
#[test]
fn reference_compose_runs_the_stack_and_the_load_as_services() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docker/reference/docker-compose.yml")).unwrap();
    let compose: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let services = compose["services"].as_object().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["clickhouse", "igloo", "migrate", "producer", "queries", "redpanda"]);
    for s in ["igloo", "migrate", "producer", "queries"] {
        assert_eq!(
            services[s]["image"], "${IGLOO_IMAGE:-igloo:reference}",
            "{s} runs the image docker/Dockerfile builds"
        );
        assert_eq!(services[s]["build"]["dockerfile"], "docker/Dockerfile");
    }
    assert_eq!(services["migrate"]["command"], serde_json::json!(["igloo", "migrate", "--yes"]));
    assert_eq!(services["igloo"]["command"], serde_json::json!(["igloo", "serve"]));
    assert_eq!(services["igloo"]["depends_on"]["migrate"]["condition"], "service_completed_successfully");
    assert_eq!(services["igloo"]["environment"]["IGLOO_BROKER_BOOTSTRAP_SERVERS"], "redpanda:9092");
    for (s, role) in [("producer", "--role=producer"), ("queries", "--role=queries")] {
        let cmd: Vec<&str> = services[s]["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(cmd[0], "igloo-bench-reference");
        assert!(cmd.contains(&role) && cmd.contains(&"--api=http://igloo:4000"), "{s}: {cmd:?}");
        assert_eq!(services[s]["depends_on"]["igloo"]["condition"], "service_healthy");
    }
    // Every flag the services pass is one the benchmark binary has.
    let source = std::fs::read_to_string(root.join("bench/src/reference.rs")).unwrap();
    for s in ["producer", "queries"] {
        for arg in services[s]["command"].as_array().unwrap().iter().skip(1) {
            let flag = arg.as_str().unwrap().trim_start_matches("--").split('=').next().unwrap().replace('-', "_");
            assert!(
                source.contains(&format!("    {flag}: ")),
                "{s}: --{flag} is not an option of igloo-bench-reference"
            );
        }
    }
    let dockerfile = std::fs::read_to_string(root.join("docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked -p igloo-cli -p igloo-bench"));
    assert!(dockerfile.contains("igloo init reference --template timeseries"));
}
