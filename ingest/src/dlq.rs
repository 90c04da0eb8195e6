//! The dead-letter topics: failed messages, byte for byte, with the reason in headers (for a
//! topic with PII fields, the payload as the quarantine keeps it: sealed or rewritten).
//!
//! The DLQ is at-least-once (a crash between producing and the quarantine commit produces
//! again); the quarantine table is the exactly-once record. Consumers of a DLQ dedup on the
//! `ingot.source.*` headers.
//!
//! The trade-off: a DLQ message that cannot be produced (the broker rejects it, or is
//! unreachable past the retries) is logged and counted, and ingest goes on. Failing the
//! flush instead would stop every topic on one bad DLQ send, and restarting would hit the
//! same message again — a poison pill. Nothing is lost: the quarantine table holds the same
//! bytes and reason.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::quarantine::DlqMessage;
use crate::{IngestError, KafkaConfig};

/// Room for the headers and the record framing on top of the largest payload ingest takes.
pub(crate) const DLQ_HEADROOM_BYTES: usize = 64 << 10;

/// The `ingot.error` header is cut to this many bytes: the quarantine table keeps it whole.
const ERROR_HEADER_BYTES: usize = 4 << 10;

/// Attempts per DLQ message (librdkafka already retries within each attempt).
const SEND_ATTEMPTS: u32 = 3;

pub(crate) struct DlqProducer {
    producer: FutureProducer,
}

impl DlqProducer {
    /// A producer whose size limit follows `max_message_bytes`: anything ingest accepts (and
    /// so may quarantine) fits, where librdkafka's own 1,000,000-byte default would not.
    pub fn new(kafka: &KafkaConfig, max_message_bytes: usize) -> Result<Self, IngestError> {
        let config = crate::client_config(
            kafka,
            &[
                ("enable.idempotence", "true".into()),
                ("message.timeout.ms", "30000".into()),
                ("message.max.bytes", (max_message_bytes + DLQ_HEADROOM_BYTES).to_string()),
            ],
        )?;
        let producer = config.create().map_err(IngestError::kafka("create DLQ producer"))?;
        Ok(Self { producer })
    }

    /// Produces every message and waits for the broker's answers; returns how many could
    /// not be produced (each is logged with its source coordinates).
    pub async fn send_all(&self, messages: &[DlqMessage]) -> u64 {
        let sends = messages.iter().map(|m| self.send_one(m));
        join_all(sends).await.into_iter().filter(|sent| !sent).count() as u64
    }

    async fn send_one(&self, m: &DlqMessage) -> bool {
        let partition = m.partition.to_string();
        let offset = m.offset.to_string();
        let timestamp = m.timestamp_ms.map(|t| t.to_string()).unwrap_or_default();
        let error = truncate_utf8(&m.failure.detail, ERROR_HEADER_BYTES);
        let mut last = None;
        for attempt in 1..=SEND_ATTEMPTS {
            let mut headers = OwnedHeaders::new()
                .insert(header("ingot.reason", m.failure.reason.code()))
                .insert(header("ingot.rule", m.failure.reason.rule().unwrap_or("")))
                .insert(header("ingot.error", error))
                .insert(header("ingot.source.topic", &m.source_topic))
                .insert(header("ingot.source.partition", &partition))
                .insert(header("ingot.source.offset", &offset))
                .insert(header("ingot.source.timestamp", &timestamp));
            if let Some(protection) = &m.protection {
                // The payload is not the raw message: sealed or rewritten (a topic with PII).
                headers = headers.insert(header("ingot.payload-protection", protection));
            }
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&m.dlq_topic).headers(headers);
            if let Some(key) = &m.key {
                record = record.key(key.as_slice());
            }
            if let Some(payload) = &m.payload {
                record = record.payload(payload.as_slice());
            }
            match self.producer.send(record, Duration::from_secs(30)).await {
                Ok(_) => return true,
                Err((e, _)) => {
                    let again = retryable(&e);
                    last = Some(e);
                    if !again {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        let error = last.map(|e| e.to_string()).unwrap_or_default();
        tracing::warn!(
            dlq_topic = %m.dlq_topic, source_topic = %m.source_topic, partition = m.partition,
            offset = m.offset, %error,
            "could not produce to the DLQ; the message is in the quarantine table"
        );
        false
    }
}

/// Whether producing the same record again may succeed.
fn retryable(error: &KafkaError) -> bool {
    !matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::InvalidMessage
        )
    )
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header { key, value: Some(value) }
}
