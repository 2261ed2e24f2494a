//! A Kafka admin client (rdkafka, bundled librdkafka) for any Kafka-API broker: list topics with
//! their partition counts, create topics. igloo never deletes topics: tansu 0.6 with SQL
//! storage deletes every topic of the cluster on a single DeleteTopics.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_executor::block_on;
use igloo_schemas::ir::Topic;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

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
    admin: AdminClient<DefaultClientContext>,
    pub bootstrap: String,
    /// Replication factor for new topics; `None` leaves it to the broker's default.
    replication: Option<i32>,
}

impl KafkaAdmin {
    pub fn connect(broker: &Broker, replication: Option<i32>) -> Result<KafkaAdmin, KafkaAdminError> {
        let bootstrap = broker.bootstrap.as_str();
        let admin = broker
            .client_config()
            .set("socket.connection.setup.timeout.ms", "2000")
            .create()
            .map_err(|e| KafkaAdminError::Client { bootstrap: bootstrap.into(), message: e.to_string() })?;
        Ok(KafkaAdmin { admin, bootstrap: bootstrap.into(), replication })
    }

    /// Topic name → partition count, without the broker's own (`__…`) topics.
    pub fn topics(&self, timeout: Duration) -> Result<BTreeMap<String, u32>, KafkaAdminError> {
        let md = self
            .admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|e| KafkaAdminError::Unreachable { bootstrap: self.bootstrap.clone(), message: e.to_string() })?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as u32))
            .collect())
    }

    /// Whether the broker answers a metadata request within `timeout`.
    pub fn ping(&self, timeout: Duration) -> bool {
        self.admin.inner().fetch_metadata(None, timeout).is_ok_and(|md| !md.brokers().is_empty())
    }

    /// Creates the topic; one that already exists is left as it is.
    pub fn create_topic(&self, topic: &Topic) -> Result<(), KafkaAdminError> {
        let retention = topic.retention_ms.map_or_else(|| "-1".to_string(), |ms| ms.to_string());
        let replication = TopicReplication::Fixed(self.replication.unwrap_or(-1));
        let new = NewTopic::new(&topic.name, topic.partitions as i32, replication).set("retention.ms", &retention);
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
