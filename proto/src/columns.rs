//! Column-wise construction of Arrow arrays from decoded Protobuf values.
//!
//! Each function takes one column's values for every row (`None` = absent) and the Arrow type
//! the table wants, and recurses into structs, lists and maps. Working a column at a time keeps
//! each builder monomorphic and the inner loops tight.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float32Array, Float64Array, Int32Array, Int64Array,
    LargeBinaryArray, ListArray, MapArray, StructArray, TimestampMicrosecondArray, new_null_array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, FieldRef, Fields};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use crate::arrow_schema::UINT64_PRECISION;

/// Why a column could not be built; the decoder turns this into a `ProtoError::Mapping`.
pub(crate) type ColumnError = String;

/// A field's value in a message, or `None` when the field has presence and is not set
/// (so `optional` scalars, message fields and unset oneof members become null, while
/// proto3 implicit-presence scalars keep their default, as Protobuf itself defines).
pub(crate) fn field_value<'a>(
    message: &'a DynamicMessage,
    field: &FieldDescriptor,
) -> Option<Cow<'a, Value>> {
    if field.supports_presence() && !message.has_field(field) {
        None
    } else {
        Some(message.get_field(field))
    }
}

/// Builds the columns of `fields` (by name) from messages of type `message`.
pub(crate) fn build_struct_children(
    message: &MessageDescriptor,
    fields: &Fields,
    rows: &[Option<&DynamicMessage>],
) -> Result<Vec<ArrayRef>, ColumnError> {
    fields
        .iter()
        .map(|target| {
            let Some(proto_field) = message.get_field_by_name(target.name()) else {
                // A column the table still has but the contract dropped: null from now on.
                return Ok(new_null_array(target.data_type(), rows.len()));
            };
            let owned: Vec<Option<Cow<'_, Value>>> = rows
                .iter()
                .map(|row| row.and_then(|m| field_value(m, &proto_field)))
                .collect();
            let values: Vec<Option<&Value>> = owned.iter().map(|v| v.as_deref()).collect();
            build_field(&proto_field, target, &values)
                .map_err(|e| format!("{}: {e}", target.name()))
        })
        .collect()
}

fn build_field(
    field: &FieldDescriptor,
    target: &FieldRef,
    values: &[Option<&Value>],
) -> Result<ArrayRef, ColumnError> {
    match target.data_type() {
        DataType::Map(entries, _) if field.is_map() => build_map(field, entries, values),
        DataType::List(element) if field.is_list() => build_list(&field.kind(), element, values),
        _ => build_values(&field.kind(), target.data_type(), values),
    }
}

fn build_list(
    kind: &Kind,
    element: &FieldRef,
    values: &[Option<&Value>],
) -> Result<ArrayRef, ColumnError> {
    let lists: Vec<&[Value]> = values
        .iter()
        .map(|v| v.and_then(Value::as_list).unwrap_or(&[]))
        .collect();
    let offsets = OffsetBuffer::from_lengths(lists.iter().map(|l| l.len()));
    let flat: Vec<Option<&Value>> = lists.iter().flat_map(|l| l.iter().map(Some)).collect();
    let child = build_values(kind, element.data_type(), &flat)?;
    let list = ListArray::try_new(element.clone(), offsets, child, None).map_err(|e| e.to_string())?;
    Ok(Arc::new(list))
}

fn build_map(
    field: &FieldDescriptor,
    entries: &FieldRef,
    values: &[Option<&Value>],
) -> Result<ArrayRef, ColumnError> {
    let Kind::Message(entry) = field.kind() else {
        return Err("map field without an entry message".into());
    };
    let DataType::Struct(kv_fields) = entries.data_type() else {
        return Err("map entries are not a struct".into());
    };
    let mut lengths = Vec::with_capacity(values.len());
    let mut keys: Vec<Value> = Vec::new();
    let mut vals: Vec<&Value> = Vec::new();
    for map in values.iter().map(|v| v.and_then(Value::as_map)) {
        let Some(map) = map else {
            lengths.push(0);
            continue;
        };
        // Sorted so that the same message always yields the same row.
        let mut pairs: Vec<_> = map.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        lengths.push(pairs.len());
        for (k, v) in pairs {
            keys.push(Value::from(k.clone()));
            vals.push(v);
        }
    }
    let key_refs: Vec<Option<&Value>> = keys.iter().map(Some).collect();
    let val_refs: Vec<Option<&Value>> = vals.into_iter().map(Some).collect();
    let key_field = entry.map_entry_key_field();
    let value_field = entry.map_entry_value_field();
    let children = vec![
        build_values(&key_field.kind(), kv_fields[0].data_type(), &key_refs)?,
        build_values(&value_field.kind(), kv_fields[1].data_type(), &val_refs)?,
    ];
    let struct_array =
        StructArray::try_new(kv_fields.clone(), children, None).map_err(|e| e.to_string())?;
    let offsets = OffsetBuffer::from_lengths(lengths);
    let map = MapArray::try_new(entries.clone(), offsets, struct_array, None, false)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(map))
}

