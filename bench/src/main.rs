//! `igloo-bench ingest`: drives a running igloo ingest API over HTTP on this machine and prints
//! single-event POST throughput (keep-alive), batched NDJSON throughput, ingest → queryable lag
//! (p50/p99: a probe event's acknowledgement until ClickHouse returns it) and the server's RSS.
//! The baseline, in the same run: the same load against a trivial HTTP handler in a process of
//! its own ([`igloo_bench::Trivial`]), with its CPU per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use igloo_bench::{
    closed_loop, cpu_us_per_event, event, open_loop, pct, proc_ticks, rss_mb, serve_trivial_if_asked, tag, Trivial,
};

#[derive(Parser)]
struct Args {
    /// The ingest endpoint, e.g. http://127.0.0.1:4000/ingest/Measurement
    #[arg(long)]
    url: String,
    /// ClickHouse HTTP URL, for the lag probe.
    #[arg(long)]
    clickhouse: String,
    /// The model's table, e.g. mydb.Measurement
    #[arg(long)]
    table: String,
    /// Process whose RSS and CPU per event are reported (the igloo server).
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds per throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per batched request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Send the single events open loop at this many per second (as the reference profile
    /// sends them: on schedule whatever the answers' latency), to igloo and to the trivial
    /// handler alike; by default they go closed loop, each connection back to back.
    #[arg(long)]
    rate: Option<f64>,
}

async fn lag_probe(url: &str, clickhouse: &str, table: &str, probes: usize) -> anyhow::Result<Vec<f64>> {
    let client = igloo_bench::http_client(usize::MAX);
    let mut lags = Vec::new();
    for i in 0..probes {
        let tag = format!("probe-{}-{i}", std::process::id());
        let resp =
            client.post(url).header("Content-Type", "application/json").body(event(i as u64, &tag)).send().await?;
        if !resp.status().is_success() {
            bail!("probe rejected: {}", resp.text().await?);
        }
        let acked = Instant::now();
        let sql = format!("SELECT count() FROM {table} WHERE tag = '{tag}'");
        loop {
            let n = client.post(clickhouse).body(sql.clone()).send().await?.text().await?;
            if n.trim() == "1" {
                break;
            }
            if acked.elapsed() > Duration::from_secs(30) {
                bail!("probe {tag} not visible after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lags.push(acked.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lags.sort_by(f64::total_cmp);
    Ok(lags)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    serve_trivial_if_asked().await;
    let a = Args::parse();
    // Baseline: a trivial handler on this machine, in a process of its own, driven the same way.
    let trivial = Trivial::start()?;

    let single: Arc<dyn Fn(u64) -> String + Send + Sync> = Arc::new(|n| event(n, &tag(n)));
    let batch_size = a.batch as u64;
    let batched: Arc<dyn Fn(u64) -> String + Send + Sync> =
        Arc::new(move |n| (n..n + batch_size).map(|i| event(i, &tag(i))).collect::<Vec<_>>().join("\n"));
    let batch_conns = 4.min(a.connections);

    // CPU per event in a phase: jiffies (10 ms) used over the events acknowledged.
    let cpu_us = |before: Option<u64>, after: Option<u64>, events_per_s: f64| match (before, after) {
        (Some(b), Some(e)) if events_per_s > 0.0 => Some(cpu_us_per_event(b, e, events_per_s * a.seconds as f64)),
        _ => None,
    };
    let base_ticks = || proc_ticks(trivial.pid);
    let t0 = base_ticks();
    let single_load = |url: String, body: Arc<dyn Fn(u64) -> String + Send + Sync>| async move {
        match a.rate {
            Some(rate) => open_loop(&url, "application/json", a.connections, a.seconds, rate, body).await,
            None => closed_loop(&url, "application/json", a.connections, a.seconds, 1, body).await,
        }
    };
    let base = single_load(trivial.url.clone(), single.clone()).await;
    let (base_single, base_behind) = (base.requests_per_second, base.max_behind_ms);
    let base_single_cpu = cpu_us(t0, base_ticks(), base_single);
    let t0 = base_ticks();
    let base_batch =
        closed_loop(&trivial.url, "application/x-ndjson", batch_conns, a.seconds, batch_size, batched.clone())
            .await
            .requests_per_second;
    let base_batch_cpu = cpu_us(t0, base_ticks(), base_batch * batch_size as f64);
    drop(trivial);
    let ticks = || a.pid.and_then(proc_ticks);
    let t0 = ticks();
    let s = single_load(a.url.clone(), single).await;
    let (s_req, s_ev, s_fail) = (s.requests_per_second, s.events_per_second, s.failed_requests);
    let s_cpu = cpu_us(t0, ticks(), s_ev);
    let rss_after_single = a.pid.and_then(rss_mb);
    let t1 = ticks();
    let b = closed_loop(&a.url, "application/x-ndjson", batch_conns, a.seconds, batch_size, batched).await;
    let (b_ev, b_fail) = (b.events_per_second, b.failed_requests);
    let b_cpu = cpu_us(t1, ticks(), b_ev);
    let rss = a.pid.and_then(rss_mb);
    // Let the writer drain what the load produced, then probe an idle-ish system.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lags = lag_probe(&a.url, &a.clickhouse, &a.table, 50).await.context("lag probe")?;

    println!("| measure | result | baseline (same run) | ratio |");
    println!("|---|---|---|---|");
    let shape = match a.rate {
        Some(rate) => format!(
            "open loop at {rate:.0}/s (most behind schedule: {} ms; trivial handler {base_behind} ms)",
            s.max_behind_ms
        ),
        None => "closed loop".into(),
    };
    println!("| single-event POST, {} keep-alive connections, {shape} | {s_ev:.0} events/s ({s_fail} failed) | {base_single:.0} req/s (trivial handler) | {:.2} |", a.connections, s_req / base_single);
    println!(
        "| batched NDJSON, {} events/request, {batch_conns} connections | {b_ev:.0} events/s ({b_fail} failed) | {:.0} events/s (trivial handler) | {:.2} |",
        a.batch,
        base_batch * batch_size as f64,
        b_ev / (base_batch * batch_size as f64)
    );
    println!(
        "| ingest → queryable lag (50 probes) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms | | |",
        pct(&lags, 50.0),
        pct(&lags, 99.0),
        lags[lags.len() - 1]
    );
    if let (Some(c1), Some(c2), Some(b1), Some(b2)) = (s_cpu, b_cpu, base_single_cpu, base_batch_cpu) {
        println!("| igloo CPU per event (HTTP, validation, produce, table writer) | {c1:.1} µs single-event, {c2:.1} µs batched | {b1:.1} µs per request, {b2:.2} µs per batched event (trivial handler, its own process) | {:.2}, {:.2} |", c1 / b1, c2 / b2);
    }
    if let (Some(r1), Some(r2)) = (rss_after_single, rss) {
        println!("| server RSS | {r1:.0} MB after single-event load, {r2:.0} MB after batched load | | |");
    }
    Ok(())
}
