//! Golden test of every Protobuf scalar type, packed repeated fields and integer-keyed maps.

use std::sync::Arc;

use arrow_cast::display::FormatOptions;
use arrow_cast::pretty::pretty_format_batches_with_options;
use ingot_proto::{BatchDecoder, ContractRegistry, DynamicMessage, contract_arrow_schema};
use prost::Message;
use prost_reflect::{MapKey, MessageDescriptor, Value};

fn registry() -> ContractRegistry {
    ContractRegistry::load(format!("{}/tests/contracts", manifest_dir())).unwrap()
}

fn inner(descriptor: &MessageDescriptor, label: &str, weight: Option<i32>) -> Value {
    let mut m = DynamicMessage::new(descriptor.clone());
    m.set_field_by_name("label", Value::String(label.into()));
    if let Some(w) = weight {
        m.set_field_by_name("weight", Value::I32(w));
    }
    Value::Message(m)
}

#[test]
fn decodes_every_scalar_type_and_repeated_shape() {
    let registry = registry();
    let message = registry.message("test.v1.AllTypes").unwrap();
    let inner_type = registry.message("test.v1.Inner").unwrap();
    let mut m = DynamicMessage::new(message.clone());
    let fields = [
        ("f_double", Value::F64(-1.5)),
        ("f_float", Value::F32(2.25)),
        ("f_int32", Value::I32(-7)),
        ("f_int64", Value::I64(-9_000_000_000)),
        ("f_uint32", Value::U32(4_000_000_000)),
        ("f_uint64", Value::U64(18_000_000_000_000_000_000)),
        ("f_sint32", Value::I32(-3)),
        ("f_sint64", Value::I64(-5_000_000_000)),
        ("f_fixed32", Value::U32(3_000_000_000)),
        ("f_fixed64", Value::U64(12)),
        ("f_sfixed32", Value::I32(-11)),
        ("f_sfixed64", Value::I64(-13)),
        ("f_bool", Value::Bool(true)),
        ("f_bytes", Value::Bytes(vec![0xde, 0xad].into())),
        ("color", Value::EnumNumber(1)),
        ("packed_sint", Value::List(vec![Value::I32(-1), Value::I32(0), Value::I32(300)])),
        ("packed_double", Value::List(vec![Value::F64(0.5)])),
        ("inners", Value::List(vec![inner(&inner_type, "a", Some(1)), inner(&inner_type, "b", None)])),
        (
            "by_id",
            Value::Map(
                [
                    (MapKey::I64(20), inner(&inner_type, "twenty", None)),
                    (MapKey::I64(-1), inner(&inner_type, "minus", Some(0))),
                ]
                .into(),
            ),
        ),
    ];
    for (name, value) in fields {
        m.set_field_by_name(name, value);
    }
    let mut unknown_enum = DynamicMessage::new(message.clone());
    unknown_enum.set_field_by_name("color", Value::EnumNumber(7));
    unknown_enum.set_field_by_name("maybe", inner(&inner_type, "", None));

    // The same map key twice on the wire: the last entry wins, as Protobuf merges it.
    let mut twice = DynamicMessage::new(message.clone());
    twice
        .set_field_by_name("by_id", Value::Map([(MapKey::I64(5), inner(&inner_type, "first", None))].into()));
    let mut bytes = twice.encode_to_vec();
    let mut again = DynamicMessage::new(message.clone());
    again.set_field_by_name(
        "by_id",
        Value::Map([(MapKey::I64(5), inner(&inner_type, "second", None))].into()),
    );
    bytes.extend(again.encode_to_vec());

    let schema = Arc::new(contract_arrow_schema(&message).unwrap());
    let mut decoder = BatchDecoder::new(message, schema, 1 << 20).unwrap();
    for payload in [m.encode_to_vec(), unknown_enum.encode_to_vec(), bytes] {
        decoder.push(Some(&payload), 0).unwrap().unwrap();
    }
    let batch = decoder.finish().unwrap();
    let options = FormatOptions::default().with_null("NULL");
    let table = pretty_format_batches_with_options(&[batch], &options).unwrap().to_string();
    assert_eq!(table.trim(), include_str!("golden/all_types.txt").trim(), "\n{table}");
}

/// The package directory, read when the test runs: a test binary another checkout built into
/// a shared target directory must read this checkout's files, not that one's.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
}
