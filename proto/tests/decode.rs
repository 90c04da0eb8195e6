//! Golden tests of Protobuf → Arrow decoding, compared as pretty-printed tables, and the
//! reasons malformed messages get.

use std::sync::Arc;

use arrow_cast::display::FormatOptions;
use arrow_cast::pretty::pretty_format_batches_with_options;
use ingot_proto::{BatchDecoder, ContractRegistry, DynamicMessage, FailureReason, contract_arrow_schema};
use prost::Message;
use prost_reflect::{MapKey, ReflectMessage, Value};

fn registry() -> ContractRegistry {
    ContractRegistry::load(format!("{}/contracts", manifest_dir())).unwrap()
}

fn decode_all(decoder: &mut BatchDecoder, messages: &[DynamicMessage]) -> arrow_array::RecordBatch {
    for m in messages {
        decoder.push(Some(&m.encode_to_vec()), 0).unwrap().unwrap();
    }
    decoder.finish().unwrap()
}

fn decoder(name: &str) -> BatchDecoder {
    let message = registry().message(name).unwrap();
    let schema = Arc::new(contract_arrow_schema(&message).unwrap());
    BatchDecoder::new(message, schema, 1 << 20).unwrap()
}

fn sub(parent: &DynamicMessage, field: &str) -> DynamicMessage {
    match parent.descriptor().get_field_by_name(field).unwrap().kind() {
        prost_reflect::Kind::Message(m) => DynamicMessage::new(m),
        _ => unreachable!(),
    }
}

fn set(m: &mut DynamicMessage, field: &str, v: Value) {
    m.set_field_by_name(field, v);
}

/// A fully populated order, with every kind of field the contract has.
fn order() -> DynamicMessage {
    let mut o = DynamicMessage::new(registry().message("ingot.demo.v1.OrderEvent").unwrap());
    set(&mut o, "event_id", Value::String("e-1".into()));
    set(&mut o, "idempotency_key", Value::String("o-1:1".into()));
    set(&mut o, "order_id", Value::String("o-1".into()));
    set(&mut o, "customer_id", Value::String("c-9".into()));
    set(&mut o, "status", Value::EnumNumber(2));
    let mut item = sub(&o, "items");
    set(&mut item, "sku", Value::String("SKU-1".into()));
    set(&mut item, "quantity", Value::I32(2));
    let mut price = sub(&item, "unit_price");
    set(&mut price, "units", Value::I64(12));
    set(&mut price, "nanos", Value::I32(500_000_000));
    set(&mut item, "unit_price", Value::Message(price.clone()));
    set(&mut o, "items", Value::List(vec![Value::Message(item)]));
    set(&mut o, "total", Value::Message(price));
    set(&mut o, "currency", Value::String("EUR".into()));
    let mut ts = sub(&o, "occurred_at");
    set(&mut ts, "seconds", Value::I64(1_790_000_000));
    set(&mut ts, "nanos", Value::I32(123_456_789));
    set(&mut o, "occurred_at", Value::Message(ts));
    set(&mut o, "trace_id", Value::String("t".into()));
    set(
        &mut o,
        "attributes",
        Value::Map(
            [
                (MapKey::String("region".into()), Value::String("eu".into())),
                (MapKey::String("channel".into()), Value::String("web".into())),
            ]
            .into(),
        ),
    );
    set(&mut o, "bank_transfer_reference", Value::String("RF1".into()));
    o
}

/// Nulls print as `NULL`, so they cannot be mistaken for empty strings.
fn pretty(batch: arrow_array::RecordBatch) -> String {
    let options = FormatOptions::default().with_null("NULL");
    pretty_format_batches_with_options(&[batch], &options).unwrap().to_string()
}

