//! Time-series samples against a brute-force oracle, on real engines: random events of a dense
//! and a sparse series over three hours, half written before `@@timeseries` was declared (so
//! the rollups are backfilled) and half after (so the materialized views fill them). Random
//! windows from under a second to three hours, windows whose period ends fall exactly on
//! events, and windows before the first event are all compared sample by sample, for
//! last/min/max/avg.

use std::collections::BTreeSet;
use std::time::Duration;

mod support;
use support::*;

const T0: i64 = 1_700_000_000_000_000_000;
const SECOND: i64 = 1_000_000_000;

#[derive(Clone, Debug)]
struct Event {
    tag: &'static str,
    time: i64,
    values: [f64; 2],
}

/// xorshift64*: deterministic, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
}

/// A dense series (about 5 events/s with gaps of up to 20 min) and a sparse one (minutes apart).
fn events(rng: &mut Rng) -> Vec<Event> {
    let mut out = Vec::new();
    for (tag, mean_gap) in [("dense", SECOND / 5), ("sparse", 240 * SECOND)] {
        let mut t = T0 + rng.below(10 * SECOND);
        while t < T0 + 3 * 3600 * SECOND {
            let values = [(rng.below(2000) - 1000) as f64 / 8.0, rng.below(1000) as f64];
            out.push(Event { tag, time: t, values });
            t += 1 + rng.below(2 * mean_gap);
            if tag == "dense" && rng.below(2000) == 0 {
                t += rng.below(1200 * SECOND);
            }
        }
    }
    out
}

/// What `/api/Measurement/samples` must answer, computed from the events themselves.
fn oracle(events: &[Event], tag: &str, start: i64, end: i64, points: u32, agg: &str) -> Vec<(i64, Option<Vec<f64>>)> {
    let mine: Vec<&Event> = events.iter().filter(|e| e.tag == tag).collect();
    let bound = |i: i64| -> i64 { start + ((end - start) as i128 * (i + 1) as i128 / points as i128) as i64 };
    (0..points as i64)
        .map(|i| {
            let (lo, hi) = (if i == 0 { start } else { bound(i - 1) }, bound(i));
            let value = if agg == "last" {
                mine.iter().filter(|e| e.time <= hi).max_by_key(|e| e.time).map(|e| e.values.to_vec())
            } else {
                let inside: Vec<&&Event> = mine.iter().filter(|e| e.time > lo && e.time <= hi).collect();
                (!inside.is_empty()).then(|| {
                    (0..2)
                        .map(|k| {
                            let xs = inside.iter().map(|e| e.values[k]);
                            match agg {
                                "min" => xs.fold(f64::INFINITY, f64::min),
                                "max" => xs.fold(f64::NEG_INFINITY, f64::max),
                                _ => xs.sum::<f64>() / inside.len() as f64,
                            }
                        })
                        .collect()
                })
            };
            (hi, value)
        })
        .collect()
}

/// One request of `(tag, start, end, points, agg, plan)`, compared sample by sample.
fn check(ports: &Ports, events: &[Event], q: (&str, i64, i64, u32, &str, &str)) {
    let (tag, start, end, points, agg, plan) = q;
    let url = ports.api(&format!(
        "/api/Measurement/samples?series={tag}&start={start}&end={end}&points={points}&agg={agg}&plan={plan}"
    ));
    let (status, body) = get_json(&url);
    assert_eq!(status, 200, "{url}: {body}");
    let samples = body["samples"].as_array().unwrap();
    let expected = oracle(events, tag, start, end, points, agg);
    assert_eq!(samples.len(), expected.len(), "{url}");
    for (i, (sample, (time, value))) in samples.iter().zip(&expected).enumerate() {
        assert_eq!(sample["time"].as_i64(), Some(*time), "{url} sample {i}");
        let got: Option<Vec<f64>> =
            sample["values"].as_array().map(|a| a.iter().map(|v| v.as_f64().unwrap()).collect());
        match (&got, value) {
            (Some(g), Some(e)) => {
                assert!(
                    g.iter().zip(e).all(|(a, b)| (a - b).abs() <= 1e-9 * b.abs().max(1.0)),
                    "{url} sample {i} (period end {time}): got {g:?}, expected {e:?}"
                );
            }
            (None, None) => {}
            _ => panic!("{url} sample {i} (period end {time}): got {got:?}, expected {value:?}"),
        }
    }
}

fn ingest(ports: &Ports, events: &[Event]) {
    for chunk in events.chunks(5000) {
        let body: String = chunk
            .iter()
            .map(|e| {
                format!("{{\"time\":{},\"tag\":\"{}\",\"values\":[{},{}]}}\n", e.time, e.tag, e.values[0], e.values[1])
            })
            .collect();
        post_ndjson(&ports.api("/ingest/Measurement"), &body);
    }
}

fn wait_rows(ports: &Ports, n: usize) {
    let ch = ports.clickhouse();
    eventually(Duration::from_secs(60), "events in ClickHouse", || {
        let c = ch.execute("SELECT count() FROM devapp.Measurement").ok()?;
        (c.trim() == n.to_string()).then_some(())
    });
}

#[test]
fn samples_match_a_brute_force_oracle() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    oracle_run(&root, &Ports::free());
}

