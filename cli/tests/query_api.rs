//! Reading data back on real engines: consumption APIs from `apis/*.sql` (typed parameters,
//! injection attempts, json/ndjson/csv, hot reload) and raw exports.

use std::time::Duration;

use serde_json::Value;

mod support;
use support::*;

const BY_TAG: &str = "-- Rows of one tag.\n-- @param tag String\n-- @param min BigInt = 0\nSELECT time, tag FROM Measurement WHERE tag = {tag} AND time >= {min} ORDER BY time\n";

#[test]
fn consumption_apis_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    std::fs::write(root.join("apis/by_tag.sql"), BY_TAG).unwrap();
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let events: String = (0..50)
        .map(|i| format!("{{\"time\":{},\"tag\":\"t{}\",\"values\":[{i}]}}\n", 1000 + i, i % 3))
        .chain(std::iter::once("{\"time\":5000,\"tag\":\"it's\",\"values\":[1]}\n".to_string()))
        .collect();
    post_ndjson(&ports.api("/ingest/Measurement"), &events);
    let ch = ports.clickhouse();
    eventually(Duration::from_secs(30), "rows written", || {
        (ch.execute("SELECT count() FROM devapp.Measurement").ok()?.trim() == "51").then_some(())
    });

    // The template's API: JSON array by default, typed numbers, defaults applied.
    let (status, body) = get_json(&ports.api("/consumption/tag_stats?start=0&end=100000"));
    assert_eq!(status, 200, "{body}");
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["tag"], "t0");
    assert_eq!(rows[0]["events"], 17);
    assert_eq!(rows[0]["first_time"], 1000, "64-bit integers are JSON numbers");
    let (_, body) = get_json(&ports.api("/consumption/tag_stats?start=0&end=100000&limit=1"));
    assert_eq!(body.as_array().unwrap().len(), 1);

    // NDJSON and CSV on request, streamed with their content types.
    let (status, ct, body) = get(&ports.api("/consumption/tag_stats?start=0&end=100000&format=ndjson"));
    assert_eq!((status, ct.as_str()), (200, "application/x-ndjson"));
    assert_eq!(body.lines().count(), 4);
    let (status, ct, body) = get(&ports.api("/consumption/tag_stats?start=0&end=1002&format=csv"));
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert_eq!(body.lines().next(), Some("\"tag\",\"events\",\"first_time\",\"last_time\""));
    assert_eq!(body.lines().count(), 3, "{body}");

    // String parameters are escaped: quotes are data, injection attempts match nothing.
    let (status, body) = get_json(&ports.api("/consumption/by_tag?tag=it%27s"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1);
    for attack in [
        "t0'%20OR%20'1'='1",
        "t0'%20--",
        "t0\\'%20OR%201=1%20--%20",
        "t0%27)%20UNION%20ALL%20SELECT%201,%20name%20FROM%20system.tables%20--",
    ] {
        let (status, body) = get_json(&ports.api(&format!("/consumption/by_tag?tag={attack}")));
        assert_eq!(status, 200, "{attack}: {body}");
        assert_eq!(body, Value::Array(vec![]), "{attack} must match no rows");
    }
    assert_eq!(ch.execute("SELECT count() FROM devapp.Measurement").unwrap().trim(), "51");

    // Bad parameters: 400 naming the parameter; unknown API: 404 listing the known ones.
    for (query, problem) in [
        ("by_tag?tag=t0&min=1%20OR%201=1", "parameter `min` must be BigInt"),
        ("by_tag?tag=t0&min=1;DROP%20TABLE%20devapp.Measurement", "parameter `min` must be BigInt"),
        ("by_tag", "parameter `tag` is required"),
        ("by_tag?tag=t0&limit=3", "unknown parameter `limit`"),
        ("by_tag?tag=t0&format=xml", "`xml` is not one of json, ndjson, csv"),
    ] {
        let (status, body) = get_json(&ports.api(&format!("/consumption/{query}")));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].as_str().unwrap().contains(problem), "{query}: {body}");
    }
    let (status, body) = get_json(&ports.api("/consumption/nope"));
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("by_tag, tag_stats"), "{body}");

    // Hot reload: a new file is served after a save; a broken one is reported, not served.
    std::fs::write(
        root.join("apis/count_all.sql"),
        "-- @param tag String\nSELECT count() AS n FROM Measurement WHERE tag = {tag}\n",
    )
    .unwrap();
    std::fs::write(root.join("apis/broken.sql"), "-- @param x Integer\nSELECT {x}\n").unwrap();
    dev.expect("apis/broken.sql:1: unknown type `Integer`", APPLY);
    let (status, body) = eventually(Duration::from_secs(10), "new API served", || {
        let r = get_json(&ports.api("/consumption/count_all?tag=t1"));
        (r.0 == 200).then_some(r)
    });
    assert_eq!(status, 200);
    assert_eq!(body[0]["n"], 17);
    assert_eq!(get_json(&ports.api("/consumption/broken?x=1")).0, 404);

    // Exports: every row, or a time range of a time series, as NDJSON / CSV / JSON.
    let (status, ct, body) = get(&ports.api("/export/Measurement?format=ndjson"));
    assert_eq!((status, ct.as_str()), (200, "application/x-ndjson"));
    assert_eq!(body.lines().count(), 51);
    let first: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert!(first.get("_igloo_offset").is_none(), "hidden columns are not exported: {first}");
    let (_, body) = get_json(&ports.api("/export/Measurement?start=1010&end=1020"));
    assert_eq!(body.as_array().unwrap().len(), 10);
    let (_, _, body) = get(&ports.api("/export/Measurement?start=1010&end=1020&format=csv"));
    assert_eq!(body.lines().count(), 11);
    for (query, status) in [("Nope", 404), ("Measurement?start=abc", 400), ("Measurement?limit=3", 400)] {
        assert_eq!(get(&ports.api(&format!("/export/{query}"))).0, status, "{query}");
    }

    // OpenAPI: every route of the running project, following hot reloads.
    let (status, doc) = get_json(&ports.api("/openapi.json"));
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/ingest/Measurement",
        "/save",
        "/api",
        "/api/Measurement/samples",
        "/export/Measurement",
        "/subscribe/Measurement",
        "/consumption/tag_stats",
        "/consumption/count_all",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert!(!paths.contains_key("/consumption/broken"));
    let by_tag = &paths["/consumption/by_tag"]["get"]["parameters"];
    assert_eq!(by_tag[0]["name"], "tag");
    assert_eq!(by_tag[0]["required"], true);
    assert_eq!(by_tag[1]["required"], false);
    assert_eq!(doc["components"]["schemas"]["Measurement"]["properties"]["values"]["type"], "array");
    assert_eq!(paths["/api"]["get"]["parameters"][0]["name"], "tag");
}

