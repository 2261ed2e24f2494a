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
pub mod context;
pub mod group;
mod polled;
pub mod producer;
pub mod wire;

use rdkafka::config::{ClientConfig, FromClientConfig};
use rdkafka::error::KafkaError;

pub use crate::config::BrokerSecurity;
pub use polled::alive as producers_alive;
pub use wire::Framing;

/// How to reach the broker, resolved by the caller (see `config::BrokerConfig`).
#[derive(Clone, Debug, PartialEq)]
pub struct Broker {
    /// `host:port[,host:port…]`.
    pub bootstrap: String,
    /// How this process writes rows (readers accept both framings).
    pub framing: Framing,
    /// Authentication and TLS (default: plaintext, no authentication).
    pub security: BrokerSecurity,
    /// How the producer compresses what it sends (default lz4).
    pub compression: Compression,
}

/// The producer's compression (librdkafka's `compression.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl Broker {
    pub fn new(bootstrap: impl Into<String>, framing: Framing) -> Broker {
        Broker {
            bootstrap: bootstrap.into(),
            framing,
            security: BrokerSecurity::default(),
            compression: Compression::Lz4,
        }
    }

    pub fn with_compression(mut self, compression: Compression) -> Broker {
        self.compression = compression;
        self
    }

    pub fn with_security(mut self, security: BrokerSecurity) -> Broker {
        self.security = security;
        self
    }

    /// The settings every client shares: where the broker is, how to authenticate and encrypt,
    /// and quiet librdkafka logs.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap).set("log_level", "3");
        let s = &self.security;
        c.set("security.protocol", s.protocol.name().to_ascii_lowercase());
        if s.protocol.sasl() {
            c.set("sasl.mechanisms", s.sasl_mechanism.name());
            c.set("sasl.username", s.username.as_deref().unwrap_or_default());
            c.set("sasl.password", s.password.as_deref().unwrap_or_default());
        }
        if s.protocol.tls() {
            for (key, path) in [
                ("ssl.ca.location", &s.ssl_ca),
                ("ssl.certificate.location", &s.ssl_certificate),
                ("ssl.key.location", &s.ssl_key),
            ] {
                if let Some(p) = path {
                    c.set(key, p.display().to_string());
                }
            }
            c.set("ssl.endpoint.identification.algorithm", if s.ssl_verify_hostname { "https" } else { "none" });
        }
        c
    }

    /// The settings of a consumer-group member: it leaves the group's assignment to the
    /// broker's coordinator, commits only explicitly, and is dropped from the group
    /// `session_timeout` after its last heartbeat.
    pub fn group_config(&self, group: &str, session_timeout: std::time::Duration) -> ClientConfig {
        let heartbeat = (session_timeout.as_millis() / 3).max(100);
        let mut c = self.client_config();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", heartbeat.to_string());
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
