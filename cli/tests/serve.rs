//! `igloo serve --role`: each role alone, in its own process, against engines that match the
//! schema — ingest accepts and produces but writes nothing; a writer process writes what ingest
//! acknowledged; a query process answers the read APIs and not ingest; `/ready` names each
//! process's roles; SIGTERM stops a process gracefully within its grace period.

use std::time::Duration;

use serde_json::Value;

mod support;
use support::*;

fn count(ports: &Ports) -> u64 {
    ports.clickhouse().execute("SELECT count() FROM devapp.Measurement").unwrap().trim().parse().unwrap()
}

fn ready(ports: &Ports) -> Value {
    eventually(Duration::from_secs(20), "ready", || {
        let (status, _, body) = get(&ports.api("/ready"));
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    })
}

#[test]
fn each_role_runs_alone_and_stops_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut engines = Dev::start(&root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);

    let ingest_ports = ports.with_new_server();
    let mut ingest = serve_roles(&root, &ingest_ports, "ingest");
    assert_eq!(ready(&ingest_ports)["roles"], serde_json::json!(["ingest"]));
    let body: String = (0..100).map(|i| format!("{{\"time\":{i},\"tag\":\"t{}\",\"values\":[1]}}\n", i % 5)).collect();
    post_ndjson(&ingest_ports.api("/ingest/Measurement"), &body);
    assert_eq!(get(&ingest_ports.api("/api/Measurement/samples?series=t1&start=0&end=10")).0, 404, "no query role");
    // Acknowledged, on the topic, and not written: no writer runs yet.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(count(&ports), 0);

    let writer_ports = ports.with_new_server();
    let mut writer = serve_roles(&root, &writer_ports, "writer");
    assert_eq!(ready(&writer_ports)["roles"], serde_json::json!(["writer"]));
    eventually(Duration::from_secs(20), "the writer process writes what ingest acknowledged", || {
        (count(&ports) == 100).then_some(())
    });
    assert_eq!(
        http_post(&writer_ports.api("/ingest/Measurement"), &[("Content-Type", "application/json")], "{}").status,
        404
    );

    // The query role, logging JSON lines for a log shipper.
    let query_ports = ports.with_new_server();
    let mut cmd = igloo(&root, &query_ports);
    cmd.args(["serve", "--mode", "native", "--role", "query", "--log-format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut query = Dev::attach(cmd.spawn().unwrap());
    let line = query.expect("\"message\":\"listening\"", START);
    let log: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!((log["level"].as_str(), log["roles"].as_str()), (Some("INFO"), Some("[\"query\"]")), "{log}");
    query.expect_seen("igloo serve: project", START);
    let (status, body) = get_json(&query_ports.api("/consumption/tag_stats?start=0&end=1000"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 5, "{body}");
    assert_eq!(
        http_post(&query_ports.api("/ingest/Measurement"), &[("Content-Type", "application/json")], "{}").status,
        404
    );

    // SIGTERM: each stops within its grace period, and says how long it took.
    for (name, server) in [("ingest", &mut ingest), ("writer", &mut writer), ("query", &mut query)] {
        server.signal(libc::SIGTERM);
        let line = server.expect("Stopped in", Duration::from_secs(30));
        let ms: u64 = line.trim_start_matches("Stopped in ").trim_end_matches(" ms.").parse().unwrap();
        assert!(ms < 25_000, "{name}: {line}");
        println!("{name} stopped in {ms} ms");
        assert!(server.wait_exit(Duration::from_secs(10)).success());
    }
    assert!(igloo(&root, &ports)
        .args(["serve", "--role", "reader"])
        .output()
        .unwrap()
        .stderr
        .starts_with(b"error: `reader` is not a role"));
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}
