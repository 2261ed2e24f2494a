//! Secured brokers. SASL: tansu with `--authentication` (SCRAM-SHA-512) — with the right
//! credentials igloo migrates, ingests and writes end to end (producer, writers and admin all
//! authenticate through the one Kafka module); with wrong or missing ones it fails fast with
//! an error naming the settings, never a hang; `/ready` reports an authentication failure that
//! starts while the server runs. TLS: tansu behind stunnel (tansu 0.6 serves no TLS itself)
//! with a certificate from a test CA — igloo connects with that CA, and a wrong CA fails
//! fast, naming the TLS settings.

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

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`<name>.pem`) in `dir`; with `server`, a certificate for 127.0.0.1 signed by it.
fn test_ca(dir: &Path, name: &str, server: bool) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    if server {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &pem,
                "-CAkey",
                &key,
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
    }
}

#[test]
fn tls_with_the_right_ca_works_and_a_wrong_one_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut dev, ports) = engines_elsewhere(tmp.path());
    let tls = tmp.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    test_ca(&tls, "ca", true);
    test_ca(&tls, "other-ca", false);

    // tansu on a plain port, advertising the TLS port stunnel serves in front of it.
    let (plain, secure) =
        (igloo_cli::infra::clickhouse::free_port().unwrap(), igloo_cli::infra::clickhouse::free_port().unwrap());
    let broker_dir = tmp.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let (listen, advertise) = (format!("tcp://127.0.0.1:{plain}"), format!("tcp://127.0.0.1:{secure}"));
    let tansu = Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &listen,
            "--advertised-listener-url",
            &advertise,
            "--storage-engine",
            "sqlite://tansu.db",
        ])
        .current_dir(&broker_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _tansu = Tansu(tansu);
    let conf = tls.join("stunnel.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{secure}\nconnect = 127.0.0.1:{plain}\ncert = {}\nkey = {}\n",
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        ),
    )
    .unwrap();
    let stunnel = Command::new("stunnel")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stunnel is installed");
    let _stunnel = Tansu(stunnel);
    for port in [plain, secure] {
        eventually(Duration::from_secs(20), "listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    }

    let app_dir = tmp.path().join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    let root = project_from(&app_dir, "timeseries");
    let app_ports = Ports {
        http: ports.http,
        tcp: ports.tcp,
        broker: secure,
        server: igloo_cli::infra::clickhouse::free_port().unwrap(),
    };
    let with_tls = |cmd: &mut Command, ca: &str| {
        cmd.env("IGLOO_INFRA_MODE", "external")
            .env("IGLOO_CLICKHOUSE_URL", format!("http://127.0.0.1:{}", ports.http))
            .env("IGLOO_CLICKHOUSE_DATABASE", "app")
            .env("IGLOO_BROKER_BOOTSTRAP_SERVERS", format!("127.0.0.1:{secure}"))
            .env("IGLOO_BROKER_SECURITY_PROTOCOL", "SSL")
            .env("IGLOO_BROKER_SSL_CA", tls.join(ca))
            .env("IGLOO_BROKER_TOPIC_PREFIX", "tls.");
    };

    // A CA that did not sign the broker's certificate: refused, quickly, naming the settings.
    let mut cmd = igloo(&root, &app_ports);
    cmd.arg("migrate");
    with_tls(&mut cmd, "other-ca.pem");
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "no hang: {:?}", started.elapsed());
    assert!(err.contains("broker.security.ssl_ca"), "{err}");

    // The right CA: migrate, then ingest and write through TLS.
    let mut cmd = igloo(&root, &app_ports);
    cmd.arg("migrate");
    with_tls(&mut cmd, "ca.pem");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut cmd = igloo(&root, &app_ports);
    cmd.args(["serve", "--grace-period", "10"])
        .env("IGLOO_WRITER_FLUSH_MS", "50")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_tls(&mut cmd, "ca.pem");
    let mut server = Dev::attach(cmd.spawn().unwrap());
    server.expect("igloo serve: project", START);
    let body: String = (0..20).map(|i| format!("{{\"time\":{i},\"tag\":\"t\",\"values\":[1]}}\n")).collect();
    post_ndjson(&app_ports.api("/ingest/Measurement"), &body);
    let ch = ports.clickhouse();
    eventually(Duration::from_secs(30), "rows through TLS", || {
        (ch.execute("SELECT count() FROM app.Measurement").ok()?.trim() == "20").then_some(())
    });
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(30));
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}
