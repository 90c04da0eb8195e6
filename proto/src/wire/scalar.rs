//! Interpreting one wire value as the scalar its field's kind says it is.

use prost_reflect::Kind;

use super::reader::{FieldReader, Raw, read_varint, zigzag32, zigzag64};

/// A decoded single value, borrowing strings and bytes from the message buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Bool(bool),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
    Enum(i32),
    /// A nested message's bytes (including `Timestamp`).
    Message(&'a [u8]),
}

/// Wire type a kind is encoded with (length-delimited for strings, bytes and messages).
pub(crate) fn expected_wire(kind: &Kind) -> &'static str {
    match kind {
        Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => "fixed32",
        Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => "fixed64",
        Kind::String | Kind::Bytes | Kind::Message(_) => "length-delimited",
        _ => "varint",
    }
}

/// Whether repeated values of this kind may be packed into one length-delimited value.
pub(crate) fn packable(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}

/// Decodes `raw` as a value of `kind`; a wire type that does not fit the kind, or a string
/// that is not UTF-8, is an error (the message is undecodable).
pub(crate) fn decode_scalar<'a>(kind: &Kind, raw: Raw, buf: &'a [u8]) -> Result<Scalar<'a>, String> {
    let value = match (kind, raw) {
        (Kind::Bool, Raw::Varint(v)) => Scalar::Bool(v != 0),
        (Kind::Int32, Raw::Varint(v)) => Scalar::I32(v as i32),
        (Kind::Sint32, Raw::Varint(v)) => Scalar::I32(zigzag32(v)),
        (Kind::Sfixed32, Raw::Fixed32(v)) => Scalar::I32(v as i32),
        (Kind::Int64, Raw::Varint(v)) => Scalar::I64(v as i64),
        (Kind::Sint64, Raw::Varint(v)) => Scalar::I64(zigzag64(v)),
        (Kind::Sfixed64, Raw::Fixed64(v)) => Scalar::I64(v as i64),
        (Kind::Uint32, Raw::Varint(v)) => Scalar::U32(v as u32),
        (Kind::Fixed32, Raw::Fixed32(v)) => Scalar::U32(v),
        (Kind::Uint64, Raw::Varint(v)) => Scalar::U64(v),
        (Kind::Fixed64, Raw::Fixed64(v)) => Scalar::U64(v),
        (Kind::Float, Raw::Fixed32(v)) => Scalar::F32(f32::from_bits(v)),
        (Kind::Double, Raw::Fixed64(v)) => Scalar::F64(f64::from_bits(v)),
        (Kind::Enum(_), Raw::Varint(v)) => Scalar::Enum(v as i32),
        (Kind::String, raw @ Raw::Len { .. }) => {
            let bytes = raw.bytes(buf).expect("length-delimited");
            Scalar::Str(std::str::from_utf8(bytes).map_err(|e| format!("string is not UTF-8: {e}"))?)
        }
        (Kind::Bytes, raw @ Raw::Len { .. }) => Scalar::Bytes(raw.bytes(buf).expect("length-delimited")),
        (Kind::Message(_), raw @ Raw::Len { .. }) => {
            Scalar::Message(raw.bytes(buf).expect("length-delimited"))
        }
        (kind, raw) => {
            return Err(format!("expected {} for {kind:?}, found {raw:?}", expected_wire(kind)));
        }
    };
    Ok(value)
}

/// Calls `f` for each value of a packed repeated field.
pub(crate) fn for_each_packed(
    kind: &Kind,
    bytes: &[u8],
    mut f: impl FnMut(Raw) -> Result<(), String>,
) -> Result<(), String> {
    let mut pos = 0;
    while pos < bytes.len() {
        let raw = match expected_wire(kind) {
            "fixed32" => {
                let chunk = bytes.get(pos..pos + 4).ok_or("truncated packed fixed32")?;
                pos += 4;
                Raw::Fixed32(u32::from_le_bytes(chunk.try_into().expect("4 bytes")))
            }
            "fixed64" => {
                let chunk = bytes.get(pos..pos + 8).ok_or("truncated packed fixed64")?;
                pos += 8;
                Raw::Fixed64(u64::from_le_bytes(chunk.try_into().expect("8 bytes")))
            }
            _ => {
                let (v, len) = read_varint(&bytes[pos..]).ok_or("truncated packed varint")?;
                pos += len;
                Raw::Varint(v)
            }
        };
        f(raw)?;
    }
    Ok(())
}

/// Earliest instant a `google.protobuf.Timestamp` may hold: 0001-01-01T00:00:00Z.
pub const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Latest whole second a `google.protobuf.Timestamp` may hold: 9999-12-31T23:59:59Z.
pub const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// Why Timestamp bytes cannot become a value.
#[derive(Debug)]
pub(crate) enum TimestampError {
    /// Not a Timestamp encoding at all.
    Malformed(String),
    /// Well-formed, but outside what the Timestamp type allows (years 1 to 9999, nanos below
    /// one second). Such values are what overflows Iceberg's and DataFusion's date arithmetic
    /// later, so they never reach a table.
    OutOfRange(String),
}

impl std::fmt::Display for TimestampError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimestampError::Malformed(m) | TimestampError::OutOfRange(m) => f.write_str(m),
        }
    }
}

/// `google.protobuf.Timestamp` bytes as microseconds since the epoch, within the range the
/// Protobuf specification gives the type.
pub(crate) fn timestamp_micros(bytes: &[u8]) -> Result<i64, TimestampError> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut reader = FieldReader::new(bytes);
    while let Some((number, raw)) = reader.next_field().map_err(TimestampError::Malformed)? {
        match (number, raw) {
            // int64 and int32 on the wire: a negative int32 is sign-extended to 64 bits.
            (1, Raw::Varint(v)) => seconds = v as i64,
            (2, Raw::Varint(v)) => nanos = v as i64,
            (1 | 2, other) => {
                return Err(TimestampError::Malformed(format!(
                    "Timestamp field {number}: unexpected {other:?}"
                )));
            }
            _ => {}
        }
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds) {
        return Err(TimestampError::OutOfRange(format!(
            "Timestamp seconds {seconds} is outside 0001-01-01..9999-12-31"
        )));
    }
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(TimestampError::OutOfRange(format!("Timestamp nanos {nanos} is outside 0..999999999")));
    }
    Ok(seconds * 1_000_000 + nanos / 1_000)
}

/// Whether microseconds since the epoch lie in the Timestamp range (years 1 to 9999).
pub fn micros_in_timestamp_range(micros: i64) -> bool {
    (MIN_TIMESTAMP_SECONDS * 1_000_000..=MAX_TIMESTAMP_SECONDS * 1_000_000 + 999_999).contains(&micros)
}
