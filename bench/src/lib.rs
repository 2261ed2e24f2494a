//! The reference workload, shared by igloo's benchmarks: events of 10,000 tags with geometric
//! popularity, percentile helpers, loading history into ClickHouse, query windows and the
//! freshness probe.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

/// One reference event: `time` in ns, `tag`, ten values.
pub fn event(seq: u64, tag: &str) -> String {
    event_at(1_700_000_000_000_000_000u64 + seq, seq, tag)
}

pub fn event_at(time_ns: u64, seq: u64, tag: &str) -> String {
    let base = seq as f64 * 0.001;
    let values: Vec<String> = (0..10).map(|i| format!("{:.3}", base + i as f64)).collect();
    format!("{{\"time\":{time_ns},\"tag\":\"{tag}\",\"values\":[{}]}}", values.join(","))
}

/// Geometric popularity over 10,000 tags: tag 1 gets 1%, tag 2 1% of the rest, …
pub fn tag(seq: u64) -> String {
    let mut x = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    let mut t = 1;
    while t < 10_000 && x >= 0.01 {
        x = (x - 0.01) / 0.99;
        t += 1;
    }
    tag_name(t)
}

pub fn tag_name(t: u32) -> String {
    format!("tag-{t:05}")
}

/// Resident memory of a process, in MB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time (user + system) a process has used, in jiffies (1/100 s on Linux).
pub fn proc_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU µs per event from a process's [`proc_ticks`] before and after `events` events (a tick
/// is 10 ms).
pub fn cpu_us_per_event(before: u64, after: u64, events: f64) -> f64 {
    after.saturating_sub(before) as f64 * 10_000.0 / events.max(1.0)
}

/// The baseline of the ingest benchmarks: an HTTP server whose handler only answers
/// `{"accepted":1}` to `POST /ingest`, on the same stack as igloo (axum, hyper, tokio with two
/// workers), in a process of its own so its CPU per request can be measured beside igloo's:
/// what HTTP alone costs on this machine. Stopped when dropped.
pub struct Trivial {
    pub url: String,
    pub pid: u32,
    child: std::process::Child,
}

const TRIVIAL_ENV: &str = "IGLOO_BENCH_SERVE_TRIVIAL";

impl Trivial {
    /// Starts this executable again as the trivial server (see [`serve_trivial_if_asked`]).
    pub fn start() -> anyhow::Result<Trivial> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .env(TRIVIAL_ENV, "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("start the trivial HTTP server")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("its stdout")?).read_line(&mut line)?;
        let port: u16 = line.trim().parse().with_context(|| format!("the trivial server said {line:?}"))?;
        Ok(Trivial { url: format!("http://127.0.0.1:{port}/ingest"), pid: child.id(), child })
    }
}