#[test]
fn subscribe_streams_new_records_matching_the_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let (status, body) = get_json(&ports.api("/subscribe/Measurement?values=1"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("key fields only"), "{body}");

    let (status, content_type, mut lines) = open_stream(&ports.api("/subscribe/Measurement?tag=wanted"), &[]);
    assert_eq!((status, content_type.as_str()), (200, "text/event-stream"));
    // The consumer starts at the end of the topic: give it a moment, then send records.
    let post = |tag: &str, time: i64| {
        let body = format!("{{\"time\":{time},\"tag\":\"{tag}\",\"values\":[1.5]}}");
        assert_eq!(
            http_post(&ports.api("/ingest/Measurement"), &[("Content-Type", "application/json")], body).status,
            200
        );
    };
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        post("other", i);
        post("wanted", 100 + i);
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        let line = lines.next().expect("stream open").unwrap();
        if let Some(data) = line.strip_prefix("data:") {
            let v: Value = serde_json::from_str(data.trim()).unwrap();
            assert_eq!(v["tag"], "wanted", "{v}");
            got.push(v["time"].as_i64().unwrap_or_else(|| panic!("time as a number: {v}")));
        }
    }
    got.sort();
    assert_eq!(got, [100, 101, 102]);
}

/// Reads `n` record events from an SSE stream: `(id, record)` pairs.
fn read_events(lines: &mut impl Iterator<Item = std::io::Result<String>>, n: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut id = None;
    while out.len() < n {
        let line = lines.next().expect("stream open").unwrap();
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(data) = line.strip_prefix("data:") {
            out.push((id.take().expect("every event has an id"), serde_json::from_str(data.trim()).unwrap()));
        }
    }
    out
}