/// The same on a ClickHouse cluster (scripts/local-cluster.sh: 2 shards × 2 replicas): the
/// events spread over both shards, the rollups are views on each shard, the backfill goes
/// through the Distributed tables, and every answer is still exact.
#[test]
fn samples_match_the_oracle_on_a_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::up(&tmp.path().join("cluster"));
    let root = project(tmp.path());
    oracle_run(&root, &cluster.ports());
    let shards = "SELECT count() FROM devapp.Measurement_local";
    let (one, two) = (cluster.sql(1, shards), cluster.sql(3, shards));
    assert!(one != "0" && two != "0", "both shards hold events: {one}, {two}");
}

/// Events written before and after `@@timeseries` is declared, then every window checked
/// against the oracle, under `igloo dev` on the engines `ports` name.
fn oracle_run(root: &std::path::Path, ports: &Ports) {
    let schema = root.join("schema/measurement.prisma");
    let declared = std::fs::read_to_string(&schema).unwrap();
    let line = declared.lines().find(|l| l.contains("@@timeseries")).unwrap().to_string();
    std::fs::write(&schema, declared.replace(&line, "")).unwrap();
    let yaml = root.join("igloo.yaml");
    let config = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, config.replace("    /api: Measurement.samples\n", "")).unwrap();

    let mut dev = Dev::start(root, ports, &[]);
    dev.expect("Ingest API", START);
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut all = events(&mut rng);
    all.sort_by_key(|e| (e.time % 7, e.time));
    let (before, after) = all.split_at(all.len() / 2);
    ingest(ports, before);
    wait_rows(ports, before.len());
    let (status, body) = get_json(&ports.api("/api/Measurement/samples?series=dense&start=1&end=2"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not a time series"), "{body}");

    // Declaring the time series backfills the rollups from the rows already written.
    std::fs::write(&schema, &declared).unwrap();
    std::fs::write(&yaml, &config).unwrap();
    dev.expect("rollup devapp._igloo_rollup_Measurement_1s", APPLY);
    ingest(ports, after);
    wait_rows(ports, all.len());

    let hour = 3600 * SECOND;
    let mut windows: Vec<(i64, i64, u32)> = vec![
        (T0 - hour, T0 + 4 * hour, 1000), // the whole data set, with empty periods on both sides
        (T0 - hour, T0, 10),              // before the first event: all null
        (T0 + hour, T0 + hour + SECOND / 2, 1000), // periods of 500 µs
        (T0, T0 + 3 * hour, 7),           // periods far longer than an hour
    ];
    for _ in 0..12 {
        let len = [SECOND, 90 * SECOND, 20 * 60 * SECOND, 2 * hour][rng.below(4) as usize] + rng.below(SECOND);
        let start = T0 + rng.below(3 * hour - len.min(3 * hour - 1));
        windows.push((start, start + len, [1000, 333, 50][rng.below(3) as usize]));
    }
    // Period ends exactly on events: end - start divisible by points, an event on a boundary.
    for pick in [all.len() / 3, 2 * all.len() / 3] {
        let e = &all[pick];
        let points = 100;
        let step = 7 * SECOND + 13;
        windows.push((e.time - 40 * step, e.time + 60 * step, points));
    }
    // A window starting inside a long gap of the dense series: the raw plan's lookback, sized
    // from the series' rate (seconds), holds nothing, and period 0 carries the value from
    // before the gap.
    let dense: Vec<i64> =
        all.iter().filter(|e| e.tag == "dense").map(|e| e.time).collect::<BTreeSet<_>>().into_iter().collect();
    let gap = dense.windows(2).find(|w| w[1] - w[0] > 120 * SECOND).expect("the dense series has a long gap");
    windows.push((gap[0] + 60 * SECOND, gap[0] + 90 * SECOND, 1000));
    for (start, end, points) in windows {
        for tag in ["dense", "sparse"] {
            for agg in ["last", "min", "max", "avg"] {
                // Both read plans must give the same exact answer.
                for plan in ["raw", "rollups"] {
                    check(ports, &all, (tag, start, end, points, agg, plan));
                }
            }
        }
    }

    // The reference route: exactly 1000 samples, the series parameter named after the field.
    let (status, body) = get_json(&ports.api(&format!("/api?tag=dense&start={}&end={}", T0, T0 + hour)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tagName"], "dense");
    assert_eq!(body["samples"].as_array().unwrap().len(), 1000);

    // Bad parameters get a 400 naming the problem.
    for (query, problem) in [
        ("series=dense&start=10&end=5", "`end`"),
        ("series=dense&end=5", "`start`: is required"),
        ("series=dense&start=x&end=5", "`start`: must be an integer"),
        ("series=nope&start=1&end=5", "unknown series `nope`"),
        ("series=dense&start=1&end=5&points=10001", "`points`"),
        ("series=dense&start=1&end=5&points=0", "`points`"),
        ("series=dense&start=1&end=5&agg=median", "`agg`"),
        ("series=dense&start=0&end=9223372036854775807", "too long"),
        ("series=x'%20OR%201=1%20--&start=1&end=5", "unknown series"),
        ("series=dense&start=1&end=5&plan=fast", "`plan`"),
        ("series=dense&start=-9223372036854775808&end=5", "before the Unix epoch"),
    ] {
        let (status, body) = get_json(&ports.api(&format!("/api/Measurement/samples?{query}")));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].as_str().unwrap().contains(problem), "{query}: {body}");
    }
}
