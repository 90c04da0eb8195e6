//! Protobuf contracts for ingot: `.proto` files compiled at run time, decoded into Arrow
//! record batches, and checked against declarative contract rules.
//!
//! Nothing here knows about Kafka or Iceberg: the decoder targets whatever Arrow schema the
//! caller hands it (in practice the bronze table's schema, which carries Iceberg field ids),
//! reading the wire format straight into Arrow builders.

mod arrow_schema;
mod compat;
mod decode;
mod error;
mod registry;
mod rules;
mod wire;

pub use arrow_schema::{contract_arrow_schema, is_timestamp_message};
pub use compat::{ContractChange, SourceLocation, compare_messages, message_location};
pub use decode::{DecodeFailure, FailureReason};
pub use error::ProtoError;
pub use registry::ContractRegistry;
pub use rules::{RuleCheck, RuleConfig, RuleViolation, has_field_path};
pub use wire::BatchDecoder;
pub use wire::scalar::{MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, micros_in_timestamp_range};

/// Re-exported so callers can name message types without depending on prost-reflect.
pub use prost_reflect::{DynamicMessage, MessageDescriptor};
