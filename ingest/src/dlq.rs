//! The dead-letter topics: failed messages, byte for byte, with the reason in headers.
//!
//! The DLQ is at-least-once (a crash between producing and the quarantine commit produces
//! again); the quarantine table is the exactly-once record. Consumers of a DLQ dedup on the
//! `ingot.source.*` headers.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::quarantine::DlqMessage;
use crate::{IngestError, KafkaConfig};

pub(crate) struct DlqProducer {
    producer: FutureProducer,
}

impl DlqProducer {
    pub fn new(kafka: &KafkaConfig) -> Result<Self, IngestError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &kafka.brokers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000");
        for (k, v) in &kafka.properties {
            config.set(k, v);
        }
        let producer = config.create().map_err(IngestError::kafka("create DLQ producer"))?;
        Ok(Self { producer })
    }

    /// Produces every message and waits until the broker has acknowledged all of them.
    pub async fn send_all(&self, messages: &[DlqMessage]) -> Result<(), IngestError> {
        let sends = messages.iter().map(|m| async move {
            let partition = m.partition.to_string();
            let offset = m.offset.to_string();
            let timestamp = m.timestamp_ms.map(|t| t.to_string()).unwrap_or_default();
            let headers = OwnedHeaders::new()
                .insert(header("ingot.reason", m.failure.reason.code()))
                .insert(header("ingot.rule", m.failure.reason.rule().unwrap_or("")))
                .insert(header("ingot.error", &m.failure.detail))
                .insert(header("ingot.source.topic", &m.source_topic))
                .insert(header("ingot.source.partition", &partition))
                .insert(header("ingot.source.offset", &offset))
                .insert(header("ingot.source.timestamp", &timestamp));
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&m.dlq_topic).headers(headers);
            if let Some(key) = &m.key {
                record = record.key(key.as_slice());
            }
            if let Some(payload) = &m.payload {
                record = record.payload(payload.as_slice());
            }
            self.producer
                .send(record, Duration::from_secs(30))
                .await
                .map(|_| ())
                .map_err(|(e, _)| IngestError::kafka(format!("produce to {}", m.dlq_topic))(e))
        });
        try_join_all(sends).await?;
        Ok(())
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header { key, value: Some(value) }
}
