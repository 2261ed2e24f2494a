//! End-to-end idempotency (`Idempotency-Key` on ingest), against real ClickHouse 18.16 and
//! tansu: a batch sent again with the same key lands once — under `igloo dev` (the lone
//! writer) and under `igloo serve` (a writer replica), after the server crashed between the
//! broker's acknowledgement and its answer, and after a restart (the window is kept in
//! ClickHouse); different keys with the same body land twice, as asked.

use std::time::Duration;

mod support;
use support::*;

/// 40 events over 8 tags (so over the topic's 4 partitions), times from `first` on.
fn batch(first: u64) -> String {
    (first..first + 40).map(|n| format!("{{\"time\":{n},\"tag\":\"t{}\",\"values\":[1]}}\n", n % 8)).collect()
}

fn post_keyed(ports: &Ports, body: &str, key: Option<&str>) -> reqwest::Result<Reply> {
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(k) = key {
        headers.push(("Idempotency-Key", k));
    }
    try_post(&ports.api("/ingest/Measurement"), &headers, body.to_string())
}

/// Waits until the writer has read everything on the topic and skipped `skipped` rows as
/// duplicates; returns `(rows, distinct (tag, time))` in the table.
fn settled(ports: &Ports, skipped: u64) -> (u64, u64) {
    eventually(Duration::from_secs(30), "the writer caught up", || {
        (metric(ports, "igloo_consumer_lag", "Measurement") == Some(0)
            && metric(ports, "igloo_idempotent_duplicates_total", "Measurement") == Some(skipped))
        .then_some(())
    });
    let out =
        ports.clickhouse().execute("SELECT count(), uniqExact(tag, time) FROM devapp.Measurement FORMAT TSV").unwrap();
    let mut it = out.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn the_same_key_three_times_lands_once_and_different_keys_land_twice_under_igloo_dev() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ready in", START);
    wait_ready(&ports);

    // Bad keys are refused, naming the header; nothing is produced.
    let long = "k".repeat(256);
    for (key, says) in
        [("", "it is empty"), (long.as_str(), "256 characters long; at most 255"), ("a\tb", "printable ASCII")]
    {
        let r = post_keyed(&ports, &batch(1000), Some(key)).unwrap();
        assert_eq!(r.status, 400, "{key}: {}", r.body);
        assert!(r.body.contains("Idempotency-Key") && r.body.contains(says), "{}", r.body);
    }

    let body = batch(1);
    for _ in 0..3 {
        let r = post_keyed(&ports, &body, Some("batch-1")).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, r#"{"accepted":40}"#));
    }
    // The structured-field form (quoted) is the same key.
    let r = post_keyed(&ports, &body, Some("\"batch-1\"")).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // Another key: the client asked for a second copy.
    assert_eq!(post_keyed(&ports, &body, Some("batch-2")).unwrap().status, 200);
    assert_eq!(settled(&ports, 3 * 40), (80, 40));
}

#[test]
fn a_crash_between_produce_and_answer_then_the_retry_lands_once_under_igloo_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _engines, engine_ports) = project_with_engines(tmp.path(), &[]);
    let body = batch(1);

    // The first server aborts once the broker acknowledged, before it answers.
    let (mut first, ports) = serve_beside(&root, &engine_ports, &[], |cmd| {
        cmd.env("IGLOO_FAULT", "crash-after-produce");
    });
    wait_ready(&ports);
    assert!(post_keyed(&ports, &body, Some("order-7")).is_err(), "the answer was lost");
    assert!(!first.wait_exit(Duration::from_secs(10)).success());
    first.expect_seen("aborting after the broker acknowledged", Duration::from_secs(1));

    // The client retries against the next server: acknowledged, and the rows land once.
    let (mut second, ports) = serve_beside(&root, &engine_ports, &[], |_| {});
    wait_ready(&ports);
    let r = post_keyed(&ports, &body, Some("order-7")).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(settled(&ports, 40), (40, 40));
    second.signal(libc::SIGTERM);
    second.wait_exit(Duration::from_secs(30));

    // The window survives a restart: a third server still knows the key.
    let (mut third, ports) = serve_beside(&root, &engine_ports, &[], |_| {});
    wait_ready(&ports);
    assert_eq!(post_keyed(&ports, &body, Some("order-7")).unwrap().status, 200);
    assert_eq!(post_keyed(&ports, &batch(100), Some("order-8")).unwrap().status, 200);
    assert_eq!(settled(&ports, 40), (80, 80));
    third.signal(libc::SIGTERM);
    third.wait_exit(Duration::from_secs(30));
}

#[test]
fn a_backlog_whose_keys_outgrow_a_query_is_written_once_by_a_writer_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _engines, engine_ports) = project_with_engines(tmp.path(), &[]);
    // 1,200 keyed requests while no writer runs: 1,200 messages whose keys (about 250 bytes
    // each) together pass ClickHouse's 256 KiB query size. The writer that starts reads them
    // all in its first batch and logs every key with its offsets.
    let (mut ingest, ports) = serve_beside(&root, &engine_ports, &["--role", "ingest"], |_| {});
    wait_ready(&ports);
    let pad = "k".repeat(240);
    for i in 0..1200u64 {
        let body = format!("{{\"time\":{i},\"tag\":\"t{}\",\"values\":[1]}}\n", i % 8);
        let r = post_keyed(&ports, &body, Some(&format!("{pad}-{i}"))).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let (mut writer, _) = serve_beside(&root, &engine_ports, &["--role", "writer"], |_| {});
    // Every key logged with its offsets (a writer whose log insert fails writes its rows again
    // and again, so the table's count alone would pass for a moment).
    let keys = "SELECT sum(length(idempotency_keys)) FROM devapp._igloo_offsets FORMAT TSV";
    eventually(Duration::from_secs(60), "every key logged", || {
        // (The writer creates the log when it starts.)
        (engine_ports.clickhouse().execute(keys).unwrap_or_default().trim() == "1200").then_some(())
    });
    let count = "SELECT count(), uniqExact(tag, time) FROM devapp.Measurement FORMAT TSV";
    assert_eq!(engine_ports.clickhouse().execute(count).unwrap().trim(), "1200\t1200");
    for s in [&mut ingest, &mut writer] {
        s.signal(libc::SIGTERM);
        s.wait_exit(Duration::from_secs(30));
    }
}
