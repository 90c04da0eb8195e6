//! Buffering decoded messages of one topic into record batches of its bronze table.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use ingot_lake::{SourceOffsets, Table, TableIdent, TableSpec, table_arrow_schema};
use ingot_proto::{BatchDecoder, DecodeFailure, FailureReason, MessageDescriptor, contract_arrow_schema};

use crate::meta::{self, KafkaColumns, MessageMeta};
use crate::pii::TopicPii;
use crate::{IngestConfig, IngestError, TopicConfig};

/// Names of the Kafka metadata columns of every bronze table.
pub const KAFKA_COLUMNS: [&str; 6] =
    [meta::TOPIC, meta::PARTITION, meta::OFFSET, meta::TIMESTAMP, meta::KEY, meta::INGESTED_AT];

/// The bronze table of a topic: `<ingest.bronze_namespace>.<topic's table name>`.
pub fn bronze_ident(config: &IngestConfig, topic: &TopicConfig) -> Result<TableIdent, IngestError> {
    Ok(ingot_lake::parse_ident(&format!("{}.{}", config.bronze_namespace, topic.table_name()))?)
}

/// The bronze table a topic should have: the contract's columns, then the Kafka columns,
/// partitioned by the day of the event time (or of the Kafka timestamp).
pub fn bronze_table_spec(
    ident: TableIdent,
    message: &MessageDescriptor,
    event_time: Option<&str>,
) -> Result<TableSpec, IngestError> {
    let contract = contract_arrow_schema(message)?;
    if let Some(column) = event_time {
        let field = contract.field_with_name(column).map_err(|_| IngestError::Topic {
            topic: ident.to_string(),
            problem: format!("event_time `{column}` is not a field of {}", message.full_name()),
        })?;
        if field.data_type() != &meta::timestamp_type() {
            return Err(IngestError::Topic {
                topic: ident.to_string(),
                problem: format!("event_time `{column}` must be a google.protobuf.Timestamp"),
            });
        }
    }
    let mut fields: Vec<_> = contract.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(meta::kafka_fields());
    Ok(TableSpec {
        ident,
        schema: Schema::new(fields),
        partition_day: Some(event_time.unwrap_or(meta::TIMESTAMP).to_string()),
    })
}

/// Rows of one topic waiting for the next commit.
pub(crate) struct BronzeBuffer {
    pub ident: TableIdent,
    decoder: BatchDecoder,
    schema: SchemaRef,
    kafka: KafkaColumns,
    /// Next offset per partition of everything consumed, good or bad.
    consumed: SourceOffsets,
    /// The topic's PII fields, acted on before rows leave the buffer.
    pii: Option<TopicPii>,
}

impl BronzeBuffer {
    pub fn new(
        table: &Table,
        topic: &TopicConfig,
        message: MessageDescriptor,
        max_message_bytes: usize,
        pii: Option<TopicPii>,
    ) -> Result<Self, IngestError> {
        let schema = Arc::new(table_arrow_schema(table)?);
        Self::for_schema(table.identifier().clone(), schema, topic, message, max_message_bytes, pii)
    }

    /// A buffer producing rows of `schema` (a table's, or the one it will have once evolved).
    pub fn for_schema(
        ident: TableIdent,
        schema: SchemaRef,
        topic: &TopicConfig,
        message: MessageDescriptor,
        max_message_bytes: usize,
        pii: Option<TopicPii>,
    ) -> Result<Self, IngestError> {
        let contract_columns: Vec<_> =
            schema.fields().iter().filter(|f| !KAFKA_COLUMNS.contains(&f.name().as_str())).cloned().collect();
        let decoder =
            BatchDecoder::new(message.clone(), Arc::new(Schema::new(contract_columns)), max_message_bytes)?
                .allow_unknown_fields(topic.allow_unknown_fields)
                .with_rules(&topic.rules)?;
        Ok(Self {
            ident,
            decoder,
            schema,
            kafka: KafkaColumns::new(),
            consumed: SourceOffsets::default(),
            pii,
        })
    }

    /// The topic's PII fields, if it has any.
    pub fn pii(&self) -> Option<&TopicPii> {
        self.pii.as_ref()
    }

    /// The message type of this topic.
    pub fn message_type(&self) -> &str {
        self.decoder.message().full_name()
    }

    /// Decodes and checks one message: keeps it when it passes (`None`), or returns why it
    /// belongs in the quarantine.
    pub fn push(
        &mut self,
        meta: &MessageMeta<'_>,
        payload: Option<&[u8]>,
        now_micros: i64,
    ) -> Result<Option<DecodeFailure>, IngestError> {
        self.consumed.advance(meta.topic, meta.partition, meta.offset + 1);
        if let Some(detail) = meta::kafka_timestamp_problem(meta) {
            return Ok(Some(DecodeFailure { reason: FailureReason::OutOfRange, detail }));
        }
        if let Err(mut failure) = self.decoder.push(payload, now_micros)? {
            if let Some(pii) = &self.pii {
                pii.redact(&mut failure);
            }
            return Ok(Some(failure));
        }
        self.kafka.append(meta, now_micros);
        Ok(None)
    }

    /// Everything buffered, as batches in the table's schema, plus the consumed offsets;
    /// the buffer starts over empty.
    pub fn take(&mut self) -> Result<(Vec<RecordBatch>, SourceOffsets), IngestError> {
        let consumed = std::mem::take(&mut self.consumed);
        if self.decoder.rows() == 0 {
            return Ok((Vec::new(), consumed));
        }
        let mut decoded = self.decoder.finish()?;
        if let Some(pii) = &self.pii {
            decoded = pii.protect_batch(decoded)?;
        }
        let mut columns: HashMap<String, ArrayRef> = decoded
            .schema()
            .fields()
            .iter()
            .zip(decoded.columns())
            .map(|(f, c)| (f.name().clone(), c.clone()))
            .collect();
        self.kafka.finish(&mut columns);
        let batch = meta::assemble(&self.schema, columns, &self.ident.to_string())?;
        Ok((vec![batch], consumed))
    }
}
