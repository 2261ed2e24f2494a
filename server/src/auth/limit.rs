//! Token buckets: a key's `rate` (requests per second, bursts up to one second's worth) and the
//! per-IP allowance for requests without a valid credential. Per process: with N replicas a
//! key may reach N × its rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Limits {
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Buckets beyond this are pruned (full ones first), bounding memory under many IPs.
    max_buckets: usize,
}

impl Limits {
    pub fn new() -> Limits {
        Limits { buckets: Mutex::new(HashMap::new()), max_buckets: 100_000 }
    }

    /// Whether `who`'s bucket is empty now, without taking from it: `Some(seconds)` to wait.
    pub fn exhausted(&self, who: &str, rate: f64) -> Option<u64> {
        let buckets = self.buckets.lock().expect("limits lock");
        let b = buckets.get(who)?;
        let tokens = (b.tokens + Instant::now().duration_since(b.at).as_secs_f64() * rate).min(rate.max(1.0));
        (tokens < 1.0).then(|| ((1.0 - tokens) / rate).ceil().max(1.0) as u64)
    }

    /// Takes one token from `who`'s bucket of `rate` per second; `Err(seconds)` to wait.
    pub fn take(&self, who: &str, rate: f64) -> Result<(), u64> {
        let now = Instant::now();
        let capacity = rate.max(1.0);
        let mut buckets = self.buckets.lock().expect("limits lock");
        if buckets.len() >= self.max_buckets && !buckets.contains_key(who) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < capacity);
        }
        let b = buckets.entry(who.to_string()).or_insert(Bucket { tokens: capacity, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let l = Limits::new();
        for _ in 0..5 {
            l.take("k", 5.0).unwrap();
        }
        assert_eq!(l.take("k", 5.0), Err(1));
        assert_eq!(l.exhausted("k", 5.0), Some(1));
        assert_eq!(l.exhausted("never-seen", 5.0), None);
        l.take("other", 5.0).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        l.take("k", 5.0).unwrap();
    }
}
