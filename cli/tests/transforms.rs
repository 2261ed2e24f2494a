//! User transforms on real engines (ClickHouse 18.16 and tansu, through `igloo dev`):
//! records posted to the source model come out in the destination's table; null drops, a list
//! fans out, a throw / a crash / a wrong output type go to the dead-letter queue; a save
//! reloads the transform during a stream without losing or duplicating a record, and a broken
//! save keeps the previous version running. Also `igloo test` on the templates.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::*;

const TS_V1: &str = r#"import type { PageViewRecord, SectionView } from "../sdk/devapp.ts";

export default function transform(v: PageViewRecord): SectionView | SectionView[] | null {
  const out = (section: string): SectionView => ({ viewedAt: v.viewedAt, visitorId: v.visitorId, section, slow: false });
  switch (v.path) {
    case "/health": return null;
    case "/fan": return [out("fan-1"), out("fan-2"), out("fan-3")];
    case "/boom": throw new Error(`boom on ${v.visitorId}`);
    case "/crash": process.exit(3);
    case "/bad": return { ...out("x"), section: 42 } as unknown as SectionView;
    default: return out("v1");
  }
}
"#;

fn post(ports: &Ports, model: &str, body: &str) {
    post_ndjson(&ports.api(&format!("/ingest/{model}")), body);
}

fn view(visitor: &str, path: &str) -> String {
    format!("{{\"visitorId\":\"{visitor}\",\"path\":\"{path}\",\"loadMs\":10}}\n")
}

/// PageViews posted in batches of 10 from a thread, visitor ids `<prefix><n>`, until finished.
struct Stream {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, Instant)>>>,
    handle: std::thread::JoinHandle<()>,
}

impl Stream {
    /// With `survive_outages` (the server is being killed), requests go back to back and a
    /// failed one is not counted; without, they are spread 20 ms apart and a failure fails the test.
    fn start(ports: &Ports, prefix: &str, survive_outages: bool) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let (s, a, url, prefix) = (stop.clone(), acked.clone(), ports.api("/ingest/PageView"), prefix.to_string());
        let handle = std::thread::spawn(move || {
            let mut i = 0;
            while !s.load(Ordering::Relaxed) {
                let batch: Vec<String> = (i..i + 10).map(|n| format!("{prefix}{n}")).collect();
                let body: String = batch.iter().map(|v| view(v, "/x")).collect();
                i += 10;
                match try_post(&url, &[("Content-Type", "application/x-ndjson")], body) {
                    Ok(r) if r.status == 200 => {
                        let now = Instant::now();
                        a.lock().unwrap().extend(batch.into_iter().map(|v| (v, now)));
                    }
                    Ok(r) if !survive_outages => panic!("POST /ingest/PageView: {} {}", r.status, r.body),
                    Err(e) if !survive_outages => panic!("POST /ingest/PageView: {e}"),
                    _ => {}
                }
                if !survive_outages {
                    std::thread::sleep(Duration::from_millis(20)); // spread over the reload
                }
            }
        });
        Stream { stop, acked, handle }
    }

    /// Stops the thread; the acknowledged visitor ids with the time of their acknowledgement.
    fn finish(self) -> Vec<(String, Instant)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap();
        self.acked.lock().unwrap().clone()
    }
}

