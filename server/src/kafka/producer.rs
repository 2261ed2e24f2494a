//! The Kafka producer of the ingest API and of transforms: idempotent, `acks=all`, compressed as
//! `broker.compression` says ([`super::Compression`]). A send completes only when the broker
//! acknowledged every message, and only then does the HTTP request get its 2xx. Messages are
//! encoded by the wire format ([`super::wire`]) in the broker's framing.
//!
//! Rows of concurrent ingest requests without an idempotency key are sent together (a group
//! commit, [`Producer::send_rows`]): one lane per topic keeps at most [`IN_FLIGHT`] sends
//! outstanding, and a send takes every row queued since the last one. With no queue a request
//! is sent at once; under load the rows of many requests share messages and produce requests,
//! which is what a broker charges for. Each request is still answered only once every message
//! holding its rows was acknowledged, and any failure fails every request of that send.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::consumer::{partitions, ConsumerError};
use super::context::Diagnosed;
use super::polled::{Delivered, Delivering, Polled};
use super::wire::{idempotency_value, KeyedRow, IDEMPOTENCY_HEADER};
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
    /// The failure of a send that several requests shared (see the module's documentation).
    #[error(transparent)]
    Shared(Arc<ProduceError>),
    #[error("the producer of topic {topic} stopped")]
    Stopped { topic: String },
}

/// A producer that has had no acknowledgement for this long while sends keep failing is
/// replaced by a new one (a new producer id). An idempotent producer's state can outlive what
/// a restarted broker knows of it (tansu 0.6 then fails every request: docs/ARCHITECTURE.md),
/// and librdkafka's fatal errors (a fenced or unknown producer) need a new producer too.
const RENEW_AFTER: Duration = Duration::from_secs(15);

/// Group-commit sends outstanding per topic: while they are, requests queue, and the next send
/// takes them all.
const IN_FLIGHT: usize = 2;

/// At most this many rows per group-commit send.
const MAX_COALESCED_ROWS: usize = 20_000;

#[derive(Clone)]
pub struct Producer {
    core: Core,
    /// The group-commit lane of each topic. Lanes hold a [`Core`], not a `Producer`, so they
    /// end when the last `Producer` is dropped.
    lanes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>>,
    /// Rows handed to [`Producer::send_rows`] or [`Producer::send_idempotent`] (the ingest
    /// API's sends) and not yet acknowledged or failed.
    unsettled: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone)]
struct Core {
    inner: Arc<RwLock<Arc<Polled>>>,
    broker: Broker,
    diagnosed: Diagnosed,
    partitions: Arc<Mutex<HashMap<String, i32>>>,
    /// Since when every send has failed (None while they succeed).
    failing_since: Arc<Mutex<Option<Instant>>>,
}

/// Rows counted in [`Producer::unsettled_rows`] while this lives.
struct Unsettled<'a>(&'a std::sync::atomic::AtomicUsize, usize);

