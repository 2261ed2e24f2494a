//! The Kafka producer of the ingest API and of transforms: idempotent, `acks=all`, lz4. A send
//! completes only when the broker acknowledged every message, and only then does the HTTP
//! request get its 2xx. Messages are encoded by the wire format ([`super::wire`]) in the
//! broker's framing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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

/// A producer that has had no acknowledgement for this long while sends keep failing is
/// replaced by a new one (a new producer id). An idempotent producer's state can outlive what
/// a restarted broker knows of it (tansu 0.6 then fails every request: docs/ARCHITECTURE.md),
/// and librdkafka's fatal errors (a fenced or unknown producer) need a new producer too.
const RENEW_AFTER: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Producer {
    inner: Arc<RwLock<FutureProducer<Diagnosed>>>,
    broker: Broker,
    diagnosed: Diagnosed,
    partitions: Arc<Mutex<HashMap<String, i32>>>,
    /// Since when every send has failed (None while they succeed).
    failing_since: Arc<Mutex<Option<Instant>>>,
}

impl Producer {
    pub fn new(broker: &Broker) -> Result<Producer, ProduceError> {
        let diagnosed = Diagnosed::default();
        let inner = Producer::create(broker, &diagnosed)?;
        Ok(Producer {
            inner: Arc::new(RwLock::new(inner)),
            broker: broker.clone(),
            diagnosed,
            partitions: Arc::default(),
            failing_since: Arc::default(),
        })
    }

    fn create(broker: &Broker, diagnosed: &Diagnosed) -> Result<FutureProducer<Diagnosed>, ProduceError> {
        broker
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            // A request gets its answer (2xx or 503) within this bound even if the broker is down.
            .set("message.timeout.ms", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .create_with_context(diagnosed.clone())
            .map_err(|source| ProduceError::Create { bootstrap: broker.bootstrap.clone(), source })
    }

    fn current(&self) -> FutureProducer<Diagnosed> {
        self.inner.read().expect("producer lock").clone()
    }

    /// Notes a send's outcome; after [`RENEW_AFTER`] of failures only, or a fatal error, the
    /// producer is replaced (its unsent messages fail, so their requests were answered 503).
    fn outcome(&self, ok: bool) {
        let mut failing = self.failing_since.lock().expect("failing lock");
        if ok {
            *failing = None;
            return;
        }
        let since = *failing.get_or_insert_with(Instant::now);
        let fatal = self.current().client().fatal_error();
        if since.elapsed() < RENEW_AFTER && fatal.is_none() {
            return;
        }
        match Producer::create(&self.broker, &self.diagnosed) {
            Ok(fresh) => {
                tracing::warn!(bootstrap = %self.broker.bootstrap, fatal = ?fatal.map(|(_, m)| m), "no acknowledgement from the broker for {} s: replacing the Kafka producer", since.elapsed().as_secs());
                *self.inner.write().expect("producer lock") = fresh;
                *failing = Some(Instant::now());
            }
            Err(e) => tracing::warn!(error = %e, "cannot replace the Kafka producer yet"),
        }
    }

    /// Sends the rows in this producer's framing; Ok once the broker acknowledged every message.
    pub async fn send_rows(&self, topic: &str, rows: &[KeyedRow]) -> Result<(), ProduceError> {
        self.send_framed(topic, &[(None, rows)], self.broker.framing).await
    }

    /// Like [`Producer::send_rows`], each message carrying the request's idempotency key
    /// (`igloo-idempotency`, [`super::wire`]): sent again, the same rows make the same messages,
    /// and the table writer writes them once.
    pub async fn send_idempotent(&self, topic: &str, rows: &[KeyedRow], key: &str) -> Result<(), ProduceError> {
        self.send_framed(topic, &[(Some(key), rows)], self.broker.framing).await
    }

    /// Several groups of rows in one go, each group idempotent under its own key (a
    /// transform's outputs, one group per source message).
    pub async fn send_keyed_groups(&self, topic: &str, groups: &[(String, Vec<KeyedRow>)]) -> Result<(), ProduceError> {
        let groups: Vec<(Option<&str>, &[KeyedRow])> =
            groups.iter().map(|(key, rows)| (Some(key.as_str()), rows.as_slice())).collect();
        self.send_framed(topic, &groups, self.broker.framing).await
    }

    /// Sends every row as its own message (`record` framing), whatever the broker's framing:
    /// for the dead-letter topic, whose readers are people and tools.
    pub async fn send_records(&self, topic: &str, rows: &[KeyedRow]) -> Result<(), ProduceError> {
        self.send_framed(topic, &[(None, rows)], Framing::Record).await
    }

    /// Encodes each group (with its idempotency key, if any) and sends every message at once:
    /// they are queued in order, so rows of one key keep their order.
    async fn send_framed(
        &self,
        topic: &str,
        groups: &[(Option<&str>, &[KeyedRow])],
        framing: Framing,
    ) -> Result<(), ProduceError> {
        if groups.iter().all(|(_, rows)| rows.is_empty()) {
            return Ok(());
        }
        let n = self.partition_count(topic).await?;
        let messages: Vec<(OutMessage, Option<String>)> = groups
            .iter()
            .flat_map(|(key, rows)| {
                let encoded = framing.encode(rows, n, *key).into_iter().enumerate();
                encoded.map(move |(i, m)| (m, key.map(|k| idempotency_value(i, k))))
            })
            .collect();
        let producer = self.current();
        let sends = messages.iter().map(|(m, idempotency)| {
            let mut record: FutureRecord<'_, [u8], String> =
                FutureRecord::to(topic).partition(m.partition).payload(&m.value);
            if !m.key.is_empty() {
                record = record.key(m.key.as_bytes());
            }
            if let Some(value) = idempotency {
                record = record.headers(
                    OwnedHeaders::new().insert(Header { key: IDEMPOTENCY_HEADER, value: Some(value.as_bytes()) }),
                );
            }
            producer.send(record, Duration::from_secs(0))
        });
        let results = join_all(sends).await;
        let failures: Vec<String> = results.into_iter().filter_map(|r| r.err().map(|(e, _)| e.to_string())).collect();
        self.outcome(failures.is_empty());
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
        let (inner, diagnosed) = (self.current(), self.diagnosed.clone());
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
        let (inner, t) = (self.current(), topic.to_string());
        let ids = tokio::task::spawn_blocking(move || partitions(inner.client(), &t, Duration::from_secs(5)))
            .await
            .map_err(|_| ProduceError::MetadataTask { topic: topic.into() })??;
        let n = ids.len() as i32;
        self.partitions.lock().expect("partitions lock").insert(topic.to_string(), n);
        Ok(n)
    }
}