fn rows(ports: &Ports, sql: &str) -> Vec<Vec<String>> {
    let out = ports.clickhouse().execute(&format!("{sql} FORMAT TSV")).unwrap_or_default();
    out.lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

fn count(ports: &Ports, sql: &str) -> usize {
    rows(ports, sql).first().and_then(|r| r[0].parse().ok()).unwrap_or(0)
}

#[test]
fn typescript_transform_runs_dead_letters_and_reloads_without_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project_from(tmp.path(), "ts");
    let file = root.join("transforms/PageView__SectionView.ts");
    std::fs::write(&file, TS_V1).unwrap();
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("✓ transform PageView__SectionView: PageView → SectionView (1 worker)", START);
    dev.expect("Ingest API", START);

    let body: String = [("a", "/x"), ("b", "/health"), ("c", "/fan"), ("d", "/boom"), ("e", "/crash"), ("f", "/bad")]
        .iter()
        .map(|(v, p)| view(v, p))
        .collect();
    post(&ports, "PageView", &body);
    eventually(Duration::from_secs(60), "outputs and dead letters", || {
        let out = count(&ports, "SELECT count() FROM devapp.SectionView");
        let dead = count(&ports, "SELECT count() FROM devapp._igloo_dlq WHERE topic = 'PageView'");
        (out == 4 && dead == 3).then_some(())
    });
    let sections = rows(&ports, "SELECT visitorId, section FROM devapp.SectionView ORDER BY section");
    assert_eq!(sections, [["c", "fan-1"], ["c", "fan-2"], ["c", "fan-3"], ["a", "v1"]].map(|r| r.map(String::from)));
    let letters: HashMap<String, String> =
        rows(&ports, "SELECT payload, error FROM devapp._igloo_dlq WHERE topic = 'PageView'")
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    let error_of = |visitor: &str| {
        letters
            .iter()
            .find(|(payload, _)| payload.contains(&format!("\"visitorId\":\"{visitor}\"")))
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("no dead letter for {visitor}: {letters:?}"))
    };
    assert!(error_of("d").contains("threw Error: boom on d"), "{}", error_of("d"));
    assert!(error_of("d").contains("PageView__SectionView.ts"), "the stack names the file: {}", error_of("d"));
    assert!(error_of("e").contains("crashed 3 times on this record"), "{}", error_of("e"));
    assert!(error_of("f").contains("is not a SectionView") && error_of("f").contains("`section`"), "{}", error_of("f"));

    // A stream of records while the file is broken, then changed: none lost or doubled.
    let stream = Stream::start(&ports, "s", false);
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&file, TS_V1.replace("default: return out(\"v1\");", "default: return out(\"v2\";")).unwrap();
    dev.expect("transforms/PageView__SectionView.ts does not load", APPLY);
    dev.expect("the previous version keeps running", APPLY);
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&file, TS_V1.replace("\"v1\"", "\"v2\"")).unwrap();
    let line = dev.expect("transform PageView__SectionView reloaded", APPLY);
    // Each slot then starts its own worker on the new code, which takes about as long as the
    // check that reported the reload: records posted a second after that run the new code.
    let load_ms: u64 = line.split("loaded in ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    let reloaded = Instant::now() + Duration::from_millis(load_ms);
    std::thread::sleep(Duration::from_secs(3));
    let posted = stream.finish();
    let n = posted.len();
    eventually(Duration::from_secs(60), "every streamed record transformed", || {
        (count(&ports, "SELECT count() FROM devapp.SectionView WHERE visitorId LIKE 's%'") >= n).then_some(())
    });
    let got = rows(&ports, "SELECT visitorId, section FROM devapp.SectionView WHERE visitorId LIKE 's%'");
    let sections: HashMap<String, String> = got.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(got.len(), n, "each streamed record exactly once");
    assert_eq!(sections.len(), n, "no record doubled");
    let late: Vec<&(String, Instant)> =
        posted.iter().filter(|(_, at)| *at > reloaded + Duration::from_secs(1)).collect();
    assert!(!late.is_empty());
    for (v, _) in late {
        assert_eq!(sections[v], "v2", "{v} was posted more than 1 s after the reload");
    }
    assert!(sections.values().any(|s| s == "v1"), "records before the save ran the old code");

    // Removing the file stops the transform.
    std::fs::remove_file(&file).unwrap();
    dev.expect("transform PageView__SectionView stopped", APPLY);
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(60)).success());
}

const PY: &str = r#"from __future__ import annotations

from sdk.devapp import HeatAlert, SensorReadingRecord


