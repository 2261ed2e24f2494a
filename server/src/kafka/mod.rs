//! The one Kafka module: every Kafka client igloo creates (the ingest producer, table writers,
//! transforms, peek, subscribe, the admin client of `igloo dev` / `igloo plan`) is configured
//! here from one [`Broker`], and reads or writes topics through the one wire format
//! ([`wire`]). Nothing else in the tree builds a `ClientConfig`.
//!
//! - [`wire`] — the topic wire format (framing, keys, partitioner).
//! - [`producer`] — the idempotent `acks=all` producer.
//! - [`consumer`] — consumers assigned at logged offsets, batch collection, lag tracking.
//! - [`admin`] — topic metadata and creation (never deletion).

pub mod admin;
pub mod consumer;
pub mod producer;
pub mod wire;

use rdkafka::config::{ClientConfig, FromClientConfig};
use rdkafka::error::KafkaError;

pub use wire::Framing;

/// How to reach the broker, resolved by the caller (see `config::BrokerConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// `host:port[,host:port…]`.
    pub bootstrap: String,
    /// How this process writes rows (readers accept both framings).
    pub framing: Framing,
}

impl Broker {
    pub fn new(bootstrap: impl Into<String>, framing: Framing) -> Broker {
        Broker { bootstrap: bootstrap.into(), framing }
    }

    /// The settings every client shares: where the broker is, and quiet librdkafka logs.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap).set("log_level", "3");
        c
    }

    /// A consumer for manual assignment: offsets are igloo's own (ClickHouse's offsets log, or
    /// explicit commits), never auto-committed. librdkafka's `assign()` needs a group id even
    /// though nothing joins the group. `fetch_wait_ms` bounds how long the broker holds a fetch.
    pub fn consumer<C: FromClientConfig>(&self, group: &str, fetch_wait_ms: u32) -> Result<C, KafkaError> {
        self.client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
            .create()
    }
}
