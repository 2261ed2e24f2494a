//! `igloo-bench-reference`: the reference time-series workload end to end against a running
//! igloo, with the ceiling of each stage measured alone in the same run.
//!
//! Phases (`--role all`), after loading `--preload-rows` of history:
//! 0. Idle, once ClickHouse has merged the history: `--idle-seconds` of the query clients
//!    asking ClickHouse directly (one plain `argMax` query per window: the store's own cost),
//!    then `--idle-seconds` of the same windows on igloo's `/api`.
//! 1. The reference profile, single-event POSTs over keep-alive connections, open loop: 10k
//!    events/s, one minute at 50k/s, two one-second peaks at 200k/s; meanwhile
//!    `--query-clients` clients × 1 req/s on `GET /api?tag=&start=&end=` (top-100 tags,
//!    windows of 10 min – 24 h in the last 24 h) and one freshness probe a second.
//! 2. Batched ingest as fast as it goes (`--batch` events per request), queries and probes on.
//! 3. Ingest alone, no queries and no probe (each after the writer has caught up): single
//!    events open loop at the base rate, then batched ingest; igloo's CPU per event without
//!    the observers' requests (the probe polls `/api` every 5 ms until its event shows).
//! 4. Drain, then the loss check: rows in ClickHouse since the run started == events
//!    acknowledged (fewer: lost; more: duplicated).
//! 5. Ceilings, each stage alone: an HTTP server with a trivial handler (single-event requests
//!    and batched requests), the broker's produce rate (`acks=all`, one event per message and
//!    `--batch` events per message), ClickHouse bulk inserts (a bare copy of the table, and
//!    the table itself with its rollup views), and ClickHouse's CPU per row and float
//!    exactness for JSONEachRow against RowBinary (what the table writer sends).
//!
//! CPU and RSS of every `--process name=pid` (and of this load generator) are sampled each
//! second. `--role producer` / `--role queries` run one side only (the docker deliverable).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use igloo_bench::{
    clickhouse, closed_loop, cpu_us_per_event, event_at, load, now_ns, on_schedule, open_loop, pct, plain_samples_sql,
    post_probe, probe_visible, proc_ticks, rss_mb, serve_trivial_if_asked, summary, tag, windows, Rng, Trivial, NS,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The profile with queries and probes, batched ingest, the loss check, then the ceilings.
    All,
    /// Only the profile's producer (then batched ingest).
    Producer,
    /// Only the query clients and the freshness probe, for `--profile-seconds`.
    Queries,
}

#[derive(Parser)]
struct Args {
    /// The igloo server, e.g. http://127.0.0.1:4000 (serving /save and /api).
    #[arg(long)]
    api: String,
    /// ClickHouse HTTP URL.
    #[arg(long)]
    clickhouse: String,
    /// The project's database.
    #[arg(long)]
    database: String,
    /// Kafka bootstrap servers, for the broker ceiling.
    #[arg(long)]
    bootstrap: String,
    #[arg(long, value_enum, default_value = "all")]
    role: Role,
    /// Length of the reference profile (at least 120 s: it holds a one-minute peak).
    #[arg(long, default_value_t = 180)]
    profile_seconds: u64,
    /// Seconds of batched ingest after the profile.
    #[arg(long, default_value_t = 20)]
    batched_seconds: u64,
    /// Seconds per ceiling measurement.
    #[arg(long, default_value_t = 8)]
    ceiling_seconds: u64,
    /// Keep-alive connections for single-event POSTs.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Events per batched request (and per batched broker message).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Connections for batched requests.
    #[arg(long, default_value_t = 8)]
    batch_connections: usize,
    /// History loaded into ClickHouse first (over the last 24 h), so queries read real data.
    #[arg(long, default_value_t = 20_000_000)]
    preload_rows: u64,
    /// Seconds of `/api` queries on the loaded history before any ingest (the idle p99).
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// At most this many seconds of waiting, after loading the history, for ClickHouse to
    /// finish merging it (no merge running for 5 s), so the idle phase has the machine
    /// otherwise idle.
    #[arg(long, default_value_t = 300)]
    settle_seconds: u64,
    /// Query clients, 1 request/s each.
    #[arg(long, default_value_t = 10)]
    query_clients: usize,
    /// Query clients fire in lockstep (all at the same instant each second: a burst of
    /// `--query-clients` requests) instead of spread evenly over the second.
    #[arg(long)]
    query_lockstep: bool,
    /// A process to report CPU and RSS for, `name=pid` (repeatable).
    #[arg(long = "process", value_parser = parse_process)]
    processes: Vec<(String, u32)>,
}

fn parse_process(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected name=pid")?;
    Ok((name.to_string(), pid.parse().map_err(|_| format!("bad pid in {s}"))?))
}

// ---------------------------------------------------------------------------------------------
// The rate profile

const BASE: f64 = 10_000.0;
const PEAK_MINUTE: f64 = 50_000.0;
const PEAK_SECOND: f64 = 200_000.0;

/// Offered events/s in second `s` of a `d`-second profile: 10k, a minute at 50k from d/3,
/// one-second peaks of 200k at 15 s and 15 s before the end.
fn offered(s: u64, d: u64) -> f64 {
    if s == 15 || s == d - 15 {
        PEAK_SECOND
    } else if (d / 3..d / 3 + 60).contains(&s) {
        PEAK_MINUTE
    } else {
        BASE
    }
}

/// When event `n` is due, in seconds from the start; `None` past the end.
struct Schedule {
    /// Events due before each second.
    before: Vec<f64>,
    d: u64,
}

impl Schedule {
    fn new(d: u64) -> Schedule {
        let mut before = vec![0.0];
        for s in 0..d {
            before.push(before[s as usize] + offered(s, d));
        }
        Schedule { before, d }
    }

    fn total(&self) -> u64 {
        self.before[self.d as usize] as u64
    }

    fn due(&self, n: u64) -> Option<f64> {
        let n = n as f64;
        let s = self.before.partition_point(|&b| b <= n).checked_sub(1)?;
        (s < self.d as usize).then(|| s as f64 + (n - self.before[s]) / offered(s as u64, self.d))
    }
}

// ---------------------------------------------------------------------------------------------
// Counters per second

/// A counter per second since `start`.
struct PerSecond {
    start: Instant,
    counts: Vec<AtomicU64>,
}

impl PerSecond {
    fn new(start: Instant, seconds: u64) -> PerSecond {
        PerSecond { start, counts: (0..seconds).map(|_| AtomicU64::new(0)).collect() }
    }