def transform(r: SensorReadingRecord) -> HeatAlert | list[HeatAlert] | None:
    if r["sensorId"] == "boom":
        raise ValueError("too hot to handle")
    if r["temperature"] <= 30:
        return None
    alert: HeatAlert = {"sensorId": r["sensorId"], "readAt": r["readAt"], "temperature": r["temperature"], "fahrenheit": r["temperature"] * 9 / 5 + 32}
    return [alert, {**alert, "sensorId": r["sensorId"] + "-copy"}] if r["sensorId"] == "twice" else alert
"#;

#[test]
fn python_transform_runs_with_two_workers_and_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project_from(tmp.path(), "python");
    std::fs::write(root.join("transforms/SensorReading__HeatAlert.py"), PY).unwrap();
    let yaml = root.join("igloo.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("\n  workers: 1\n"), "{text}");
    std::fs::write(&yaml, text.replace("\n  workers: 1\n", "\n  workers: 2\n")).unwrap();
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("✓ transform SensorReading__HeatAlert: SensorReading → HeatAlert (2 workers)", START);
    dev.expect("Ingest API", START);
    let reading = |id: &str, t: f64, sec: u32| {
        format!(
            "{{\"sensorId\":\"{id}\",\"readAt\":\"2024-05-01T12:00:{sec:02}Z\",\"temperature\":{t},\"labels\":[]}}\n"
        )
    };
    let mut body: String = (0..40).map(|i| reading(&format!("s{i}"), 31.0 + f64::from(i), i % 60)).collect();
    body += &reading("cold", 10.0, 1);
    body += &reading("boom", 40.0, 2);
    body += &reading("twice", 50.0, 3);
    post(&ports, "SensorReading", &body);
    eventually(Duration::from_secs(60), "alerts", || {
        (count(&ports, "SELECT count() FROM devapp.HeatAlert") == 42).then_some(())
    });
    let f = rows(&ports, "SELECT fahrenheit FROM devapp.HeatAlert WHERE sensorId = 'twice-copy'");
    assert_eq!(f, [["122"]]);
    let dead = rows(&ports, "SELECT error FROM devapp._igloo_dlq WHERE topic = 'SensorReading'");
    assert_eq!(dead.len(), 1);
    assert!(dead[0][0].contains("threw ValueError: too hot to handle") && dead[0][0].contains("Traceback"), "{dead:?}");
    let metrics = get(&ports.api("/metrics")).2;
    assert!(metrics.contains("igloo_transform_in_total{transform=\"SensorReading__HeatAlert\"} 43"), "{metrics}");
    assert!(metrics.contains("igloo_transform_dropped_total{transform=\"SensorReading__HeatAlert\"} 1"), "{metrics}");
    assert!(metrics.contains("igloo_transform_workers{transform=\"SensorReading__HeatAlert\"} 2"), "{metrics}");
    dev.signal(libc::SIGINT);
    assert!(dev.wait_exit(Duration::from_secs(60)).success());
}

fn venv_python() -> String {
    let home = std::env::var("HOME").unwrap();
    let python = format!("{home}/.cache/igloo/venv/bin/python");
    assert!(Path::new(&python).exists(), "{python} is missing: run scripts/install-engines.sh");
    python
}

fn igloo_test(root: &Path) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin("igloo"))
        .current_dir(root)
        .arg("test")
        .env("IGLOO_PYTHON", venv_python())
        .output()
        .unwrap()
}

#[test]
fn igloo_test_runs_the_template_tests_and_reports_failures() {
    for (template, test_file, from, to) in [
        ("ts", "transforms/PageView__SectionView.test.ts", "\"pricing\"", "\"nope\""),
        ("python", "transforms/test_SensorReading__HeatAlert.py", "95.0", "96.0"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let root = project_from(tmp.path(), template);
        let out = igloo_test(&root);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{template}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("✓ transform tests passed"), "{stdout}");
        let path = root.join(test_file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let out = igloo_test(&root);
        assert!(!out.status.success(), "{template}: a failing test fails igloo test");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("tests failed"), "{stderr}");
    }
}

