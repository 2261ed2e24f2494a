//! igloo with a real Docker engine (started by scripts/docker-daemon.sh when none runs) and the
//! local stand-in images of scripts/local-images.sh (no registry is reachable here):
//! - `igloo dev` in docker mode: engines come up, the schema is applied, ingest lands, a schema
//!   edit hot-reloads;
//! - `igloo build` and `igloo deploy --target compose --up`: 2 ingest and 2 writer replicas, the
//!   Python SDK ingests and a query reads back, a writer container is killed mid-stream and rows
//!   equal acknowledged.
//!
//! Where no Docker engine can be started, each test prints why and passes without running.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The stand-in images' variables, or None (printed) where no Docker engine can be started.
fn local_images() -> Option<Vec<(String, String)>> {
    let daemon = Command::new("bash").arg(repo().join("scripts/docker-daemon.sh")).status();
    if !daemon.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no Docker engine runs here and none could be started (scripts/docker-daemon.sh)");
        return None;
    }
    let out = Command::new("bash").arg(repo().join("scripts/local-images.sh")).arg("--print-env").output().unwrap();
    assert!(out.status.success(), "local-images.sh: {}", String::from_utf8_lossy(&out.stderr));
    let vars: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(vars.len(), 3, "{vars:?}");
    Some(vars)
}

/// `igloo init <name>` in `tmp`: compose project names derive from it, so each test has its own.
fn init(tmp: &Path, name: &str, template: &str) -> PathBuf {
    let status = Command::new(assert_cmd::cargo::cargo_bin("igloo"))
        .current_dir(tmp)
        .args(["init", name, "--template", template, "--yes"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    tmp.join(name)
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes a compose project's containers and volumes when dropped.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = docker(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={}", self.0)]);
        let ids: Vec<&str> = ids.lines().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).output();
        }
        let vols = docker(&["volume", "ls", "-q", "--filter", &format!("label=com.docker.compose.project={}", self.0)]);
        for v in vols.lines() {
            let _ = Command::new("docker").args(["volume", "rm", "-f", v]).output();
        }
        let _ = Command::new("docker").args(["network", "rm", &format!("{}_default", self.0)]).output();
    }
}

#[test]
fn igloo_dev_in_docker_mode_creates_ingests_and_hot_reloads() {
    let Some(images) = local_images() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path(), "dockdev", "timeseries");
    let _cleanup = Cleanup("igloo-dockdev".into());
    let ports = Ports::free();
    let mut cmd = igloo(&root, &ports);
    cmd.args(["dev", "--mode", "docker"]).env("IGLOO_INFRA_MODE", "docker").envs(images);
    let mut dev = Dev::attach(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let line = dev.expect("✓ docker: ClickHouse", START);
    assert!(line.contains("ClickHouse 18.16"), "{line}");
    dev.expect("+ table dockdev.Measurement", START);
    dev.expect("Ready in", START);
    post_ndjson(&ports.api("/ingest/Measurement"), "{\"time\":5,\"tag\":\"d\",\"values\":[1.5]}\n");
    eventually(Duration::from_secs(20), "the event queryable", || {
        let (status, body) = get_json(&ports.api("/api/Measurement/samples?series=d&start=0&end=10"));
        let samples = body["samples"].as_array()?.clone();
        (status == 200 && samples.iter().any(|s| s["values"][0] == 1.5)).then_some(())
    });

    // A new model, saved while running: created in the containers' ClickHouse and ingestible.
    let schema = root.join("schema/note.prisma");
    std::fs::write(&schema, "model Note {\n  id   String @id\n  text String\n}\n").unwrap();
    dev.expect("+ table dockdev.Note", Duration::from_secs(30));
    eventually(Duration::from_secs(20), "the new model accepted", || {
        let r = try_post(
            &ports.api("/ingest/Note"),
            &[("Content-Type", "application/json")],
            "{\"id\":\"1\",\"text\":\"hi\"}",
        );
        r.ok().filter(|r| r.status == 200).map(|_| ())
    });
    let count = eventually(Duration::from_secs(20), "the note written", || {
        let n = ports.clickhouse().execute("SELECT count() FROM dockdev.Note").ok()?;
        (n.trim() == "1").then_some(n)
    });
    assert_eq!(count.trim(), "1");
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(60)).success());
}