    fn add(&self, n: u64) {
        let s = self.start.elapsed().as_secs() as usize;
        if let Some(c) = self.counts.get(s) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn values(&self) -> Vec<u64> {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

/// The highest mean over any `window` consecutive seconds of `xs` (first `len` only).
fn best_window(xs: &[u64], window: usize) -> f64 {
    if xs.len() < window {
        return 0.0;
    }
    xs.windows(window).map(|w| w.iter().sum::<u64>() as f64 / window as f64).fold(0.0, f64::max)
}

// ---------------------------------------------------------------------------------------------
// Producer

#[derive(Default)]
struct Sent {
    acked: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    /// Largest delay behind schedule at send time, in ms.
    max_behind_ms: AtomicU64,
}

struct ProfileResult {
    offered: u64,
    acked_per_second: Vec<u64>,
    unsent: u64,
}

/// The profile as single-event POSTs on `connections` keep-alive connections, open loop: each
/// connection claims the next event and sends it when due (at once when behind). Stops
/// claiming 30 s after the profile's end; what is left then is `unsent`.
async fn run_profile(a: &Args, sent: Arc<Sent>) -> ProfileResult {
    let schedule = Arc::new(Schedule::new(a.profile_seconds));
    let client = reqwest::Client::builder().pool_max_idle_per_host(a.connections).build().unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let per_second = Arc::new(PerSecond::new(start, a.profile_seconds + 31));
    let deadline = Duration::from_secs(a.profile_seconds + 30);
    let url = format!("{}/save", a.api);
    let tasks: Vec<_> = (0..a.connections)
        .map(|_| {
            let (client, next, schedule, sent, per_second, url) =
                (client.clone(), next.clone(), schedule.clone(), sent.clone(), per_second.clone(), url.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(due) = schedule.due(n) else { return };
                    if start.elapsed() > deadline {
                        return;
                    }
                    on_schedule(start, Duration::from_secs_f64(due), &sent.max_behind_ms).await;
                    let body = event_at(now_ns(), n, &tag(n));
                    match client.post(&url).header("Content-Type", "application/json").body(body).send().await {
                        Ok(r) if r.status().is_success() => {
                            sent.acked.fetch_add(1, Ordering::Relaxed);
                            per_second.add(1);
                        }
                        Ok(_) => {
                            sent.rejected.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            sent.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let s = &sent;
    let done = s.acked.load(Ordering::Relaxed) + s.rejected.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed);
    ProfileResult {
        offered: schedule.total(),
        acked_per_second: per_second.values(),
        unsent: schedule.total().saturating_sub(done),
    }
}

/// Batched NDJSON as fast as it goes for `seconds`: events/s acknowledged.
async fn run_batched(a: &Args, sent: Arc<Sent>) -> f64 {
    let batch = a.batch as u64;
    let seq = Arc::new(AtomicU64::new(1 << 40));
    let body = Arc::new(move |_: u64| {
        let first = seq.fetch_add(batch, Ordering::Relaxed);
        let t = now_ns();
        (first..first + batch).map(|n| event_at(t + (n - first), n, &tag(n))).collect::<Vec<_>>().join("\n")
    });
    let url = format!("{}/save", a.api);
    let r = closed_loop(&url, "application/x-ndjson", a.batch_connections, a.batched_seconds, batch, body).await;
    sent.acked.fetch_add(r.ok_requests * batch, Ordering::Relaxed);
    sent.rejected.fetch_add(r.failed_requests * batch, Ordering::Relaxed);
    r.events_per_second
}

/// igloo's CPU per event with nothing but ingest running (no queries, no probe).
struct Alone {
    /// Single events open loop at the profile's base rate.
    single_cpu_us: f64,
    single_per_s: f64,
    /// Batched ingest as fast as it goes.
    batched_cpu_us: f64,
    batched_per_s: f64,
}

/// Single events at the base rate (open loop, `--ceiling-seconds` × 2), then batched ingest
/// (`--batched-seconds`), each after the writer has caught up; what is acknowledged counts
/// for the loss check.
async fn ingest_alone(a: &Args, since: u64, sent: Arc<Sent>, phase: &Mutex<&'static str>) -> anyhow::Result<Alone> {
    let igloo =
        a.processes.iter().find(|(name, _)| name == "igloo").map(|(_, pid)| *pid).context("--process igloo=PID")?;
    let ticks = || proc_ticks(igloo).unwrap_or_default();
    *phase.lock().unwrap() = "drain";
    drained_count(a, since).await?;
    *phase.lock().unwrap() = "single, ingest alone";
    eprintln!("single events, ingest alone: {} s at {BASE:.0}/s", 2 * a.ceiling_seconds);
    let single = Arc::new(|n: u64| event_at(now_ns(), n, &tag(n)));
    let url = format!("{}/save", a.api);
    let t0 = ticks();
    let s = open_loop(&url, "application/json", a.connections, 2 * a.ceiling_seconds, BASE, single).await;
    let single_cpu_us = cpu_us_per_event(t0, ticks(), s.ok_requests as f64);
    sent.acked.fetch_add(s.ok_requests, Ordering::Relaxed);
    sent.rejected.fetch_add(s.failed_requests, Ordering::Relaxed);
    *phase.lock().unwrap() = "drain";
    drained_count(a, since).await?;
    *phase.lock().unwrap() = "batched, ingest alone";
    eprintln!("batched, ingest alone: {} s", a.batched_seconds);
    let acked = sent.acked.load(Ordering::Relaxed);
    let t0 = ticks();
    let batched_per_s = run_batched(a, sent.clone()).await;
    let batched_cpu_us = cpu_us_per_event(t0, ticks(), (sent.acked.load(Ordering::Relaxed) - acked) as f64);
    Ok(Alone { single_cpu_us, single_per_s: s.events_per_second, batched_cpu_us, batched_per_s })
}

// ---------------------------------------------------------------------------------------------
// Queries and freshness

#[derive(Default)]
struct Observed {
    /// (phase, ms) of every answered `/api` request.
    queries: Mutex<Vec<(&'static str, f64)>>,
    query_failures: AtomicU64,
    /// (phase, ms) of every freshness probe.
    freshness: Mutex<Vec<(&'static str, f64)>>,
    probes_acked: AtomicU64,
    probe_failures: AtomicU64,
}

/// One query: asks for `(tag, start, end)` and says whether a good answer came.
type Ask = Arc<dyn Fn(String, u64, u64) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;
/// Records one query's outcome and its ms.
type Done = Arc<dyn Fn(bool, f64) + Send + Sync>;

/// `--query-clients` clients until `stop`, each asking once a second (open loop; spread over
/// the second unless `--query-lockstep`) for a random window of a top-100 tag. Each client's
/// windows come from its own fixed seed: every run of these clients asks the same windows in
/// the same order, whatever answers them.
fn query_clients(a: &Args, stop: Arc<AtomicBool>, ask: Ask, done: Done) -> Vec<tokio::task::JoinHandle<()>> {
    (0..a.query_clients)
        .map(|c| {
            let (ask, done, stop) = (ask.clone(), done.clone(), stop.clone());
            let offset = if a.query_lockstep { 0 } else { 1000 * c as u64 / a.query_clients as u64 };
            tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
                tokio::time::sleep(Duration::from_millis(offset)).await;
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut inflight = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let t1 = now_ns();
                    let (tag, start, end) = windows(&mut rng, 1, t1 - 86_400 * NS, t1).remove(0);
                    let (ask, done) = (ask.clone(), done.clone());
                    // Open loop: the next request goes out on time even if this one is slow.
                    inflight.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let ok = ask(tag, start, end).await;
                        done(ok, t.elapsed().as_secs_f64() * 1000.0);
                    }));
                }
                for t in inflight {
                    let _ = t.await;
                }
            })
        })
        .collect()
}

/// The query clients asking ClickHouse directly, for `seconds`: the same windows as one plain
/// `argMax` query over the window's rows ([`plain_samples_sql`]: not exact, but the least any
/// answer reads). Returns the ms of the good answers and the count of failures.
async fn clickhouse_alone(a: &Args, seconds: u64) -> (Vec<f64>, u64) {
    let answered = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let (client, url, database) = (igloo_bench::http_client(usize::MAX), a.clickhouse.clone(), a.database.clone());
    let ask: Ask = Arc::new(move |tag, start, end| {
        let (client, url, sql) = (client.clone(), url.clone(), plain_samples_sql(&database, &tag, start, end));
        Box::pin(async move { clickhouse(&client, &url, sql).await.is_ok() })
    });
    let (ok, ko) = (answered.clone(), failed.clone());
    let done: Done = Arc::new(move |good, ms| {
        if good {
            ok.lock().unwrap().push(ms);
        } else {
            ko.fetch_add(1, Ordering::Relaxed);
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let clients = query_clients(a, stop.clone(), ask, done);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let mut ms = answered.lock().unwrap().clone();
    ms.sort_by(f64::total_cmp);
    (ms, failed.load(Ordering::Relaxed))
}

/// The query clients (on igloo's `/api`) and the freshness probe until `stop`; `phase` names
/// what runs meanwhile.
fn start_observers(
    a: &Args,
    observed: Arc<Observed>,
    phase: Arc<Mutex<&'static str>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::new();
    let (http, api) = (client.clone(), a.api.clone());
    let ask: Ask = Arc::new(move |tag, start, end| {
        let (http, url) = (http.clone(), format!("{api}/api?tag={tag}&start={start}&end={end}"));
        Box::pin(async move {
            match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.text().await.ok().is_some_and(|b| b.contains("\"samples\"")),
                _ => false,
            }
        })
    });
    let (seen, on) = (observed.clone(), phase.clone());
    let done: Done = Arc::new(move |ok, ms| {
        if ok {
            let p = *on.lock().unwrap();
            seen.queries.lock().unwrap().push((p, ms));
        } else {
            seen.query_failures.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut tasks = query_clients(a, stop.clone(), ask, done);
    let (api, stop) = (a.api.clone(), stop.clone());
    tasks.push(tokio::spawn(async move {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let tag = format!("probe-{}-{i}", std::process::id());
            let p = *phase.lock().unwrap();
            // An acknowledged probe counts for the loss check whether or not it is seen.
            let seen = match post_probe(&client, &api, &tag, i).await {
                Ok(t) => {
                    observed.probes_acked.fetch_add(1, Ordering::Relaxed);
                    probe_visible(&client, &api, &tag, t, Instant::now()).await
                }
                Err(e) => Err(e),
            };
            match seen {
                Ok(ms) => observed.freshness.lock().unwrap().push((p, ms)),
                Err(e) => {
                    if observed.probe_failures.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("freshness probe failed: {e:#}");
                    }
                }
            }
            i += 1;
            if let Some(rest) = Duration::from_secs(1).checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }));
    tasks
}

// ---------------------------------------------------------------------------------------------
// CPU and RSS

/// One second: the phase, the machine's busy %, and (CPU % of a core, RSS MB) per process.
type Sample = (&'static str, f64, Vec<(f64, f64)>);

/// Per-process CPU (% of one core) and RSS, sampled each second.
struct Usage {
    names: Vec<(String, u32)>,
    samples: Mutex<Vec<Sample>>,
}

/// (busy, total) jiffies of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

impl Usage {
    fn start(names: Vec<(String, u32)>, phase: Arc<Mutex<&'static str>>, stop: Arc<AtomicBool>) -> Arc<Usage> {
        let usage = Arc::new(Usage { names, samples: Mutex::new(Vec::new()) });
        let u = usage.clone();
        tokio::spawn(async move {
            // Jiffies per second: 100 on Linux unless the kernel says otherwise.
            let hz = 100.0;
            let mut last: Vec<Option<u64>> = u.names.iter().map(|(_, p)| proc_ticks(*p)).collect();
            let mut last_machine = machine_ticks();
            let mut at = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let secs = at.elapsed().as_secs_f64();
                at = Instant::now();
                let now: Vec<Option<u64>> = u.names.iter().map(|(_, p)| proc_ticks(*p)).collect();
                let per: Vec<(f64, f64)> = u
                    .names
                    .iter()
                    .zip(now.iter().zip(&last))
                    .map(|((_, pid), (n, l))| {
                        let cpu = match (n, l) {
                            (Some(n), Some(l)) => (n - l) as f64 / hz / secs * 100.0,
                            _ => 0.0,
                        };
                        (cpu, rss_mb(*pid).unwrap_or(0.0))
                    })
                    .collect();
                let m = machine_ticks();
                let busy = (m.0 - last_machine.0) as f64 / (m.1 - last_machine.1).max(1) as f64 * 100.0;
                last_machine = m;
                last = now;
                let p = *phase.lock().unwrap();
                u.samples.lock().unwrap().push((p, busy, per));
            }
        });
        usage
    }

    /// Markdown rows: per process, mean and max CPU and max RSS during `phase`.
    fn table(&self, phase: &str) -> String {
        let samples = self.samples.lock().unwrap();
        let in_phase: Vec<_> = samples.iter().filter(|s| s.0 == phase).collect();
        if in_phase.is_empty() {
            return String::new();
        }
        let n = in_phase.len() as f64;
        let mut out = String::new();
        for (i, (name, pid)) in self.names.iter().enumerate() {
            let cpus: Vec<f64> = in_phase.iter().map(|s| s.2[i].0).collect();
            let rss = in_phase.iter().map(|s| s.2[i].1).fold(0.0, f64::max);
            out += &format!(
                "| {phase} | {name} (pid {pid}) | {:.0}% | {:.0}% | {rss:.0} MB |\n",
                cpus.iter().sum::<f64>() / n,
                cpus.iter().copied().fold(0.0, f64::max)
            );
        }
        let busy: Vec<f64> = in_phase.iter().map(|s| s.1).collect();
        out += &format!(
            "| {phase} | whole machine ({} cores) | {:.0}% | {:.0}% | |\n",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            busy.iter().sum::<f64>() / n,
            busy.iter().copied().fold(0.0, f64::max)
        );
        out
    }

    /// CPU seconds the process named `name` used during `phase` (samples are a second apart).
    fn cpu_seconds(&self, name: &str, phase: &str) -> f64 {
        let Some(i) = self.names.iter().position(|(n, _)| n == name) else { return f64::NAN };
        let samples = self.samples.lock().unwrap();
        samples.iter().filter(|s| s.0 == phase).map(|s| s.2[i].0 / 100.0).sum()
    }

    /// Highest RSS of the process named `name` over the whole run, in MB.
    fn max_rss(&self, name: &str) -> f64 {
        let Some(i) = self.names.iter().position(|(n, _)| n == name) else { return f64::NAN };
        self.samples.lock().unwrap().iter().map(|s| s.2[i].1).fold(0.0, f64::max)
    }

    /// Mean busy % of the machine during `phase`.
    fn busy(&self, phase: &str) -> f64 {
        let samples = self.samples.lock().unwrap();
        let xs: Vec<f64> = samples.iter().filter(|s| s.0 == phase).map(|s| s.1).collect();
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    }

    /// The process with the highest mean CPU during `phase`, and that mean.
    fn busiest(&self, phase: &str) -> Option<(String, f64)> {
        let samples = self.samples.lock().unwrap();
        let in_phase: Vec<_> = samples.iter().filter(|s| s.0 == phase).collect();
        let n = in_phase.len().max(1) as f64;
        self.names
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), in_phase.iter().map(|s| s.2[i].0).sum::<f64>() / n))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Waits until ClickHouse runs no merge for 5 s in a row, at most `max_seconds`; says how long
/// it waited and whether merges settled.
async fn settle_merges(client: &reqwest::Client, url: &str, max_seconds: u64) -> anyhow::Result<String> {
    let started = Instant::now();
    let mut quiet = 0;
    eprintln!("waiting for ClickHouse to merge the history (at most {max_seconds} s)");
    while started.elapsed() < Duration::from_secs(max_seconds) {
        let merges: u64 = clickhouse(client, url, "SELECT count() FROM system.merges".into()).await?.trim().parse()?;
        quiet = if merges == 0 { quiet + 1 } else { 0 };
        if quiet >= 5 {
            return Ok(format!("merges settled in {:.0} s", started.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(format!("merges still running after {max_seconds} s"))
}

// ---------------------------------------------------------------------------------------------
// Ceilings

struct Ceilings {
    http_single: f64,
    /// The trivial handler's CPU per single-event request: what HTTP alone costs.
    http_single_cpu_us: f64,
    /// The same, open loop at the profile's base rate ([`BASE`] requests/s).
    http_open_cpu_us: f64,
    http_batched: f64,
    broker_single: f64,
    broker_batched: f64,
    clickhouse_bare: f64,
    clickhouse_rollups: f64,
    /// JSONEachRow, then RowBinary.
    formats: [InsertFormat; 2],
}

/// Events per second the broker acknowledges (`acks=all`, idempotent, lz4, like igloo's
/// producer), `per_message` events in each message.
async fn broker_rate(bootstrap: &str, topic: &str, per_message: usize, seconds: u64) -> anyhow::Result<f64> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "1000000")
        .set("log_level", "3")
        .create()?;
    let payload: String =
        (0..per_message as u64).map(|n| event_at(now_ns(), n, &tag(n))).collect::<Vec<_>>().join("\n");
    // Up to 10,000 events in flight (at least 16 messages): librdkafka copies each payload.
    let max_inflight = (10_000 / per_message).max(16);
    let mut inflight = FuturesUnordered::new();
    let (mut acked, mut failed, mut i) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let limit = Duration::from_secs(seconds);
    while started.elapsed() < limit {
        while inflight.len() < max_inflight {
            let key = (i % 64).to_string();
            i += 1;
            match producer.send_result(FutureRecord::to(topic).key(&key).payload(payload.as_str())) {
                Ok(delivery) => inflight.push(delivery),
                Err(_) => break, // the local queue is full: wait for acknowledgements
            }
        }
        match inflight.next().await {
            Some(Ok(Ok(_))) => acked += 1,
            Some(_) => failed += 1,
            None => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    while inflight.next().await.is_some() {}
    if failed > 0 && acked == 0 {
        bail!("the broker acknowledged nothing ({failed} failed)");
    }
    Ok(acked as f64 * per_message as f64 / secs)
}

async fn create_topic(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("log_level", "3").create()?;
    let t = NewTopic::new(topic, 4, TopicReplication::Fixed(1));
    // Already there from an earlier run is fine.
    let _ = admin.create_topics([&t], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))).await?;
    Ok(())
}

/// Rows/s of back-to-back 100,000-row JSONEachRow inserts into `table` for `seconds`.
async fn clickhouse_rate(client: &reqwest::Client, url: &str, table: &str, seconds: u64) -> anyhow::Result<f64> {
    // Old times and their own tags: nothing the workload queries or counts.
    let rows = 100_000u64;
    let t0 = 1_500_000_000 * NS;
    let body: String =
        (0..rows).map(|n| event_at(t0 + n, n, &format!("ceiling-{}", n % 100))).collect::<Vec<_>>().join("\n");
    let started = Instant::now();
    let mut inserted = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let sql = format!("INSERT INTO {table} FORMAT JSONEachRow\n{body}");
        clickhouse(client, url, sql).await.with_context(|| format!("insert into {table}"))?;
        inserted += rows;
    }
    Ok(inserted as f64 / started.elapsed().as_secs_f64())
}

/// One insert format's figures, inserting into the table with its rollup views.
#[derive(Default)]
struct InsertFormat {
    rows: u64,
    seconds: f64,
    /// ClickHouse's CPU over those inserts, in ticks of 10 ms.
    clickhouse_ticks: u64,
    /// Floats read back unequal (bit for bit) to what was sent, of `floats_checked`.
    inexact: u64,
    floats_checked: u64,
}

impl InsertFormat {
    fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }
    fn clickhouse_cpu_us_per_row(&self) -> f64 {
        cpu_us_per_event(0, self.clickhouse_ticks, self.rows as f64)
    }
}

/// Reference rows for the insert-format comparison: even value slots full-precision doubles,
/// odd ones three decimals (`123.456`), as sensors send them.
fn format_rows(n: u64, t0: u64, tag: &str) -> Vec<(u64, String, [f64; 10])> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ t0);
    (0..n)
        .map(|i| {
            let values = std::array::from_fn(|j| {
                if j % 2 == 0 {
                    rng.unit() * 10f64.powi((rng.next() % 7) as i32 - 3)
                } else {
                    (rng.next() % 1_000_000) as f64 / 1000.0
                }
            });
            (t0 + i, tag.to_string(), values)
        })
        .collect()
}

fn json_each_row(rows: &[(u64, String, [f64; 10])]) -> Vec<u8> {
    let mut out = String::new();
    for (time, tag, values) in rows {
        let values: Vec<String> = values.iter().map(f64::to_string).collect();
        out += &format!("{{\"time\":{time},\"tag\":\"{tag}\",\"values\":[{}]}}\n", values.join(","));
    }
    out.into_bytes()
}

/// RowBinary of `(time Int64, tag String, values Array(Float64))`: little-endian numbers,
/// LEB128 lengths.
fn row_binary(rows: &[(u64, String, [f64; 10])]) -> Vec<u8> {
    fn leb128(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { byte } else { byte | 0x80 });
            if n == 0 {
                return;
            }
        }
    }
    let mut out = Vec::new();
    for (time, tag, values) in rows {
        out.extend_from_slice(&(*time as i64).to_le_bytes());
        leb128(&mut out, tag.len() as u64);
        out.extend_from_slice(tag.as_bytes());
        leb128(&mut out, values.len() as u64);
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// The two formats ClickHouse 18.16 can take igloo's rows in (issue 20): JSONEachRow and
/// RowBinary (what the table writer sends). Alternating 20,000-row inserts of the same rows into
/// `table` (with its rollup views) for `seconds` in all: rows/s and ClickHouse's CPU per row of
/// each. Then 10,000 rows in each format with a tag of their own, read back: how many floats
/// ClickHouse stored other than as sent.
async fn insert_formats(
    client: &reqwest::Client,
    url: &str,
    table: &str,
    clickhouse_pid: Option<u32>,
    seconds: u64,
) -> anyhow::Result<[InsertFormat; 2]> {
    const NAMES: [&str; 2] = ["JSONEachRow", "RowBinary"];
    let encode = |format: usize, rows: &[(u64, String, [f64; 10])]| match format {
        0 => json_each_row(rows),
        _ => row_binary(rows),
    };
    let insert = |format: usize, body: Vec<u8>| {
        let mut target = reqwest::Url::parse(url).expect("a ClickHouse URL");
        let sql = format!("INSERT INTO {table} (time, tag, values) FORMAT {}", NAMES[format]);
        target.query_pairs_mut().append_pair("query", &sql);
        let request = client.post(target).body(body);
        async move {
            let resp = request.send().await?;
            if !resp.status().is_success() {
                bail!("ClickHouse: {}", resp.text().await?);
            }
            anyhow::Ok(())
        }
    };
    // Old times and their own tags: nothing the workload queries or counts.
    let rows = format_rows(20_000, 1_400_000_000 * NS, "ceiling-format");
    let bodies = [encode(0, &rows), encode(1, &rows)];
    let mut out = [InsertFormat::default(), InsertFormat::default()];
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let format = round % 2;
        round += 1;
        let ticks = clickhouse_pid.and_then(proc_ticks);
        let t = Instant::now();
        insert(format, bodies[format].clone()).await.with_context(|| format!("{} insert", NAMES[format]))?;
        out[format].seconds += t.elapsed().as_secs_f64();
        out[format].rows += rows.len() as u64;
        if let (Some(before), Some(after)) = (ticks, clickhouse_pid.and_then(proc_ticks)) {
            out[format].clickhouse_ticks += after.saturating_sub(before);
        }
    }
    for (format, figures) in out.iter_mut().enumerate() {
        let tag = format!("igloo-format-{}-{}", NAMES[format], now_ns());
        let sent = format_rows(10_000, 1_300_000_000 * NS, &tag);
        insert(format, encode(format, &sent)).await?;
        let text = clickhouse(
            client,
            url,
            format!("SELECT time, values FROM {table} WHERE tag = '{tag}' ORDER BY time FORMAT JSONEachRow"),
        )
        .await?;
        for (line, (_, _, values)) in text.lines().zip(&sent) {
            let row: serde_json::Value = serde_json::from_str(line)?;
            for (got, want) in row["values"].as_array().context("values")?.iter().zip(values) {
                figures.floats_checked += 1;
                if got.as_f64().map(f64::to_bits) != Some(want.to_bits()) {
                    figures.inexact += 1;
                }
            }
        }
        if figures.floats_checked != 100_000 {
            bail!("{}: read back {} floats of 100000", NAMES[format], figures.floats_checked);
        }
    }
    Ok(out)
}

async fn ceilings(a: &Args) -> anyhow::Result<Ceilings> {
    // An HTTP server with a trivial handler, in a process of its own, driven exactly like igloo.
    let trivial = Trivial::start()?;
    let single = Arc::new(|n: u64| event_at(now_ns(), n, &tag(n)));
    let batch = a.batch as u64;
    let batched =
        Arc::new(move |n: u64| (n..n + batch).map(|i| event_at(now_ns(), i, &tag(i))).collect::<Vec<_>>().join("\n"));
    eprintln!("ceiling: HTTP, trivial handler");
    let t0 = proc_ticks(trivial.pid).unwrap_or_default();
    let http_single =
        closed_loop(&trivial.url, "application/json", a.connections, a.ceiling_seconds, 1, single.clone()).await;
    let http_single_cpu_us =
        cpu_us_per_event(t0, proc_ticks(trivial.pid).unwrap_or_default(), http_single.ok_requests as f64);
    // The same requests open loop at the profile's base rate: each finds the server idle, as
    // the profile's do, and pays its own wakeups.
    let t0 = proc_ticks(trivial.pid).unwrap_or_default();
    let http_open =
        open_loop(&trivial.url, "application/json", a.connections, a.ceiling_seconds, BASE, single.clone()).await;
    let http_open_cpu_us =
        cpu_us_per_event(t0, proc_ticks(trivial.pid).unwrap_or_default(), http_open.ok_requests as f64);
    let http_batched =
        closed_loop(&trivial.url, "application/x-ndjson", a.batch_connections, a.ceiling_seconds, batch, batched).await;
    drop(trivial);

    eprintln!("ceiling: broker produce");
    let topic = "_igloo_bench_ceiling";
    create_topic(&a.bootstrap, topic).await?;
    let broker_single = broker_rate(&a.bootstrap, topic, 1, a.ceiling_seconds).await?;
    let broker_batched = broker_rate(&a.bootstrap, topic, a.batch, a.ceiling_seconds).await?;

    eprintln!("ceiling: ClickHouse inserts");
    let client = igloo_bench::http_client(usize::MAX);
    let scratch = format!("{}._igloo_bench_scratch", a.database);
    clickhouse(&client, &a.clickhouse, format!("DROP TABLE IF EXISTS {scratch}")).await?;
    clickhouse(&client, &a.clickhouse, format!("CREATE TABLE {scratch} AS {}.Measurement", a.database)).await?;
    let clickhouse_bare = clickhouse_rate(&client, &a.clickhouse, &scratch, a.ceiling_seconds).await?;
    clickhouse(&client, &a.clickhouse, format!("DROP TABLE {scratch}")).await?;
    let table = format!("{}.Measurement", a.database);
    let clickhouse_rollups = clickhouse_rate(&client, &a.clickhouse, &table, a.ceiling_seconds).await?;
    eprintln!("ceiling: ClickHouse insert formats");
    let clickhouse_pid = a.processes.iter().find(|(name, _)| name == "clickhouse").map(|(_, pid)| *pid);
    let formats = insert_formats(&client, &a.clickhouse, &table, clickhouse_pid, 2 * a.ceiling_seconds).await?;
    Ok(Ceilings {
        http_single: http_single.events_per_second,
        http_single_cpu_us,
        http_open_cpu_us,
        http_batched: http_batched.events_per_second,
        broker_single,
        broker_batched,
        clickhouse_bare,
        clickhouse_rollups,
        formats,
    })
}

// ---------------------------------------------------------------------------------------------
// The run

/// Waits until the table writer has caught up (`igloo_consumer_lag` 0 for Measurement and the
/// row count stable for 2 s), then counts the rows written since `since` (ns).
async fn drained_count(a: &Args, since: u64) -> anyhow::Result<u64> {
    let client = igloo_bench::http_client(usize::MAX);
    let sql = format!("SELECT count() FROM {}.Measurement WHERE time >= {since}", a.database);
    let started = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    loop {
        let metrics = client.get(format!("{}/metrics", a.api)).send().await?.text().await?;
        let lag: u64 = metrics
            .lines()
            .find(|l| l.starts_with("igloo_consumer_lag{model=\"Measurement\"}"))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or(0);
        let n: u64 = clickhouse(&client, &a.clickhouse, sql.clone()).await?.trim().parse()?;
        if n != last.0 {
            last = (n, Instant::now());
        } else if lag == 0 && last.1.elapsed() > Duration::from_secs(2) {
            return Ok(n);
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the table writer did not catch up within 5 minutes (lag {lag}, {n} rows)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn phase_summary(xs: &[(&'static str, f64)], phase: &str) -> (String, Vec<f64>) {
    let mut v: Vec<f64> = xs.iter().filter(|x| x.0 == phase).map(|x| x.1).collect();
    v.sort_by(f64::total_cmp);
    (format!("{} ({} samples)", summary(&v), v.len()), v)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    serve_trivial_if_asked().await;
    let a = Args::parse();
    if a.profile_seconds < 120 {
        bail!("--profile-seconds must be at least 120: the profile holds a one-minute peak");
    }
    let client = igloo_bench::http_client(usize::MAX);
    let phase = Arc::new(Mutex::new("setup"));
    let stop_usage = Arc::new(AtomicBool::new(false));
    let mut processes = a.processes.clone();
    processes.push(("load generator (this)".into(), std::process::id()));
    let usage = Usage::start(processes, phase.clone(), stop_usage.clone());

    if a.role == Role::Queries {
        let observed = Arc::new(Observed::default());
        *phase.lock().unwrap() = "profile";
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = start_observers(&a, observed.clone(), phase.clone(), stop.clone());
        tokio::time::sleep(Duration::from_secs(a.profile_seconds)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        println!(
            "| `/api` | {} ({} failed) |",
            phase_summary(&observed.queries.lock().unwrap(), "profile").0,
            observed.query_failures.load(Ordering::Relaxed)
        );
        println!("| freshness | {} |", phase_summary(&observed.freshness.lock().unwrap(), "profile").0);
        return Ok(());
    }
    if a.role == Role::Producer {
        let sent = Arc::new(Sent::default());
        let p = run_profile(&a, sent.clone()).await;
        let b = run_batched(&a, sent.clone()).await;
        println!(
            "profile: offered {}, acknowledged {}, rejected {}, failed {}, not sent {}; best minute {:.0}/s, best second {}/s; batched {b:.0} events/s",
            p.offered,
            sent.acked.load(Ordering::Relaxed),
            sent.rejected.load(Ordering::Relaxed),
            sent.failed.load(Ordering::Relaxed),
            p.unsent,
            best_window(&p.acked_per_second, 60),
            p.acked_per_second.iter().max().unwrap_or(&0)
        );
        return Ok(());
    }

    // 0. History for the queries.
    let t1 = now_ns();
    load(&client, &a.clickhouse, &a.database, a.preload_rows, 24, t1 - 24 * 3600 * NS).await?;

    // 1. Queries (and the freshness probe) alone on the history: the idle `/api`, once
    // ClickHouse has merged the history it was just given (a machine otherwise idle).
    let settled = settle_merges(&client, &a.clickhouse, a.settle_seconds).await?;
    // The same windows asked of ClickHouse directly first: what the store alone costs.
    *phase.lock().unwrap() = "idle, ClickHouse alone";
    eprintln!("idle: {} s of the same windows straight to ClickHouse", a.idle_seconds);
    let (ch_alone, ch_alone_failed) = clickhouse_alone(&a, a.idle_seconds).await;
    let since = now_ns();
    let observed = Arc::new(Observed::default());
    let stop = Arc::new(AtomicBool::new(false));
    *phase.lock().unwrap() = "idle";
    let observers = start_observers(&a, observed.clone(), phase.clone(), stop.clone());
    eprintln!("idle: {} s of /api queries", a.idle_seconds);
    tokio::time::sleep(Duration::from_secs(a.idle_seconds)).await;

    // 2. The profile, single events, with queries and probes; 3. batched.
    *phase.lock().unwrap() = "profile";
    eprintln!("profile: {} s of single-event POSTs", a.profile_seconds);
    let sent = Arc::new(Sent::default());
    let profile = run_profile(&a, sent.clone()).await;
    let profile_acked = sent.acked.load(Ordering::Relaxed);
    *phase.lock().unwrap() = "batched";
    eprintln!("batched: {} s", a.batched_seconds);
    let batched = run_batched(&a, sent.clone()).await;
    let batched_acked = sent.acked.load(Ordering::Relaxed) - profile_acked;
    stop.store(true, Ordering::Relaxed);
    for t in observers {
        let _ = t.await;
    }
    // 3. Ingest alone: the same two shapes with no queries and no probe, each once the writer
    // has caught up, so igloo's CPU per event is its ingest's own (the observers' requests, a
    // probe polling `/api` every 5 ms among them, are not events but cost igloo CPU).
    let alone = ingest_alone(&a, since, sent.clone(), &phase).await?;
    *phase.lock().unwrap() = "drain";

    // 4. Loss check.
    eprintln!("draining");
    let rows = drained_count(&a, since).await?;
    let acked = sent.acked.load(Ordering::Relaxed) + observed.probes_acked.load(Ordering::Relaxed);
    let (lost, duplicated) = (acked.saturating_sub(rows), rows.saturating_sub(acked));

    // 5. Ceilings, each stage alone, last: pushing the broker to its limit must not disturb
    // the pipeline's measurements.
    *phase.lock().unwrap() = "ceilings";
    let c = ceilings(&a).await?;
    stop_usage.store(true, Ordering::Relaxed);

    // Report.
    let per_second = &profile.acked_per_second;
    let s = a.profile_seconds as usize;
    let (peak_minute_from, peak_second) = (s / 3, 15);
    let base_seconds: Vec<u64> = per_second[..s]
        .iter()
        .enumerate()
        .filter(|(i, _)| offered(*i as u64, a.profile_seconds) == BASE && *i > 2)
        .map(|(_, v)| *v)
        .collect();
    let base_achieved = base_seconds.iter().sum::<u64>() as f64 / base_seconds.len().max(1) as f64;
    let minute_achieved = per_second[peak_minute_from..peak_minute_from + 60].iter().sum::<u64>() as f64 / 60.0;
    let second_achieved = per_second[peak_second] as f64;
    let best_minute = best_window(per_second, 60);
    let queries = observed.queries.lock().unwrap().clone();
    let fresh = observed.freshness.lock().unwrap().clone();
    let (q_idle, qi) = phase_summary(&queries, "idle");
    let (q_profile, qp) = phase_summary(&queries, "profile");
    let (q_batched, _) = phase_summary(&queries, "batched");
    let (f_profile, fp) = phase_summary(&fresh, "profile");
    let (f_batched, fb) = phase_summary(&fresh, "batched");
    let single_ceiling = [
        ("HTTP (trivial handler)", c.http_single),
        ("broker (one event per message)", c.broker_single),
        ("ClickHouse (inserts with rollups)", c.clickhouse_rollups),
    ];
    let batched_ceiling = [
        ("HTTP (trivial handler)", c.http_batched),
        ("broker (batched messages)", c.broker_batched),
        ("ClickHouse (inserts with rollups)", c.clickhouse_rollups),
    ];
    let slowest = |xs: &[(&'static str, f64)]| xs.iter().copied().min_by(|x, y| x.1.total_cmp(&y.1)).unwrap();
    let (single_stage, single_limit) = slowest(&single_ceiling);
    let (batched_stage, batched_limit) = slowest(&batched_ceiling);

    println!("\n### Stage ceilings (each alone, same machine, same run)\n");
    println!("| stage | single-event shape | batched shape ({} events) |", a.batch);
    println!("|---|---|---|");
    println!(
        "| HTTP server, trivial handler (its own process) | {:.0} req/s ({} connections), {:.1} µs CPU per request; open loop at {BASE:.0}/s: {:.1} µs | {:.0} events/s ({} connections) |",
        c.http_single, a.connections, c.http_single_cpu_us, c.http_open_cpu_us, c.http_batched, a.batch_connections
    );
    println!("| broker produce, `acks=all` | {:.0} messages/s | {:.0} events/s |", c.broker_single, c.broker_batched);
    println!("| ClickHouse insert, bare table | {:.0} rows/s | same |", c.clickhouse_bare);
    println!("| ClickHouse insert, table + 3 rollup views | {:.0} rows/s | same |", c.clickhouse_rollups);
    for (name, f) in ["JSONEachRow", "RowBinary (igloo's writer)"].iter().zip(&c.formats) {
        println!(
            "| ClickHouse insert as {name}, 20,000-row inserts alternating with the other format | {:.0} rows/s, ClickHouse {:.2} µs CPU per row; {} of {} floats read back unequal to those sent | same |",
            f.rows_per_second(),
            f.clickhouse_cpu_us_per_row(),
            f.inexact,
            f.floats_checked
        );
    }

    println!("\n### Pipeline\n");
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| offered by the profile ({} s) | {} events: 10k/s, 60 s at 50k/s from {} s, 1 s at 200k/s at 15 s and {} s |",
        a.profile_seconds,
        profile.offered,
        peak_minute_from,
        s - 15
    );
    println!("| achieved at 10k/s offered | {base_achieved:.0} events/s |");
    println!(
        "| achieved in the 50k/s minute | {minute_achieved:.0} events/s (best 60 s of the run: {best_minute:.0}/s) |"
    );
    println!(
        "| achieved in the 200k/s second | {second_achieved:.0} events/s (best second: {}/s) |",
        per_second.iter().max().unwrap_or(&0)
    );
    println!(
        "| most behind schedule | {:.1} s; not sent when the profile ended + 30 s: {} |",
        sent.max_behind_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        profile.unsent
    );
    println!(
        "| single-event sustained, as a fraction of the slowest stage ({single_stage}, {single_limit:.0}/s) | {:.2} |",
        best_minute / single_limit
    );
    println!(
        "| batched, {} connections × {} events, {} s | {batched:.0} events/s |",
        a.batch_connections, a.batch, a.batched_seconds
    );
    println!(
        "| batched, as a fraction of the slowest stage ({batched_stage}, {batched_limit:.0}/s) | {:.2} |",
        batched / batched_limit
    );
    println!(
        "| ingest alone, no queries and no probe: single events open loop at {BASE:.0}/s, {} s; batched, {} s | {:.0} / {:.0} events/s; igloo {:.1} / {:.1} µs CPU per event |",
        2 * a.ceiling_seconds,
        a.batched_seconds,
        alone.single_per_s,
        alone.batched_per_s,
        alone.single_cpu_us,
        alone.batched_cpu_us
    );
    let shape = if a.query_lockstep { "in lockstep" } else { "spread over each second" };
    println!(
        "| `/api` before any ingest (idle, after {settled}), {} clients × 1 req/s, {shape} | {q_idle} |",
        a.query_clients
    );
    println!(
        "| the same windows asked of ClickHouse directly, as one plain `argMax` query each (idle, before the above) | {} ({ch_alone_failed} failed) |",
        summary(&ch_alone)
    );
    println!(
        "| `/api` during the profile, {} clients × 1 req/s | {q_profile} ({} failed overall) |",
        a.query_clients,
        observed.query_failures.load(Ordering::Relaxed)
    );
    println!("| `/api` during batched ingest | {q_batched} |");
    println!("| freshness (ack → visible in `/api`), profile | {f_profile} |");
    println!("| freshness, batched ingest | {f_batched} |");
    println!(
        "| acknowledged (profile {profile_acked}, batched {batched_acked}, ingest alone {}, probes {}) | {acked} |",
        sent.acked.load(Ordering::Relaxed) - profile_acked - batched_acked,
        observed.probes_acked.load(Ordering::Relaxed)
    );
    println!("| rows in ClickHouse after draining | {rows} |");
    println!(
        "| lost / duplicated / rejected | {lost} / {duplicated} / {} (and {} requests failed without an answer) |",
        sent.rejected.load(Ordering::Relaxed),
        sent.failed.load(Ordering::Relaxed)
    );

    println!("\n### CPU (% of one core) and RSS per process\n");
    println!("| phase | process | mean CPU | max CPU | max RSS |");
    println!("|---|---|---|---|---|");
    for p in ["idle", "profile", "batched", "single, ingest alone", "batched, ingest alone", "ceilings"] {
        print!("{}", usage.table(p));
    }

    let mut all_fresh: Vec<f64> = fp.iter().chain(&fb).copied().collect();
    all_fresh.sort_by(f64::total_cmp);
    let fresh_p99 = if all_fresh.is_empty() { f64::INFINITY } else { pct(&all_fresh, 99.0) };
    let p99 = |xs: &[f64]| if xs.is_empty() { f64::INFINITY } else { pct(xs, 99.0) };
    let (api_p99, api_p99_idle) = (p99(&qp), p99(&qi));
    let busy = usage.busy("profile");
    let cpu = match usage.busiest("profile") {
        Some((name, pct)) => {
            format!("the machine was {busy:.0}% busy; the busiest process was {name} at {pct:.0}% of a core")
        }
        None => String::new(),
    };
    // igloo's CPU per event: its CPU time in a phase over the events acknowledged in it (it
    // includes the table writer, which `igloo dev` runs in the same process).
    let cpu_single = usage.cpu_seconds("igloo", "profile") * 1e6 / profile_acked.max(1) as f64;
    let cpu_batched = usage.cpu_seconds("igloo", "batched") * 1e6 / batched_acked.max(1) as f64;
    let igloo_rss = usage.max_rss("igloo");
    let row = |target: &str, result: String, met: bool, limit: String| {
        println!("| {target} | {result} | {} | {} |", verdict(met), if met { String::new() } else { limit });
    };
    println!("\n### Targets (issue 20)\n");
    println!("| target | result | verdict | what limits it |");
    println!("|---|---|---|---|");
    row(
        "0 lost, 0 duplicated",
        format!("{lost} lost, {duplicated} duplicated"),
        lost == 0 && duplicated == 0,
        String::new(),
    );
    row(
        "single events: ≥ 10k/s sustained, 0 unsent after the 50k/s minute drained",
        format!("{base_achieved:.0} events/s at 10k/s offered; {} unsent", profile.unsent),
        base_achieved >= 0.99 * BASE && profile.unsent == 0,
        format!("slowest stage alone: {single_stage} at {single_limit:.0}/s; {cpu}"),
    );
    row(
        "igloo CPU per single event ≤ 25 µs",
        format!("{cpu_single:.1} µs (with the queries and the probe); ingest alone {:.1} µs", alone.single_cpu_us),
        cpu_single <= 25.0,
        format!(
            "HTTP alone (a trivial handler, same connections) costs {:.1} µs per request closed loop, {:.1} µs open loop at {BASE:.0}/s; {cpu}",
            c.http_single_cpu_us, c.http_open_cpu_us
        ),
    );
    row(
        "batched ≥ 0.6 × the broker's batched ceiling",
        format!("{batched:.0} events/s = {:.2} × {:.0}/s", batched / c.broker_batched, c.broker_batched),
        batched >= 0.6 * c.broker_batched,
        format!("batched phase: machine {:.0}% busy", usage.busy("batched")),
    );
    row(
        "igloo CPU per batched event ≤ 3 µs",
        format!("{cpu_batched:.1} µs (with the queries and the probe); ingest alone {:.1} µs", alone.batched_cpu_us),
        cpu_batched <= 3.0,
        String::new(),
    );
    row(
        "`/api` p99 during the profile ≤ 100 ms",
        format!("{api_p99:.1} ms"),
        api_p99 <= 100.0,
        format!("ClickHouse query time under load; {cpu}"),
    );
    let ch_alone_p99 = p99(&ch_alone);
    row(
        "`/api` p99 idle ≤ 20 ms",
        format!("{api_p99_idle:.1} ms"),
        api_p99_idle <= 20.0,
        format!(
            "ClickHouse alone, the same windows as one plain `argMax` query each (the least any answer reads): p99 {ch_alone_p99:.1} ms"
        ),
    );
    row("freshness p99 ≤ 1 s", format!("{fresh_p99:.0} ms"), fresh_p99 <= 1000.0, cpu.clone());
    row("igloo RSS ≤ 200 MB", format!("{igloo_rss:.0} MB"), igloo_rss <= 200.0, String::new());

    // The same figures as data (issue 20): $IGLOO_BENCH_OUT, default bench/out/reference.json.
    let out = std::env::var("IGLOO_BENCH_OUT").unwrap_or_else(|_| "bench/out/reference.json".into());
    let json = serde_json::json!({
        "single_event_per_s": base_achieved.round(),
        "single_event_best_minute_per_s": best_minute.round(),
        "single_event_unsent": profile.unsent,
        "broker_one_event_ceiling_per_s": c.broker_single.round(),
        "batched_per_s": batched.round(),
        "broker_batched_ceiling_per_s": c.broker_batched.round(),
        "igloo_cpu_us_per_event_single": (cpu_single * 10.0).round() / 10.0,
        "igloo_cpu_us_per_event_batched": (cpu_batched * 10.0).round() / 10.0,
        "igloo_cpu_us_per_event_single_ingest_alone": (alone.single_cpu_us * 10.0).round() / 10.0,
        "igloo_cpu_us_per_event_batched_ingest_alone": (alone.batched_cpu_us * 10.0).round() / 10.0,
        "http_trivial_cpu_us_per_request": (c.http_single_cpu_us * 10.0).round() / 10.0,
        "http_trivial_cpu_us_per_request_open_loop": (c.http_open_cpu_us * 10.0).round() / 10.0,
        "api_p99_ms_profile": (api_p99 * 10.0).round() / 10.0,
        "api_p99_ms_idle": (api_p99_idle * 10.0).round() / 10.0,
        "clickhouse_alone_p99_ms_idle": (ch_alone_p99 * 10.0).round() / 10.0,
        "clickhouse_cpu_us_per_row_jsoneachrow": (c.formats[0].clickhouse_cpu_us_per_row() * 100.0).round() / 100.0,
        "clickhouse_cpu_us_per_row_rowbinary": (c.formats[1].clickhouse_cpu_us_per_row() * 100.0).round() / 100.0,
        "inexact_floats_jsoneachrow": c.formats[0].inexact,
        "inexact_floats_rowbinary": c.formats[1].inexact,
        "freshness_p99_ms": fresh_p99.round(),
        "igloo_rss_mb": igloo_rss.round(),
        "lost": lost,
        "duplicated": duplicated,
    });
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&json)? + "\n")?;
    eprintln!("figures written to {out}");
    Ok(())
}
