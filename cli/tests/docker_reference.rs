//! The reference deliverable (`docker/reference/docker-compose.yml`) run for real with Docker and
//! the local stand-in images, with the shortest profile (120 s, it holds a one-minute peak):
//! `igloo migrate` then `igloo serve` in containers, the producer and the query clients as
//! separate services; their reports are read and every acknowledged event is in ClickHouse.
//! Its own test binary, so that nothing else runs beside the load. Where no Docker engine can be
//! started, it prints why and passes without running.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compose(env: &[(String, String)], args: &[&str]) -> (bool, String) {
    let file = repo().join("docker/reference/docker-compose.yml");
    let out = Command::new("docker")
        .args(["compose", "-f"])
        .arg(file)
        .args(["-p", "igloo-reference-test"])
        .args(args)
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

struct Down(Vec<(String, String)>);

impl Drop for Down {
    fn drop(&mut self) {
        compose(&self.0, &["down", "-v", "--remove-orphans"]);
    }
}

#[test]
fn the_reference_deliverable_runs_in_docker_and_loses_nothing() {
    let daemon = Command::new("bash").arg(repo().join("scripts/docker-daemon.sh")).status();
    if !daemon.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no Docker engine runs here and none could be started (scripts/docker-daemon.sh)");
        return;
    }
    let out = Command::new("bash")
        .arg(repo().join("scripts/local-images.sh"))
        .args(["--with-igloo", "--print-env"])
        // scripts/test.sh built the image from this checkout before `cargo test`, which holds
        // cargo's build lock: no cargo from here.
        .env("IGLOO_LOCAL_IMAGES_NO_CARGO", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "local-images.sh: {}", String::from_utf8_lossy(&out.stderr));
    let mut env: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(env.len(), 4, "{env:?}");
    let port = igloo_cli::infra::clickhouse::free_port().unwrap();
    for (k, v) in [
        ("IGLOO_PROFILE_SECONDS", "120".to_string()),
        ("IGLOO_BATCHED_SECONDS", "5".into()),
        ("IGLOO_QUERY_SECONDS", "125".into()),
        ("IGLOO_PORT", port.to_string()),
        ("IGLOO_CLICKHOUSE_NOFILE", igloo_cli::dev::engines::clickhouse_nofile().to_string()),
    ] {
        env.push((k.into(), v));
    }
    let _down = Down(env.clone());

    let (ok, up) = compose(&env, &["up", "-d", "--wait", "igloo"]);
    assert!(ok, "{up}");
    // Both clients run to their end; `up` returns when both have exited.
    let (ok, log) = compose(&env, &["up", "producer", "queries"]);
    assert!(ok, "{log}");
    let report = |prefix: &str| -> String {
        log.lines().find(|l| l.contains(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line in:\n{log}")).to_string()
    };
    let producer = report("profile: offered");
    let number = |after: &str| -> u64 {
        let rest = producer.split(after).nth(1).unwrap_or_else(|| panic!("{after:?} in {producer}"));
        rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let (acked, failed) = (number("acknowledged "), number("failed "));
    assert!(acked > 100_000, "the profile barely ran: {producer}");
    assert_eq!(failed, 0, "{producer}");
    let queries = report("| `/api` |");
    println!("{producer}\n{queries}\n{}", report("| freshness |"));

    // Nothing acknowledged is missing: the producer's events (the freshness probe adds its own).
    let count = || -> u64 {
        let sql = "http://127.0.0.1:8123/?query=SELECT%20count()%20FROM%20reference.Measurement";
        let (_, rows) = compose(&env, &["exec", "-T", "clickhouse", "wget", "-qO-", sql]);
        rows.trim().parse().unwrap_or(0)
    };
    let started = std::time::Instant::now();
    let mut rows = count();
    while rows < acked && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_secs(1));
        rows = count();
    }
    assert!(rows >= acked, "{rows} rows for {acked} acknowledged");
    println!("{rows} rows in ClickHouse for {acked} acknowledged by the producer");
}
