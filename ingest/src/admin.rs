//! Creating topics that ingot needs (the demo's source topics, the DLQ topics).

use std::time::Duration;

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
    create_missing(kafka, topics, partitions, &[]).await
}

/// Creates the DLQ topics that do not exist yet, with a size limit that takes any message
/// ingest accepts plus its headers (Kafka's default of about 1 MB is below ingot's).
pub(crate) async fn ensure_dlq_topics(
    kafka: &KafkaConfig,
    topics: &[String],
    max_message_bytes: usize,
) -> Result<(), IngestError> {
    let limit = (max_message_bytes + crate::dlq::DLQ_HEADROOM_BYTES).to_string();
    create_missing(kafka, topics, 1, &[("max.message.bytes", &limit)]).await
}

async fn create_missing(
    kafka: &KafkaConfig,
    topics: &[String],
    partitions: i32,
    topic_config: &[(&str, &str)],
) -> Result<(), IngestError> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> =
        crate::client_config(kafka, &[])?.create().map_err(IngestError::kafka("create admin client"))?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            topic_config
                .iter()
                .fold(NewTopic::new(t, partitions, TopicReplication::Fixed(1)), |new, (k, v)| new.set(k, v))
        })
        .collect();
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
