//! The Kafka producer of the ingest API: idempotent, `acks=all`, lz4. A send completes only when
//! the broker acknowledged the message, and only then does the HTTP request get its 2xx.

use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("cannot create the Kafka producer for {bootstrap}: {message}")]
    Create { bootstrap: String, message: String },
    #[error("the broker did not acknowledge {failed} of {total} messages: {message}")]
    NotAcknowledged { failed: usize, total: usize, message: String },
}

#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl Producer {
    pub fn new(bootstrap: &str) -> Result<Producer, ProduceError> {
        let inner = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            // A request gets its answer (2xx or 503) within this bound even if the broker is down.
            .set("message.timeout.ms", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("log_level", "3")
            .create()
            .map_err(|e| ProduceError::Create { bootstrap: bootstrap.into(), message: e.to_string() })?;
        Ok(Producer { inner })
    }

    /// Sends every `(key, payload)` to `topic`; Ok once the broker acknowledged all of them.
    pub async fn send_all(&self, topic: &str, records: &[(String, String)]) -> Result<(), ProduceError> {
        let sends = records.iter().map(|(key, payload)| {
            self.inner
                .send(FutureRecord::to(topic).key(key.as_bytes()).payload(payload.as_bytes()), Duration::from_secs(0))
        });
        let results = join_all(sends).await;
        let failures: Vec<String> = results.into_iter().filter_map(|r| r.err().map(|(e, _)| e.to_string())).collect();
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(ProduceError::NotAcknowledged {
                failed: failures.len(),
                total: records.len(),
                message: first.clone(),
            }),
        }
    }
}