#[test]
fn killing_the_server_mid_stream_loses_no_transformed_record() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project_from(tmp.path(), "ts");
    let ports = Ports::free();
    let mut engines = Dev::start(&root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);
    let mut server = serve(&root, &ports);

    let stream = Stream::start(&ports, "k", true);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        server.child.kill().unwrap(); // SIGKILL: the workers get SIGTERM from the kernel
        server.child.wait().unwrap();
        eventually(Duration::from_secs(10), "no worker outlives the killed server", || {
            orphan_workers(&root).is_empty().then_some(())
        });
        server = serve(&root, &ports);
    }
    std::thread::sleep(Duration::from_secs(1));
    let acked: Vec<String> = stream.finish().into_iter().map(|(v, _)| v).collect();
    assert!(acked.len() > 500, "the load barely ran: {}", acked.len());
    // Wait for the acknowledged records themselves, not a count: records the server produced
    // but could not acknowledge before a kill are transformed too, and would make a count
    // reach its target early.
    let transformed = || -> std::collections::HashSet<String> {
        rows(&ports, "SELECT DISTINCT visitorId FROM devapp.SectionView").into_iter().map(|r| r[0].clone()).collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = transformed();
        if acked.iter().all(|v| got.contains(v)) || std::time::Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let missing: Vec<&String> = acked.iter().filter(|v| !got.contains(*v)).take(10).collect();
    assert!(missing.is_empty(), "acknowledged but never transformed: {missing:?}");
    let total = count(&ports, "SELECT count() FROM devapp.SectionView WHERE visitorId LIKE 'k%'");
    eprintln!("{} acknowledged, {total} transformed rows ({} replayed after 3 kills)", acked.len(), total - got.len());

    server.signal(libc::SIGINT);
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}

/// `igloo serve --role transform` twice: the replicas share the source's partitions through the
/// transform's consumer group. One is `kill -9`'d mid-stream and nothing replaces it: the other
/// takes its partitions, and every acknowledged record is transformed (at least once).
#[test]
fn two_transform_replicas_share_the_source_and_survive_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project_from(tmp.path(), "ts");
    let schema = root.join("schema/models.prisma");
    let text = std::fs::read_to_string(&schema).unwrap();
    let text = text.replacen(
        "  @@partitionBy(\"toYYYYMM(viewedAt)\")\n}",
        "  @@partitionBy(\"toYYYYMM(viewedAt)\")\n  @@topic(partitions: 4)\n}",
        1,
    );
    assert!(text.contains("@@topic(partitions: 4)"));
    std::fs::write(&schema, text).unwrap();
    let ports = Ports::free();
    let mut engines = Dev::start(&root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);
    let _api = serve_roles(&root, &ports, "ingest,writer");
    let replica = |ports: &Ports| {
        let p = ports.with_new_server();
        (serve_roles(&root, &p, "transform"), p)
    };
    let (mut first, first_ports) = replica(&ports);
    let (_second, second_ports) = replica(&ports);
    let transformed_by = |p: &Ports| -> u64 {
        let (_, _, metrics) = get(&p.api("/metrics"));
        let line = metrics.lines().find(|l| l.starts_with("igloo_transform_in_total{")).unwrap_or("x 0");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };

    let stream = Stream::start(&ports, "r", false);
    // Both replicas transform: the group shares the four partitions between them.
    eventually(Duration::from_secs(30), "both replicas transforming", || {
        (transformed_by(&first_ports) > 0 && transformed_by(&second_ports) > 0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let acked: Vec<String> = stream.finish().into_iter().map(|(v, _)| v).collect();
    assert!(acked.len() > 500, "the load barely ran: {}", acked.len());
    let got = eventually(Duration::from_secs(90), "every acknowledged record transformed", || {
        let got: std::collections::HashSet<String> = rows(&ports, "SELECT DISTINCT visitorId FROM devapp.SectionView")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        acked.iter().all(|v| got.contains(v)).then_some(got)
    });
    let total = count(&ports, "SELECT count() FROM devapp.SectionView WHERE visitorId LIKE 'r%'");
    eprintln!("{} acknowledged, {total} transformed rows ({} replayed after the kill)", acked.len(), total - got.len());
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}
