//! The reference workload, shared by igloo's benchmarks: events of 10,000 tags with geometric
//! popularity, and percentile helpers.

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

/// The `p`th percentile of sorted values.
pub fn pct(xs: &[f64], p: f64) -> f64 {
    xs[((xs.len() - 1) as f64 * p / 100.0).round() as usize]
}
