//! Several `igloo serve --role writer` replicas on one topic, real engines: rows equal what
//! ingest acknowledged, with no duplicate, across `kill -9`'d replicas (one followed by a new
//! replica, one by nothing), a replica added mid-stream, and a replica frozen (SIGSTOP) until
//! its partitions moved, then resumed. And a backlog older than the batch's time bound goes at
//! once.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::*;

/// How soon the group moves a silent replica's partitions.
const SESSION_TIMEOUT_MS: &str = "6000";

fn writer(root: &std::path::Path, ports: &Ports, flush_ms: &str) -> Dev {
    let mut cmd = igloo(root, &ports.with_new_server());
    cmd.args(["serve", "--mode", "native", "--role", "writer"])
        .env("IGLOO_WRITER_FLUSH_MS", flush_ms)
        .env("IGLOO_WRITER_SESSION_TIMEOUT_MS", SESSION_TIMEOUT_MS)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut w = Dev::attach(cmd.spawn().unwrap());
    w.expect("igloo serve: project", START);
    w
}

fn query(ports: &Ports, sql: &str) -> String {
    ports.clickhouse().execute(sql).unwrap().trim().to_string()
}

/// (rows, distinct events) in the table.
fn rows(ports: &Ports) -> (u64, u64) {
    let r = query(ports, "SELECT count(), uniqExact(tag, time) FROM devapp.Measurement");
    let (a, b) = r.split_once('\t').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// The writer that currently owns each partition.
fn owners(ports: &Ports) -> Vec<String> {
    let sql = "SELECT argMax(writer, (epoch, writer)) FROM devapp._igloo_claims WHERE topic = 'Measurement' GROUP BY partition ORDER BY partition";
    query(ports, sql).lines().map(String::from).collect()
}

/// Waits until the table holds every acknowledged event once, and still does a moment later.
fn all_written_once(ports: &Ports, acked: u64) {
    let got = eventually(Duration::from_secs(90), "every acknowledged event written", || {
        let (n, distinct) = rows(ports);
        assert_eq!(n, distinct, "duplicated rows");
        (n >= acked).then_some(n)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!((got, rows(ports)), (acked, (acked, acked)));
}

fn engines(root: &std::path::Path) -> (Dev, Ports, Dev, Ports) {
    let ports = Ports::free();
    let mut engines = Dev::start(root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);
    let ingest_ports = ports.with_new_server();
    let ingest = serve_roles(root, &ingest_ports, "ingest");
    (engines, ports, ingest, ingest_ports)
}

#[test]
fn three_writers_one_killed_one_added_write_each_event_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let (mut engines, ports, _ingest, ingest_ports) = engines(&root);
    let mut writers: Vec<Dev> = (0..3).map(|_| writer(&root, &ports, "100")).collect();
    eventually(Duration::from_secs(30), "the partitions shared by three writers", || {
        let o = owners(&ports);
        (o.len() == 4 && o.iter().collect::<std::collections::BTreeSet<_>>().len() == 3).then_some(())
    });

    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let producer = stream_events(ingest_ports.api("/ingest/Measurement"), stop.clone(), acked.clone(), 0);
    std::thread::sleep(Duration::from_secs(3));
    writers[0].child.kill().unwrap();
    writers[0].child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    writers.push(writer(&root, &ports, "100"));
    std::thread::sleep(Duration::from_secs(4));
    // Killed with no join after it: its partitions move when its session times out (tansu
    // 0.6 keeps it in the group; the others rejoin when they see its partitions stall).
    writers[1].child.kill().unwrap();
    writers[1].child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let acked = acked.load(Ordering::Relaxed);
    assert!(acked > 2_000, "{acked} events acknowledged");
    all_written_once(&ports, acked);
    let rejoined =
        writers[2..].iter_mut().flat_map(|w| w.output().to_vec()).filter(|l| l.contains("rejoining")).count();
    println!("{acked} events; the live writers rejoined the group {rejoined} times to drop a dead member");

    // The killed writer's partitions were taken over: some partition has a later epoch.
    let epochs = query(&ports, "SELECT max(epoch), uniqExact(writer) FROM devapp._igloo_claims");
    let (max_epoch, claimers) = epochs.split_once('\t').unwrap();
    assert!(max_epoch.parse::<u64>().unwrap() >= 2 && claimers.parse::<u64>().unwrap() >= 4, "{epochs}");
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_frozen_writer_resumed_after_its_partitions_moved_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let (mut engines, ports, _ingest, ingest_ports) = engines(&root);
    // The zombie collects for 2 s, so it is frozen holding a batch it has not written.
    let mut zombie = writer(&root, &ports, "2000");
    let zombie_id = format!("-{}-", zombie.child.id());
    let _other = writer(&root, &ports, "100");
    eventually(Duration::from_secs(30), "two writers sharing the partitions", || {
        let o = owners(&ports);
        (o.len() == 4 && o.iter().any(|w| w.contains(&zombie_id)) && !o.iter().all(|w| w == &o[0])).then_some(())
    });

    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let producer = stream_events(ingest_ports.api("/ingest/Measurement"), stop.clone(), acked.clone(), 0);
    std::thread::sleep(Duration::from_millis(3_500));
    zombie.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    // The group moves its partitions at the next rebalance it misses: on Kafka once its
    // session times out; tansu 0.6 keeps an expired member until the next join, so one joins.
    std::thread::sleep(Duration::from_millis(SESSION_TIMEOUT_MS.parse::<u64>().unwrap()));
    let _third = writer(&root, &ports, "100");
    eventually(Duration::from_secs(40), "the frozen writer's partitions claimed by the others", || {
        let o = owners(&ports);
        (o.len() == 4 && !o.iter().any(|w| w.contains(&zombie_id))).then_some(())
    });
    println!("partitions moved {} ms after the freeze", frozen.elapsed().as_millis());
    std::thread::sleep(Duration::from_secs(2));
    zombie.signal(libc::SIGCONT);
    // The resumed writer tries to write the batch it held, and the fence drops it.
    zombie.expect("another writer claimed these partitions", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let acked = acked.load(Ordering::Relaxed);
    all_written_once(&ports, acked);
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}

/// A batch's time bound counts from when its first message was produced: a backlog already
/// older than `flush_ms` is written as soon as a writer reads it, not `flush_ms` later (a
/// writer that fell behind under load would otherwise add `flush_ms` to every batch).
#[test]
fn a_backlog_older_than_the_flush_bound_is_written_as_soon_as_it_is_read() {
    const FLUSH_MS: u64 = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let (mut engines, ports, _ingest, ingest_ports) = engines(&root);
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let producer = stream_events(ingest_ports.api("/ingest/Measurement"), stop.clone(), acked.clone(), 0);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let acked = acked.load(Ordering::Relaxed);
    assert!(acked > 0, "no event acknowledged");
    std::thread::sleep(Duration::from_millis(FLUSH_MS + 500));

    let started = Instant::now();
    let _writer = writer(&root, &ports, &FLUSH_MS.to_string());
    eventually(Duration::from_secs(60), "the backlog written", || (rows(&ports).0 >= acked).then_some(()));
    let took = started.elapsed();
    println!("{acked} events produced {FLUSH_MS} ms before the writer started, written {} ms after", took.as_millis());
    assert!(took < Duration::from_millis(FLUSH_MS / 2), "the backlog waited {took:?} (flush_ms {FLUSH_MS})");
    all_written_once(&ports, acked);
    engines.signal(libc::SIGINT);
    assert!(engines.wait_exit(Duration::from_secs(30)).success());
}
