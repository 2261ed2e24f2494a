//! The latest messages of a topic, read without a consumer group offset (nothing committed):
//! `igloo peek --topic` and the dev console's topic view. Blocking; call it off the async
//! runtime.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::Offset;
use serde::Serialize;

use crate::kafka::consumer::{self, ConsumerError, Received};
use crate::kafka::Broker;

/// One row of a message (a `batch`-framed message holds several).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeekedRow {
    pub partition: i32,
    pub offset: i64,
    /// The message's timestamp, ms since the epoch (when the broker reports one).
    pub timestamp_ms: Option<i64>,
    pub row: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    #[error("cannot read topic {topic} at {bootstrap}: {source}")]
    Kafka { topic: String, bootstrap: String, source: Box<KafkaError> },
    #[error(transparent)]
    Topic(#[from] ConsumerError),
}

/// The rows of the last `n` messages of each partition, oldest first per partition. Gives up
/// waiting for messages after `timeout` and returns what it has.
pub fn latest_messages(broker: &Broker, topic: &str, n: usize, timeout: Duration) -> Result<Vec<PeekedRow>, PeekError> {
    let error = |source| PeekError::Kafka {
        topic: topic.to_string(),
        bootstrap: broker.bootstrap.clone(),
        source: Box::new(source),
    };
    let consumer: BaseConsumer = broker.consumer("igloo-peek", 100).map_err(error)?;
    let mut at = Vec::new();
    let mut expected = 0;
    for p in consumer::partitions(consumer.client(), topic, timeout)? {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).map_err(error)?;
        let start = (high - n as i64).max(low);
        if start < high {
            at.push((p, Offset::Offset(start)));
            expected += high - start;
        }
    }
    let mut out = Vec::new();
    if expected == 0 {
        return Ok(out);
    }
    consumer::assign(&consumer, topic, &at)?;
    let mut messages = 0;
    let deadline = Instant::now() + timeout;
    while messages < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            messages += 1;
            let r = Received::from_message(&m);
            out.extend(r.rows.iter().map(|row| PeekedRow {
                partition: r.partition,
                offset: r.offset,
                timestamp_ms: r.timestamp_ms,
                row: row.to_string(),
            }));
        }
    }
    Ok(out)
}
