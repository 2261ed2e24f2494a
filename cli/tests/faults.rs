//! The fault matrix (issue 19 §4), on real engines (ClickHouse 18.16 and tansu under
//! `igloo dev --no-server`, which restarts a killed engine) and three `igloo serve` processes,
//! one per role (ingest, writer, transform), so each can be killed alone:
//!
//! - while a load of ≥ 5k events/s streams (each batch with an `Idempotency-Key`, retried
//!   until acknowledged, as the SDKs do), each of the ingest server, the writer, a transform
//!   worker, the broker and ClickHouse is `kill -9`ed N times; after each phase every
//!   acknowledged event is in the model's table and in the transform's destination exactly
//!   once;
//! - the broker, then ClickHouse, is down for a while (killed while `igloo dev` is stopped, so
//!   nothing restarts it): ingest answers 503 while the broker is away and keeps accepting
//!   while ClickHouse is (the topic holds the events); afterwards nothing is lost.
//!
//! The broker is tansu on PostgreSQL storage (scripts/tansu-postgres.sh): a killed tansu comes
//! back to what it had, as a Kafka broker does from its log. On its SQLite storage, tansu 0.6
//! itself fails within a few kills (BENCHMARKS.md).
//!
//! `IGLOO_FAULT_KILLS` (default 2) and `IGLOO_FAULT_OUTAGE_SECS` (default 15; 0: no outage
//! phases; above the producer's 10 s message timeout, so that ingest answers 503) size the run,
//! `IGLOO_FAULT_PHASES` (names, comma-separated; default all five) picks kill phases;
//! `scripts/fault-matrix.sh` runs 20 kills and 30 s outages and prints the table that goes to
//! BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::*;

const DERIVED: &str = "
/// Written by transforms/Measurement__Derived.py, one per Measurement.
model Derived {
  time  BigInt
  tag   String
  first Float

  @@id([tag, time])
  @@ingest(false)
}
";

const TRANSFORM: &str = r#"def transform(r):
    return {"time": r["time"], "tag": r["tag"], "first": r["values"][0]}
"#;

/// Events per request, loader threads, and the rate they aim at together.
const BATCH: u64 = 200;
const THREADS: u64 = 10;
const RATE: u64 = 6_000;
/// Between kills of one engine: igloo dev restarts an engine at most 3 times a minute.
const ENGINE_GAP: Duration = Duration::from_secs(21);
/// How long one batch is retried before the load gives up on it (and the test fails).
const GIVE_UP: Duration = Duration::from_secs(150);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one phase's load saw.
#[derive(Default)]
struct Answers {
    by_status: Mutex<BTreeMap<String, u64>>,
}

impl Answers {
    fn add(&self, what: String) {
        *self.by_status.lock().unwrap().entry(what).or_default() += 1;
    }

    fn get(&self, what: &str) -> u64 {
        self.by_status.lock().unwrap().get(what).copied().unwrap_or(0)
    }

    fn summary(&self) -> String {
        self.by_status.lock().unwrap().iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(" ")
    }
}

