//! Creating topics that ingot needs (the demo's source topics, the DLQ topics).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{IngestError, KafkaConfig};

/// Creates each topic that does not exist yet; existing topics are left as they are.
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    topics: &[String],
    partitions: i32,
) -> Result<(), IngestError> {
    if topics.is_empty() {
        return Ok(());
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (k, v) in &kafka.properties {
        config.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(IngestError::kafka("create admin client"))?;
    let new_topics: Vec<NewTopic<'_>> =
        topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        admin.create_topics(&new_topics, &options).await.map_err(IngestError::kafka("create topics"))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(IngestError::Topic { topic, problem: format!("cannot create topic: {code}") });
            }
        }
    }
    Ok(())
}
