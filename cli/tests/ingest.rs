//! The ingest path end to end with real engines: HTTP → validation → broker → table writer →
//! ClickHouse. Every accepted event lands exactly once, bad input gets a specific answer, and
//! killing the writer process mid-stream neither loses nor duplicates acknowledged events.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;
use support::*;

fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, serde_json::Value, Option<String>) {
    post_with(url, &[("Content-Type", content_type)], body)
}

fn post_with(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, serde_json::Value, Option<String>) {
    let r = http_post(url, headers, body);
    (r.status, serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body)), r.retry_after)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn count(ports: &Ports, sql: &str) -> String {
    ports.clickhouse().execute(sql).unwrap().trim().to_string()
}

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

fn event(seq: u64) -> String {
    format!("{{\"time\":{seq},\"tag\":\"t{}\",\"values\":[{seq}.5,1]}}", seq % 7)
}

#[test]
fn every_form_of_ingest_lands_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let url = ports.api("/ingest/Measurement");
    assert_eq!(post(&url, JSON, event(1).as_bytes()).0, 200);
    let array = format!("[{},{},{}]", event(2), event(3), event(4));
    assert_eq!(post(&url, JSON, array.as_bytes()).1["accepted"], 3);
    let nd = format!("{}\n{}\n\n{}\n", event(5), event(6), event(7));
    assert_eq!(post(&url, NDJSON, nd.as_bytes()).1["accepted"], 3);
    let gz = gzip(format!("[{},{}]", event(8), event(9)).as_bytes());
    let (status, body, _) = post_with(&url, &[("Content-Type", JSON), ("Content-Encoding", "gzip")], &gz);
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(2)));
    // The timeseries template's alias route, answered by the listener's edge like
    // `/ingest/{Model}`: its query parameters read the same way, a bad one a JSON 400.
    assert_eq!(post(&ports.api("/save"), JSON, event(10).as_bytes()).0, 200);
    let (status, body, _) = post(&ports.api("/save?partial=maybe"), JSON, event(99).as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("query")), "{body}");

    let rows = eventually(Duration::from_secs(10), "10 rows", || {
        let n = count(&ports, "SELECT count() FROM devapp.Measurement");
        (n == "10").then_some(n)
    });
    assert_eq!(rows, "10");
    assert_eq!(
        count(&ports, "SELECT uniqExact(time), sum(time), sum(values[1]) FROM devapp.Measurement"),
        "10\t55\t60"
    );
    assert_eq!(count(&ports, "SELECT tag FROM devapp.Measurement WHERE time = 3"), "t3");
    // Rows are visible as soon as they are inserted; the writer counts them once the batch's
    // offsets are logged, a moment later.
    let metrics = eventually(Duration::from_secs(10), "the written counter", || {
        let m = get(&ports.api("/metrics")).2;
        m.contains("igloo_written_total{model=\"Measurement\"} 10").then_some(m)
    });
    assert!(metrics.contains("igloo_ingest_accepted_total{model=\"Measurement\"} 10"), "{metrics}");

    // Looking inside: ls, peek (table and topic), query.
    let run = |args: &[&str]| {
        let out = igloo(&root, &ports).args(args).output().unwrap();
        assert!(out.status.success(), "igloo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let ls = run(&["ls"]);
    for route in ["POST /ingest/Measurement", "POST /save", "GET /api,", "GET /api/Measurement/samples"] {
        assert!(ls.contains(route), "{route} missing: {ls}");
    }
    assert!(ls.contains("devapp.Measurement"), "{ls}");
    let peek = run(&["peek", "Measurement", "-n", "3"]);
    assert_eq!(peek.lines().count(), 3, "{peek}");
    assert!(!peek.contains("_igloo"), "hidden columns are not shown: {peek}");
    let topic = run(&["peek", "Measurement", "--topic", "-n", "100"]);
    assert_eq!(topic.lines().count(), 10, "{topic}");
    let q = run(&["query", "SELECT count() AS n, max(time) AS last FROM Measurement"]);
    assert_eq!(q.lines().collect::<Vec<_>>(), ["n   last", "10  10"]);
    assert_eq!(run(&["query", "SELECT 1 AS a", "--format", "csv"]), "\"a\"\n1\n");

    // `?wait=false`: 202 before the broker's acknowledgement, and the row still lands.
    let (status, body, _) = post(&format!("{url}?wait=false"), JSON, event(11).as_bytes());
    assert_eq!((status, &body), (202, &serde_json::json!({ "accepted": 1, "acknowledged": false })));

    // Concurrent single events share messages (the producer's group commit) and each is
    // acknowledged: 32 clients × 25 requests, all 200, every row once, fewer messages than
    // requests (the hidden columns name each row's message).
    let clients: Vec<_> = (0..32u64)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || {
                (0..25u64).map(|i| post(&url, JSON, event(1000 + c * 25 + i).as_bytes()).0).collect::<Vec<_>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    eventually(Duration::from_secs(10), "811 rows", || {
        (count(&ports, "SELECT count() FROM devapp.Measurement") == "811").then_some(())
    });
    let burst = "FROM devapp.Measurement WHERE time >= 1000";
    assert_eq!(count(&ports, &format!("SELECT count(), uniqExact(time) {burst}")), "800\t800");
    let messages: u64 =
        count(&ports, &format!("SELECT uniqExact(_igloo_partition, _igloo_offset) {burst}")).parse().unwrap();
    assert!(messages < 800, "800 concurrent single-event requests took {messages} messages");

    // One Kafka producer per process: ingest, the table writers' dead letters and transforms
    // share it (each librdkafka producer has its own broker connection and threads).
    let metrics = get(&ports.api("/metrics")).2;
    assert!(metrics.lines().any(|l| l == "igloo_kafka_producers 1"), "{metrics}");
    // Its delivery reports are served by the runtime: librdkafka's threads only, none of
    // rust-rdkafka's polling threads.
    let threads = std::fs::read_dir(format!("/proc/{}/task", dev.child.id())).unwrap();
    let polling = threads
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|comm| comm.starts_with("producer poll"))
        .count();
    assert_eq!(polling, 0, "rust-rdkafka polling threads in the server process");
    // Transparent huge pages off (BENCHMARKS.md, issue 20): the kernel reports the process's
    // flag as `THP_enabled: 0`.
    let status = std::fs::read_to_string(format!("/proc/{}/status", dev.child.id())).unwrap();
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn bad_input_gets_a_specific_answer_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let url = ports.api("/ingest/Measurement");

    let (status, body, _) = post(&url, JSON, b"{\"time\": 1,");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("the body is not valid JSON"), "{body}");

    let batch =
        br#"[{"time":1,"tag":"a","values":[]},{"time":"x","tag":"b","values":[]},{"time":3,"values":["q"],"extra":1}]"#;
    let (status, body, _) = post(&url, JSON, batch);
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "2 of 3 records are invalid; nothing was accepted (add ?partial=true to accept the valid ones)"
    );
    let details: Vec<(u64, &str)> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["index"].as_u64().unwrap(), d["path"].as_str().unwrap()))
        .collect();
    assert_eq!(details, [(1, "time"), (2, "extra"), (2, "tag"), (2, "values[0]")]);

    let (status, body, _) = post(&format!("{url}?partial=true"), JSON, batch);
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(1)));
    assert_eq!(body["rejected"].as_array().unwrap().len(), 4);

    let (status, body, _) = post(&ports.api("/ingest/Nope"), JSON, b"{}");
    assert_eq!(status, 404);
    assert_eq!(body["error"], "unknown model `Nope`; models that accept ingest: Measurement");
    // A plain `POST /ingest/{Model}` is answered without the router (http.rs); its query
    // errors are JSON like the rest, and what the router answers stays the router's.
    let (status, body, _) = post(&format!("{url}?wait=maybe"), JSON, event(1).as_bytes());
    assert_eq!(status, 400);
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("bad parameter `query`:") && error.contains("wait"), "{body}");
    let (status, body, _) = post(&ports.api("/ingest/Nop%65"), JSON, b"{}");
    assert_eq!(
        (status, &body["error"]),
        (404, &serde_json::json!("unknown model `Nope`; models that accept ingest: Measurement"))
    );
    let (status, body, _) = post(&ports.api("/ingest/Measurem%65nt?wait=maybe"), JSON, event(1).as_bytes());
    assert_eq!(status, 400, "the router's way in answers a bad query the same way: {body}");
    assert!(body["error"].as_str().unwrap().starts_with("bad parameter `query`:"), "{body}");
    assert_eq!(get(&url).0, 405);
    assert_eq!(post(&url, "text/csv", b"a,b").0, 415);
    assert_eq!(post_with(&url, &[("Content-Type", JSON), ("Content-Encoding", "br")], b"{}").0, 415);
    let (status, body, _) = post(&url, NDJSON, format!("{}\n{{oops\n", event(1)).as_bytes());
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("line 2"), "{body}");
    assert_eq!(get(&ports.api("/nowhere")).0, 404);

    // Only the partially accepted record is written: wait for it, then give anything else that
    // might (wrongly) follow the time of several more flushes.
    eventually(Duration::from_secs(10), "the accepted row", || {
        (count(&ports, "SELECT count() FROM devapp.Measurement") == "1").then_some(())
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(count(&ports, "SELECT count(), sum(time) FROM devapp.Measurement"), "1\t1");
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());

    // Body limits hold for plain and for gzip bodies (a small gzip that inflates past the limit).
    let mut cmd = igloo(&root, &ports);
    cmd.arg("dev").env("IGLOO_SERVER_MAX_BODY_BYTES", "1000").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut small = Dev::attach(cmd.spawn().unwrap());
    small.expect("Ingest API", START);
    let big = format!("[{}]", (0..100).map(event).collect::<Vec<_>>().join(","));
    let (status, body, _) = post(&url, JSON, big.as_bytes());
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("larger than 1000 bytes"), "{body}");
    let bomb = gzip(&vec![b' '; 100_000]);
    assert!(bomb.len() < 1000);
    assert_eq!(post_with(&url, &[("Content-Type", JSON), ("Content-Encoding", "gzip")], &bomb).0, 413);
    small.signal(libc::SIGINT);
    assert!(small.wait_exit(Duration::from_secs(30)).success());
}

