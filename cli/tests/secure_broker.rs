//! A broker that requires SASL (tansu with `--authentication`, SCRAM-SHA-512): with the right
//! credentials igloo migrates, ingests and writes end to end (producer, writers and admin all
//! authenticate through the one Kafka module); with wrong or missing ones it fails fast with
//! an error naming the settings, never a hang; and `/ready` reports an authentication failure
//! that starts while the server runs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::*;

/// tansu on `port` with its data in `dir`, with or without authentication; killed on drop.
struct Tansu(Child);

impl Tansu {
    fn start(dir: &Path, port: u16, authentication: bool) -> Tansu {
        std::fs::create_dir_all(dir).unwrap();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new("tansu");
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "sqlite://tansu.db",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if authentication {
            cmd.arg("--authentication");
        }
        let child = cmd.spawn().expect("tansu is installed (scripts/install-engines.sh)");
        eventually(Duration::from_secs(20), "tansu listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Tansu(child)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn with_broker(cmd: &mut Command, clickhouse: u16, broker: u16, password: Option<&str>) {
    cmd.env("IGLOO_INFRA_MODE", "external")
        .env("IGLOO_CLICKHOUSE_URL", format!("http://127.0.0.1:{clickhouse}"))
        .env("IGLOO_CLICKHOUSE_DATABASE", "app")
        .env("IGLOO_BROKER_BOOTSTRAP_SERVERS", format!("127.0.0.1:{broker}"))
        .env("IGLOO_BROKER_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        .env("IGLOO_BROKER_SASL_MECHANISM", "SCRAM-SHA-512")
        .env("IGLOO_BROKER_USERNAME", "alice")
        .env("IGLOO_BROKER_TOPIC_PREFIX", "staging.")
        .env_remove("IGLOO_BROKER_PASSWORD");
    if let Some(p) = password {
        cmd.env("IGLOO_BROKER_PASSWORD", p);
    }
}

#[test]
fn sasl_credentials_work_end_to_end_and_wrong_ones_fail_fast_and_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    // ClickHouse from another project's `igloo dev --no-server`.
    let (mut dev, ports) = engines_elsewhere(tmp.path());

    // The secured broker: a user created while it is open, then authentication required.
    let broker_dir = tmp.path().join("broker");
    let port = igloo_cli::infra::clickhouse::free_port().unwrap();
    let open = Tansu::start(&broker_dir, port, false);
    let url = format!("tcp://127.0.0.1:{port}");
    let created = Command::new("tansu").args(["user", "create", "--broker", &url, "alice", "s3cret"]).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    drop(open);
    let _secured = Tansu::start(&broker_dir, port, true);

    let app_dir = tmp.path().join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    let root = project_from(&app_dir, "timeseries");
    let app_ports = Ports {
        http: ports.http,
        tcp: ports.tcp,
        broker: port,
        server: igloo_cli::infra::clickhouse::free_port().unwrap(),
    };

    // No password: a configuration error, before any connection.
    let mut cmd = igloo(&root, &app_ports);
    cmd.arg("migrate");
    with_broker(&mut cmd, ports.http, port, None);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("IGLOO_BROKER_PASSWORD"), "{err}");

    // Wrong password: a clear error naming the settings, quickly.
    let mut cmd = igloo(&root, &app_ports);
    cmd.arg("migrate");
    with_broker(&mut cmd, ports.http, port, Some("wrong"));
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "no hang: {:?}", started.elapsed());
    assert!(
        err.contains("SASL") && err.contains("broker.security.username") && err.contains("IGLOO_BROKER_PASSWORD"),
        "{err}"
    );

    // Right credentials: migrate, then serve ingests and writes through the secured broker.
    let mut cmd = igloo(&root, &app_ports);
    cmd.arg("migrate");
    with_broker(&mut cmd, ports.http, port, Some("s3cret"));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut cmd = igloo(&root, &app_ports);
    cmd.args(["serve", "--grace-period", "10"])
        .env("IGLOO_WRITER_FLUSH_MS", "50")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_broker(&mut cmd, ports.http, port, Some("s3cret"));
    let mut server = Dev::attach(cmd.spawn().unwrap());
    server.expect("igloo serve: project", START);
    let body: String = (0..20).map(|i| format!("{{\"time\":{i},\"tag\":\"s\",\"values\":[1]}}\n")).collect();
    post_ndjson(&app_ports.api("/ingest/Measurement"), &body);
    let ch = ports.clickhouse();
    eventually(Duration::from_secs(30), "rows through the secured broker", || {
        (ch.execute("SELECT count() FROM app.Measurement").ok()?.trim() == "20").then_some(())
    });
    let (status, _, ready) = get(&app_ports.api("/ready"));
    assert_eq!(status, 200, "{ready}");

    // The credentials stop working (the broker comes back without the user): /ready says why.
    drop(_secured);
    std::fs::remove_dir_all(&broker_dir).unwrap();
    let _renewed = Tansu::start(&broker_dir, port, true);
    let details = eventually(Duration::from_secs(30), "/ready reporting the authentication failure", || {
        let (status, _, body) = get(&app_ports.api("/ready"));
        (status == 503 && body.contains("SASL")).then_some(body)
    });
    assert!(details.contains("IGLOO_BROKER_PASSWORD"), "{details}");
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(30));
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}
