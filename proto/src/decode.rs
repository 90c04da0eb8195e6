//! Why a message cannot go to bronze.

use std::fmt;

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
    /// The bytes decode, but a value lies outside what its type allows (a Timestamp before
    /// year 1 or after year 9999, a Kafka timestamp likewise): it could not be stored or
    /// computed with.
    OutOfRange,
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
            FailureReason::OutOfRange => "out_of_range",
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
