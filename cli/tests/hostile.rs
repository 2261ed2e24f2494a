//! Hostile input against a real server (igloo dev: ClickHouse 18.16, tansu): every answer is a
//! specific 4xx (or a 503 when shedding load), never a 5xx or a crash, and accepted data is
//! untouched. Raw TCP where a well-behaved HTTP client would not send it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod support;
use support::*;

fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn hostile_requests_get_specific_4xx_and_the_server_stays_well() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let mut ports = Ports::free();
    ports.env.push(("IGLOO_SERVER_MAX_CONCURRENT_REQUESTS".into(), "2".into()));
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let url = ports.api("/ingest/Measurement");
    let json = [("Content-Type", "application/json")];

    // Bodies: each refused with a 400 that names the problem.
    for (body, says) in [
        (&br#"{"time": 1, "tag": "a", "tag": "b", "values": [1]}"#[..], "duplicate key `tag`"),
        (br#"{"time": 1, "tag": "a", "values": [NaN]}"#, "expected value"),
        (br#"{"time": 1e400, "tag": "a", "values": [1]}"#, "number out of range"),
        (b"{\"time\": 1, \"tag\": \"\xff\xfe\", \"values\": [1]}", "invalid UTF-8 at line 1 column 21"),
        (br#"{"time": 99999999999999999999, "tag": "a", "values": [1]}"#, "time"),
    ] {
        let r = http_post(&url, &json, body.to_vec());
        assert_eq!(r.status, 400, "{}: {}", String::from_utf8_lossy(body), r.body);
        assert!(r.body.to_lowercase().contains(&says.to_lowercase()), "{says}: {}", r.body);
    }
    let deep =
        format!("{{\"time\":1,\"tag\":\"a\",\"values\":[1],\"x\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let r = http_post(&url, &json, deep);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("nested deeper than 64 levels"), "{}", r.body);

    // Request heads: a URI, headers and header counts beyond the limits.
    let long_uri = format!(
        "GET /consumption/tag_stats?start=0&end=1&pad={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(status_of(&raw(ports.server, long_uri.as_bytes())), 414);
    let big_header = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000));
    assert_eq!(status_of(&raw(ports.server, big_header.as_bytes())), 431);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let answer = raw(ports.server, many.as_bytes());
    assert_eq!(status_of(&answer), 431, "{answer}");
    for garbage in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /ingest/Measurement HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ] {
        let status = status_of(&raw(ports.server, garbage));
        assert!((400..500).contains(&status), "{:?} → {status}", String::from_utf8_lossy(garbage));
    }

    // A slow client (slowloris): cut off after the header-read timeout, not waited for.
    let mut slow = TcpStream::connect(("127.0.0.1", ports.server)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(9) && waited < Duration::from_secs(15), "cut off after {waited:?}");

    // Load shedding: with 2 requests in progress (bodies still arriving), a third gets 503.
    let hold = |_: usize| {
        let mut s = TcpStream::connect(("127.0.0.1", ports.server)).unwrap();
        s.write_all(b"POST /ingest/Measurement HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{").unwrap();
        s
    };
    let held: Vec<TcpStream> = (0..2).map(hold).collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = http_post(&url, &json, r#"{"time":1,"tag":"a","values":[1]}"#);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.retry_after.is_some() && r.body.contains("server.max_concurrent_requests"), "{}", r.body);
    assert_eq!(get(&ports.api("/health")).0, 200, "liveness is never shed");
    drop(held);
    // The server is well: accepted data still lands.
    eventually(Duration::from_secs(10), "requests admitted again", || {
        (http_post(&url, &json, r#"{"time":7,"tag":"after","values":[1]}"#).status == 200).then_some(())
    });
    eventually(Duration::from_secs(20), "the event written", || {
        let n = ports.clickhouse().execute("SELECT count() FROM devapp.Measurement WHERE tag = 'after'").ok()?;
        (n.trim() != "0").then_some(())
    });
    assert!(dev.output().iter().all(|l| !l.contains("panicked")), "{:?}", dev.output());
}

/// The short version of `bench/fuzz-http.sh`: bench/fuzz_http.py's malformed and adversarial
/// requests against a real server; every answer a 4xx, the server healthy after, RSS bounded.
#[test]
fn a_short_http_fuzz_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let python = std::env::var("IGLOO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/fuzz_http.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--url", &ports.api(""), "--requests", "3000", "--seconds", "120", "--pid", &dev.child.id().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(out.status.success() && text.contains("PASS"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let n = ports.clickhouse().execute("SELECT count() FROM devapp.Measurement").unwrap();
    assert_eq!(n.trim(), "0", "a malformed request was written");
}
