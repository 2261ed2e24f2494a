//! Counters for `/metrics` (Prometheus text format), per model. Lock-free on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct ModelMetrics {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub produced: AtomicU64,
    pub written: AtomicU64,
    pub batches: AtomicU64,
    pub insert_ms_total: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Messages on the topic not yet written (high watermark − next offset), summed over partitions.
    pub lag: AtomicU64,
}

/// `(name, type, help, read)` of one metric family.
type Series = (&'static str, &'static str, &'static str, fn(&ModelMetrics) -> u64);

#[derive(Debug, Default)]
pub struct Metrics {
    models: RwLock<BTreeMap<String, Arc<ModelMetrics>>>,
}

impl Metrics {
    pub fn model(&self, name: &str) -> Arc<ModelMetrics> {
        if let Some(m) = self.models.read().expect("metrics lock").get(name) {
            return m.clone();
        }
        self.models.write().expect("metrics lock").entry(name.to_string()).or_default().clone()
    }

    pub fn render(&self) -> String {
        let models = self.models.read().expect("metrics lock");
        let mut out = String::new();
        let series: [Series; 8] = [
            (
                "igloo_ingest_accepted_total",
                "counter",
                "Records accepted over HTTP (acknowledged by the broker).",
                |m| m.accepted.load(Ordering::Relaxed),
            ),
            ("igloo_ingest_rejected_total", "counter", "Records rejected by validation.", |m| {
                m.rejected.load(Ordering::Relaxed)
            }),
            ("igloo_produced_total", "counter", "Messages the broker acknowledged.", |m| {
                m.produced.load(Ordering::Relaxed)
            }),
            ("igloo_written_total", "counter", "Rows the table writer inserted into ClickHouse.", |m| {
                m.written.load(Ordering::Relaxed)
            }),
            ("igloo_writer_batches_total", "counter", "Batches the table writer inserted.", |m| {
                m.batches.load(Ordering::Relaxed)
            }),
            (
                "igloo_writer_insert_ms_total",
                "counter",
                "Milliseconds spent in ClickHouse inserts (divide by batches for the mean).",
                |m| m.insert_ms_total.load(Ordering::Relaxed),
            ),
            ("igloo_dead_lettered_total", "counter", "Rows ClickHouse rejected, sent to _igloo_dlq.", |m| {
                m.dead_lettered.load(Ordering::Relaxed)
            }),
            ("igloo_consumer_lag", "gauge", "Messages on the model's topic not yet written to ClickHouse.", |m| {
                m.lag.load(Ordering::Relaxed)
            }),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (model, m) in models.iter() {
                let _ = writeln!(out, "{name}{{model=\"{}\"}} {}", model.replace(['"', '\\', '\n'], "_"), get(m));
            }
        }
        out
    }
}
