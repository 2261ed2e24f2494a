//! Counters for `/metrics` (Prometheus text format), per model and per transform. Lock-free
//! on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct ModelMetrics {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    /// Records answered 202 (`?wait=false`) that the broker then did not acknowledge.
    pub unacknowledged: AtomicU64,
    pub produced: AtomicU64,
    pub written: AtomicU64,
    pub batches: AtomicU64,
    pub insert_ms_total: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Rows of idempotent requests the writer skipped as already written (a client's retry).
    pub duplicates_skipped: AtomicU64,
    /// Messages on the topic not yet written (high watermark − next offset), summed over partitions.
    pub lag: AtomicU64,
    /// 1 while the table writer holds its partitions (assigned and recovered), else 0.
    pub assigned: AtomicU64,
}

/// One transform's counters.
#[derive(Debug, Default)]
pub struct TransformMetrics {
    /// Records read from the source topic and handed to the transform.
    pub records_in: AtomicU64,
    /// Records produced to the destination topic.
    pub records_out: AtomicU64,
    /// Records the function returned null / None for.
    pub dropped: AtomicU64,
    /// Records sent to `_igloo_dlq`: the function threw, crashed its worker repeatedly, or
    /// returned a record the destination model rejects.
    pub dead_lettered: AtomicU64,
    /// Worker processes that exited or stopped answering.
    pub crashes: AtomicU64,
    /// Worker processes running now.
    pub workers: AtomicU64,
    /// Source messages not yet transformed, per slot.
    pub lag: RwLock<BTreeMap<usize, u64>>,
}

impl TransformMetrics {
    /// Source messages not yet transformed, over all slots.
    pub fn total_lag(&self) -> u64 {
        self.lag.read().expect("lag lock").values().sum()
    }
}

/// `(name, type, help, read)` of one metric family over counters `T`.
type Series<T> = (&'static str, &'static str, &'static str, fn(&T) -> u64);

/// Counters by name (of a model, or of a transform).
type Family<T> = RwLock<BTreeMap<String, Arc<T>>>;

#[derive(Debug, Default)]
pub struct Metrics {
    models: Family<ModelMetrics>,
    transforms: Family<TransformMetrics>,
}

impl Metrics {
    pub fn model(&self, name: &str) -> Arc<ModelMetrics> {
        member(&self.models, name)
    }

    pub fn transform(&self, name: &str) -> Arc<TransformMetrics> {
        member(&self.transforms, name)
    }

    /// Every model's counters, by name.
    pub fn models(&self) -> Vec<(String, Arc<ModelMetrics>)> {
        members(&self.models)
    }

    /// Every transform's counters, by name.
    pub fn transforms(&self) -> Vec<(String, Arc<TransformMetrics>)> {
        members(&self.transforms)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let series: [Series<ModelMetrics>; 10] = [
            (
                "igloo_ingest_accepted_total",
                "counter",
                "Records accepted over HTTP (acknowledged by the broker).",
                |m| m.accepted.load(Ordering::Relaxed),
            ),
            (
                "igloo_ingest_unacknowledged_total",
                "counter",
                "Records answered 202 (?wait=false) that the broker did not acknowledge: lost.",
                |m| m.unacknowledged.load(Ordering::Relaxed),
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
            (
                "igloo_idempotent_duplicates_total",
                "counter",
                "Rows of requests sent again with an Idempotency-Key already written, skipped.",
                |m| m.duplicates_skipped.load(Ordering::Relaxed),
            ),
            ("igloo_consumer_lag", "gauge", "Messages on the model's topic not yet written to ClickHouse.", |m| {
                m.lag.load(Ordering::Relaxed)
            }),
        ];
        render_family(&mut out, "model", &series, &self.models);
        let series: [Series<TransformMetrics>; 7] = [
            ("igloo_transform_in_total", "counter", "Records handed to the transform.", |m| load(&m.records_in)),
            ("igloo_transform_out_total", "counter", "Records the transform produced.", |m| load(&m.records_out)),
            ("igloo_transform_dropped_total", "counter", "Records the transform returned null for.", |m| {
                load(&m.dropped)
            }),
            ("igloo_transform_dead_lettered_total", "counter", "Records sent to _igloo_dlq.", |m| {
                load(&m.dead_lettered)
            }),
            ("igloo_transform_crashes_total", "counter", "Worker processes that crashed.", |m| load(&m.crashes)),
            ("igloo_transform_workers", "gauge", "Worker processes running.", |m| load(&m.workers)),
            ("igloo_transform_lag", "gauge", "Source messages not yet transformed.", |m| m.total_lag()),
        ];
        render_family(&mut out, "transform", &series, &self.transforms);
        let producers = crate::kafka::producers_alive();
        let _ = writeln!(out, "# HELP igloo_kafka_producers Kafka producers in this process: one, shared by ingest, dead letters and transforms.\n# TYPE igloo_kafka_producers gauge\nigloo_kafka_producers {producers}");
        out
    }
}

fn members<T>(family: &Family<T>) -> Vec<(String, Arc<T>)> {
    family.read().expect("metrics lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The counters of `name`, created on first use.
fn member<T: Default>(family: &Family<T>, name: &str) -> Arc<T> {
    if let Some(m) = family.read().expect("metrics lock").get(name) {
        return m.clone();
    }
    family.write().expect("metrics lock").entry(name.to_string()).or_default().clone()
}

/// Each series with one line per member, labelled `{key}="<member>"`.
fn render_family<T>(out: &mut String, key: &str, series: &[Series<T>], family: &Family<T>) {
    let members = family.read().expect("metrics lock");
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (member, m) in members.iter() {
            let _ = writeln!(out, "{name}{{{key}=\"{}\"}} {}", label(member), get(m));
        }
    }
}

fn label(value: &str) -> String {
    value.replace(['"', '\\', '\n'], "_")
}

pub fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}