#[test]
fn decodes_order_event_into_arrow() {
    let mut decoder = decoder("ingot.demo.v1.OrderEvent");
    let full = order();
    // Unset message fields, oneof members and optional fields are null; proto3 scalars
    // without presence read as their default.
    let sparse = DynamicMessage::new(full.descriptor());
    let batch = decode_all(&mut decoder, &[full, sparse]);
    let table = pretty(batch);
    let expected = include_str!("golden/order_event.txt");
    assert_eq!(table.trim(), expected.trim(), "\n{table}");
}

#[test]
fn decodes_click_event_optional_and_repeated_fields() {
    let mut decoder = decoder("ingot.demo.v1.ClickEvent");
    let mut c = DynamicMessage::new(registry().message("ingot.demo.v1.ClickEvent").unwrap());
    set(&mut c, "event_id", Value::String("e-2".into()));
    set(&mut c, "device", Value::EnumNumber(2));
    set(&mut c, "dwell_ms", Value::U32(4_000_000_000));
    set(&mut c, "scroll_depth", Value::F64(0.5));
    set(&mut c, "is_bot", Value::Bool(true));
    set(&mut c, "experiment_ids", Value::List(vec![Value::String("a".into()), Value::String("b".into())]));
    set(&mut c, "referrer", Value::String(String::new()));
    let batch = decode_all(&mut decoder, &[c]);
    let table = pretty(batch);
    let expected = include_str!("golden/click_event.txt");
    assert_eq!(table.trim(), expected.trim(), "\n{table}");
}

#[test]
fn quarantines_truncated_protobuf() {
    let mut decoder = decoder("ingot.demo.v1.OrderEvent");
    let mut bytes = order().encode_to_vec();
    bytes.truncate(bytes.len() - 2);
    let failure = decoder.push(Some(&bytes), 0).unwrap().unwrap_err();
    assert_eq!(failure.reason, FailureReason::Undecodable);
    // Nothing of the bad message reached the builders.
    assert_eq!(decoder.rows(), 0);
    assert_eq!(decoder.finish().unwrap().num_rows(), 0);
}

#[test]
fn quarantines_fields_the_contract_does_not_know() {
    let mut bytes = order().encode_to_vec();
    bytes.extend_from_slice(&[0xa0, 0x06, 0x01]); // field 100, varint 1
    let failure = decoder("ingot.demo.v1.OrderEvent").push(Some(&bytes), 0).unwrap().unwrap_err();
    assert_eq!(failure.reason, FailureReason::UnknownFields);
    assert!(failure.detail.contains("[100]"), "{}", failure.detail);
    let mut lenient = decoder("ingot.demo.v1.OrderEvent").allow_unknown_fields(true);
    assert!(lenient.push(Some(&bytes), 0).unwrap().is_ok());
}

#[test]
fn quarantines_oversize_and_empty_payloads() {
    let message = registry().message("ingot.demo.v1.OrderEvent").unwrap();
    let schema = Arc::new(contract_arrow_schema(&message).unwrap());
    let mut small = BatchDecoder::new(message, schema, 16).unwrap();
    let bytes = order().encode_to_vec();
    assert_eq!(small.push(Some(&bytes), 0).unwrap().unwrap_err().reason, FailureReason::Oversize);
    assert_eq!(small.push(None, 0).unwrap().unwrap_err().reason, FailureReason::EmptyPayload);
    // An empty value is a valid message with every field at its default.
    assert!(small.push(Some(&[]), 0).unwrap().is_ok());
}

#[test]
fn refuses_a_table_that_lacks_a_contract_field() {
    let message = registry().message("ingot.demo.v1.OrderEvent").unwrap();
    let full = contract_arrow_schema(&message).unwrap();
    let fewer: Vec<_> = full.fields().iter().filter(|f| f.name() != "currency").cloned().collect();
    let err = BatchDecoder::new(message, Arc::new(arrow_schema::Schema::new(fewer)), 1024).err().unwrap();
    assert!(err.to_string().contains("currency"), "{err}");
}

/// The package directory, read when the test runs: a test binary another checkout built into
/// a shared target directory must read this checkout's files, not that one's.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
}
