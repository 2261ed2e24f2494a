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

/// A child process killed on drop (tansu, stunnel).
struct Running(Child);

impl Running {
    /// tansu listening on `port`, advertising `advertised` (a TLS proxy in front of it, or the
    /// same port), with its data in `dir`, with or without authentication.
    fn tansu(dir: &Path, port: u16, advertised: u16, authentication: bool) -> Running {
        std::fs::create_dir_all(dir).unwrap();
        let (listen, advertise) = (format!("tcp://127.0.0.1:{port}"), format!("tcp://127.0.0.1:{advertised}"));
        let mut cmd = Command::new("tansu");
        cmd.args(["broker", "--listener-url", &listen, "--advertised-listener-url", &advertise])
            .args(["--storage-engine", "sqlite://tansu.db"])
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
        Running(child)
    }
}

impl Drop for Running {
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

/// A time-series project `app` in `tmp`, reaching ClickHouse at `engines` and the broker at
/// `broker`; its server gets a port of its own.
fn app_project(tmp: &Path, engines: &Ports, broker: u16) -> (std::path::PathBuf, Ports) {
    let dir = tmp.join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let root = project_from(&dir, "timeseries");
    let server = igloo_cli::infra::clickhouse::free_port().unwrap();
    (root, Ports { http: engines.http, tcp: engines.tcp, broker, server, env: Vec::new() })
}

/// `igloo migrate` with the broker settings `env` adds: whether it succeeded, its output, and
/// how long it took.
fn migrate(root: &Path, ports: &Ports, env: &dyn Fn(&mut Command)) -> (bool, String, Duration) {
    let mut cmd = igloo(root, ports);
    cmd.arg("migrate");
    env(&mut cmd);
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text, started.elapsed())
}

/// `igloo serve` with the broker settings `env` adds, after posting 20 events: returns once
/// the writer has put them in `app.Measurement`.
fn serve_and_ingest(root: &Path, app: &Ports, engines: &Ports, env: &dyn Fn(&mut Command)) -> Dev {
    let mut cmd = igloo(root, app);
    cmd.args(["serve", "--grace-period", "10"])
        .env("IGLOO_WRITER_FLUSH_MS", "50")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    env(&mut cmd);
    let mut server = Dev::attach(cmd.spawn().unwrap());
    server.expect("igloo serve: project", START);
    let body: String = (0..20).map(|i| format!("{{\"time\":{i},\"tag\":\"s\",\"values\":[1]}}\n")).collect();
    post_ndjson(&app.api("/ingest/Measurement"), &body);
    let ch = engines.clickhouse();
    eventually(Duration::from_secs(30), "rows through the secured broker", || {
        (ch.execute("SELECT count() FROM app.Measurement").ok()?.trim() == "20").then_some(())
    });
    server
}

#[test]
fn sasl_credentials_work_end_to_end_and_wrong_ones_fail_fast_and_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    // ClickHouse from another project's `igloo dev --no-server`.
    let (mut dev, ports) = engines_elsewhere(tmp.path());

    // The secured broker: a user created while it is open, then authentication required.
    let broker_dir = tmp.path().join("broker");
    let port = igloo_cli::infra::clickhouse::free_port().unwrap();
    let open = Running::tansu(&broker_dir, port, port, false);
    let url = format!("tcp://127.0.0.1:{port}");
    let created = Command::new("tansu").args(["user", "create", "--broker", &url, "alice", "s3cret"]).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    drop(open);
    let _secured = Running::tansu(&broker_dir, port, port, true);

    let (root, app_ports) = app_project(tmp.path(), &ports, port);
    let password = |p: Option<&'static str>| move |cmd: &mut Command| with_broker(cmd, ports.http, port, p);

    // No password: a configuration error, before any connection.
    let (ok, err, _) = migrate(&root, &app_ports, &password(None));
    assert!(!ok && err.contains("IGLOO_BROKER_PASSWORD"), "{err}");

    // Wrong password: a clear error naming the settings, quickly.
    let (ok, err, took) = migrate(&root, &app_ports, &password(Some("wrong")));
    assert!(!ok, "{err}");
    assert!(took < Duration::from_secs(30), "no hang: {took:?}");
    assert!(
        err.contains("SASL") && err.contains("broker.security.username") && err.contains("IGLOO_BROKER_PASSWORD"),
        "{err}"
    );

    // Right credentials: migrate, then serve ingests and writes through the secured broker.
    let (ok, out, _) = migrate(&root, &app_ports, &password(Some("s3cret")));
    assert!(ok, "{out}");
    let mut server = serve_and_ingest(&root, &app_ports, &ports, &password(Some("s3cret")));
    let (status, _, ready) = get(&app_ports.api("/ready"));
    assert_eq!(status, 200, "{ready}");

    // The credentials stop working (the broker comes back without the user): /ready says why.
    drop(_secured);
    std::fs::remove_dir_all(&broker_dir).unwrap();
    let _renewed = Running::tansu(&broker_dir, port, port, true);
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
    let _tansu = Running::tansu(&tmp.path().join("broker"), plain, secure, false);
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
    let _stunnel = Running(stunnel);
    for port in [plain, secure] {
        eventually(Duration::from_secs(20), "listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    }

    let (root, app_ports) = app_project(tmp.path(), &ports, secure);
    let with_tls = |ca: &'static str| {
        let tls = tls.clone();
        move |cmd: &mut Command| {
            cmd.env("IGLOO_INFRA_MODE", "external")
                .env("IGLOO_CLICKHOUSE_URL", format!("http://127.0.0.1:{}", ports.http))
                .env("IGLOO_CLICKHOUSE_DATABASE", "app")
                .env("IGLOO_BROKER_BOOTSTRAP_SERVERS", format!("127.0.0.1:{secure}"))
                .env("IGLOO_BROKER_SECURITY_PROTOCOL", "SSL")
                .env("IGLOO_BROKER_SSL_CA", tls.join(ca))
                .env("IGLOO_BROKER_TOPIC_PREFIX", "tls.");
        }
    };

    // A CA that did not sign the broker's certificate: refused, quickly, naming the settings.
    let (ok, err, took) = migrate(&root, &app_ports, &with_tls("other-ca.pem"));
    assert!(!ok, "{err}");
    assert!(took < Duration::from_secs(30), "no hang: {took:?}");
    assert!(err.contains("broker.security.ssl_ca"), "{err}");

    // The right CA: migrate, then ingest and write through TLS.
    let (ok, out, _) = migrate(&root, &app_ports, &with_tls("ca.pem"));
    assert!(ok, "{out}");
    let mut server = serve_and_ingest(&root, &app_ports, &ports, &with_tls("ca.pem"));
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(30));
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}