/// A stream of 20-event NDJSON requests with unique `time`s, recording what was acknowledged.
struct Load {
    acked: Arc<Mutex<BTreeSet<u64>>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl Load {
    fn start(url: String) -> Load {
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, st) = (acked.clone(), sent.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !st.load(Ordering::Relaxed) {
                let batch: Vec<u64> = (seq..seq + 20).collect();
                seq += 20;
                s.store(seq, Ordering::Relaxed);
                let body = batch.iter().map(|n| event(*n)).collect::<Vec<_>>().join("\n");
                match try_post(&url, &[("Content-Type", NDJSON)], body) {
                    Ok(r) if r.status == 200 => a.lock().unwrap().extend(batch),
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Load { acked, sent, stop, handle }
    }

    /// Stops the stream; returns (acknowledged times, number of times sent).
    fn finish(self) -> (BTreeSet<u64>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap();
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.sent.load(Ordering::Relaxed))
    }
}

/// Every acknowledged event is in the table exactly once, and nothing that was never sent is.
fn assert_exactly_once(ports: &Ports, acked: &BTreeSet<u64>, sent: u64) -> usize {
    assert!(acked.len() > 500, "the load barely ran: {} acknowledged", acked.len());
    let max_acked = *acked.iter().max().unwrap();
    eventually(Duration::from_secs(60), "all acknowledged rows", || {
        let present = count(ports, &format!("SELECT countIf(time <= {max_acked}) FROM devapp.Measurement"));
        (present.parse::<usize>().unwrap() >= acked.len()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let stats = count(ports, "SELECT count(), uniqExact(time) FROM devapp.Measurement");
    let (rows, unique) = stats.split_once('\t').unwrap();
    assert_eq!(rows, unique, "duplicated rows: {stats}");
    let times: BTreeSet<u64> =
        count(ports, "SELECT arrayStringConcat(groupArray(toString(time)), ',') FROM devapp.Measurement")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
    let missing: Vec<&u64> = acked.difference(&times).take(10).collect();
    assert!(missing.is_empty(), "acknowledged but missing: {missing:?} (of {})", acked.len());
    assert!(times.iter().all(|t| *t < sent), "rows that were never sent");
    times.len()
}

#[test]
fn killing_the_writer_mid_stream_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut engines = Dev::start(&root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);
    let mut server = serve(&root, &ports);

    let load = Load::start(ports.api("/ingest/Measurement"));
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        server.child.kill().unwrap(); // SIGKILL: no graceful anything
        server.child.wait().unwrap();
        server = serve(&root, &ports);
    }
    std::thread::sleep(Duration::from_millis(1000));
    let (acked, sent) = load.finish();
    let rows = assert_exactly_once(&ports, &acked, sent);
    eprintln!("{} acknowledged, {rows} rows, 3 writer kills", acked.len());

    server.signal(libc::SIGINT);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn broker_down_means_503_with_retry_after_never_accept_and_lose() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut engines = Dev::start(&root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);
    let mut server = serve(&root, &ports);
    let url = ports.api("/ingest/Measurement");
    assert_eq!(post(&url, JSON, event(1).as_bytes()).0, 200);
    // Ready once the writer has taken its partitions; every role of the process is listed.
    let ready = eventually(Duration::from_secs(20), "ready", || {
        let (status, _, body) = get(&ports.api("/ready"));
        (status == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).unwrap())
    });
    assert_eq!(
        ready,
        serde_json::json!({"ready": true, "roles": ["ingest", "query", "writer", "transform"], "details": []})
    );
    // The engines go away for good (`igloo dev` would restart a killed one); the server stays.
    assert!(igloo(&root, &ports).arg("down").status().unwrap().success());
    engines.wait_exit(Duration::from_secs(30));
    let (status, body, retry) = post(&url, JSON, event(2).as_bytes());
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(
        body["error"].as_str().unwrap().starts_with("the broker is unavailable, nothing was acknowledged"),
        "{body}"
    );
    let (status, _, not_ready) = get(&ports.api("/ready"));
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_str(&not_ready).unwrap();
    let details: Vec<&str> = body["details"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(details.len(), 2, "{body}");
    assert!(details[0].starts_with("the broker does not answer: "), "{body}");
    assert_eq!(details[1], "ClickHouse does not answer");
    server.signal(libc::SIGINT);
    server.wait_exit(Duration::from_secs(30));
}

/// The crash window itself, made deterministic: rows whose offset-log entry is missing (a
/// writer killed between its insert and its log) must be removed and re-read from the topic.
#[test]
fn rows_written_without_their_log_entry_are_replaced_not_duplicated() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut engines = Dev::start(&root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);
    let mut server = serve(&root, &ports);
    let url = ports.api("/ingest/Measurement");
    for batch in 0..5 {
        let body = (batch * 10..batch * 10 + 10).map(event).collect::<Vec<_>>().join("\n");
        assert_eq!(post(&url, NDJSON, body.as_bytes()).0, 200);
    }
    eventually(Duration::from_secs(10), "50 rows", || {
        (count(&ports, "SELECT count() FROM devapp.Measurement") == "50").then_some(())
    });
    server.signal(libc::SIGINT);
    assert!(server.wait_exit(Duration::from_secs(30)).success());

    // Forget the newest log entry of every partition, and plant a row beyond every entry.
    let ch = ports.clickhouse();
    ch.execute(
        "ALTER TABLE devapp._igloo_offsets DELETE WHERE (partition, last_offset) IN \
         (SELECT partition, max(last_offset) FROM devapp._igloo_offsets GROUP BY partition)",
    )
    .unwrap();
    eventually(Duration::from_secs(10), "the mutation", || {
        (count(&ports, "SELECT count() FROM system.mutations WHERE database = 'devapp' AND is_done = 0") == "0")
            .then_some(())
    });
    ch.execute("INSERT INTO devapp.Measurement (time, tag, values, _igloo_partition, _igloo_offset) VALUES (999, 'ghost', [], 0, 100000)").unwrap();
    let before = count(&ports, "SELECT count() FROM devapp.Measurement");
    assert_eq!(before, "51");

    let mut server = serve(&root, &ports);
    // The final state, not a moment of it: a batch whose log insert fails is written again
    // after its unlogged rows are removed, so the rows can be complete for a moment first.
    let expected = format!("50\t50\t0\t{}", (0..50).sum::<u64>());
    let stats = "SELECT count(), uniqExact(time), countIf(tag = 'ghost'), sum(time) FROM devapp.Measurement";
    let recovered = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        count(&ports, stats) == expected
    });
    assert!(recovered, "no recovery: {}\nthe server said:\n{}", count(&ports, stats), server.output().join("\n"));
    server.expect("removing rows written without their offset log entry", Duration::from_secs(5));
    // And it stays so (a retried batch, if any, has settled).
    std::thread::sleep(Duration::from_secs(2));
    eventually(Duration::from_secs(15), "the same rows after a while", || {
        (count(&ports, stats) == expected).then_some(())
    });
    server.signal(libc::SIGINT);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}

