//! The quarantine: every message that cannot go to bronze, with its raw bytes and reason,
//! so nothing is lost and everything can be replayed once the cause is fixed.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{LargeBinaryBuilder, StringBuilder};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingot_lake::{SourceOffsets, Table, TableIdent, TableSpec, table_arrow_schema};
use ingot_proto::DecodeFailure;

use crate::IngestError;
use crate::flush::QuarantineWork;
use crate::meta::{self, KafkaColumns, MessageMeta};
use crate::pii::ProtectedPayload;

const PAYLOAD: &str = "payload";
const REASON: &str = "reason";
const RULE: &str = "rule";
const ERROR: &str = "error";
const MESSAGE_TYPE: &str = "message_type";
/// How the payload is protected: none (raw), `encrypted:<key id>`, `rewritten:<key id>` or
/// `withheld` (see `pii/payload.rs`).
pub const PAYLOAD_PROTECTION: &str = "payload_protection";

/// The quarantine table: the Kafka columns (as in bronze), the raw payload, a reason code,
/// the broken rule's name and the error text (and, for topics with PII fields, how the payload
/// is protected); partitioned by the day it was quarantined.
pub fn quarantine_schema(ident: TableIdent) -> TableSpec {
    let mut fields = meta::kafka_fields();
    fields.extend([
        Field::new(PAYLOAD, DataType::LargeBinary, true),
        Field::new(MESSAGE_TYPE, DataType::Utf8, true),
        Field::new(REASON, DataType::Utf8, true),
        Field::new(RULE, DataType::Utf8, true),
        Field::new(ERROR, DataType::Utf8, true),
        Field::new(PAYLOAD_PROTECTION, DataType::Utf8, true),
    ]);
    TableSpec { ident, schema: Schema::new(fields), partition_day: Some(meta::INGESTED_AT.to_string()) }
}

/// A message on its way to the DLQ topic.
#[derive(Debug, Clone)]
pub(crate) struct DlqMessage {
    pub dlq_topic: String,
    pub source_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub protection: Option<String>,
    pub failure: DecodeFailure,
}

/// Quarantined rows waiting for the next commit.
pub(crate) struct QuarantineBuffer {
    pub ident: TableIdent,
    schema: SchemaRef,
    kafka: KafkaColumns,
    payload: LargeBinaryBuilder,
    message_type: StringBuilder,
    reason: StringBuilder,
    rule: StringBuilder,
    error: StringBuilder,
    protection: StringBuilder,
    /// The PII key's id when some topic has PII fields, for the commits' summaries.
    key_id: Option<String>,
    rows: usize,
    consumed: SourceOffsets,
    dlq: Vec<DlqMessage>,
    /// Messages quarantined by (topic, reason).
    by_reason: HashMap<(String, String), u64>,
    /// Messages each contract rule quarantined, by (topic, rule).
    by_rule: HashMap<(String, String), u64>,
    by_topic: HashMap<String, u64>,
}

impl QuarantineBuffer {
    pub fn new(table: &Table, key_id: Option<String>) -> Result<Self, IngestError> {
        Ok(Self {
            ident: table.identifier().clone(),
            schema: Arc::new(table_arrow_schema(table)?),
            kafka: KafkaColumns::new(),
            payload: LargeBinaryBuilder::new(),
            message_type: StringBuilder::new(),
            reason: StringBuilder::new(),
            rule: StringBuilder::new(),
            error: StringBuilder::new(),
            protection: StringBuilder::new(),
            key_id,
            rows: 0,
            consumed: SourceOffsets::default(),
            dlq: Vec::new(),
            by_reason: HashMap::new(),
            by_rule: HashMap::new(),
            by_topic: HashMap::new(),
        })
    }

    /// Buffers one failed message; `payload` is protected already when its topic has PII
    /// fields.
    pub fn push(
        &mut self,
        meta: &MessageMeta<'_>,
        payload: ProtectedPayload,
        message_type: &str,
        failure: DecodeFailure,
        dlq_topic: Option<String>,
        now_micros: i64,
    ) {
        self.kafka.append(meta, now_micros);
        self.payload.append_option(payload.bytes.as_deref());
        self.protection.append_option(payload.protection.as_deref());
        self.message_type.append_value(message_type);
        self.reason.append_value(failure.reason.code());
        self.rule.append_option(failure.reason.rule());
        self.error.append_value(&failure.detail);
        self.consumed.advance(meta.topic, meta.partition, meta.offset + 1);
        *self.by_reason.entry((meta.topic.to_string(), failure.reason.code().to_string())).or_default() += 1;
        match self.by_topic.get_mut(meta.topic) {
            Some(n) => *n += 1,
            None => {
                self.by_topic.insert(meta.topic.to_string(), 1);
            }
        }
        if let Some(rule) = failure.reason.rule() {
            *self.by_rule.entry((meta.topic.to_string(), rule.to_string())).or_default() += 1;
        }
        self.rows += 1;
        if let Some(dlq_topic) = dlq_topic {
            self.dlq.push(DlqMessage {
                dlq_topic,
                source_topic: meta.topic.to_string(),
                partition: meta.partition,
                offset: meta.offset,
                timestamp_ms: meta.timestamp_ms,
                key: meta.key.map(<[u8]>::to_vec),
                payload: payload.bytes,
                protection: payload.protection,
                failure,
            });
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The buffered rows as one batch, with the offsets they cover, the DLQ messages and the
    /// count per reason; the buffer starts over empty.
    pub fn take(&mut self) -> Result<QuarantineWork, IngestError> {
        let mut columns: HashMap<String, ArrayRef> = HashMap::new();
        self.kafka.finish(&mut columns);
        columns.insert(PAYLOAD.into(), Arc::new(self.payload.finish()));
        columns.insert(MESSAGE_TYPE.into(), Arc::new(self.message_type.finish()));
        columns.insert(REASON.into(), Arc::new(self.reason.finish()));
        columns.insert(RULE.into(), Arc::new(self.rule.finish()));
        columns.insert(ERROR.into(), Arc::new(self.error.finish()));
        columns.insert(PAYLOAD_PROTECTION.into(), Arc::new(self.protection.finish()));
        let batch = meta::assemble(&self.schema, columns, &self.ident.to_string())?;
        self.rows = 0;
        Ok(QuarantineWork {
            ident: self.ident.clone(),
            batch,
            consumed: std::mem::take(&mut self.consumed),
            dlq: std::mem::take(&mut self.dlq),
            by_reason: std::mem::take(&mut self.by_reason),
            by_rule: std::mem::take(&mut self.by_rule),
            by_topic: std::mem::take(&mut self.by_topic),
            key_id: self.key_id.clone(),
        })
    }
}
