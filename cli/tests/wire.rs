//! The topic wire format, read by a third-party consumer (confluent-kafka from PyPI, not igloo's
//! code) against `igloo dev`: with `broker.framing: record` every message is one JSON object
//! keyed by the series, all of a series sits in one partition in order, and a third-party
//! producer using Kafka's default (murmur2) partitioner puts the same keys in the same
//! partitions. Messages written earlier in `batch` framing stay readable on the same topic.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{eventually, project, Dev, Ports, START};

mod support;

const CONSUMER: &str = r#"
import json, sys
from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
bootstrap, topic = sys.argv[1], sys.argv[2]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "third-party", "enable.auto.commit": False})
md = c.list_topics(topic, timeout=10)
parts = sorted(md.topics[topic].partitions)
ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
seen = {p: 0 for p in parts}
out = []
while any(seen[p] < ends[p] for p in parts):
    m = c.poll(10)
    if m is None:
        sys.exit("timed out reading %s: %s of %s" % (topic, seen, ends))
    if m.error():
        sys.exit(str(m.error()))
    seen[m.partition()] = m.offset() + 1
    headers = {k: v.decode() for k, v in (m.headers() or [])}
    out.append({"p": m.partition(), "o": m.offset(), "k": m.key().decode() if m.key() else None,
                "v": m.value().decode(), "h": headers})
c.close()
# A third-party producer with Kafka's default partitioner for keyed records.
placed = {}
def done(err, msg):
    if err: sys.exit(str(err))
    placed[msg.key().decode()] = msg.partition()
p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
for i, key in enumerate(["t0", "t3", "t6"]):
    value = json.dumps({"time": 10**12 + i, "tag": key, "values": [1.0]})
    p.produce(topic, key=key, value=value, on_delivery=done)
p.flush(30)
print(json.dumps({"messages": out, "placed": placed}))
"#;

fn post_ndjson(ports: &Ports, events: &[String]) {
    let body = events.join("\n");
    support::post_ndjson(&ports.api("/ingest/Measurement"), &body);
}

fn events(from: u64, to: u64) -> Vec<String> {
    (from..to).map(|i| format!("{{\"time\":{i},\"tag\":\"t{}\",\"values\":[{i}.5]}}", i % 7)).collect()
}

fn count(ports: &Ports) -> u64 {
    ports.clickhouse().execute("SELECT count() FROM devapp.Measurement").unwrap().trim().parse().unwrap()
}

#[test]
fn a_third_party_consumer_reads_one_keyed_json_object_per_message() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let ports = Ports::free();

    // First in batch framing (the local broker's default), then in record framing.
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    post_ndjson(&ports, &events(1, 51));
    eventually(Duration::from_secs(20), "the batch-framed rows", || (count(&ports) == 50).then_some(()));
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());

    let mut cmd = support::igloo(&root, &ports);
    cmd.arg("dev").env("IGLOO_BROKER_FRAMING", "record").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut dev = Dev::attach(cmd.spawn().unwrap());
    dev.expect("Ingest API", START);
    for chunk in events(51, 351).chunks(60) {
        post_ndjson(&ports, chunk);
    }
    eventually(Duration::from_secs(20), "every row", || (count(&ports) == 350).then_some(()));

    let python = std::env::var("IGLOO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-c", CONSUMER, &format!("127.0.0.1:{}", ports.broker), "Measurement"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the consumer failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages = report["messages"].as_array().unwrap();

    // The first 50 rows were written in batch framing (NDJSON, several rows per message), the
    // rest in record framing; nothing carries headers.
    assert!(messages.iter().all(|m| m["h"].as_object().unwrap().is_empty()));
    let (batch, record): (Vec<&Value>, Vec<&Value>) = messages.iter().partition(|m| {
        m["v"].as_str().unwrap().lines().count() > 1 || {
            let v: Value = serde_json::from_str(m["v"].as_str().unwrap()).unwrap();
            v["time"].as_str().unwrap().parse::<u64>().unwrap() <= 50
        }
    });
    let batch_rows: usize = batch.iter().map(|m| m["v"].as_str().unwrap().lines().count()).sum();
    assert_eq!(batch_rows, 50);
    assert!(batch.len() < 50, "batch framing packs rows: {} messages", batch.len());
    // Record messages: one JSON object each, keyed by its series.
    assert_eq!(record.len(), 300, "one message per event");
    let mut partition_of_tag = std::collections::HashMap::new();
    let mut last_time = std::collections::HashMap::new();
    for m in &record {
        let v: Value = serde_json::from_str(m["v"].as_str().unwrap()).expect("a JSON object per message");
        let tag = v["tag"].as_str().unwrap().to_string();
        assert_eq!(m["k"].as_str(), Some(tag.as_str()), "the key is the series value");
        let p = m["p"].as_i64().unwrap();
        assert_eq!(*partition_of_tag.entry(tag.clone()).or_insert(p), p, "all of {tag} in one partition");
        // Times travel as digit strings (64-bit integers stay exact).
        let time: u64 = v["time"].as_str().unwrap().parse().unwrap();
        let before = last_time.insert(tag.clone(), time);
        assert!(before.is_none_or(|b| b < time), "{tag} in order");
    }
    assert_eq!(partition_of_tag.len(), 7);
    // The same keys from a third-party producer land where igloo put them.
    for (key, p) in report["placed"].as_object().unwrap() {
        assert_eq!(partition_of_tag[key], p.as_i64().unwrap(), "key {key}");
        assert_eq!(
            igloo_server::kafka::wire::partition_of(key.as_bytes(), 4) as i64,
            p.as_i64().unwrap(),
            "igloo's murmur2 for {key}"
        );
    }
    // And the table writer reads those third-party records too.
    eventually(Duration::from_secs(20), "the third-party records", || (count(&ports) == 353).then_some(()));
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(30)).success());
}
