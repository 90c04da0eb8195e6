//! The first thing ingot asks a Kafka cluster: its metadata, once, with a short deadline.
//! librdkafka retries a failed TLS handshake or a refused login forever and reports the
//! cause only to its error callback; this collects that cause so start-up fails in one line
//! naming the brokers and what went wrong.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use crate::{IngestError, KafkaConfig};

/// How long the first metadata request may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// Every error librdkafka reported to this client.
#[derive(Default, Clone)]
struct ClientErrors(Arc<Mutex<Vec<String>>>);

impl ClientContext for ClientErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "kafka client error");
        self.0.lock().expect("not poisoned").push(reason.to_string());
    }
}

impl ClientErrors {
    /// The most telling error: a TLS or login failure (which the "all brokers down" that
    /// follows it would hide), else the last one.
    fn cause(&self) -> Option<String> {
        let errors = self.0.lock().expect("not poisoned");
        errors.iter().find(|e| is_credential_failure(e)).or(errors.last()).cloned()
    }
}

/// Whether librdkafka's words say the TLS handshake or the login failed: not transient.
pub(crate) fn is_credential_failure(cause: &str) -> bool {
    let cause = cause.to_ascii_lowercase();
    ["ssl", "certificate", "authentication", "sasl"].iter().any(|word| cause.contains(word))
}

impl ConsumerContext for ClientErrors {}

/// Fails with [`IngestError::Unreachable`] if the brokers cannot be reached, the TLS
/// handshake fails or the login is refused.
pub async fn check_connection(kafka: &KafkaConfig) -> Result<(), IngestError> {
    let context = ClientErrors::default();
    let consumer: BaseConsumer<ClientErrors> = crate::client_config(kafka, &[])?
        .create_with_context(context.clone())
        .map_err(IngestError::kafka("create a Kafka client"))?;
    let answer = tokio::task::spawn_blocking(move || {
        let answer = consumer.fetch_metadata(None, DEADLINE).map(|_| ());
        if answer.is_err() {
            // Errors reach the context only when the client's queue is served.
            for _ in 0..5 {
                let _ = consumer.poll(Duration::from_millis(50));
            }
        }
        answer
    })
    .await
    .expect("the metadata request does not panic");
    match answer {
        Ok(()) => Ok(()),
        Err(error) => {
            let cause = context.cause().unwrap_or_else(|| error.to_string());
            Err(IngestError::Unreachable { brokers: kafka.brokers.clone(), cause })
        }
    }
}
