//! `broker:` in igloo.yaml: where the broker is, how rows travel on its topics, how igloo
//! authenticates to it, and the settings of the topics igloo creates. Loaded with the rest of
//! the file by [`super::ProjectConfig::load`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::InfraMode;
use crate::kafka::{Compression, Framing};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Kafka port of the local broker in native and docker mode (IGLOO_BROKER_PORT).
    #[serde(default = "default_broker_port")]
    pub port: u16,
    /// Native mode: `auto` (redpanda if on PATH, else tansu), `tansu` or `redpanda`
    /// (IGLOO_BROKER_ENGINE).
    #[serde(default)]
    pub engine: BrokerEngine,
    /// Native mode, tansu only: where it stores topics, data and offsets (IGLOO_BROKER_STORAGE).
    /// Unset: SQLite in `.igloo/broker/data/`. A `postgres://user:password@host:port/db` URL
    /// keeps them in an existing PostgreSQL database that has tansu's schema
    /// (`scripts/tansu-postgres.sh` creates one); tansu then holds no state of its own.
    #[serde(default)]
    pub storage: Option<String>,
    /// External mode: bootstrap servers, e.g. `b1:9092,b2:9092` (IGLOO_BROKER_BOOTSTRAP_SERVERS).
    #[serde(default)]
    pub bootstrap_servers: Option<String>,
    /// How rows travel on topics (IGLOO_BROKER_FRAMING): `record` (one JSON object per
    /// message, the Kafka convention), `batch` (NDJSON, several rows per message: cheaper on
    /// brokers whose cost is per message) or `auto` (default: `batch` on the local native
    /// broker, `record` everywhere else). Readers accept both.
    #[serde(default)]
    pub framing: FramingSetting,
    /// How the producer compresses messages (IGLOO_BROKER_COMPRESSION): `none`, `gzip`,
    /// `snappy`, `lz4`, `zstd` or `auto` (default: `none` on the local native broker, where
    /// nothing crosses a network and tansu took 1.5× more batched events/s uncompressed, `lz4`
    /// everywhere else).
    #[serde(default)]
    pub compression: CompressionSetting,
    /// How to authenticate to and encrypt the connection with a production broker.
    #[serde(default)]
    pub security: BrokerSecurity,
    /// External mode: replicas of each topic igloo creates (IGLOO_BROKER_REPLICATION_FACTOR;
    /// default: the broker's default). The local broker has one.
    #[serde(default)]
    pub replication_factor: Option<i32>,
    /// `min.insync.replicas` of each topic igloo creates (IGLOO_BROKER_MIN_INSYNC_REPLICAS;
    /// default: the broker's). With `acks=all`, an event is acknowledged once this many
    /// replicas have it.
    #[serde(default)]
    pub min_insync_replicas: Option<u32>,
    /// Put before every topic name (IGLOO_BROKER_TOPIC_PREFIX), e.g. `staging.`: environments
    /// and projects sharing one broker keep apart, and each sees only its own topics.
    #[serde(default)]
    pub topic_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            port: default_broker_port(),
            engine: BrokerEngine::Auto,
            storage: None,
            bootstrap_servers: None,
            framing: FramingSetting::Auto,
            compression: CompressionSetting::Auto,
            security: BrokerSecurity::default(),
            replication_factor: None,
            min_insync_replicas: None,
            topic_prefix: String::new(),
        }
    }
}

/// `broker.security`: every Kafka client igloo creates uses it. The password never comes from
/// igloo.yaml: `IGLOO_BROKER_PASSWORD`, or the file `password_file` names (a mounted secret).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSecurity {
    /// `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` (IGLOO_BROKER_SECURITY_PROTOCOL).
    #[serde(default)]
    pub protocol: SecurityProtocol,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (default) for the SASL protocols
    /// (IGLOO_BROKER_SASL_MECHANISM).
    #[serde(default)]
    pub sasl_mechanism: SaslMechanism,
    /// SASL user (IGLOO_BROKER_USERNAME).
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the SASL password (IGLOO_BROKER_PASSWORD_FILE); else IGLOO_BROKER_PASSWORD.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The password, from the environment or `password_file`; never from igloo.yaml.
    #[serde(skip)]
    pub password: Option<String>,
    /// CA certificate (PEM) to verify the broker with (IGLOO_BROKER_SSL_CA); default: the
    /// system's.
    #[serde(default)]
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS (IGLOO_BROKER_SSL_CERTIFICATE,
    /// IGLOO_BROKER_SSL_KEY).
    #[serde(default)]
    pub ssl_certificate: Option<PathBuf>,
    #[serde(default)]
    pub ssl_key: Option<PathBuf>,
    /// Check that the broker's certificate names its host (default true).
    #[serde(default = "default_true")]
    pub ssl_verify_hostname: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityProtocol {
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SSL")]
    Ssl,
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

super::word_enum!(SecurityProtocol, "a security protocol", { Plaintext => "PLAINTEXT", Ssl => "SSL", SaslPlaintext => "SASL_PLAINTEXT", SaslSsl => "SASL_SSL" });

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[default]
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

super::word_enum!(SaslMechanism, "a SASL mechanism", { Plain => "PLAIN", ScramSha256 => "SCRAM-SHA-256", ScramSha512 => "SCRAM-SHA-512" });

impl BrokerConfig {
    /// The framing to write with when the engines run in `mode`.
    pub fn framing(&self, mode: InfraMode) -> Framing {
        match (self.framing, mode) {
            (FramingSetting::Record, _) => Framing::Record,
            (FramingSetting::Batch, _) => Framing::Batch,
            (FramingSetting::Auto, InfraMode::Native) => Framing::Batch,
            (FramingSetting::Auto, InfraMode::Docker | InfraMode::External) => Framing::Record,
        }
    }

    /// The producer's compression when the engines run in `mode`.
    pub fn compression(&self, mode: InfraMode) -> Compression {
        match (self.compression, mode) {
            (CompressionSetting::None, _) | (CompressionSetting::Auto, InfraMode::Native) => Compression::None,
            (CompressionSetting::Gzip, _) => Compression::Gzip,
            (CompressionSetting::Snappy, _) => Compression::Snappy,
            (CompressionSetting::Lz4, _) | (CompressionSetting::Auto, InfraMode::Docker | InfraMode::External) => {
                Compression::Lz4
            }
            (CompressionSetting::Zstd, _) => Compression::Zstd,
        }
    }
}

/// `broker.compression` as written in `igloo.yaml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionSetting {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    #[default]
    Auto,
}

super::word_enum!(CompressionSetting, "a compression", { None => "none", Gzip => "gzip", Snappy => "snappy", Lz4 => "lz4", Zstd => "zstd", Auto => "auto" });

/// `broker.framing` as written in `igloo.yaml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FramingSetting {
    Record,
    Batch,
    #[default]
    Auto,
}

super::word_enum!(FramingSetting, "a framing", { Record => "record", Batch => "batch", Auto => "auto" });

fn default_broker_port() -> u16 {
    19092
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerEngine {
    #[default]
    Auto,
    Tansu,
    Redpanda,
}

super::word_enum!(BrokerEngine, "a broker engine", { Auto => "auto", Tansu => "tansu", Redpanda => "redpanda" });
