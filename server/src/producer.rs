//! The Kafka producer of the ingest API: idempotent, `acks=all`, lz4. A send completes only when
//! the broker acknowledged the message, and only then does the HTTP request get its 2xx.
//!
//! Rows travel as NDJSON messages, one per partition per request (split at 512 KiB): a row's
//! partition is a stable hash of its key, so keys spread over partitions as with one message
//! per row, while the broker handles a few messages per request instead of one per event —
//! its per-message cost, not bytes, is what limits a SQL-backed broker such as tansu.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("cannot create the Kafka producer for {bootstrap}: {message}")]
    Create { bootstrap: String, message: String },
    #[error("cannot read the partitions of topic {topic}: {message}")]
    Metadata { topic: String, message: String },
    #[error("the broker did not acknowledge {failed} of {total} messages: {message}")]
    NotAcknowledged { failed: usize, total: usize, message: String },
}

/// Largest payload of one message.
const MAX_MESSAGE_BYTES: usize = 512 * 1024;

#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    partitions: Arc<Mutex<HashMap<String, i32>>>,
}

impl Producer {
    pub fn new(bootstrap: &str) -> Result<Producer, ProduceError> {
        let inner = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            // A request gets its answer (2xx or 503) within this bound even if the broker is down.
            .set("message.timeout.ms", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("log_level", "3")
            .create()
            .map_err(|e| ProduceError::Create { bootstrap: bootstrap.into(), message: e.to_string() })?;
        Ok(Producer { inner, partitions: Arc::default() })
    }

    /// Sends `(key, row)` pairs as NDJSON messages, grouped by the partition of each key; Ok
    /// once the broker acknowledged every message.
    pub async fn send_rows(&self, topic: &str, rows: &[(String, String)]) -> Result<(), ProduceError> {
        let n = self.partition_count(topic).await?;
        let mut groups: BTreeMap<i32, Vec<&(String, String)>> = BTreeMap::new();
        for row in rows {
            groups.entry(partition_of(&row.0, n)).or_default().push(row);
        }
        let mut messages: Vec<(i32, String, String)> = Vec::new();
        for (partition, rows) in groups {
            let mut payload = String::new();
            let mut key = rows[0].0.clone();
            for (k, row) in rows {
                if !payload.is_empty() && payload.len() + row.len() > MAX_MESSAGE_BYTES {
                    messages.push((partition, std::mem::replace(&mut key, k.clone()), std::mem::take(&mut payload)));
                }
                if !payload.is_empty() {
                    payload.push('\n');
                }
                payload.push_str(row);
            }
            messages.push((partition, key, payload));
        }
        let sends = messages.iter().map(|(p, key, payload)| {
            let record = FutureRecord::to(topic).partition(*p).key(key.as_bytes()).payload(payload.as_bytes());
            self.inner.send(record, Duration::from_secs(0))
        });
        Self::all_acknowledged(join_all(sends).await, messages.len())
    }

    /// Whether the broker answers a metadata request within `timeout`.
    pub async fn broker_answers(&self, timeout: Duration) -> bool {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.client().fetch_metadata(None, timeout).is_ok_and(|md| !md.brokers().is_empty())
        })
        .await
        .unwrap_or(false)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, ProduceError> {
        if let Some(n) = self.partitions.lock().expect("partitions lock").get(topic) {
            return Ok(*n);
        }
        let (inner, t) = (self.inner.clone(), topic.to_string());
        let n = tokio::task::spawn_blocking(move || {
            let md = inner.client().fetch_metadata(Some(&t), Duration::from_secs(5)).map_err(|e| e.to_string())?;
            let n = md.topics().iter().map(|t| t.partitions().len()).sum::<usize>() as i32;
            if n == 0 {
                return Err(format!("topic {t} has no partitions"));
            }
            Ok(n)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|message| ProduceError::Metadata { topic: topic.into(), message })?;
        self.partitions.lock().expect("partitions lock").insert(topic.to_string(), n);
        Ok(n)
    }

    fn all_acknowledged<T>(
        results: Vec<Result<T, (rdkafka::error::KafkaError, rdkafka::message::OwnedMessage)>>,
        total: usize,
    ) -> Result<(), ProduceError> {
        let failures: Vec<String> = results.into_iter().filter_map(|r| r.err().map(|(e, _)| e.to_string())).collect();
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(ProduceError::NotAcknowledged { failed: failures.len(), total, message: first.clone() }),
        }
    }

    /// Sends every `(key, payload)` to `topic` as its own message; Ok once all are acknowledged.
    pub async fn send_all(&self, topic: &str, records: &[(String, String)]) -> Result<(), ProduceError> {
        let sends = records.iter().map(|(key, payload)| {
            self.inner
                .send(FutureRecord::to(topic).key(key.as_bytes()).payload(payload.as_bytes()), Duration::from_secs(0))
        });
        Self::all_acknowledged(join_all(sends).await, records.len())
    }
}

/// FNV-1a of the key, over the partitions: stable across processes and versions.
fn partition_of(key: &str, partitions: i32) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % partitions as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::partition_of;

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("[\"tag-00001\",1]", 4), partition_of("[\"tag-00001\",1]", 4));
        let mut seen = [0; 4];
        for i in 0..1000 {
            seen[partition_of(&format!("[\"t{i}\"]"), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (200..300).contains(n)), "{seen:?}");
    }
}
