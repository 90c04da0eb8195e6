//! Bytes → `DynamicMessage` → Arrow record batch, against a table's Arrow schema.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use prost_reflect::{DynamicMessage, MessageDescriptor};

use crate::ProtoError;
use crate::arrow_schema::contract_arrow_schema;
use crate::columns::build_struct_children;

/// Why one message cannot go to bronze. Each variant is a stable reason code in the
/// quarantine table, so people can count and replay by reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// The bytes are not a valid encoding of the contract's message type.
    Undecodable,
    /// The bytes decode but carry fields the contract does not define: most often another
    /// message type on the same topic, or a producer ahead of the contract.
    UnknownFields,
    /// The payload is larger than the configured maximum.
    Oversize,
    /// The message has no value at all (a tombstone). An empty value is a valid
    /// all-defaults message and is decoded like any other.
    EmptyPayload,
    /// A contract rule failed; the rule's name is kept beside the reason.
    RuleViolation { rule: String },
}

impl FailureReason {
    /// The reason code stored in the quarantine table and DLQ headers.
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::Undecodable => "undecodable",
            FailureReason::UnknownFields => "unknown_fields",
            FailureReason::Oversize => "oversize",
            FailureReason::EmptyPayload => "empty_payload",
            FailureReason::RuleViolation { .. } => "rule_violation",
        }
    }

    /// The broken rule's name, for rule violations.
    pub fn rule(&self) -> Option<&str> {
        match self {
            FailureReason::RuleViolation { rule } => Some(rule),
            _ => None,
        }
    }
}

/// One message that failed, with a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    pub reason: FailureReason,
    pub detail: String,
}

impl fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.detail)
    }
}

/// Decodes payloads of one message type into batches shaped like a target Arrow schema.
///
/// The target is normally the bronze table's schema without its Kafka columns; columns are
/// matched to contract fields by name, so the table's field ids and column order win.
#[derive(Debug, Clone)]
pub struct BatchDecoder {
    message: MessageDescriptor,
    target: SchemaRef,
    max_message_bytes: usize,
    reject_unknown_fields: bool,
}

impl BatchDecoder {
    /// Fails when a contract field is missing from the target or has an incompatible type:
    /// the caller must evolve the table schema before decoding.
    pub fn new(
        message: MessageDescriptor,
        target: SchemaRef,
        max_message_bytes: usize,
    ) -> Result<Self, ProtoError> {
        let contract = contract_arrow_schema(&message)?;
        for field in contract.fields() {
            let mapping_error = |problem: String| ProtoError::Mapping {
                message: message.full_name().to_string(),
                field: field.name().clone(),
                problem,
            };
            let column = target
                .field_with_name(field.name())
                .map_err(|_| mapping_error("not a column of the table yet".into()))?;
            check_compatible(field.data_type(), column.data_type()).map_err(mapping_error)?;
        }
        Ok(Self {
            message,
            target,
            max_message_bytes,
            reject_unknown_fields: true,
        })
    }

    /// Keep messages with fields unknown to the contract instead of quarantining them
    /// (the unknown fields are then dropped from bronze).
    pub fn allow_unknown_fields(mut self, allow: bool) -> Self {
        self.reject_unknown_fields = !allow;
        self
    }

    /// The message type this decoder reads.
    pub fn message(&self) -> &MessageDescriptor {
        &self.message
    }

    /// The schema of the batches `to_batch` returns.
    pub fn schema(&self) -> &SchemaRef {
        &self.target
    }

    /// Decodes one payload, or says why it belongs in the quarantine.
    pub fn decode(&self, payload: Option<&[u8]>) -> Result<DynamicMessage, DecodeFailure> {
        let Some(payload) = payload else {
            return Err(DecodeFailure {
                reason: FailureReason::EmptyPayload,
                detail: "message has no value (tombstone)".into(),
            });
        };
        if payload.len() > self.max_message_bytes {
            return Err(DecodeFailure {
                reason: FailureReason::Oversize,
                detail: format!(
                    "{} bytes exceeds the limit of {} bytes",
                    payload.len(),
                    self.max_message_bytes
                ),
            });
        }
        let message = DynamicMessage::decode(self.message.clone(), payload).map_err(|e| {
            DecodeFailure {
                reason: FailureReason::Undecodable,
                detail: format!("not a valid {}: {e}", self.message.full_name()),
            }
        })?;
        if self.reject_unknown_fields {
            let unknown: Vec<u32> = message.unknown_fields().map(|f| f.number()).collect();
            if !unknown.is_empty() {
                return Err(DecodeFailure {
                    reason: FailureReason::UnknownFields,
                    detail: format!(
                        "field numbers {unknown:?} are not in {} (wrong message type, or a contract older than the producer)",
                        self.message.full_name()
                    ),
                });
            }
        }
        Ok(message)
    }

    /// Turns decoded messages into one record batch of the target schema.
    pub fn to_batch(&self, messages: &[DynamicMessage]) -> Result<RecordBatch, ProtoError> {
        let rows: Vec<Option<&DynamicMessage>> = messages.iter().map(Some).collect();
        let columns = build_struct_children(&self.message, self.target.fields(), &rows)
            .map_err(|problem| ProtoError::Mapping {
                message: self.message.full_name().to_string(),
                field: String::new(),
                problem,
            })?;
        RecordBatch::try_new(Arc::clone(&self.target), columns).map_err(|e| ProtoError::Mapping {
            message: self.message.full_name().to_string(),
            field: String::new(),
            problem: e.to_string(),
        })
    }
}

/// Same shape, ignoring field metadata (ids) and nullability; a table struct may hold
/// columns the contract no longer has, but not the other way round.
fn check_compatible(contract: &DataType, table: &DataType) -> Result<(), String> {
    match (contract, table) {
        (DataType::Struct(c), DataType::Struct(t)) => {
            for field in c {
                let column = t
                    .iter()
                    .find(|f| f.name() == field.name())
                    .ok_or_else(|| format!("nested field `{}` is not in the table", field.name()))?;
                check_compatible(field.data_type(), column.data_type())
                    .map_err(|e| format!("{}.{e}", field.name()))?;
            }
            Ok(())
        }
        (DataType::List(c), DataType::List(t)) => check_compatible(c.data_type(), t.data_type()),
        (DataType::Map(c, _), DataType::Map(t, _)) => check_compatible(c.data_type(), t.data_type()),
        (DataType::Timestamp(cu, _), DataType::Timestamp(tu, _)) if cu == tu => Ok(()),
        (c, t) if c == t => Ok(()),
        (c, t) => Err(format!("contract type {c} does not fit table type {t}")),
    }
}
