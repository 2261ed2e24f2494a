//! The Kafka producer of the ingest API and of transforms: idempotent, `acks=all`, lz4. A send
//! completes only when the broker acknowledged every message, and only then does the HTTP
//! request get its 2xx. Messages are encoded by the wire format ([`super::wire`]) in the
//! broker's framing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use super::consumer::{partitions, ConsumerError};
use super::context::Diagnosed;
use super::wire::{idempotency_value, KeyedRow, OutMessage, IDEMPOTENCY_HEADER};
use super::{Broker, Framing};

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("cannot create the Kafka producer for {bootstrap}: {source}")]
    Create { bootstrap: String, source: rdkafka::error::KafkaError },
    #[error(transparent)]
    Metadata(#[from] ConsumerError),
    #[error("the broker did not acknowledge {failed} of {total} messages: {message}")]
    NotAcknowledged { failed: usize, total: usize, message: String },
    #[error("the metadata request for topic {topic} did not finish")]
    MetadataTask { topic: String },
}

#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer<Diagnosed>,
    diagnosed: Diagnosed,
    framing: Framing,
    partitions: Arc<Mutex<HashMap<String, i32>>>,
}

impl Producer {
    pub fn new(broker: &Broker) -> Result<Producer, ProduceError> {
        let diagnosed = Diagnosed::default();
        let inner = broker
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            // A request gets its answer (2xx or 503) within this bound even if the broker is down.
            .set("message.timeout.ms", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .create_with_context(diagnosed.clone())
            .map_err(|source| ProduceError::Create { bootstrap: broker.bootstrap.clone(), source })?;
        Ok(Producer { inner, diagnosed, framing: broker.framing, partitions: Arc::default() })
    }

    /// Sends the rows in this producer's framing; Ok once the broker acknowledged every message.
    pub async fn send_rows(&self, topic: &str, rows: &[KeyedRow]) -> Result<(), ProduceError> {
        self.send_framed(topic, rows, self.framing, None).await
    }

    /// Like [`Producer::send_rows`], each message carrying the request's idempotency key
    /// (`igloo-idempotency`, [`super::wire`]): sent again, the same rows make the same messages,
    /// and the table writer writes them once.
    pub async fn send_idempotent(&self, topic: &str, rows: &[KeyedRow], key: &str) -> Result<(), ProduceError> {
        self.send_framed(topic, rows, self.framing, Some(key)).await
    }

    /// Sends every row as its own message (`record` framing), whatever the broker's framing:
    /// for the dead-letter topic, whose readers are people and tools.
    pub async fn send_records(&self, topic: &str, rows: &[KeyedRow]) -> Result<(), ProduceError> {
        self.send_framed(topic, rows, Framing::Record, None).await
    }

    async fn send_framed(
        &self,
        topic: &str,
        rows: &[KeyedRow],
        framing: Framing,
        idempotency: Option<&str>,
    ) -> Result<(), ProduceError> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = self.partition_count(topic).await?;
        let messages = framing.encode(rows, n, idempotency);
        let sends = messages.iter().enumerate().map(|(i, m): (usize, &OutMessage)| {
            let mut record: FutureRecord<'_, [u8], String> =
                FutureRecord::to(topic).partition(m.partition).payload(&m.value);
            if !m.key.is_empty() {
                record = record.key(m.key.as_bytes());
            }
            if let Some(key) = idempotency {
                let value = idempotency_value(i, key);
                record = record.headers(
                    OwnedHeaders::new().insert(Header { key: IDEMPOTENCY_HEADER, value: Some(value.as_bytes()) }),
                );
            }
            self.inner.send(record, Duration::from_secs(0))
        });
        let results = join_all(sends).await;
        let failures: Vec<String> = results.into_iter().filter_map(|r| r.err().map(|(e, _)| e.to_string())).collect();
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(ProduceError::NotAcknowledged {
                failed: failures.len(),
                total: messages.len(),
                message: first.clone(),
            }),
        }
    }

    /// None when the broker answers a metadata request within `timeout`; else why not (an
    /// authentication or TLS failure when librdkafka reported one).
    pub async fn broker_problem(&self, timeout: Duration) -> Option<String> {
        let (inner, diagnosed) = (self.inner.clone(), self.diagnosed.clone());
        tokio::task::spawn_blocking(move || {
            diagnosed.metadata(inner.client().fetch_metadata(None, timeout)).err().map(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Some("the metadata request did not finish".into()))
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, ProduceError> {
        if let Some(n) = self.partitions.lock().expect("partitions lock").get(topic) {
            return Ok(*n);
        }
        let (inner, t) = (self.inner.clone(), topic.to_string());
        let ids = tokio::task::spawn_blocking(move || partitions(inner.client(), &t, Duration::from_secs(5)))
            .await
            .map_err(|_| ProduceError::MetadataTask { topic: topic.into() })??;
        let n = ids.len() as i32;
        self.partitions.lock().expect("partitions lock").insert(topic.to_string(), n);
        Ok(n)
    }
}