/// A phase's stream: events with `time` from `base` on, in batches with their own
/// `Idempotency-Key`, each retried until acknowledged.
struct Load {
    batches: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    answers: Arc<Answers>,
    started: Instant,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, base: u64) -> Load {
        let batches = Arc::new(AtomicU64::new(0));
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Answers::default());
        let interval = Duration::from_secs_f64((BATCH * THREADS) as f64 / RATE as f64);
        let threads = (0..THREADS)
            .map(|_| {
                let (url, batches, acked, stop, answers) =
                    (url.clone(), batches.clone(), acked.clone(), stop.clone(), answers.clone());
                std::thread::spawn(move || {
                    let client = http();
                    let mut next = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let n = batches.fetch_add(1, Ordering::Relaxed);
                        let first = base + n * BATCH;
                        let body: String = (first..first + BATCH)
                            .map(|t| format!("{{\"time\":{t},\"tag\":\"t{}\",\"values\":[{}]}}\n", t % 37, t % 1000))
                            .collect();
                        let key = format!("fault-{base}-{n}");
                        // Until acknowledged, however long the outage, up to a bound that
                        // fails the test instead of hanging it.
                        let since = Instant::now();
                        loop {
                            if since.elapsed() > GIVE_UP {
                                answers.add("given up".into());
                                break;
                            }
                            let sent = client
                                .post(&url)
                                .header("Content-Type", "application/x-ndjson")
                                .header("Idempotency-Key", &key)
                                .body(body.clone())
                                .send();
                            match sent {
                                Ok(r) if r.status() == 200 => {
                                    answers.add("200".into());
                                    acked.fetch_add(BATCH, Ordering::Relaxed);
                                    break;
                                }
                                Ok(r) => answers.add(r.status().as_u16().to_string()),
                                Err(_) => answers.add("no answer".into()),
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        next += interval;
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        } else {
                            next = Instant::now();
                        }
                    }
                })
            })
            .collect();
        Load { batches, acked, stop, answers, started: Instant::now(), threads }
    }

    /// Stops sending new batches and waits until every batch sent was acknowledged. Returns
    /// (events acknowledged, events sent, events/s).
    fn finish(self) -> (u64, u64, f64, Arc<Answers>) {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        for t in self.threads {
            t.join().unwrap();
        }
        let acked = self.acked.load(Ordering::Relaxed);
        let sent = self.batches.load(Ordering::Relaxed) * BATCH;
        (acked, sent, acked as f64 / elapsed, self.answers)
    }
}

/// `(rows, distinct times, min, max)` of `table` in the phase's range.
fn counted(ports: &Ports, table: &str, lo: u64, hi: u64) -> (u64, u64, u64, u64) {
    let q = format!(
        "SELECT count(), uniqExact(time), min(time), max(time) FROM devapp.{table} WHERE time >= {lo} AND time < {hi} FORMAT TSV"
    );
    let Ok(out) = ports.clickhouse().execute(&q) else { return (0, 0, 0, 0) };
    let v: Vec<u64> = out.split_whitespace().map(|n| n.parse().unwrap_or(0)).collect();
    (v[0], v[1], v[2], v[3])
}

