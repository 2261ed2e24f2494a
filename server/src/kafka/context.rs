//! The librdkafka client context of igloo's clients: librdkafka reports why a broker refused a
//! connection (authentication, TLS) only through its error callback, while the request that
//! failed just says "transport failure". This context remembers the last such reason, so
//! errors and `/ready` can say *why* the broker does not answer, naming the setting to check.

use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::metadata::Metadata;

/// Cheap to clone: clones share what they remember.
#[derive(Clone, Debug, Default)]
pub struct Diagnosed {
    last_error: Arc<Mutex<Option<String>>>,
}

impl Diagnosed {
    /// Forgets the last failure (the broker answered since).
    pub fn clear(&self) {
        *self.last_error.lock().expect("context lock") = None;
    }

    /// A metadata request's outcome: the metadata when the broker answered (and the last
    /// failure forgotten), else why not — librdkafka's reason for refusing the connection when
    /// it gave one, else the request's own error.
    pub fn metadata(&self, result: KafkaResult<Metadata>) -> Result<Metadata, Unanswered> {
        match result {
            Ok(md) if !md.brokers().is_empty() => {
                self.clear();
                Ok(md)
            }
            Ok(_) => Err(Unanswered::NoBrokers),
            Err(e) => Err(Unanswered::Failed { reason: self.last_error().unwrap_or_else(|| e.to_string()) }),
        }
    }

    /// Why the last connection failed, when librdkafka said, with a hint at the settings for
    /// authentication and TLS failures.
    pub fn last_error(&self) -> Option<String> {
        let reason = self.last_error.lock().expect("context lock").clone()?;
        Some(explain(&reason))
    }
}

/// Why the broker did not answer a metadata request.
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    #[error("the broker reported no brokers")]
    NoBrokers,
    /// librdkafka's reason for refusing the connection (with the settings to check), else the
    /// request's own error.
    #[error("{reason}")]
    Failed { reason: String },
}

/// librdkafka's reason, and the settings a person should look at.
fn explain(reason: &str) -> String {
    let r = reason.to_ascii_lowercase();
    if r.contains("sasl") && (r.contains("authentication") || r.contains("mechanism")) {
        format!("{reason} — check broker.security.sasl_mechanism, broker.security.username (IGLOO_BROKER_USERNAME) and IGLOO_BROKER_PASSWORD")
    } else if r.contains("ssl") || r.contains("certificate") || r.contains("tls") {
        format!("{reason} — check broker.security.protocol and broker.security.ssl_ca / ssl_certificate / ssl_key")
    } else {
        reason.to_string()
    }
}

impl ClientContext for Diagnosed {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error
        ) && (message.contains("SASL") || message.contains("SSL"))
        {
            *self.last_error.lock().expect("context lock") = Some(message.to_string());
        }
        tracing::debug!(target: "librdkafka", facility = fac, "{message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, "{reason}");
        let mut last = self.last_error.lock().expect("context lock");
        // A later generic "all brokers down" must not hide the authentication failure behind it.
        if last.is_none() || reason.contains("SASL") || reason.contains("SSL") {
            *last = Some(reason.to_string());
        }
    }
}

/// Only for metadata probes: nothing is produced through it.
impl rdkafka::producer::ProducerContext for Diagnosed {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn authentication_failures_name_the_settings() {
        let e =
            explain("SASL authentication error: SASL SCRAM authentication failed: broker responded with unknown-user");
        assert!(e.contains("IGLOO_BROKER_PASSWORD") && e.contains("broker.security.username"), "{e}");
        assert!(explain("SSL handshake failed: certificate verify failed").contains("ssl_ca"));
        assert_eq!(explain("Connection refused"), "Connection refused");
    }
}
