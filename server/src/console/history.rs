//! The last ten minutes of counters, one snapshot a second, for the console's charts: ingest
//! and write rates and lag per model, in / out rates and lag per transform.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use serde::Serialize;

use crate::metrics::{load, Metrics};

/// Snapshots kept: ten minutes at one a second.
const KEEP: usize = 600;

#[derive(Clone, Debug, Default)]
struct Snapshot {
    at_ms: u64,
    /// (accepted, written, lag) per model.
    models: BTreeMap<String, [u64; 3]>,
    /// (in, out, lag) per transform.
    transforms: BTreeMap<String, [u64; 3]>,
}

#[derive(Debug, Default)]
pub struct History {
    snapshots: Mutex<VecDeque<Snapshot>>,
}

/// Per-second series over the kept window: `t` in ms since the epoch; rates in events/s
/// between consecutive snapshots; lag as sampled.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Series {
    pub t: Vec<u64>,
    pub models: BTreeMap<String, ModelSeries>,
    pub transforms: BTreeMap<String, TransformSeries>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ModelSeries {
    pub ingested: Vec<f64>,
    pub written: Vec<f64>,
    pub lag: Vec<u64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct TransformSeries {
    #[serde(rename = "in")]
    pub records_in: Vec<f64>,
    pub out: Vec<f64>,
    pub lag: Vec<u64>,
}

impl History {
    /// Records the counters now.
    pub fn sample(&self, metrics: &Metrics, at_ms: u64) {
        let models = metrics
            .models()
            .into_iter()
            .map(|(name, m)| {
                let counts = [m.accepted.load(Ordering::Relaxed), m.written.load(Ordering::Relaxed), load(&m.lag)];
                (name, counts)
            })
            .collect();
        let transforms = metrics
            .transforms()
            .into_iter()
            .map(|(name, m)| (name, [load(&m.records_in), load(&m.records_out), m.total_lag()]))
            .collect();
        let mut snapshots = self.snapshots.lock().expect("history lock");
        if snapshots.len() == KEEP + 1 {
            snapshots.pop_front();
        }
        snapshots.push_back(Snapshot { at_ms, models, transforms });
    }

    /// Rates and lags between consecutive snapshots. A name new in a snapshot has zeros before
    /// and its counters' rise from zero there (counters start at zero when they appear, which
    /// for a model can be its first accepted event); a name gone has zeros after.
    pub fn series(&self) -> Series {
        let snapshots = self.snapshots.lock().expect("history lock");
        let mut out = Series::default();
        for (prev, cur) in snapshots.iter().zip(snapshots.iter().skip(1)) {
            let secs = (cur.at_ms.saturating_sub(prev.at_ms)).max(1) as f64 / 1000.0;
            let i = out.t.len();
            out.t.push(cur.at_ms);
            let rate = |now: u64, before: Option<u64>| now.saturating_sub(before.unwrap_or(0)) as f64 / secs;
            for (name, c) in &cur.models {
                let p = prev.models.get(name);
                let s = out.models.entry(name.clone()).or_insert_with(|| ModelSeries::padded(i));
                s.ingested.push(rate(c[0], p.map(|p| p[0])));
                s.written.push(rate(c[1], p.map(|p| p[1])));
                s.lag.push(c[2]);
            }
            for (name, c) in &cur.transforms {
                let p = prev.transforms.get(name);
                let s = out.transforms.entry(name.clone()).or_insert_with(|| TransformSeries::padded(i));
                s.records_in.push(rate(c[0], p.map(|p| p[0])));
                s.out.push(rate(c[1], p.map(|p| p[1])));
                s.lag.push(c[2]);
            }
            // A name gone from this snapshot: zeros, so every series stays as long as `t`.
            for s in out.models.values_mut().filter(|s| s.lag.len() == i) {
                s.ingested.push(0.0);
                s.written.push(0.0);
                s.lag.push(0);
            }
            for s in out.transforms.values_mut().filter(|s| s.lag.len() == i) {
                s.records_in.push(0.0);
                s.out.push(0.0);
                s.lag.push(0);
            }
        }
        out
    }

    /// The mean rates (ingested, written) per model over the last `secs` seconds.
    pub fn recent_rates(&self, secs: usize) -> BTreeMap<String, (f64, f64)> {
        let snapshots = self.snapshots.lock().expect("history lock");
        let (Some(last), Some(first)) =
            (snapshots.back(), snapshots.iter().rev().nth(secs.min(snapshots.len().saturating_sub(1))))
        else {
            return BTreeMap::new();
        };
        let span = (last.at_ms.saturating_sub(first.at_ms)).max(1) as f64 / 1000.0;
        last.models
            .iter()
            .map(|(name, c)| {
                let p = first.models.get(name).copied().unwrap_or([0; 3]);
                (name.clone(), (c[0].saturating_sub(p[0]) as f64 / span, c[1].saturating_sub(p[1]) as f64 / span))
            })
            .collect()
    }
}

impl ModelSeries {
    fn padded(n: usize) -> ModelSeries {
        ModelSeries { ingested: vec![0.0; n], written: vec![0.0; n], lag: vec![0; n] }
    }
}

impl TransformSeries {
    fn padded(n: usize) -> TransformSeries {
        TransformSeries { records_in: vec![0.0; n], out: vec![0.0; n], lag: vec![0; n] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_between_snapshots_and_series_stay_aligned() {
        let metrics = Metrics::default();
        let history = History::default();
        let m = metrics.model("A");
        history.sample(&metrics, 1_000);
        m.accepted.fetch_add(500, Ordering::Relaxed);
        m.written.fetch_add(200, Ordering::Relaxed);
        m.lag.store(300, Ordering::Relaxed);
        history.sample(&metrics, 1_500);
        let t = metrics.transform("A__B");
        t.records_in.fetch_add(10, Ordering::Relaxed);
        history.sample(&metrics, 2_500);
        let s = history.series();
        assert_eq!(s.t, vec![1_500, 2_500]);
        let a = &s.models["A"];
        assert_eq!(a.ingested, vec![1000.0, 0.0]);
        assert_eq!(a.written, vec![400.0, 0.0]);
        assert_eq!(a.lag, vec![300, 300]);
        // Appeared in the third snapshot: padded before, counted from zero there.
        assert_eq!(s.transforms["A__B"].records_in, vec![0.0, 10.0]);
        assert_eq!(history.recent_rates(5)["A"], (500.0 / 1.5, 200.0 / 1.5));
    }

    #[test]
    fn keeps_ten_minutes() {
        let metrics = Metrics::default();
        let history = History::default();
        metrics.model("A");
        for i in 0..(KEEP as u64 + 50) {
            history.sample(&metrics, i * 1000);
        }
        let s = history.series();
        assert_eq!(s.t.len(), KEEP);
        assert_eq!(*s.t.last().unwrap(), (KEEP as u64 + 49) * 1000);
    }
}