/// Waits until every acknowledged event of the phase is in `table`, then a little longer (a
/// duplicate can only come later); returns (rows, duplicates), having checked that the rows
/// are exactly the events sent.
fn landed(ports: &Ports, table: &str, base: u64, sent: u64) -> (u64, u64) {
    let hi = base + sent;
    eventually(Duration::from_secs(180), &format!("every acknowledged event in {table}"), || {
        (counted(ports, table, base, hi).1 == sent).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let (rows, unique, min, max) = counted(ports, table, base, hi);
    assert_eq!((unique, min, max), (sent, base, hi - 1), "{table}: not exactly the events sent");
    (rows, rows - unique)
}

fn sigkill(pid: u32) {
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// The three role processes beside the engines.
struct Servers {
    ingest: (Dev, Ports),
    writer: (Dev, Ports),
    transform: (Dev, Ports),
}

fn role(root: &Path, engines: &Ports, roles: &str, ports: Option<Ports>) -> (Dev, Ports) {
    let ports = ports.unwrap_or_else(|| engines.with_new_server());
    let dev = serve_roles(root, &ports, roles);
    (dev, ports)
}

fn restart(root: &Path, engines: &Ports, which: &mut (Dev, Ports), roles: &str) {
    sigkill(which.0.child.id());
    which.0.child.wait().unwrap();
    let ports = Ports { server: which.1.server, ..which.1.with_new_server() };
    *which = role(root, engines, roles, Some(ports));
    // Killed again only once it serves (a writer once it has written: the killed one's group
    // session expired and its partitions moved): 20 kills faster than that are a crash loop,
    // not 20 crashes, and a churning consumer group that fast sends tansu 0.6 into a busy loop
    // (docs/ARCHITECTURE.md).
    wait_ready(&which.1);
    if roles == "writer" {
        eventually(START, "the new writer writing", || (written(&which.1) > 0).then_some(()));
    }
}

/// `GET /ready`'s status; when no answer comes, a panic saying why and whether the process is
/// still running.
fn ready_status(name: &str, server: &mut (Dev, Ports)) -> u16 {
    match try_get(&server.1.api("/ready")) {
        Ok(reply) => reply.status,
        Err(e) => {
            let state = match server.0.child.try_wait() {
                Ok(Some(status)) => format!("the process has exited ({status})"),
                _ => "the process is still running".to_string(),
            };
            panic!("the {name} server did not answer GET /ready: {}; {state}", causes(&e))
        }
    }
}

/// Rows this server's table writers wrote, over both models.
fn written(ports: &Ports) -> u64 {
    ["Measurement", "Derived"].iter().filter_map(|m| metric(ports, "igloo_written_total", m)).sum()
}

#[test]
fn every_process_killed_and_each_engine_down_for_a_while_loses_and_duplicates_nothing() {
    let kills = env_number("IGLOO_FAULT_KILLS", 2);
    let outage = Duration::from_secs(env_number("IGLOO_FAULT_OUTAGE_SECS", 15));
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    std::fs::write(root.join("schema/derived.prisma"), DERIVED).unwrap();
    std::fs::write(root.join("transforms/Measurement__Derived.py"), TRANSFORM).unwrap();
    let mut engine_ports = Ports::free();
    engine_ports.env.push(("IGLOO_BROKER_STORAGE".into(), broker_storage()));
    let mut engines = Dev::start(&root, &engine_ports, &["--no-server"]);
    engines.expect("Ready in", START);
    let mut servers = Servers {
        ingest: role(&root, &engine_ports, "ingest", None),
        writer: role(&root, &engine_ports, "writer", None),
        transform: role(&root, &engine_ports, "transform", None),
    };
    for s in [&servers.ingest.1, &servers.writer.1, &servers.transform.1] {
        wait_ready(s);
    }
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        matrix(&root, &engine_ports, &mut engines, &mut servers, kills, outage)
    }));
    if let Err(e) = run {
        eprintln!("igloo dev --no-server said:\n{}", engines.output().join("\n"));
        for (name, (server, _)) in
            [("ingest", &mut servers.ingest), ("writer", &mut servers.writer), ("transform", &mut servers.transform)]
        {
            let lines = server.output();
            // A panic first: CI shows the start and end of a failure's output, not its middle.
            let panics: Vec<&str> = lines.iter().map(String::as_str).filter(|l| l.contains("panicked")).collect();
            if !panics.is_empty() {
                eprintln!("the {name} server panicked:\n{}", panics.join("\n"));
            }
            eprintln!(
                "the {name} server said (last 40 lines):\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        std::panic::resume_unwind(e);
    }
    for (server, _) in [&mut servers.ingest, &mut servers.writer, &mut servers.transform] {
        server.signal(libc::SIGTERM);
        server.wait_exit(Duration::from_secs(30));
    }
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}

/// tansu's storage for the run: `IGLOO_BROKER_STORAGE` when set, else a fresh PostgreSQL
/// database from scripts/tansu-postgres.sh. With its SQLite storage, tansu 0.6 panics or spins
/// within a few broker kills (BENCHMARKS.md); on PostgreSQL it holds no state of its own.
fn broker_storage() -> String {
    if let Ok(storage) = std::env::var("IGLOO_BROKER_STORAGE") {
        return storage;
    }
    let out = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tansu-postgres.sh"))
        .args(["reset", "igloo_faults"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tansu-postgres.sh reset: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.trim().strip_prefix("export IGLOO_BROKER_STORAGE=").unwrap_or_else(|| panic!("{text}")).to_string()
}

/// The phases: kills of each process, then each engine down for `outage`.
fn matrix(root: &Path, engine_ports: &Ports, engines: &mut Dev, servers: &mut Servers, kills: u64, outage: Duration) {
    let url = servers.ingest.1.api("/ingest/Measurement");
    let mut table = vec![
        "| process | kills | events/s | acknowledged | rows | duplicates | transformed | duplicates | answers |"
            .to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut record = |what: &str, kills: &str, base: u64, load: Load, ports: &Ports| {
        let (acked, sent, rate, answers) = load.finish();
        assert_eq!(acked, sent, "{what}: every batch sent is acknowledged in the end");
        let (rows, dups) = landed(ports, "Measurement", base, sent);
        let (derived, derived_dups) = landed(ports, "Derived", base, sent);
        let line = format!(
            "| {what} | {kills} | {rate:.0} | {acked} | {rows} | {dups} | {derived} | {derived_dups} | {} |",
            answers.summary()
        );
        eprintln!("{line}");
        table.push(line);
        assert_eq!((rows, dups), (acked, 0), "{what}: acknowledged = rows, no duplicates");
        assert_eq!((derived, derived_dups), (acked, 0), "{what}: every event transformed once");
        answers
    };
    let gap = Duration::from_millis(1500);
    let phases = ["ingest server", "table writer", "transform worker", "broker", "ClickHouse"];
    // IGLOO_FAULT_PHASES=a,b runs only those (by name).
    let only = std::env::var("IGLOO_FAULT_PHASES").unwrap_or_else(|_| phases.join(","));
    for (i, what) in phases.into_iter().enumerate() {
        if !only.split(',').any(|p| p.trim() == what) {
            continue;
        }
        let base = (i as u64 + 1) * 1_000_000_000_000;
        let load = Load::start(url.clone(), base);
        for _ in 0..kills {
            // igloo dev restarts an engine at most 3 times a minute (then gives up on it).
            std::thread::sleep(if i >= 3 { ENGINE_GAP } else { gap });
            match what {
                "ingest server" => restart(root, engine_ports, &mut servers.ingest, "ingest"),
                "table writer" => restart(root, engine_ports, &mut servers.writer, "writer"),
                "transform worker" => {
                    let parent = servers.transform.0.child.id();
                    let before = eventually(START, "a transform worker", || {
                        Some(workers_of(root, parent)).filter(|w| !w.is_empty())
                    });
                    sigkill(before[0]);
                    eventually(START, "the worker restarted", || {
                        workers_of(root, parent).iter().any(|p| !before.contains(p)).then_some(())
                    });
                }
                engine => {
                    let (index, name) = if engine == "broker" { (1, "tansu") } else { (0, "ClickHouse") };
                    sigkill(engine_pids(root)[index]);
                    engines.expect(&format!("{name} restarted on"), START);
                }
            }
        }
        std::thread::sleep(gap);
        record(what, &kills.to_string(), base, load, &servers.writer.1);
    }

    // Each engine down for `outage`: killed while igloo dev is stopped, so nothing restarts
    // it until igloo dev continues.
    // ClickHouse first: the broker's outage leaves producers to be replaced, which would blur
    // what follows.
    let outages: &[(usize, &str)] = if outage.is_zero() { &[] } else { &[(0, "ClickHouse"), (1, "tansu")] };
    for (i, &(index, name)) in outages.iter().enumerate() {
        let base = (phases.len() as u64 + i as u64 + 1) * 1_000_000_000_000;
        let load = Load::start(url.clone(), base);
        std::thread::sleep(gap);
        engines.signal(libc::SIGSTOP);
        sigkill(engine_pids(root)[index]);
        let down = Instant::now();
        let mut ready_while_down = Vec::new();
        while down.elapsed() < outage {
            ready_while_down.push(ready_status("ingest", &mut servers.ingest));
            ready_while_down.push(ready_status("writer", &mut servers.writer));
            std::thread::sleep(Duration::from_millis(500));
        }
        let accepted_while_down = load.answers.get("200");
        engines.signal(libc::SIGCONT);
        engines.expect(&format!("{name} restarted on"), START);
        std::thread::sleep(gap);
        let what = if index == 1 { "broker down" } else { "ClickHouse down" };
        let answers = record(what, &format!("{} s", outage.as_secs()), base, load, &servers.writer.1);
        assert!(ready_while_down.contains(&503), "{what}: /ready said 503 meanwhile");
        if index == 1 {
            // Each request waits for the broker up to the producer's 10 s message timeout.
            assert!(answers.get("503") > 0, "{what}: ingest answered 503");
        } else {
            assert!(accepted_while_down > 0, "{what}: ingest kept accepting (the topic holds the events)");
        }
    }
    println!("\nFault matrix ({kills} kills per process, {} s outages):\n{}", outage.as_secs(), table.join("\n"));
}
