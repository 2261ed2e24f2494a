//! `igloo-bench-query`: the reference query workload. Loads `--rows` reference events spread
//! over `--hours` straight into ClickHouse (through the rollup views), then, while ingest runs
//! at `--ingest-rate` events/s over HTTP, asks `GET /api?tag=&start=&end=` for the top-100 tags
//! at `--rate` requests/s over random windows of 10 min to 24 h, open loop. Prints latency
//! percentiles, and the same windows answered by a plain query on the raw table (the baseline),
//! and how long an acknowledged event takes to show in `/api`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use igloo_bench::{
    clickhouse, event_at, freshness_probe, load, now_ns, pct, plain_samples_sql, summary, tag, windows, Rng, NS,
};

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let client = igloo_bench::http_client(usize::MAX);
    let t1 = now_ns();
    let t0 = t1 - a.hours * 3600 * NS;
    load(&client, &a.clickhouse, &a.database, a.rows, a.hours, t0).await?;
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
    let ws = windows(&mut Rng(0x9E37_79B9_7F4A_7C15), (a.rate * a.seconds) as usize, t0, t1);

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
        let sql = plain_samples_sql(&db, &tag, start, end);
        let (http, ch) = (http.clone(), ch.clone());
        async move { clickhouse(&http, &ch, sql).await.map(|_| ()) }
    })
    .await;
    let mut fresh = Vec::new();
    for i in 0..20 {
        let tag = format!("probe-{}-{i}", std::process::id() % 1000);
        fresh.push(freshness_probe(&client, &a.api, &tag, i).await.context("freshness probe")?);
    }
    fresh.sort_by(f64::total_cmp);
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
