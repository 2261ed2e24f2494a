//! `igloo-bench-query`: the reference query workload. Loads `--rows` reference events spread
//! over `--hours` straight into ClickHouse (through the rollup views), then, while ingest runs
//! at `--ingest-rate` events/s over HTTP, asks `GET /api?tag=&start=&end=` for the top-100 tags
//! at `--rate` requests/s over random windows of 10 min to 24 h, open loop. Prints latency
//! percentiles, and the same windows answered by a plain query on the raw table (the baseline),
//! and how long an acknowledged event takes to show in `/api`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use igloo_bench::{event_at, pct, tag, tag_name};

#[derive(Parser)]
struct Args {
    /// The igloo server, e.g. http://127.0.0.1:4000
    #[arg(long)]
    api: String,
    /// ClickHouse HTTP URL (loading and the baseline).
    #[arg(long)]
    clickhouse: String,
    /// The project's database.
    #[arg(long)]
    database: String,
    /// Rows to load before measuring (skipped if the table already has them).
    #[arg(long, default_value_t = 50_000_000)]
    rows: u64,
    /// Hours the loaded rows span, ending now.
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// Seconds of measurement per phase.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Queries per second.
    #[arg(long, default_value_t = 10)]
    rate: u64,
    /// Events per second ingested over HTTP while measuring.
    #[arg(long, default_value_t = 10_000)]
    ingest_rate: u64,
}

const NS: u64 = 1_000_000_000;

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn clickhouse(client: &reqwest::Client, url: &str, sql: String) -> anyhow::Result<String> {
    let resp = client.post(url).body(sql).send().await?;
    let ok = resp.status().is_success();
    let text = resp.text().await?;
    if !ok {
        bail!("ClickHouse: {text}");
    }
    Ok(text)
}

/// Loads the rows in 5M-row inserts, times evenly spread, tags geometric (the generator's).
async fn load(a: &Args, client: &reqwest::Client, t0: u64) -> anyhow::Result<()> {
    let table = format!("{}.Measurement", a.database);
    let have: u64 = clickhouse(client, &a.clickhouse, format!("SELECT count() FROM {table}")).await?.trim().parse()?;
    if have >= a.rows {
        println!("table already holds {have} rows; not loading");
        return Ok(());
    }
    let step = a.hours * 3600 * NS / a.rows;
    let chunk = 5_000_000u64;
    let started = Instant::now();
    let mut from = 0;
    while from < a.rows {
        let n = chunk.min(a.rows - from);
        let sql = format!(
            "INSERT INTO {table} (time, tag, values) SELECT toInt64({t0} + (number + {from}) * {step}) AS t, \
             concat('tag-', substring(toString(100000 + least(10000, 1 + toUInt32(floor(log(1 - intHash64(number + {from}) / 18446744073709551616.) / log(0.99))))), 2)) AS g, \
             arrayMap(i -> ((number + {from}) % 1000) * 0.001 + i, range(10)) AS v FROM numbers({n})"
        );
        clickhouse(client, &a.clickhouse, sql).await.context("loading rows")?;
        from += n;
        eprintln!("loaded {from}/{} rows ({:.0} rows/s)", a.rows, from as f64 / started.elapsed().as_secs_f64());
    }
    println!("loaded {} rows in {:.0} s", a.rows, started.elapsed().as_secs_f64());
    Ok(())
}

/// Posts `rate` events/s (100 per request) at the live edge until `stop`.
async fn ingest(api: String, rate: u64, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let client = reqwest::Client::new();
    let per_request = 100u64;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * per_request / rate.max(1)));
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = now_ns();
        let body: Vec<String> = (0..per_request).map(|i| event_at(now + i, seq + i, &tag(seq + i))).collect();
        seq += per_request;
        let (client, url, sent) = (client.clone(), format!("{api}/save"), sent.clone());
        tokio::spawn(async move {
            let r = client.post(url).header("Content-Type", "application/x-ndjson").body(body.join("\n")).send().await;
            if matches!(r, Ok(resp) if resp.status().is_success()) {
                sent.fetch_add(per_request, Ordering::Relaxed);
            }
        });
    }
}

/// A top-100 tag and a window of 10 min to 24 h (log-uniform) inside the loaded span.
fn windows(n: usize, t0: u64, t1: u64) -> Vec<(String, u64, u64)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            let (lo, hi) = ((600 * NS) as f64, (86_400 * NS) as f64);
            let len = ((lo.ln() + rng.unit() * (hi.ln() - lo.ln())).exp() as u64).min(t1 - t0);
            let end = t0 + len + (rng.unit() * (t1 - t0 - len) as f64) as u64;
            (tag_name(1 + (rng.next() % 100) as u32), end - len, end)
        })
        .collect()
}

