//! Protobuf descriptor → Arrow schema. Iceberg types follow from these Arrow types (the lake
//! crate converts them and assigns field ids), so this is the one place the type mapping of
//! DESIGN.md lives: enums become strings, `Timestamp` a UTC microsecond timestamp, nested
//! messages structs, repeated fields lists and maps maps.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::ProtoError;

/// Nesting deeper than this is almost always a recursive message type, which no table
/// schema can represent.
const MAX_DEPTH: usize = 16;

/// The timezone string Iceberg's Arrow mapping uses for `timestamptz`.
pub(crate) const UTC: &str = "+00:00";

/// Precision of the decimal that holds a `uint64` without loss.
pub(crate) const UINT64_PRECISION: u8 = 20;

/// Whether a message type is `google.protobuf.Timestamp`, stored as a timestamp column.
pub fn is_timestamp_message(message: &MessageDescriptor) -> bool {
    message.full_name() == "google.protobuf.Timestamp"
}

/// The Arrow schema of a contract's decoded columns, in field-number order. Every top-level
/// column is nullable so that fields can be added to a contract later without a rewrite.
pub fn contract_arrow_schema(message: &MessageDescriptor) -> Result<Schema, ProtoError> {
    Ok(Schema::new(message_fields(message, 0)?))
}

fn message_fields(message: &MessageDescriptor, depth: usize) -> Result<Fields, ProtoError> {
    let mut fields: Vec<FieldDescriptor> = message.fields().collect();
    fields.sort_by_key(|f| f.number());
    fields.iter().map(|f| Ok(Field::new(f.name(), field_type(f, depth)?, true))).collect()
}

fn field_type(field: &FieldDescriptor, depth: usize) -> Result<DataType, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::Mapping {
            message: field.parent_message().full_name().to_string(),
            field: field.name().to_string(),
            problem: format!("nested deeper than {MAX_DEPTH} levels (recursive message?)"),
        });
    }
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else { unreachable!("map fields are always entry messages") };
        let key = entry.map_entry_key_field();
        let value = entry.map_entry_value_field();
        let entries = Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![
                Field::new("key", kind_type(&key.kind(), depth + 1)?, false),
                Field::new("value", kind_type(&value.kind(), depth + 1)?, true),
            ])),
            false,
        );
        return Ok(DataType::Map(Arc::new(entries), false));
    }
    let element = kind_type(&field.kind(), depth)?;
    if field.is_list() {
        return Ok(DataType::List(Arc::new(Field::new("element", element, false))));
    }
    Ok(element)
}

/// The Arrow type of one value of a field (for repeated fields: of one element).
pub(crate) fn kind_type(kind: &Kind, depth: usize) -> Result<DataType, ProtoError> {
    Ok(match kind {
        Kind::Double => DataType::Float64,
        Kind::Float => DataType::Float32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint32 | Kind::Fixed32 => DataType::Int64,
        Kind::Uint64 | Kind::Fixed64 => DataType::Decimal128(UINT64_PRECISION, 0),
        Kind::Bool => DataType::Boolean,
        Kind::String | Kind::Enum(_) => DataType::Utf8,
        Kind::Bytes => DataType::LargeBinary,
        Kind::Message(m) if is_timestamp_message(m) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        Kind::Message(m) => DataType::Struct(message_fields(m, depth + 1)?),
    })
}

/// Same shape, ignoring field metadata (ids) and nullability; a table struct may hold
/// columns the contract no longer has, but not the other way round.
pub(crate) fn check_compatible(contract: &DataType, table: &DataType) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContractRegistry;

    /// Read when the test runs, not when it is built (see the integration tests).
    fn manifest_dir() -> String {
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    }

    #[test]
    fn maps_order_event_to_arrow_types() {
        let registry =
            ContractRegistry::load(format!("{}/contracts", manifest_dir())).expect("demo contracts compile");
        let schema = contract_arrow_schema(&registry.message("ingot.demo.v1.OrderEvent").unwrap()).unwrap();
        let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(ty("status"), DataType::Utf8);
        assert_eq!(ty("occurred_at"), DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())));
        assert!(matches!(ty("items"), DataType::List(_)));
        assert!(matches!(ty("attributes"), DataType::Map(_, false)));
        assert!(matches!(ty("card"), DataType::Struct(_)));
        assert_eq!(ty("bank_transfer_reference"), DataType::Utf8);
    }
}
