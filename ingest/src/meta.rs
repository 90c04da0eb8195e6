//! The Kafka columns that bronze and quarantine rows both carry, so any row can be traced
//! to (and fenced by) the exact message it came from.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    Int32Builder, Int64Builder, LargeBinaryBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};

use crate::IngestError;

pub(crate) const TOPIC: &str = "_kafka_topic";
pub(crate) const PARTITION: &str = "_kafka_partition";
pub(crate) const OFFSET: &str = "_kafka_offset";
pub(crate) const TIMESTAMP: &str = "_kafka_timestamp";
pub(crate) const KEY: &str = "_kafka_key";
pub(crate) const INGESTED_AT: &str = "_ingested_at";

const UTC: &str = "+00:00";

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// The Kafka metadata columns, in table order.
pub(crate) fn kafka_fields() -> Vec<Field> {
    vec![
        Field::new(TOPIC, DataType::Utf8, true),
        Field::new(PARTITION, DataType::Int32, true),
        Field::new(OFFSET, DataType::Int64, true),
        Field::new(TIMESTAMP, timestamp_type(), true),
        Field::new(KEY, DataType::LargeBinary, true),
        Field::new(INGESTED_AT, timestamp_type(), true),
    ]
}

/// Where a message came from, borrowed from the consumer's buffer.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
}

/// Builders for the Kafka columns.
pub(crate) struct KafkaColumns {
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    key: LargeBinaryBuilder,
    ingested_at: TimestampMicrosecondBuilder,
}

impl KafkaColumns {
    pub fn new() -> Self {
        Self {
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone(UTC),
            key: LargeBinaryBuilder::new(),
            ingested_at: TimestampMicrosecondBuilder::new().with_timezone(UTC),
        }
    }

    pub fn append(&mut self, meta: &MessageMeta<'_>, now_micros: i64) {
        self.topic.append_value(meta.topic);
        self.partition.append_value(meta.partition);
        self.offset.append_value(meta.offset);
        // An unrepresentable Kafka timestamp is quarantined (see `kafka_timestamp_problem`);
        // its quarantine row has a null timestamp, and the value is in the error text.
        self.timestamp.append_option(meta.timestamp_ms.and_then(kafka_timestamp_micros));
        self.key.append_option(meta.key);
        self.ingested_at.append_value(now_micros);
    }

    /// The finished columns by name; the builders start over empty.
    pub fn finish(&mut self, out: &mut HashMap<String, ArrayRef>) {
        out.insert(TOPIC.into(), Arc::new(self.topic.finish()));
        out.insert(PARTITION.into(), Arc::new(self.partition.finish()));
        out.insert(OFFSET.into(), Arc::new(self.offset.finish()));
        out.insert(TIMESTAMP.into(), Arc::new(self.timestamp.finish()));
        out.insert(KEY.into(), Arc::new(self.key.finish()));
        out.insert(INGESTED_AT.into(), Arc::new(self.ingested_at.finish()));
    }
}

/// A Kafka timestamp (ms) in µs, if it lies in the range every table column can hold.
fn kafka_timestamp_micros(ms: i64) -> Option<i64> {
    ms.checked_mul(1_000).filter(|&micros| ingot_proto::micros_in_timestamp_range(micros))
}

/// Why a message's Kafka timestamp cannot be stored, if it cannot. Producers set it freely,
/// and bronze tables without an event time are partitioned by it.
pub(crate) fn kafka_timestamp_problem(meta: &MessageMeta<'_>) -> Option<String> {
    let ms = meta.timestamp_ms?;
    kafka_timestamp_micros(ms)
        .is_none()
        .then(|| format!("Kafka timestamp {ms} ms is outside 0001-01-01..9999-12-31"))
}

/// Current time in microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Puts columns built by name into the table's column order.
pub(crate) fn assemble(
    schema: &SchemaRef,
    mut columns: HashMap<String, ArrayRef>,
    table: &str,
) -> Result<RecordBatch, IngestError> {
    let problem = |problem: String| IngestError::Topic { topic: table.to_string(), problem };
    let ordered = schema
        .fields()
        .iter()
        .map(|f| {
            columns.remove(f.name()).ok_or_else(|| problem(format!("no column built for `{}`", f.name())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), ordered).map_err(|e| problem(format!("assemble batch: {e}")))
}