/// `igloo dev` restarts a killed broker or ClickHouse; meanwhile requests get 503 (never a
/// false 2xx) and the writer retries. Afterwards every acknowledged event is there once.
#[test]
fn killing_the_broker_and_clickhouse_mid_stream_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut cmd = igloo(&root, &ports);
    cmd.arg("dev").env("IGLOO_WRITER_FLUSH_MS", "50").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut dev = Dev::attach(cmd.spawn().unwrap());
    dev.expect("Ingest API", START);

    let load = Load::start(ports.api("/ingest/Measurement"));
    // (index in dev.json's engines, the name igloo dev prints)
    for (index, name) in [(1, "tansu"), (0, "ClickHouse"), (1, "tansu"), (0, "ClickHouse")] {
        std::thread::sleep(Duration::from_millis(1500));
        let pid = engine_pids(&root)[index];
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        dev.expect(&format!("{name} restarted on"), START);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (acked, sent) = load.finish();
    let rows = assert_exactly_once(&ports, &acked, sent);
    eprintln!("{} acknowledged, {rows} rows, broker and ClickHouse killed twice each", acked.len());
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}

/// A message ClickHouse rejects (here produced straight to the topic, past HTTP validation)
/// goes to the dead-letter topic and table; the rows around it are written; nothing blocks.
#[test]
fn a_poison_row_goes_to_the_dead_letter_queue_and_blocks_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut cmd = igloo(&root, &ports);
    cmd.arg("dev").env("IGLOO_WRITER_FLUSH_MS", "300").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut dev = Dev::attach(cmd.spawn().unwrap());
    dev.expect("Ingest API", START);
    let url = ports.api("/ingest/Measurement");
    let broker =
        igloo_server::kafka::Broker::new(format!("127.0.0.1:{}", ports.broker), igloo_server::kafka::Framing::Record);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Inside the runtime: its task serves the producer's acknowledgements.
    let producer = rt.block_on(async { igloo_server::kafka::producer::Producer::new(&broker) }).unwrap();
    assert_eq!(post(&url, JSON, event(1).as_bytes()).0, 200);
    let poison = r#"{"time":"not a number","tag":"p","values":[]}"#;
    let row = igloo_server::kafka::wire::KeyedRow { key: "p".into(), row: poison.into() };
    rt.block_on(producer.send_rows("Measurement", vec![row])).unwrap();
    assert_eq!(post(&url, JSON, event(2).as_bytes()).0, 200);

    eventually(Duration::from_secs(15), "the good rows and the dead letter", || {
        let good = count(&ports, "SELECT count() FROM devapp.Measurement");
        let dead = count(&ports, "SELECT count() FROM devapp._igloo_dlq");
        (good == "2" && dead == "1").then_some(())
    });
    let dead = count(&ports, "SELECT topic, payload FROM devapp._igloo_dlq FORMAT JSONEachRow");
    let dead: serde_json::Value = serde_json::from_str(&dead).unwrap();
    assert_eq!(dead["topic"], "Measurement");
    assert_eq!(dead["payload"], poison);
    let error = count(&ports, "SELECT error FROM devapp._igloo_dlq");
    assert!(error.contains("Cannot parse"), "{error}");
    // The dead-letter topic has it too: exactly one message.
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{}", ports.broker)).create().unwrap();
    assert_eq!(consumer.fetch_watermarks("_igloo_dlq", 0, Duration::from_secs(5)).unwrap(), (0, 1));
    // The table keeps flowing.
    assert_eq!(post(&url, JSON, event(3).as_bytes()).0, 200);
    eventually(Duration::from_secs(10), "the next row", || {
        (count(&ports, "SELECT count() FROM devapp.Measurement") == "3").then_some(())
    });
    let metrics = get(&ports.api("/metrics")).2;
    assert!(metrics.contains("igloo_dead_lettered_total{model=\"Measurement\"} 1"), "{metrics}");
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}

