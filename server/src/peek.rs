//! The latest messages of a topic, read without a consumer group offset (nothing committed):
//! `igloo peek --topic` and the dev console's topic view. Blocking; call it off the async
//! runtime.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

/// One row of a message (a message holds one or more NDJSON rows).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeekedRow {
    pub partition: i32,
    pub offset: i64,
    /// The message's timestamp, ms since the epoch (when the broker reports one).
    pub timestamp_ms: Option<i64>,
    pub row: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read topic {topic} at {bootstrap}: {source}")]
pub struct PeekError {
    topic: String,
    bootstrap: String,
    source: Box<KafkaError>,
}

/// The rows of the last `n` messages of each partition, oldest first per partition. Gives up
/// waiting for messages after `timeout` and returns what it has.
pub fn latest_messages(bootstrap: &str, topic: &str, n: usize, timeout: Duration) -> Result<Vec<PeekedRow>, PeekError> {
    let error =
        |source| PeekError { topic: topic.to_string(), bootstrap: bootstrap.to_string(), source: Box::new(source) };
    // assign() needs a group id; nothing is committed to it.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "igloo-peek")
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .map_err(error)?;
    let md = consumer.fetch_metadata(Some(topic), timeout).map_err(error)?;
    let mut tpl = TopicPartitionList::new();
    let mut expected = 0;
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout).map_err(error)?;
        let start = (high - n as i64).max(low);
        if start < high {
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(start)).map_err(error)?;
            expected += high - start;
        }
    }
    let mut out = Vec::new();
    if expected == 0 {
        return Ok(out);
    }
    consumer.assign(&tpl).map_err(error)?;
    let mut messages = 0;
    let deadline = Instant::now() + timeout;
    while messages < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            messages += 1;
            let value = m.payload().map(String::from_utf8_lossy).unwrap_or_default();
            let timestamp_ms = m.timestamp().to_millis();
            for row in value.lines().filter(|l| !l.trim().is_empty()) {
                out.push(PeekedRow {
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp_ms,
                    row: row.to_string(),
                });
            }
        }
    }
    Ok(out)
}
