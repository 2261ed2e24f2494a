//! A Kafka admin client (rdkafka, bundled librdkafka) for any Kafka-API broker: list topics with
//! their partition counts, create topics. igloo never deletes topics: tansu 0.6 with SQL
//! storage deletes every topic of the cluster on a single DeleteTopics.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_executor::block_on;
use igloo_schemas::ir::Topic;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use super::context::Diagnosed;
use super::Broker;

#[derive(Debug, thiserror::Error)]
pub enum KafkaAdminError {
    #[error("cannot create a Kafka client for {bootstrap}: {message}")]
    Client { bootstrap: String, message: String },
    #[error("the broker at {bootstrap} did not answer: {message}")]
    Unreachable { bootstrap: String, message: String },
    #[error("the broker refused to create topic {topic}: {message}")]
    CreateTopic { topic: String, message: String },
}

pub struct KafkaAdmin {
    admin: AdminClient<Diagnosed>,
    /// Metadata requests go through a plain client whose main queue igloo polls, so that
    /// librdkafka's reasons for a refused connection (SASL, TLS) reach `diagnosed`; the admin
    /// client never serves that queue.
    probe: BaseProducer<Diagnosed>,
    diagnosed: Diagnosed,
    pub bootstrap: String,
    /// Replication factor for new topics; `None` leaves it to the broker's default.
    replication: Option<i32>,
    /// `min.insync.replicas` for new topics; `None` leaves it to the broker.
    min_insync_replicas: Option<u32>,
}

impl KafkaAdmin {
    pub fn connect(broker: &Broker, replication: Option<i32>) -> Result<KafkaAdmin, KafkaAdminError> {
        let bootstrap = broker.bootstrap.as_str();
        let client_error = |e: rdkafka::error::KafkaError| KafkaAdminError::Client {
            bootstrap: bootstrap.into(),
            message: e.to_string(),
        };
        let mut config = broker.client_config();
        config.set("socket.connection.setup.timeout.ms", "2000");
        let admin = config.create_with_context(Diagnosed::default()).map_err(client_error)?;
        let diagnosed = Diagnosed::default();
        let probe = config.create_with_context(diagnosed.clone()).map_err(client_error)?;
        Ok(KafkaAdmin { admin, probe, diagnosed, bootstrap: bootstrap.into(), replication, min_insync_replicas: None })
    }

    /// New topics get `min.insync.replicas = n`.
    pub fn with_min_insync_replicas(mut self, n: Option<u32>) -> KafkaAdmin {
        self.min_insync_replicas = n;
        self
    }

    /// Topic name → partition count, without the broker's own (`__…`) topics.
    pub fn topics(&self, timeout: Duration) -> Result<BTreeMap<String, u32>, KafkaAdminError> {
        let md = self.metadata(timeout)?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as u32))
            .collect())
    }

    /// Whether the broker answers a metadata request within `timeout`.
    pub fn ping(&self, timeout: Duration) -> bool {
        self.check(timeout).is_ok()
    }

    /// Ok when the broker answers a metadata request within `timeout`; else why not (an
    /// authentication or TLS failure when librdkafka reported one, naming the settings).
    pub fn check(&self, timeout: Duration) -> Result<(), KafkaAdminError> {
        self.metadata(timeout).map(drop)
    }

    /// The cluster's metadata; a failure says why when librdkafka did.
    fn metadata(&self, timeout: Duration) -> Result<rdkafka::metadata::Metadata, KafkaAdminError> {
        let result = self.probe.client().fetch_metadata(None, timeout);
        // Deliver the log and error events the request left on the main queue.
        if result.is_err() {
            self.probe.poll(Duration::from_millis(100));
        }
        self.diagnosed
            .metadata(result)
            .map_err(|e| KafkaAdminError::Unreachable { bootstrap: self.bootstrap.clone(), message: e.to_string() })
    }

    /// Creates the topic; one that already exists is left as it is.
    pub fn create_topic(&self, topic: &Topic) -> Result<(), KafkaAdminError> {
        let retention = topic.retention_ms.map_or_else(|| "-1".to_string(), |ms| ms.to_string());
        let replication = TopicReplication::Fixed(self.replication.unwrap_or(-1));
        let min_insync = self.min_insync_replicas.map(|n| n.to_string());
        let mut new = NewTopic::new(&topic.name, topic.partitions as i32, replication).set("retention.ms", &retention);
        if let Some(n) = &min_insync {
            new = new.set("min.insync.replicas", n);
        }
        let opts = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(15)));
        let results = block_on(self.admin.create_topics([&new], &opts))
            .map_err(|e| KafkaAdminError::Unreachable { bootstrap: self.bootstrap.clone(), message: e.to_string() })?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(KafkaAdminError::CreateTopic { topic: name, message: code.to_string() })
                }
            }
        }
        Ok(())
    }
}