/// Every column type the table writer sends as RowBinary lands as the client sent it, floats
/// bit for bit (ClickHouse 18.16 reads some from JSON text one unit in the last place off:
/// 7.137 became 7.1370000000000005), decimals also from numeric strings (which 18.16 refused
/// as JSON text: the row went to the dead-letter queue). (Every type 18.16 has is covered; a
/// row the encoder refuses goes as JSON text: `a_poison_row_goes_to_the_dead_letter_queue…`.)
#[test]
fn every_column_type_lands_as_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    std::fs::write(
        root.join("schema/kinds.prisma"),
        r#"
enum Level {
  Low
  High
}

model Kinds {
  id     String   @id
  at     DateTime
  day    Date
  n      Int
  big    BigInt   @db.UInt64
  small  Int      @db.Int8
  ratio  Float
  ok     Boolean
  level  Level
  tags   String[]
  ratios Float[]
  maybe  Float?
  meta   Json?
  ref    Uuid
  code   String?  @db.FixedString(2)
}

model Priced {
  id    String  @id
  price Decimal
  small Decimal @db.Decimal(9, 2)
}

model Approx {
  id String @id
  x  Float  @db.Float32
}
"#,
    )
    .unwrap();
    let ports = Ports::free();
    let mut cmd = igloo(&root, &ports);
    cmd.env("IGLOO_LOG", "warn,igloo_server::writer=info").env("NO_COLOR", "1");
    let mut dev = Dev::attach(cmd.arg("dev").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    dev.expect("Ingest API", START);
    dev.expect_seen("model=Kinds format=RowBinary", START);
    dev.expect_seen("model=Priced format=RowBinary", START);
    dev.expect_seen("model=Approx format=RowBinary", START);
    let first = serde_json::json!({
        "id": "a", "at": "2024-01-31T23:59:59Z", "day": "2024-02-29", "n": -2147483648i64,
        "big": "18446744073709551615", "small": -128, "ratio": 7.137, "ok": true, "level": "High",
        "tags": ["x", "é"], "ratios": [0.1, 19.420310065067902, 5.855414226403868e-06, 7.238],
        "maybe": null, "meta": {"k": [1, 2]}, "ref": "123e4567-e89b-12d3-a456-426614174000", "code": "ab"
    });
    let second = serde_json::json!({
        "id": "b", "at": 1, "day": "1970-01-02", "n": 2147483647, "big": 0, "small": 127,
        "ratio": -0.0009603036216279591, "ok": false, "level": "Low", "tags": [], "ratios": [],
        "maybe": 2.5, "ref": "00000000-0000-4000-8000-000000000001", "code": null
    });
    let body = format!("[{first},{second}]");
    assert_eq!(post(&ports.api("/ingest/Kinds"), JSON, body.as_bytes()).0, 200);
    let priced = r#"[{"id":"p","price":"-12345678901234567890123456789.123456789","small":"0.5"},{"id":"q","price":12.5,"small":-3}]"#;
    assert_eq!(post(&ports.api("/ingest/Priced"), JSON, priced.as_bytes()).0, 200);
    assert_eq!(post(&ports.api("/ingest/Approx"), JSON, br#"{"id":"x","x":0.1}"#).0, 200);

    let ch = ports.clickhouse();
    let text = eventually(Duration::from_secs(15), "both rows of Kinds", || {
        let t = ch.execute("SELECT * FROM devapp.Kinds ORDER BY id FORMAT JSONEachRow").unwrap();
        (t.lines().count() == 2).then_some(t)
    });
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (a, b) = (&rows[0], &rows[1]);
    assert_eq!(a["at"], "2024-01-31 23:59:59");
    assert_eq!(a["day"], "2024-02-29");
    assert_eq!(a["n"], -2147483648i64);
    assert_eq!(a["big"], "18446744073709551615");
    assert_eq!(a["small"], -128);
    assert_eq!(a["ok"], 1);
    assert_eq!(a["level"], "High");
    assert_eq!(a["tags"], serde_json::json!(["x", "é"]));
    assert_eq!(a["maybe"], serde_json::Value::Null);
    assert_eq!(a["meta"], r#"{"k":[1,2]}"#);
    assert_eq!(a["ref"], "123e4567-e89b-12d3-a456-426614174000");
    assert_eq!(a["code"], "ab");
    assert_eq!((&b["at"], &b["day"]), (&serde_json::json!("1970-01-01 00:00:01"), &serde_json::json!("1970-01-02")));
    assert_eq!(
        (&b["n"], &b["big"], &b["small"], &b["ok"]),
        (&serde_json::json!(2147483647), &serde_json::json!("0"), &serde_json::json!(127), &serde_json::json!(0))
    );
    assert_eq!(
        (&b["level"], &b["tags"], &b["ratios"], &b["maybe"]),
        (&serde_json::json!("Low"), &serde_json::json!([]), &serde_json::json!([]), &serde_json::json!(2.5))
    );
    assert_eq!(
        (&b["ref"], &b["code"]),
        (&serde_json::json!("00000000-0000-4000-8000-000000000001"), &serde_json::Value::Null)
    );
    // Floats, bit for bit.
    let bits = |v: &serde_json::Value| v.as_f64().unwrap().to_bits();
    let sent: Vec<u64> = first["ratios"].as_array().unwrap().iter().map(bits).collect();
    let stored: Vec<u64> = a["ratios"].as_array().unwrap().iter().map(bits).collect();
    assert_eq!(stored, sent, "{}", a["ratios"]);
    assert_eq!((bits(&a["ratio"]), bits(&b["ratio"])), (bits(&first["ratio"]), bits(&second["ratio"])));

    // (18.16's toString garbles a large Decimal128; its TSV output does not.)
    let prices = eventually(Duration::from_secs(15), "both Priced rows", || {
        let t = ch.execute("SELECT price, small FROM devapp.Priced ORDER BY id FORMAT TSV").unwrap();
        (t.lines().count() == 2).then(|| t.trim().to_string())
    });
    assert_eq!(prices, "-12345678901234567890123456789.123456789\t0.50\n12.500000000\t-3.00");
    let approx = eventually(Duration::from_secs(15), "the Approx row", || {
        let t = ch.execute("SELECT toString(x) FROM devapp.Approx").unwrap();
        (!t.trim().is_empty()).then(|| t.trim().to_string())
    });
    assert_eq!(approx, "0.1");
}