/// A subscriber whose connection drops mid-stream reconnects with `Last-Event-ID` and gets
/// exactly what it had not seen: the rest of a message it had read in part (batch framing puts
/// several rows in one message), and what was ingested while it was away.
#[test]
fn subscribe_resumes_from_last_event_id_without_loss_or_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let post = |times: std::ops::Range<i64>| {
        let body: Vec<String> = times.map(|t| format!("{{\"time\":{t},\"tag\":\"s\",\"values\":[1]}}")).collect();
        post_ndjson(&ports.api("/ingest/Measurement"), &body.join("\n"));
    };
    let open = |last: Option<&str>| {
        let headers: Vec<(&str, &str)> = last.map(|id| ("Last-Event-ID", id)).into_iter().collect();
        open_stream(&ports.api("/subscribe/Measurement"), &headers).2
    };
    let mut first = open(None);
    std::thread::sleep(Duration::from_millis(1500));
    post(0..5); // one message of five rows (one key, batch framing)
    let seen = read_events(&mut first, 2);
    drop(first); // the connection drops after two of the five rows
    post(5..8);
    let last = seen.last().unwrap().0.clone();
    let mut again = open(Some(&last));
    let rest = read_events(&mut again, 6);
    let times: Vec<i64> = seen.iter().chain(&rest).map(|(_, v)| v["time"].as_i64().unwrap()).collect();
    assert_eq!(times, (0..8).collect::<Vec<_>>(), "every record once, in order");
    // Nothing more arrives: no repeats behind them.
    post(100..101);
    let next = read_events(&mut again, 1);
    assert_eq!(next[0].1["time"], 100);
    let (status, body) = get_json_with(&ports.api("/subscribe/Measurement"), &[("Last-Event-ID", "nonsense")]);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Last-Event-ID"), "{body}");
}

/// The SQL injection corpus (`schemas/tests/corpus/sql_injection.jsonl`, 500+ payloads) through
/// a real server and ClickHouse 18.16: a String parameter echoes every payload back exactly,
/// and every typed parameter either refuses a payload (400) or echoes its typed value.
#[test]
fn the_injection_corpus_echoes_back_unchanged() {
    let payloads: Vec<String> = include_str!("../../schemas/tests/corpus/sql_injection.jsonl")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(payloads.len() >= 500);
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    for (name, ty) in [("s", "String"), ("i", "Int"), ("b", "BigInt"), ("f", "Float"), ("t", "Boolean"), ("d", "Date")]
    {
        std::fs::write(root.join(format!("apis/echo_{name}.sql")), format!("-- @param v {ty}\nSELECT {{v}} AS v\n"))
            .unwrap();
    }
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    let client = http();
    let get = |api: &str, value: &str| {
        let resp = client.get(ports.api(&format!("/consumption/{api}"))).query(&[("v", value)]).send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().unwrap())
    };
    let mut refused = 0;
    for p in &payloads {
        let (status, body) = get("echo_s", p);
        assert_eq!(status, 200, "{p:?}: {body}");
        let rows: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(rows, serde_json::json!([{ "v": p }]), "{p:?} came back changed");
        for api in ["echo_i", "echo_b", "echo_f", "echo_t", "echo_d"] {
            let (status, body) = get(api, p);
            match status {
                400 => refused += 1,
                200 => {
                    let rows: Value = serde_json::from_str(&body).unwrap();
                    let v = &rows[0]["v"];
                    let same = match api {
                        "echo_i" | "echo_b" => v.as_i64().is_some() && v.as_i64() == p.parse::<i64>().ok(),
                        "echo_f" => v.as_f64().is_some_and(|n| Some(n) == p.parse::<f64>().ok()),
                        "echo_t" => v.as_u64() == Some(u64::from(p == "true" || p == "1")),
                        _ => v.as_str() == Some(p.as_str()),
                    };
                    assert!(same, "{api} {p:?} → {body}");
                }
                other => panic!("{api} {p:?}: {other} {body}"),
            }
        }
    }
    println!("{} payloads echoed exactly; {refused} typed refusals (400)", payloads.len());
}