/// Fires one request per window at `rate`/s without waiting for answers; latencies in ms.
async fn open_loop<F, Fut>(rate: u64, windows: &[(String, u64, u64)], f: F) -> (Vec<f64>, u64)
where
    F: Fn(String, u64, u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = Vec::new();
    for (tag, start, end) in windows {
        tick.tick().await;
        let fut = f(tag.clone(), *start, *end);
        let (latencies, failed) = (latencies.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            match fut.await {
                Ok(()) => latencies.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0),
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("first failure: {e:#}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut xs = latencies.lock().unwrap().clone();
    xs.sort_by(f64::total_cmp);
    (xs, failed.load(Ordering::Relaxed))
}

fn summary(xs: &[f64]) -> String {
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

/// Acknowledged event → visible as the last sample of `/api`, in ms.
async fn freshness(api: &str, probes: usize) -> anyhow::Result<Vec<f64>> {
    let client = reqwest::Client::new();
    let mut lags = Vec::new();
    for i in 0..probes {
        let tag = format!("probe-{}-{i}", std::process::id() % 1000);
        let t = now_ns();
        let resp = client.post(format!("{api}/save")).body(event_at(t, i as u64, &tag)).send().await?;
        if !resp.status().is_success() {
            bail!("probe rejected: {}", resp.text().await?);
        }
        let acked = Instant::now();
        let url = format!("{api}/api?tag={tag}&start={}&end={}", t - NS, t + 1);
        loop {
            let r = client.get(&url).send().await?;
            if r.status().is_success() {
                let body: serde_json::Value = serde_json::from_str(&r.text().await?)?;
                if !body["samples"][999]["values"].is_null() {
                    break;
                }
            }
            if acked.elapsed() > Duration::from_secs(30) {
                bail!("probe {tag} not in /api after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lags.push(acked.elapsed().as_secs_f64() * 1000.0);
    }
    lags.sort_by(f64::total_cmp);
    Ok(lags)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let client = reqwest::Client::new();
    let t1 = now_ns();
    let t0 = t1 - a.hours * 3600 * NS;
    load(&a, &client, t0).await?;
    let (t0, t1): (u64, u64) = {
        let sql = format!("SELECT min(time), max(time) FROM {}.Measurement WHERE tag = 'tag-00001'", a.database);
        let text = clickhouse(&client, &a.clickhouse, sql).await?;
        let mut it = text.split_whitespace().map(|x| x.parse::<u64>());
        (it.next().context("min")??, it.next().context("max")??)
    };

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let ingest_task = tokio::spawn(ingest(a.api.clone(), a.ingest_rate, stop.clone(), sent.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ws = windows((a.rate * a.seconds) as usize, t0, t1);

    let started = Instant::now();
    let sent_before = sent.load(Ordering::Relaxed);
    let api = a.api.clone();
    let http = client.clone();
    let (igloo, igloo_failed) = open_loop(a.rate, &ws, |tag, start, end| {
        let (http, url) = (http.clone(), format!("{api}/api?tag={tag}&start={start}&end={end}"));
        async move {
            let resp = http.get(&url).send().await?;
            if !resp.status().is_success() {
                bail!("{url}: {}", resp.text().await?);
            }
            let body: serde_json::Value = serde_json::from_str(&resp.text().await?)?;
            let n = body["samples"].as_array().map_or(0, Vec::len);
            if n != 1000 {
                bail!("{url}: {n} samples");
            }
            Ok(())
        }
    })
    .await;
    let ingested = (sent.load(Ordering::Relaxed) - sent_before) as f64 / started.elapsed().as_secs_f64();

    let (ch, db) = (a.clickhouse.clone(), a.database.clone());
    let (raw, raw_failed) = open_loop(a.rate, &ws, |tag, start, end| {
        let period = (end - start) / 1000;
        let sql = format!(
            "SELECT intDiv(time - {start} - 1, {period}) AS p, argMax(values, time) AS v FROM {db}.Measurement \
             WHERE tag = '{tag}' AND time > {start} AND time <= {end} GROUP BY p FORMAT JSONEachRow"
        );
        let (http, ch) = (http.clone(), ch.clone());
        async move { clickhouse(&http, &ch, sql).await.map(|_| ()) }
    })
    .await;
    let fresh = freshness(&a.api, 20).await.context("freshness probe")?;
    stop.store(true, Ordering::Relaxed);
    let _ = ingest_task.await;

    let (ip99, rp99) = (pct(&igloo, 99.0), pct(&raw, 99.0));
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| `/api`, top-100 tags, windows 10 min–24 h, {} req/s open loop, {} requests | {} ({igloo_failed} failed) |",
        a.rate,
        ws.len(),
        summary(&igloo)
    );
    println!(
        "| baseline: same windows as one `argMax` query on the raw table | {} ({raw_failed} failed) |",
        summary(&raw)
    );
    println!("| ratio of p99s, igloo / raw baseline | {:.2} |", ip99 / rp99);
    println!("| ingest during the `/api` phase | {ingested:.0} events/s acknowledged |");
    println!("| acknowledged → visible in `/api` (20 probes) | {} |", summary(&fresh));
    Ok(())
}