impl<'a> Unsettled<'a> {
    fn count(counter: &'a std::sync::atomic::AtomicUsize, rows: usize) -> Unsettled<'a> {
        counter.fetch_add(rows, Ordering::Relaxed);
        Unsettled(counter, rows)
    }
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

/// One request's rows waiting in a lane, and where its outcome goes.
struct Queued {
    rows: Vec<KeyedRow>,
    done: oneshot::Sender<Result<(), Arc<ProduceError>>>,
}

impl Producer {
    /// Called inside the tokio runtime, whose task serves the producer's acknowledgements.
    pub fn new(broker: &Broker) -> Result<Producer, ProduceError> {
        let diagnosed = Diagnosed::default();
        let inner = Core::create(broker, &diagnosed)?;
        let core = Core {
            inner: Arc::new(RwLock::new(inner)),
            broker: broker.clone(),
            diagnosed,
            partitions: Arc::default(),
            failing_since: Arc::default(),
        };
        Ok(Producer { core, lanes: Arc::default(), unsettled: Arc::default() })
    }

    /// Sends the rows in this producer's framing, sharing messages with the rows of concurrent
    /// calls (see the module's documentation); Ok once the broker acknowledged every message
    /// holding them.
    pub async fn send_rows(&self, topic: &str, rows: Vec<KeyedRow>) -> Result<(), ProduceError> {
        if rows.is_empty() {
            return Ok(());
        }
        // Counted until this call ends, however it ends: a request whose client went away is
        // dropped mid-await, and its rows must not stay counted.
        let _unsettled = Unsettled::count(&self.unsettled, rows.len());
        self.queue_rows(topic, rows).await
    }

    /// Rows given to [`Producer::send_rows`] or [`Producer::send_idempotent`] that are not
    /// acknowledged (or failed) yet: what answering before the acknowledgement (`?wait=false`)
    /// holds in memory.
    pub fn unsettled_rows(&self) -> usize {
        self.unsettled.load(Ordering::Relaxed)
    }

    async fn queue_rows(&self, topic: &str, rows: Vec<KeyedRow>) -> Result<(), ProduceError> {
        let (done, outcome) = oneshot::channel();
        let lane = {
            let mut lanes = self.lanes.lock().expect("lanes lock");
            match lanes.get(topic) {
                Some(lane) => lane.clone(),
                None => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(self.core.clone().lane(topic.to_string(), rx));
                    lanes.insert(topic.to_string(), tx.clone());
                    tx
                }
            }
        };
        lane.send(Queued { rows, done }).map_err(|_| ProduceError::Stopped { topic: topic.into() })?;
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(shared)) => Err(ProduceError::Shared(shared)),
            Err(_) => Err(ProduceError::Stopped { topic: topic.into() }),
        }
    }

    /// Unlike [`Producer::send_rows`], alone: each message carries the request's idempotency
    /// key (`igloo-idempotency`, [`super::wire`]), so sent again, the same rows make the same
    /// messages, and the table writer writes them once.
    pub async fn send_idempotent(&self, topic: &str, rows: &[KeyedRow], key: &str) -> Result<(), ProduceError> {
        let _unsettled = Unsettled::count(&self.unsettled, rows.len());
        self.core.send_framed(topic, &[(Some(key), rows)], self.core.broker.framing).await
    }

    /// Several groups of rows in one go, each group idempotent under its own key (a
    /// transform's outputs, one group per source message).
    pub async fn send_keyed_groups(&self, topic: &str, groups: &[(String, Vec<KeyedRow>)]) -> Result<(), ProduceError> {
        let groups: Vec<(Option<&str>, &[KeyedRow])> =
            groups.iter().map(|(key, rows)| (Some(key.as_str()), rows.as_slice())).collect();
        self.core.send_framed(topic, &groups, self.core.broker.framing).await
    }

    /// Sends every row as its own message (`record` framing), whatever the broker's framing:
    /// for the dead-letter topic, whose readers are people and tools.
    pub async fn send_records(&self, topic: &str, rows: &[KeyedRow]) -> Result<(), ProduceError> {
        self.core.send_framed(topic, &[(None, rows)], Framing::Record).await
    }

    /// None when the broker answers a metadata request within `timeout`; else why not (an
    /// authentication or TLS failure when librdkafka reported one).
    pub async fn broker_problem(&self, timeout: Duration) -> Option<String> {
        let (inner, diagnosed) = (self.core.current(), self.core.diagnosed.clone());
        tokio::task::spawn_blocking(move || {
            diagnosed.metadata(inner.client().fetch_metadata(None, timeout)).err().map(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Some("the metadata request did not finish".into()))
    }
}

impl Core {
    fn create(broker: &Broker, diagnosed: &Diagnosed) -> Result<Arc<Polled>, ProduceError> {
        let config = broker
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", broker.compression.name())
            // igloo coalesces rows itself (the lanes above); waiting longer in librdkafka only adds
            // latency (linger 5 ms: 13.1k single events/s, 0 ms: 15.4k; BENCHMARKS.md).
            .set("linger.ms", "0")
            // A request gets its answer (2xx or 503) within this bound even if the broker is down.
            .set("message.timeout.ms", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .clone();
        Polled::create(&config, Delivering(diagnosed.clone()))
            .map_err(|source| ProduceError::Create { bootstrap: broker.bootstrap.clone(), source })
    }

    fn current(&self) -> Arc<Polled> {
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
        match Core::create(&self.broker, &self.diagnosed) {
            Ok(fresh) => {
                tracing::warn!(bootstrap = %self.broker.bootstrap, fatal = ?fatal.map(|(_, m)| m), "no acknowledgement from the broker for {} s: replacing the Kafka producer", since.elapsed().as_secs());
                *self.inner.write().expect("producer lock") = fresh;
                *failing = Some(Instant::now());
            }
            Err(e) => tracing::warn!(error = %e, "cannot replace the Kafka producer yet"),
        }
    }

    /// A topic's group-commit lane: once a send slot is free, takes the rows of every queued
    /// request (up to [`MAX_COALESCED_ROWS`]), queues their messages in order, and answers each
    /// request when that send settles. Ends when the last sender is dropped.
    async fn lane(self, topic: String, mut queue: mpsc::UnboundedReceiver<Queued>) {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        while let Some(first) = queue.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else { return };
            let mut rows = first.rows;
            let mut waiting = vec![first.done];
            while rows.len() < MAX_COALESCED_ROWS {
                let Ok(next) = queue.try_recv() else { break };
                rows.extend(next.rows);
                waiting.push(next.done);
            }
            let queued = self
                .partition_count(&topic)
                .await
                .map(|n| self.enqueue(&topic, n, &[(None, &rows)], self.broker.framing));
            let core = self.clone();
            tokio::spawn(async move {
                let outcome = match queued {
                    Ok(deliveries) => core.settle(deliveries).await,
                    Err(e) => Err(e),
                }
                .map_err(Arc::new);
                for done in waiting {
                    let _ = done.send(outcome.clone());
                }
                drop(slot);
            });
        }
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
        let deliveries = self.enqueue(topic, n, groups, framing);
        self.settle(deliveries).await
    }

    /// Queues the groups' messages in order, without waiting: one delivery (or why it could
    /// not be queued) per message.
    fn enqueue(
        &self,
        topic: &str,
        partitions: i32,
        groups: &[(Option<&str>, &[KeyedRow])],
        framing: Framing,
    ) -> Vec<Result<oneshot::Receiver<Delivered>, String>> {
        let producer = self.current();
        let mut deliveries = Vec::new();
        for (key, rows) in groups {
            for (i, m) in framing.encode(rows, partitions, *key).into_iter().enumerate() {
                let idempotency = key.map(|k| idempotency_value(i, k));
                let (done, delivered) = oneshot::channel();
                let mut record: BaseRecord<'_, [u8], [u8], _> = BaseRecord::with_opaque_to(topic, Box::new(done))
                    .partition(m.partition)
                    .payload(m.value.as_bytes());
                if !m.key.is_empty() {
                    record = record.key(m.key.as_bytes());
                }
                if let Some(value) = &idempotency {
                    record = record.headers(
                        OwnedHeaders::new().insert(Header { key: IDEMPOTENCY_HEADER, value: Some(value.as_bytes()) }),
                    );
                }
                deliveries.push(producer.send(record).map(|()| delivered).map_err(|e| e.to_string()));
            }
        }
        deliveries
    }

    /// Waits for every delivery; Ok when the broker acknowledged them all.
    async fn settle(&self, deliveries: Vec<Result<oneshot::Receiver<Delivered>, String>>) -> Result<(), ProduceError> {
        let total = deliveries.len();
        let results = join_all(deliveries.into_iter().map(|queued| async move {
            match queued?.await {
                Ok(delivered) => delivered.map_err(|e| e.to_string()),
                Err(_) => Err("the producer was replaced before the broker answered".to_string()),
            }
        }))
        .await;
        let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        self.outcome(failures.is_empty());
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(ProduceError::NotAcknowledged { failed: failures.len(), total, message: first.clone() }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stay_counted_only_while_their_send_lives() {
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let first = Unsettled::count(&counter, 5);
        {
            let _second = Unsettled::count(&counter, 3);
            assert_eq!(counter.load(Ordering::Relaxed), 8);
        }
        assert_eq!(counter.load(Ordering::Relaxed), 5);
        drop(first); // as when a request's client goes away mid-await
        assert_eq!(counter.load(Ordering::Relaxed), 0);
    }
}
