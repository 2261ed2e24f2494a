//! What every reader of a topic does: find its partitions, assign them at igloo's own offsets,
//! collect batches of decoded messages, and report lag. Used by the table writer, transforms,
//! peek and subscribe.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::wire;

/// One consumed message, decoded: where it sits and its rows (one for `record` framing).
#[derive(Clone, Debug)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    /// The message's timestamp, ms since the epoch (when the broker reports one).
    pub timestamp_ms: Option<i64>,
    pub rows: wire::Rows,
    /// Its `igloo-idempotency` header ([`wire`]), if the request that produced it had a key.
    pub idempotency: Option<String>,
}

impl Received {
    pub fn from_message<M: Message>(m: &M) -> Received {
        Received {
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            rows: wire::rows_of(m),
            idempotency: wire::idempotency_of(m),
        }
    }

    fn bytes(&self) -> usize {
        self.rows.bytes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot read topic {topic}: {source}")]
    Kafka { topic: String, source: KafkaError },
    #[error("topic {topic} has no partitions yet")]
    NoPartitions { topic: String },
}

/// The topic's partition ids, from a metadata request (blocking).
pub fn partitions<X: ClientContext>(
    client: &Client<X>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, ConsumerError> {
    let md = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| ConsumerError::Kafka { topic: topic.into(), source })?;
    let ids: Vec<i32> = md.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    if ids.is_empty() {
        return Err(ConsumerError::NoPartitions { topic: topic.into() });
    }
    Ok(ids)
}

/// Assigns `(partition, offset)` pairs of `topic` (blocking).
pub fn assign<C: Consumer>(consumer: &C, topic: &str, at: &[(i32, Offset)]) -> Result<(), ConsumerError> {
    let error = |source| ConsumerError::Kafka { topic: topic.into(), source };
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in at {
        tpl.add_partition_offset(topic, *p, *offset).map_err(error)?;
    }
    consumer.assign(&tpl).map_err(error)
}

/// When a batch is complete: whichever bound is reached first after its first message.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub flush: Duration,
}

/// The first message and what follows, up to the row and byte bounds, until `limits.flush`
/// after the first message was produced (its timestamp; its arrival here when it has none or
/// one ahead of this host's clock). An event so waits about `flush` at most for its batch, and
/// a backlog already older than that goes at once with what is queued behind it, taken without
/// waiting: a writer behind under load does not add `flush` to every batch (BENCHMARKS.md,
/// issue 20). Past the bound nothing yields, so a batch in hand is returned in the same poll,
/// before anything else its caller selects on (a rebalance would drop it).
pub async fn collect_after(consumer: &StreamConsumer, first: Received, limits: BatchLimits) -> Vec<Received> {
    let age = first.timestamp_ms.map_or(Duration::ZERO, age_of);
    let deadline = Instant::now() + limits.flush.saturating_sub(age);
    let (mut rows, mut bytes) = (first.rows.len(), first.bytes());
    let mut batch = vec![first];
    while rows < limits.max_rows && bytes < limits.max_bytes {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = if left.is_zero() {
            consumer.recv().now_or_never()
        } else {
            tokio::time::timeout(left, consumer.recv()).await.ok()
        };
        match next {
            Some(Ok(m)) => {
                let r = Received::from_message(&m);
                rows += r.rows.len();
                bytes += r.bytes();
                batch.push(r);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error");
                if left.is_zero() {
                    break;
                }
            }
            None => break,
        }
    }
    batch
}

/// How long ago `timestamp_ms` (ms since the epoch) was by this host's clock; zero if later.
fn age_of(timestamp_ms: i64) -> Duration {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(timestamp_ms).map_or(Duration::ZERO, |t| now.saturating_sub(Duration::from_millis(t)))
}

/// The next message; on a consumer error, logs it, waits a little and returns None.
pub async fn next_message(consumer: &StreamConsumer) -> Option<Received> {
    match consumer.recv().await {
        Ok(m) => Some(Received::from_message(&m)),
        Err(e) => {
            tracing::warn!(error = %e, "consumer error");
            tokio::time::sleep(Duration::from_millis(200)).await;
            None
        }
    }
}

/// Every 2 s: the messages on the topic past the positions in `next`, handed to `report`.
pub async fn track_lag(
    consumer: Arc<StreamConsumer>,
    topic: String,
    next: Arc<Mutex<BTreeMap<i32, i64>>>,
    report: impl Fn(u64),
) {
    loop {
        let positions = next.lock().expect("lag lock").clone();
        let c = consumer.clone();
        let t = topic.clone();
        let lag = tokio::task::spawn_blocking(move || {
            positions
                .iter()
                .filter_map(|(p, n)| {
                    c.fetch_watermarks(&t, *p, Duration::from_secs(1)).ok().map(|(_, high)| (high - n).max(0) as u64)
                })
                .sum::<u64>()
        })
        .await
        .unwrap_or(0);
        report(lag);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_age_counts_back_from_now_and_is_zero_when_its_timestamp_is_ahead() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let age = age_of(now - 5_000);
        assert!(age >= Duration::from_secs(5) && age < Duration::from_secs(6), "{age:?}");
        assert_eq!(age_of(now + 60_000), Duration::ZERO);
        assert_eq!(age_of(-1), Duration::ZERO);
    }
}