impl Drop for Trivial {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Called first by every benchmark binary: in the process [`Trivial::start`] made, serves the
/// trivial handler on a free port (printed on stdout) until killed; elsewhere returns at once.
pub async fn serve_trivial_if_asked() {
    if std::env::var_os(TRIVIAL_ENV).is_none() {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
    println!("{}", listener.local_addr().expect("its address").port());
    let app =
        axum::Router::new().route("/ingest", axum::routing::post(|_b: axum::body::Bytes| async { "{\"accepted\":1}" }));
    axum::serve(listener, app).await.expect("serve");
    std::process::exit(0);
}

/// The `p`th percentile of sorted values.
pub fn pct(xs: &[f64], p: f64) -> f64 {
    xs[((xs.len() - 1) as f64 * p / 100.0).round() as usize]
}

pub const NS: u64 = 1_000_000_000;

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// xorshift64*: deterministic choices (tags, windows) without a dependency.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An HTTP client keeping at most `idle` connections per host, none for longer than igloo's own
/// ClickHouse client keeps one (`POOL_IDLE`, 800 ms): ClickHouse closes an idle keep-alive
/// connection after `keep_alive_timeout` (1 s under `igloo dev`, 3 s by default), and a
/// request sent on one it has just closed fails.
pub fn http_client(idle: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(idle)
        .pool_idle_timeout(igloo_server::clickhouse::POOL_IDLE)
        .build()
        .expect("an HTTP client")
}

/// Runs SQL over ClickHouse's HTTP interface; the body, or the server's error.
pub async fn clickhouse(client: &reqwest::Client, url: &str, sql: String) -> anyhow::Result<String> {
    let resp = client.post(url).body(sql).send().await?;
    let ok = resp.status().is_success();
    let text = resp.text().await?;
    if !ok {
        bail!("ClickHouse: {text}");
    }
    Ok(text)
}

/// The samples of `(start, end]` as one would write them by hand: one plain `argMax` query
/// over the window's rows of `<database>.Measurement`, 1000 periods. Not exact (no value
/// carried from before the window, period edges rounded), but the least any answer reads: the
/// baseline `/api` is compared with.
pub fn plain_samples_sql(database: &str, tag: &str, start: u64, end: u64) -> String {
    let period = (end - start) / 1000;
    format!(
        "SELECT intDiv(time - {start} - 1, {period}) AS p, argMax(values, time) AS v FROM {database}.Measurement \
         WHERE tag = '{tag}' AND time > {start} AND time <= {end} GROUP BY p FORMAT JSONEachRow"
    )
}

/// Loads `rows` reference events spread evenly over `hours` from `t0` (ns) straight into
/// `<database>.Measurement` (through its rollup views), in 5M-row inserts; tags geometric like
/// [`tag`]. Skipped when the table already holds that many rows.
pub async fn load(
    client: &reqwest::Client,
    url: &str,
    database: &str,
    rows: u64,
    hours: u64,
    t0: u64,
) -> anyhow::Result<()> {
    let table = format!("{database}.Measurement");
    let have: u64 = clickhouse(client, url, format!("SELECT count() FROM {table}")).await?.trim().parse()?;
    if have >= rows {
        println!("table already holds {have} rows; not loading");
        return Ok(());
    }
    let step = hours * 3600 * NS / rows;
    let chunk = 5_000_000u64;
    let started = Instant::now();
    let mut from = 0;
    while from < rows {
        let n = chunk.min(rows - from);
        // `_igloo_partition` above every topic partition (no writer touches those rows), and
        // spread, so that a cluster's `Distributed` table spreads them over its shards.
        let sql = format!(
            "INSERT INTO {table} (time, tag, values, _igloo_partition) SELECT toInt64({t0} + (number + {from}) * {step}) AS t, \
             concat('tag-', substring(toString(100000 + least(10000, 1 + toUInt32(floor(log(1 - intHash64(number + {from}) / 18446744073709551616.) / log(0.99))))), 2)) AS g, \
             arrayMap(i -> ((number + {from}) % 1000) * 0.001 + i, range(10)) AS v, toUInt32(4294967295 - number % 16) AS p FROM numbers({n})"
        );
        clickhouse(client, url, sql).await.context("loading rows")?;
        from += n;
        eprintln!("loaded {from}/{rows} rows ({:.0} rows/s)", from as f64 / started.elapsed().as_secs_f64());
    }
    println!("loaded {rows} rows in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `n` (top-100 tag, start, end): windows of 10 min to 24 h (log-uniform) inside `[t0, t1]`.
pub fn windows(rng: &mut Rng, n: usize, t0: u64, t1: u64) -> Vec<(String, u64, u64)> {
    (0..n)
        .map(|_| {
            let (lo, hi) = ((600 * NS) as f64, (86_400 * NS) as f64);
            let len = ((lo.ln() + rng.unit() * (hi.ln() - lo.ln())).exp() as u64).min(t1 - t0);
            let end = t0 + len + (rng.unit() * (t1 - t0 - len) as f64) as u64;
            (tag_name(1 + (rng.next() % 100) as u32), end - len, end)
        })
        .collect()
}

/// `p50 …, p90 …, p99 …, max …` of sorted milliseconds.
pub fn summary(xs: &[f64]) -> String {
    if xs.is_empty() {
        return "no answers".into();
    }
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(xs, 50.0),
        pct(xs, 90.0),
        pct(xs, 99.0),
        xs[xs.len() - 1]
    )
}

/// Posts one event of a fresh series `tag` to `<api>/save` and returns the ms from its
/// acknowledgement until `<api>/api` returns it as the last sample.
pub async fn freshness_probe(client: &reqwest::Client, api: &str, tag: &str, seq: u64) -> anyhow::Result<f64> {
    let t = post_probe(client, api, tag, seq).await?;
    probe_visible(client, api, tag, t, Instant::now()).await
}

/// Posts one event of series `tag` at the current time; Ok(its time) once acknowledged.
pub async fn post_probe(client: &reqwest::Client, api: &str, tag: &str, seq: u64) -> anyhow::Result<u64> {
    let t = now_ns();
    let resp = client.post(format!("{api}/save")).body(event_at(t, seq, tag)).send().await?;
    if !resp.status().is_success() {
        bail!("probe rejected: {}", resp.text().await?);
    }
    Ok(t)
}

/// Ms from `acked` until `<api>/api` returns the probe event at `t` as the last sample of `tag`.
pub async fn probe_visible(
    client: &reqwest::Client,
    api: &str,
    tag: &str,
    t: u64,
    acked: Instant,
) -> anyhow::Result<f64> {
    let url = format!("{api}/api?tag={tag}&start={}&end={}", t - NS, t + 1);
    loop {
        let r = client.get(&url).send().await?;
        if r.status().is_success() {
            let body: serde_json::Value = serde_json::from_str(&r.text().await?)?;
            if !body["samples"][999]["values"].is_null() {
                return Ok(acked.elapsed().as_secs_f64() * 1000.0);
            }
        }
        if acked.elapsed() > Duration::from_secs(30) {
            bail!("probe {tag} not in /api after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a load achieved.
pub struct LoadResult {
    pub requests_per_second: f64,
    pub events_per_second: f64,
    pub ok_requests: u64,
    pub failed_requests: u64,
    /// Open loop only: how late the latest request went out against its schedule, in ms.
    pub max_behind_ms: u64,
}

/// `connections` tasks each POSTing back to back for `seconds` what `body` makes of the
/// request's first sequence number (`per_request` events a request) over keep-alive.
pub async fn closed_loop(
    url: &str,
    content_type: &'static str,
    connections: usize,
    seconds: u64,
    per_request: u64,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> LoadResult {
    drive(url, content_type, connections, seconds, per_request, None, body).await
}

/// The same requests open loop: request `i` is due `i / rate` seconds after the start, sent by
/// whichever of the `connections` claims it (at once when behind), for `seconds`. Requests
/// arrive at the rate whatever the answers' latency, as the reference profile sends them.
pub async fn open_loop(
    url: &str,
    content_type: &'static str,
    connections: usize,
    seconds: u64,
    rate: f64,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> LoadResult {
    drive(url, content_type, connections, seconds, 1, Some(rate), body).await
}

/// Waits until `due` (since `started`), or, when that is past, records how many ms behind
/// schedule the request goes in `behind` (the most so far): the open loop's clock.
pub async fn on_schedule(started: Instant, due: Duration, behind: &AtomicU64) {
    let now = started.elapsed();
    if due > now {
        tokio::time::sleep(due - now).await;
    } else {
        behind.fetch_max((now - due).as_millis() as u64, Ordering::Relaxed);
    }
}

async fn drive(
    url: &str,
    content_type: &'static str,
    connections: usize,
    seconds: u64,
    per_request: u64,
    rate: Option<f64>,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> LoadResult {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    // IGLOO_BENCH_IDEMPOTENCY_KEYS=1: every request with an `Idempotency-Key` of its own, as the
    // SDKs send them.
    let keyed = std::env::var("IGLOO_BENCH_IDEMPOTENCY_KEYS").is_ok_and(|v| v == "1");
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let behind = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, ok, failed, behind, stop, seq, body, url) = (
                client.clone(),
                ok.clone(),
                failed.clone(),
                behind.clone(),
                stop.clone(),
                seq.clone(),
                body.clone(),
                url.to_string(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = seq.fetch_add(per_request, Ordering::Relaxed);
                    if let Some(rate) = rate {
                        let due = Duration::from_secs_f64(n as f64 / rate);
                        if due >= Duration::from_secs(seconds) {
                            return;
                        }
                        on_schedule(started, due, &behind).await;
                    }
                    let mut req = client.post(&url).header("Content-Type", content_type);
                    if keyed {
                        req = req.header("Idempotency-Key", format!("bench-{}-{per_request}-{n}", std::process::id()));
                    }
                    let r = req.body(body(n)).send().await;
                    match r {
                        Ok(resp) if resp.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let ok_requests = ok.load(Ordering::Relaxed);
    let requests_per_second = ok_requests as f64 / secs;
    LoadResult {
        requests_per_second,
        events_per_second: requests_per_second * per_request as f64,
        ok_requests,
        failed_requests: failed.load(Ordering::Relaxed),
        max_behind_ms: behind.load(Ordering::Relaxed),
    }
}
