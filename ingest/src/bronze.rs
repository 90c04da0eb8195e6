//! Buffering decoded messages of one topic into record batches of its bronze table.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use ingot_lake::{SourceOffsets, Table, TableIdent, TableSpec, table_arrow_schema};
use ingot_proto::{
    BatchDecoder, ContractRules, DecodeFailure, DynamicMessage, FailureReason, MessageDescriptor,
    contract_arrow_schema,
};

use crate::meta::{self, KafkaColumns, MessageMeta};
use crate::{IngestError, TopicConfig};

/// Names of the Kafka metadata columns of every bronze table.
pub const KAFKA_COLUMNS: [&str; 6] = [
    meta::TOPIC,
    meta::PARTITION,
    meta::OFFSET,
    meta::TIMESTAMP,
    meta::KEY,
    meta::INGESTED_AT,
];

/// Messages are turned into Arrow in chunks of this many rows, so decoded messages never
/// pile up in memory between flushes.
const CHUNK_ROWS: usize = 8192;

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
    pub topic: String,
    decoder: BatchDecoder,
    rules: ContractRules,
    schema: SchemaRef,
    messages: Vec<DynamicMessage>,
    kafka: KafkaColumns,
    chunks: Vec<RecordBatch>,
    /// Next offset per partition of everything consumed, good or bad.
    consumed: SourceOffsets,
}

impl BronzeBuffer {
    pub fn new(
        table: &Table,
        topic: &TopicConfig,
        message: MessageDescriptor,
        max_message_bytes: usize,
    ) -> Result<Self, IngestError> {
        let schema: SchemaRef = Arc::new(table_arrow_schema(table)?);
        let contract_columns: Vec<_> = schema
            .fields()
            .iter()
            .filter(|f| !KAFKA_COLUMNS.contains(&f.name().as_str()))
            .cloned()
            .collect();
        let decoder = BatchDecoder::new(
            message.clone(),
            Arc::new(Schema::new(contract_columns)),
            max_message_bytes,
        )?
        .allow_unknown_fields(topic.allow_unknown_fields);
        let rules = ContractRules::compile(&message, &topic.rules)?;
        Ok(Self {
            ident: table.identifier().clone(),
            topic: topic.topic.clone(),
            decoder,
            rules,
            schema,
            messages: Vec::with_capacity(CHUNK_ROWS),
            kafka: KafkaColumns::new(),
            chunks: Vec::new(),
            consumed: SourceOffsets::default(),
        })
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
        let message = match self.decoder.decode(payload) {
            Ok(m) => m,
            Err(failure) => return Ok(Some(failure)),
        };
        if let Err(v) = self.rules.check(&message, now_micros) {
            return Ok(Some(DecodeFailure {
                reason: FailureReason::RuleViolation { rule: v.rule },
                detail: v.detail,
            }));
        }
        self.messages.push(message);
        self.kafka.append(meta, now_micros);
        if self.messages.len() >= CHUNK_ROWS {
            self.finish_chunk()?;
        }
        Ok(None)
    }

    /// Everything buffered, as batches in the table's schema, plus the consumed offsets;
    /// the buffer starts over empty.
    pub fn take(&mut self) -> Result<(Vec<RecordBatch>, SourceOffsets), IngestError> {
        self.finish_chunk()?;
        Ok((std::mem::take(&mut self.chunks), std::mem::take(&mut self.consumed)))
    }

    fn finish_chunk(&mut self) -> Result<(), IngestError> {
        if self.messages.is_empty() {
            return Ok(());
        }
        let decoded = self.decoder.to_batch(&self.messages)?;
        self.messages.clear();
        let mut columns: HashMap<String, ArrayRef> = decoded
            .schema()
            .fields()
            .iter()
            .zip(decoded.columns())
            .map(|(f, c)| (f.name().clone(), c.clone()))
            .collect();
        self.kafka.finish(&mut columns);
        let ordered = self
            .schema
            .fields()
            .iter()
            .map(|f| columns.remove(f.name()).expect("every table column is built"))
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), ordered).map_err(|e| IngestError::Topic {
            topic: self.topic.clone(),
            problem: format!("assemble bronze batch: {e}"),
        })?;
        self.chunks.push(batch);
        Ok(())
    }
}