/// Builds an array of single values (no repetition) of the given kind.
fn build_values(
    kind: &Kind,
    target: &DataType,
    values: &[Option<&Value>],
) -> Result<ArrayRef, ColumnError> {
    let it = values.iter();
    let array: ArrayRef = match (kind, target) {
        (Kind::Bool, DataType::Boolean) => {
            Arc::new(it.map(|v| v.and_then(Value::as_bool)).collect::<BooleanArray>())
        }
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, DataType::Int32) => {
            Arc::new(it.map(|v| v.and_then(Value::as_i32)).collect::<Int32Array>())
        }
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, DataType::Int64) => {
            Arc::new(it.map(|v| v.and_then(Value::as_i64)).collect::<Int64Array>())
        }
        (Kind::Uint32 | Kind::Fixed32, DataType::Int64) => Arc::new(
            it.map(|v| v.and_then(Value::as_u32).map(i64::from))
                .collect::<Int64Array>(),
        ),
        (Kind::Uint64 | Kind::Fixed64, DataType::Decimal128(_, 0)) => Arc::new(
            it.map(|v| v.and_then(Value::as_u64).map(i128::from))
                .collect::<Decimal128Array>()
                .with_precision_and_scale(UINT64_PRECISION, 0)
                .map_err(|e| e.to_string())?,
        ),
        (Kind::Float, DataType::Float32) => {
            Arc::new(it.map(|v| v.and_then(Value::as_f32)).collect::<Float32Array>())
        }
        (Kind::Double, DataType::Float64) => {
            Arc::new(it.map(|v| v.and_then(Value::as_f64)).collect::<Float64Array>())
        }
        (Kind::String, DataType::Utf8) => Arc::new(
            it.map(|v| v.and_then(Value::as_str))
                .collect::<arrow_array::StringArray>(),
        ),
        (Kind::Enum(e), DataType::Utf8) => {
            let mut builder = StringBuilder::with_capacity(values.len(), values.len() * 16);
            for v in it {
                match v.and_then(Value::as_enum_number) {
                    // Unknown numbers (a newer producer) are kept as their number, not lost.
                    Some(n) => match e.get_value(n) {
                        Some(ev) => builder.append_value(ev.name()),
                        None => builder.append_value(n.to_string()),
                    },
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish())
        }
        (Kind::Bytes, DataType::LargeBinary) => Arc::new(
            it.map(|v| v.and_then(Value::as_bytes).map(|b| b.as_ref()))
                .collect::<LargeBinaryArray>(),
        ),
        (Kind::Message(_), DataType::Timestamp(_, tz)) => Arc::new(
            it.map(|v| v.and_then(Value::as_message).map(timestamp_micros))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone_opt(tz.clone()),
        ),
        (Kind::Message(m), DataType::Struct(fields)) => {
            let rows: Vec<Option<&DynamicMessage>> =
                it.map(|v| v.and_then(Value::as_message)).collect();
            let nulls = NullBuffer::from_iter(rows.iter().map(Option::is_some));
            let children = build_struct_children(m, fields, &rows)?;
            let nulls = (nulls.null_count() > 0).then_some(nulls);
            Arc::new(
                StructArray::try_new(fields.clone(), children, nulls).map_err(|e| e.to_string())?,
            )
        }
        (kind, target) => {
            return Err(format!(
                "the table's type {target} cannot hold Protobuf {kind:?} values"
            ));
        }
    };
    Ok(array)
}

/// `google.protobuf.Timestamp` as microseconds since the epoch (sub-µs precision dropped).
pub(crate) fn timestamp_micros(ts: &DynamicMessage) -> i64 {
    let seconds = ts
        .get_field_by_number(1)
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let nanos = ts
        .get_field_by_number(2)
        .and_then(|v| v.as_i32())
        .unwrap_or(0);
    seconds * 1_000_000 + i64::from(nanos) / 1_000
}
