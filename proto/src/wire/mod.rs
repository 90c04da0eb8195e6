//! Protobuf bytes straight into Arrow builders, checked against contract rules on the way.
//!
//! Each message is read twice over its bytes, never into an object: a first pass validates
//! the encoding and keeps where each field is (so contract rules can look at values and a
//! bad message leaves no trace in the builders), a second pass appends one row.

mod column;
mod node;
pub(crate) mod reader;
pub(crate) mod scalar;

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use prost_reflect::MessageDescriptor;

use crate::arrow_schema::{check_compatible, contract_arrow_schema};
use crate::rules::ContractRules;
use crate::{DecodeFailure, FailureReason, ProtoError, RuleConfig};
pub(crate) use node::Node;
use node::Pass;

/// Why bytes could not be read.
#[derive(Debug)]
pub(crate) enum Fail {
    Malformed(String),
    Unknown(Vec<u32>),
    /// Well-formed, but a value no table column can hold (a Timestamp past year 9999).
    OutOfRange(String),
}

impl From<scalar::TimestampError> for Fail {
    fn from(error: scalar::TimestampError) -> Fail {
        match error {
            scalar::TimestampError::Malformed(m) => Fail::Malformed(m),
            scalar::TimestampError::OutOfRange(m) => Fail::OutOfRange(m),
        }
    }
}

impl Fail {
    pub fn malformed(message: String) -> Fail {
        Fail::Malformed(message)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Malformed(m) | Fail::OutOfRange(m) => f.write_str(m),
            Fail::Unknown(numbers) => write!(f, "unknown field numbers {numbers:?}"),
        }
    }
}

/// Decodes payloads of one message type into rows of a target Arrow schema (normally the
/// bronze table's, without its Kafka columns); columns are matched to fields by name.
pub struct BatchDecoder {
    message: MessageDescriptor,
    target: SchemaRef,
    root: Node,
    rules: ContractRules,
    max_message_bytes: usize,
    reject_unknown_fields: bool,
}

impl BatchDecoder {
    /// Fails when a contract field is missing from the target or has an incompatible type:
    /// the caller must evolve the table schema first.
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
        let root = Node::new(&message, target.fields()).map_err(|problem| ProtoError::Mapping {
            message: message.full_name().to_string(),
            field: String::new(),
            problem,
        })?;
        Ok(Self {
            message,
            target,
            root,
            rules: ContractRules::default(),
            max_message_bytes,
            reject_unknown_fields: true,
        })
    }

    /// Contract rules every message must pass (checked before it becomes a row).
    pub fn with_rules(mut self, rules: &[RuleConfig]) -> Result<Self, ProtoError> {
        self.rules = ContractRules::compile(&self.message, rules)?;
        Ok(self)
    }

    /// Keep messages with fields the contract does not know (dropping those fields) instead
    /// of rejecting them as `unknown_fields`.
    pub fn allow_unknown_fields(mut self, allow: bool) -> Self {
        self.reject_unknown_fields = !allow;
        self
    }

    /// The message type this decoder reads.
    pub fn message(&self) -> &MessageDescriptor {
        &self.message
    }

    /// The schema of the batches `finish` returns.
    pub fn schema(&self) -> &SchemaRef {
        &self.target
    }

    /// Rows appended since the last `finish`.
    pub fn rows(&self) -> usize {
        self.root.len()
    }

    /// Decodes one payload into a new row (`Ok(Ok(()))`), or says why it belongs in the
    /// quarantine (`Ok(Err(_))`, nothing appended). `now_micros` is what rule ages are
    /// measured against. The outer error means the builders are inconsistent: a bug.
    pub fn push(
        &mut self,
        payload: Option<&[u8]>,
        now_micros: i64,
    ) -> Result<Result<(), DecodeFailure>, ProtoError> {
        let Some(payload) = payload else {
            return Ok(Err(failure(FailureReason::EmptyPayload, "message has no value (tombstone)".into())));
        };
        if payload.len() > self.max_message_bytes {
            let detail =
                format!("{} bytes exceeds the limit of {} bytes", payload.len(), self.max_message_bytes);
            return Ok(Err(failure(FailureReason::Oversize, detail)));
        }
        let name = self.message.full_name();
        // Hostile bytes must never take the process down: a panic while reading them (a bug
        // this decoder should not have, but the bytes come from anyone) quarantines the
        // message. Both passes here only read; the builders are untouched until append.
        let root = &mut self.root;
        let (rules, reject_unknown) = (&self.rules, self.reject_unknown_fields);
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            root.parse(payload, Pass::Validate { reject_unknown })?;
            rules.check(root, payload, now_micros).map_err(CheckFail::Rule)?;
            Ok::<(), CheckFail>(())
        }));
        match checked {
            Ok(Ok(())) => {}
            Ok(Err(CheckFail::Wire(Fail::Malformed(m)))) => {
                return Ok(Err(failure(FailureReason::Undecodable, format!("not a valid {name}: {m}"))));
            }
            Ok(Err(CheckFail::Wire(Fail::OutOfRange(m)))) => {
                return Ok(Err(failure(FailureReason::OutOfRange, format!("{name}: {m}"))));
            }
            Ok(Err(CheckFail::Wire(Fail::Unknown(numbers)))) => {
                let detail = format!(
                    "field numbers {numbers:?} are not in {name} (wrong message type, or a contract older than the producer)"
                );
                return Ok(Err(failure(FailureReason::UnknownFields, detail)));
            }
            Ok(Err(CheckFail::Rule(v))) => {
                return Ok(Err(failure(FailureReason::RuleViolation { rule: v.rule }, v.detail)));
            }
            Err(panic) => {
                let what = panic_text(panic.as_ref());
                return Ok(Err(failure(
                    FailureReason::Undecodable,
                    format!("decoder panicked on this {name}: {what}"),
                )));
            }
        }
        self.root.append_parsed(payload).map_err(|problem| ProtoError::Mapping {
            message: name.to_string(),
            field: String::new(),
            problem: format!("internal: a validated message failed to append: {problem}"),
        })?;
        Ok(Ok(()))
    }

    /// The rows appended so far as one batch; the decoder starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ProtoError> {
        let mapping = |problem: String| ProtoError::Mapping {
            message: self.message.full_name().to_string(),
            field: String::new(),
            problem,
        };
        let columns = self.root.finish_columns().map_err(mapping)?;
        RecordBatch::try_new(Arc::clone(&self.target), columns).map_err(|e| mapping(e.to_string()))
    }
}

/// What the read-only passes of `push` found wrong.
enum CheckFail {
    Wire(Fail),
    Rule(crate::RuleViolation),
}

impl From<Fail> for CheckFail {
    fn from(fail: Fail) -> CheckFail {
        CheckFail::Wire(fail)
    }
}

/// The message a panic carried, if it was text.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn failure(reason: FailureReason, detail: String) -> DecodeFailure {
    DecodeFailure { reason, detail }
}
