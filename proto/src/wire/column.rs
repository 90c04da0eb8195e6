//! Arrow builders fed straight from wire values: one `Column` per table column (recursively
//! for structs, lists and maps), so decoding never materialises a message object.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    LargeBinaryBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, MapArray, StructArray, new_null_array};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, FieldRef};
use prost_reflect::{FieldDescriptor, Kind};

use super::node::Node;
use super::reader::{FieldReader, Raw};
use super::scalar::{Scalar, decode_scalar, for_each_packed, packable, timestamp_micros};
use crate::arrow_schema::UINT64_PRECISION;

pub(crate) enum Builder {
    Bool(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt64(Decimal128Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Str(StringBuilder),
    Enum(StringBuilder, HashMap<i32, String>),
    Bytes(LargeBinaryBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Struct(Box<Node>),
    List {
        element: FieldRef,
        offsets: Vec<i32>,
        child: Box<Column>,
    },
    Map {
        entries: FieldRef,
        offsets: Vec<i32>,
        key: Box<Column>,
        value: Box<Column>,
    },
    /// A table column the contract no longer has.
    Null {
        data_type: DataType,
        len: usize,
    },
}

/// One column: how to read its wire values (`kind`) and where they go.
pub(crate) struct Column {
    pub kind: Kind,
    pub builder: Builder,
}

impl Column {
    /// The column for a contract field, shaped like the table's column.
    pub fn for_field(field: &FieldDescriptor, target: &FieldRef) -> Result<Column, String> {
        match target.data_type() {
            DataType::Map(entries, _) if field.is_map() => {
                let Kind::Message(entry) = field.kind() else { return Err("map without entry type".into()) };
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err("map entries are not a struct".into());
                };
                let key = Column::for_kind(entry.map_entry_key_field().kind(), kv[0].data_type())?;
                let value = Column::for_kind(entry.map_entry_value_field().kind(), kv[1].data_type())?;
                Ok(Column {
                    kind: field.kind(),
                    builder: Builder::Map {
                        entries: entries.clone(),
                        offsets: vec![0],
                        key: Box::new(key),
                        value: Box::new(value),
                    },
                })
            }
            DataType::List(element) if field.is_list() => {
                let child = Column::for_kind(field.kind(), element.data_type())?;
                Ok(Column {
                    kind: field.kind(),
                    builder: Builder::List {
                        element: element.clone(),
                        offsets: vec![0],
                        child: Box::new(child),
                    },
                })
            }
            other => Column::for_kind(field.kind(), other),
        }
    }

    /// A column of nulls for a table column without a contract field.
    pub fn null(data_type: &DataType) -> Column {
        Column { kind: Kind::Bool, builder: Builder::Null { data_type: data_type.clone(), len: 0 } }
    }

    fn for_kind(kind: Kind, target: &DataType) -> Result<Column, String> {
        let builder = match (&kind, target) {
            (Kind::Bool, DataType::Boolean) => Builder::Bool(BooleanBuilder::new()),
            (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, DataType::Int32) => {
                Builder::Int32(Int32Builder::new())
            }
            (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint32 | Kind::Fixed32, DataType::Int64) => {
                Builder::Int64(Int64Builder::new())
            }
            (Kind::Uint64 | Kind::Fixed64, DataType::Decimal128(_, 0)) => Builder::UInt64(
                Decimal128Builder::new()
                    .with_precision_and_scale(UINT64_PRECISION, 0)
                    .map_err(|e| e.to_string())?,
            ),
            (Kind::Float, DataType::Float32) => Builder::Float32(Float32Builder::new()),
            (Kind::Double, DataType::Float64) => Builder::Float64(Float64Builder::new()),
            (Kind::String, DataType::Utf8) => Builder::Str(StringBuilder::new()),
            (Kind::Enum(e), DataType::Utf8) => Builder::Enum(
                StringBuilder::new(),
                e.values().map(|v| (v.number(), v.name().to_string())).collect(),
            ),
            (Kind::Bytes, DataType::LargeBinary) => Builder::Bytes(LargeBinaryBuilder::new()),
            (Kind::Message(m), DataType::Timestamp(_, tz)) if crate::is_timestamp_message(m) => {
                Builder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            (Kind::Message(m), DataType::Struct(fields)) => Builder::Struct(Box::new(Node::new(m, fields)?)),
            (kind, target) => {
                return Err(format!("the table's type {target} cannot hold Protobuf {kind:?} values"));
            }
        };
        Ok(Column { kind, builder })
    }

    /// Checks a value the way `append` will read it, without appending.
    pub fn validate(&mut self, raw: Raw, buf: &[u8], reject_unknown: bool) -> Result<(), super::Fail> {
        match &mut self.builder {
            Builder::Struct(node) => {
                let bytes = raw
                    .bytes(buf)
                    .ok_or_else(|| super::Fail::malformed(format!("expected a message, found {raw:?}")))?;
                node.validate(bytes, reject_unknown)
            }
            Builder::Timestamp(_) => {
                let bytes = raw
                    .bytes(buf)
                    .ok_or_else(|| super::Fail::malformed(format!("expected a Timestamp, found {raw:?}")))?;
                timestamp_micros(bytes).map(|_| ()).map_err(super::Fail::from)
            }
            Builder::List { child, .. } => {
                if packable(&child.kind) && matches!(raw, Raw::Len { .. }) {
                    let kind = child.kind.clone();
                    for_each_packed(&kind, raw.bytes(buf).expect("len"), |r| {
                        decode_scalar(&kind, r, buf).map(|_| ())
                    })
                    .map_err(super::Fail::malformed)
                } else {
                    child.validate(raw, buf, reject_unknown)
                }
            }
            Builder::Map { key, value, .. } => {
                let bytes = raw
                    .bytes(buf)
                    .ok_or_else(|| super::Fail::malformed("map entry is not length-delimited".into()))?;
                let mut reader = FieldReader::new(bytes);
                while let Some((number, raw)) = reader.next_field().map_err(super::Fail::malformed)? {
                    match number {
                        1 => key.validate(raw, bytes, reject_unknown)?,
                        2 => value.validate(raw, bytes, reject_unknown)?,
                        _ => {}
                    }
                }
                Ok(())
            }
            Builder::Null { .. } => Ok(()),
            _ => decode_scalar(&self.kind, raw, buf).map(|_| ()).map_err(super::Fail::malformed),
        }
    }

    /// Appends one value (already validated).
    pub fn append(&mut self, raw: Raw, buf: &[u8]) -> Result<(), String> {
        match &mut self.builder {
            Builder::Struct(node) => return node.append_present(raw.bytes(buf).ok_or("expected a message")?),
            Builder::Timestamp(b) => {
                b.append_value(
                    timestamp_micros(raw.bytes(buf).ok_or("expected a Timestamp")?)
                        .map_err(|e| e.to_string())?,
                );
                return Ok(());
            }
            Builder::List { .. } | Builder::Map { .. } => return self.append_repeated(&[raw], buf),
            Builder::Null { len, .. } => {
                *len += 1;
                return Ok(());
            }
            _ => {}
        }
        let value = decode_scalar(&self.kind, raw, buf)?;
        self.append_scalar(value)
    }

    fn append_scalar(&mut self, value: Scalar<'_>) -> Result<(), String> {
        match (&mut self.builder, value) {
            (Builder::Bool(b), Scalar::Bool(v)) => b.append_value(v),
            (Builder::Int32(b), Scalar::I32(v)) => b.append_value(v),
            (Builder::Int64(b), Scalar::I64(v)) => b.append_value(v),
            (Builder::Int64(b), Scalar::U32(v)) => b.append_value(i64::from(v)),
            (Builder::UInt64(b), Scalar::U64(v)) => b.append_value(i128::from(v)),
            (Builder::Float32(b), Scalar::F32(v)) => b.append_value(v),
            (Builder::Float64(b), Scalar::F64(v)) => b.append_value(v),
            (Builder::Str(b), Scalar::Str(v)) => b.append_value(v),
            (Builder::Enum(b, names), Scalar::Enum(n)) => match names.get(&n) {
                Some(name) => b.append_value(name),
                // Unknown numbers (a newer producer) are kept as their number, not lost.
                None => b.append_value(n.to_string()),
            },
            (Builder::Bytes(b), Scalar::Bytes(v)) => b.append_value(v),
            (_, value) => return Err(format!("cannot append {value:?} to this column")),
        }
        Ok(())
    }

    /// Appends the row of a repeated field (list or map) from all its occurrences.
    pub fn append_repeated(&mut self, raws: &[Raw], buf: &[u8]) -> Result<(), String> {
        match &mut self.builder {
            Builder::List { offsets, child, .. } => {
                let mut count = 0i32;
                for raw in raws {
                    if packable(&child.kind) && matches!(raw, Raw::Len { .. }) {
                        let kind = child.kind.clone();
                        for_each_packed(&kind, raw.bytes(buf).expect("len"), |r| {
                            count += 1;
                            child.append(r, buf)
                        })?;
                    } else {
                        child.append(*raw, buf)?;
                        count += 1;
                    }
                }
                offsets.push(offsets.last().copied().unwrap_or(0) + count);
                Ok(())
            }
            Builder::Map { offsets, key, value, .. } => {
                let mut entries = Vec::with_capacity(raws.len());
                for raw in raws {
                    let bytes = raw.bytes(buf).ok_or("map entry is not length-delimited")?;
                    let (mut k, mut v) = (None, None);
                    let mut reader = FieldReader::new(bytes);
                    while let Some((number, r)) = reader.next_field()? {
                        match number {
                            1 => k = Some(r),
                            2 => v = Some(r),
                            _ => {}
                        }
                    }
                    entries.push((bytes, k, v));
                }
                // Sorted by key (and the last of equal keys kept, as Protobuf's merge does) so
                // the same message always yields the same row.
                let key_kind = key.kind.clone();
                let sort_key = |(bytes, k, _): &(&[u8], Option<Raw>, Option<Raw>)| -> MapSortKey {
                    match k.map(|k| decode_scalar(&key_kind, k, bytes)) {
                        Some(Ok(Scalar::Str(s))) => MapSortKey::Text(s.to_string()),
                        Some(Ok(Scalar::Bool(b))) => MapSortKey::Int(i128::from(b)),
                        Some(Ok(Scalar::I32(i))) => MapSortKey::Int(i128::from(i)),
                        Some(Ok(Scalar::I64(i))) => MapSortKey::Int(i128::from(i)),
                        Some(Ok(Scalar::U32(i))) => MapSortKey::Int(i128::from(i)),
                        Some(Ok(Scalar::U64(i))) => MapSortKey::Int(i128::from(i)),
                        _ => MapSortKey::Int(0),
                    }
                };
                let mut keyed: Vec<_> = entries.iter().map(|e| (sort_key(e), e)).collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                let mut count = 0;
                for i in 0..keyed.len() {
                    if i + 1 < keyed.len() && keyed[i].0 == keyed[i + 1].0 {
                        continue;
                    }
                    let (bytes, k, v) = keyed[i].1;
                    match k {
                        Some(k) => key.append(*k, bytes)?,
                        None => key.append_absent(false)?,
                    }
                    match v {
                        Some(v) => value.append(*v, bytes)?,
                        None => value.append_absent(matches!(value.kind, Kind::Message(_)))?,
                    }
                    count += 1;
                }
                offsets.push(offsets.last().copied().unwrap_or(0) + count);
                Ok(())
            }
            _ => Err("not a repeated column".into()),
        }
    }

    /// Appends the value of an absent field: null where the field has presence, else the
    /// Protobuf default (0, "", false, the enum's zero value, an empty list).
    pub fn append_absent(&mut self, presence: bool) -> Result<(), String> {
        if presence {
            return self.append_null();
        }
        match &mut self.builder {
            Builder::Bool(b) => b.append_value(false),
            Builder::Int32(b) => b.append_value(0),
            Builder::Int64(b) => b.append_value(0),
            Builder::UInt64(b) => b.append_value(0),
            Builder::Float32(b) => b.append_value(0.0),
            Builder::Float64(b) => b.append_value(0.0),
            Builder::Str(b) => b.append_value(""),
            Builder::Enum(b, names) => b.append_value(names.get(&0).map_or("0", String::as_str)),
            Builder::Bytes(b) => b.append_value([]),
            Builder::List { .. } | Builder::Map { .. } => return self.append_repeated(&[], &[]),
            Builder::Timestamp(_) | Builder::Struct(_) | Builder::Null { .. } => return self.append_null(),
        }
        Ok(())
    }

    /// Appends a null (or, for lists and maps, an empty entry).
    pub fn append_null(&mut self) -> Result<(), String> {
        match &mut self.builder {
            Builder::Bool(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::UInt64(b) => b.append_null(),
            Builder::Float32(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Str(b) | Builder::Enum(b, _) => b.append_null(),
            Builder::Bytes(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Struct(node) => node.append_null()?,
            Builder::List { .. } | Builder::Map { .. } => return self.append_repeated(&[], &[]),
            Builder::Null { len, .. } => *len += 1,
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<ArrayRef, String> {
        let array: ArrayRef = match &mut self.builder {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::UInt64(b) => Arc::new(b.finish()),
            Builder::Float32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Str(b) | Builder::Enum(b, _) => Arc::new(b.finish()),
            Builder::Bytes(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Struct(node) => Arc::new(node.finish_struct()?),
            Builder::List { element, offsets, child } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(
                    ListArray::try_new(element.clone(), offsets, child.finish()?, None)
                        .map_err(|e| e.to_string())?,
                )
            }
            Builder::Map { entries, offsets, key, value } => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err("map entries are not a struct".into());
                };
                let kv = StructArray::try_new(kv.clone(), vec![key.finish()?, value.finish()?], None)
                    .map_err(|e| e.to_string())?;
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(
                    MapArray::try_new(entries.clone(), offsets, kv, None, false)
                        .map_err(|e| e.to_string())?,
                )
            }
            Builder::Null { data_type, len } => new_null_array(data_type, std::mem::take(len)),
        };
        Ok(array)
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum MapSortKey {
    Int(i128),
    Text(String),
}
