//! The one place every Kafka client's configuration is built (consumer, DLQ producer,
//! admin client, `ingot produce`), so a setting such as security applies to all of them.

use rdkafka::ClientConfig;

use crate::security::security_properties;
use crate::{IngestError, KafkaConfig};

/// The brokers, the security keys (TLS, SASL), then ingot's `settings` for this client, then
/// the user's `[kafka.properties]`, which win over all of them.
pub fn client_config(kafka: &KafkaConfig, settings: &[(&str, String)]) -> Result<ClientConfig, IngestError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (key, value) in security_properties(kafka)? {
        config.set(key, value);
    }
    for (key, value) in settings {
        config.set(*key, value);
    }
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    Ok(config)
}