#[test]
fn the_compose_deployment_writes_every_acknowledged_event_once_across_a_killed_writer() {
    let Some(images) = local_images() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = init(tmp.path(), "dockprod", "timeseries");
    let stack = "igloo-dockprod-deploy";
    let _cleanup = Cleanup(stack.into());
    let (ingest_port, query_port) = (free_port(), free_port());
    let ingest_ports = format!("{ingest_port}-{}", ingest_port + 1);
    let run = |args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin("igloo"))
            .current_dir(&root)
            .args(args)
            .envs(images.clone())
            .env("IGLOO_IMAGE", "igloo-dockprod:test")
            .env("IGLOO_INGEST_PORTS", &ingest_ports)
            .env("IGLOO_QUERY_PORT", query_port.to_string())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "igloo {}: {text}", args.join(" "));
        text
    };
    let built = run(&["build"]);
    assert!(built.contains("✓ built igloo-dockprod:test"), "{built}");
    // Non-root, with a healthcheck.
    assert_eq!(docker(&["image", "inspect", "--format", "{{.Config.User}}", "igloo-dockprod:test"]), "igloo");
    assert!(docker(&["image", "inspect", "--format", "{{json .Config.Healthcheck}}", "igloo-dockprod:test"])
        .contains("/health"));

    let up = run(&["deploy", "--target", "compose", "--out", "deploy/compose", "--up"]);
    assert!(up.contains(&format!("✓ {stack} is up")), "{up}");
    let running =
        docker(&["ps", "--filter", &format!("label=com.docker.compose.project={stack}"), "--format", "{{.Names}}"]);
    for name in ["ingest-1", "ingest-2", "writer-1", "writer-2", "query-1", "clickhouse-1", "redpanda-1"] {
        assert!(running.contains(&format!("{stack}-{name}")), "{name} in {running}");
    }

    // Deployed, the server requires a credential; a key is made where the stack runs.
    let url = format!("http://127.0.0.1:{ingest_port}/ingest/Measurement");
    let refused = try_post(&url, &[("Content-Type", "application/x-ndjson")], "{}\n").unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    let key = docker(&[
        "exec",
        &format!("{stack}-ingest-1"),
        "igloo",
        "keys",
        "create",
        "--name",
        "deploy-test",
        "--scope",
        "admin",
    ]);
    let key = key.lines().last().unwrap_or_default().trim().to_string();
    assert!(key.starts_with("igloo_"), "{key}");
    let bearer = format!("Bearer {key}");
    // Servers read new keys within seconds.
    eventually(Duration::from_secs(10), "the new key accepted", || {
        let headers = [("Content-Type", "application/x-ndjson"), ("Authorization", bearer.as_str())];
        let r = try_post(&url, &headers, "{\"time\":0,\"tag\":\"probe\",\"values\":[0]}\n").ok()?;
        (r.status == 200).then_some(())
    });

    // The Python SDK ingests through the first ingest replica; the query role reads it back.
    let python = std::env::var("IGLOO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = format!(
        "import igloo_sdk\nc = igloo_sdk.Client('http://127.0.0.1:{ingest_port}', api_key='{key}')\nprint(c.ingest('Measurement', [{{'time': 1, 'tag': 'sdk', 'values': [2.5]}}]))\n"
    );
    let out = Command::new(&python).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = format!(
        "import igloo_sdk, json\nc = igloo_sdk.Client('http://127.0.0.1:{query_port}', api_key='{key}')\nprint(json.dumps(c.samples('Measurement', 'sdk', 0, 10)))\n"
    );
    eventually(Duration::from_secs(30), "the SDK's event read back through the query role", || {
        let out = Command::new(&python).args(["-c", &read]).output().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["samples"].as_array()?.iter().any(|s| s["values"][0] == 2.5).then_some(())
    });

    // A stream over both ingest replicas; a writer container is killed mid-stream.
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (s, a) = (stop.clone(), acked.clone());
    let producer = std::thread::spawn(move || {
        let headers = [("Content-Type", "application/x-ndjson"), ("Authorization", bearer.as_str())];
        let mut i = 1_000u64;
        while !s.load(Ordering::Relaxed) {
            let port = ingest_port + (i / 50 % 2) as u16;
            let body: String =
                (i..i + 50).map(|n| format!("{{\"time\":{n},\"tag\":\"s{}\",\"values\":[1]}}\n", n % 23)).collect();
            i += 50;
            let url = format!("http://127.0.0.1:{port}/ingest/Measurement");
            if try_post(&url, &headers, body).is_ok_and(|r| r.status == 200) {
                a.fetch_add(50, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    docker(&["kill", &format!("{stack}-writer-1")]);
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let acked = acked.load(Ordering::Relaxed) + 2; // and the probe's and the SDK's events
    assert!(acked > 1_000, "{acked} acknowledged");
    let ch = |sql: &str| {
        let url = format!("http://127.0.0.1:8123/?query={}", sql.replace(' ', "%20"));
        docker(&["exec", &format!("{stack}-clickhouse-1"), "wget", "-qO-", &url])
    };
    let got = eventually(Duration::from_secs(90), "every acknowledged event written", || {
        let r = ch("SELECT count(), uniqExact(tag, time) FROM dockprod.Measurement");
        let (n, distinct) = r.split_once('\t')?;
        let (n, distinct): (u64, u64) = (n.parse().ok()?, distinct.parse().ok()?);
        assert_eq!(n, distinct, "duplicated rows");
        (n >= acked).then_some(n)
    });
    assert_eq!(got, acked);
    println!("{acked} events acknowledged through the compose stack, each written once across a killed writer");

    let down = run(&["deploy", "--target", "compose", "--out", "deploy/compose", "--down"]);
    assert!(down.contains(&format!("✓ stopped {stack}")), "{down}");
    assert_eq!(docker(&["ps", "-q", "--filter", &format!("label=com.docker.compose.project={stack}")]), "");
}

fn free_port() -> u16 {
    // Two consecutive free ports for the ingest replicas' range.
    loop {
        let p = igloo_cli::infra::clickhouse::free_port().unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}
