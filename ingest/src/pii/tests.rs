use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use ingot_proto::{BatchDecoder, ContractRegistry, DecodeFailure, FailureReason, contract_arrow_schema};
use ingot_secret::Secret;
use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};

use super::*;

fn order_type() -> MessageDescriptor {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/contracts");
    ContractRegistry::load(dir).unwrap().message("ingot.demo.v1.OrderEvent").unwrap()
}

fn topic(pii: serde_json::Value) -> TopicConfig {
    serde_json::from_value(serde_json::json!({
        "topic": "orders", "message": "ingot.demo.v1.OrderEvent", "pii": pii,
        "rules": [{ "name": "customer_known", "field": "customer_id", "pattern": "^c-" }],
    }))
    .unwrap()
}

fn policy(protection: PayloadProtection) -> TopicPii {
    let key = Arc::new(PiiKey::new(Secret::new("a test key, long enough")).unwrap());
    let pii = serde_json::json!([
        { "field": "customer_id", "action": "tokenize" },
        { "field": "card.last4", "action": "drop" },
        { "field": "items.sku", "action": "mask", "keep": 4 },
        { "field": "trace_id", "action": "mask", "keep": 6 },
    ]);
    TopicPii::compile(&topic(pii), &order_type(), Some(&key), protection).unwrap().unwrap()
}

fn nested(parent: &MessageDescriptor, field: &str) -> DynamicMessage {
    match parent.get_field_by_name(field).unwrap().kind() {
        Kind::Message(m) => DynamicMessage::new(m),
        _ => unreachable!("{field} is a message"),
    }
}

fn order(customer: &str) -> Vec<u8> {
    let descriptor = order_type();
    let mut order = DynamicMessage::new(descriptor.clone());
    let mut card = nested(&descriptor, "card");
    card.set_field_by_name("brand", Value::String("visa".into()));
    card.set_field_by_name("last4", Value::String("4242".into()));
    let items: Vec<Value> = ["sku-secret-1", "sku-secret-2"]
        .into_iter()
        .map(|sku| {
            let mut item = nested(&descriptor, "items");
            item.set_field_by_name("sku", Value::String(sku.into()));
            Value::Message(item)
        })
        .collect();
    order.set_field_by_name("customer_id", Value::String(customer.into()));
    order.set_field_by_name("trace_id", Value::String("trace-abcdef".into()));
    order.set_field_by_name("card", Value::Message(card));
    order.set_field_by_name("items", Value::List(items));
    order.encode_to_vec()
}

fn decode(payloads: &[Vec<u8>], pii: &TopicPii) -> RecordBatch {
    let schema = Arc::new(contract_arrow_schema(&order_type()).unwrap());
    let mut decoder = BatchDecoder::new(order_type(), schema, 1 << 20).unwrap();
    for payload in payloads {
        decoder.push(Some(payload), 0).unwrap().unwrap();
    }
    pii.protect_batch(decoder.finish().unwrap()).unwrap()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch.column_by_name(column).unwrap().as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
}

#[test]
fn decoded_rows_carry_tokens_nulls_and_masks() {
    let pii = policy(PayloadProtection::Encrypt);
    let batch = decode(
        &[order("c-alice@example.com"), order("c-bob@example.com"), order("c-alice@example.com")],
        &pii,
    );
    let tokens = strings(&batch, "customer_id");
    let expected = pii.key.token(b"c-alice@example.com");
    assert_eq!(tokens[0].as_deref(), Some(expected.as_str()));
    assert_eq!(tokens[0], tokens[2], "equal values, equal tokens");
    assert_ne!(tokens[0], tokens[1]);
    assert_eq!(strings(&batch, "trace_id")[0].as_deref(), Some("trace-****"));
    let card = batch.column_by_name("card").unwrap().as_struct();
    assert_eq!(card.column_by_name("last4").unwrap().null_count(), 3);
    assert_eq!(card.column_by_name("brand").unwrap().as_string::<i32>().value(0), "visa");
    let items = batch.column_by_name("items").unwrap().as_list::<i32>();
    let skus = items.values().as_struct().column_by_name("sku").unwrap().as_string::<i32>().clone();
    assert_eq!(skus.iter().flatten().collect::<Vec<_>>(), vec!["sku-****"; 6]);
}

#[test]
fn rewritten_payloads_hold_no_pii_and_decode_to_the_same_rows() {
    let pii = policy(PayloadProtection::Rewrite);
    let mut payload = order("c-alice@example.com");
    payload.extend([0x98, 0x06, 0x01]); // field 99, unknown to the contract: left out
    let stored = pii.protect_payload(&seal_context("orders", 0, 1), Some(&payload));
    assert_eq!(stored.protection.as_deref(), Some(format!("rewritten:{}", pii.key_id()).as_str()));
    let bytes = stored.bytes.unwrap();
    for raw in ["c-alice", "4242", "sku-secret", "abcdef"] {
        assert!(!bytes.windows(raw.len()).any(|w| w == raw.as_bytes()), "{raw} left in the payload");
    }
    let recovered = recover(stored.protection.as_deref(), b"", Some(bytes), || unreachable!()).unwrap();
    let Recovered::Protected(rewritten) = recovered else { panic!("{recovered:?}") };
    let again = decode(&[rewritten], &pii.applied_already());
    assert_eq!(again, decode(&[order("c-alice@example.com")], &pii), "the same row as straight from Kafka");

    let garbage = pii.protect_payload(b"", Some(b"\xff\xff not protobuf c-alice"));
    assert_eq!(garbage, ProtectedPayload { bytes: None, protection: Some(WITHHELD.into()) });
}

#[test]
fn encrypted_payloads_open_to_the_message_as_it_came() {
    let pii = policy(PayloadProtection::Encrypt);
    let payload = order("c-alice@example.com");
    let context = seal_context("orders", 3, 17);
    let stored = pii.protect_payload(&context, Some(&payload));
    assert_eq!(stored.protection.as_deref(), Some(format!("encrypted:{}", pii.key_id()).as_str()));
    let key = || Ok((*pii.key).clone());
    let opened = recover(stored.protection.as_deref(), &context, stored.bytes.clone(), key).unwrap();
    assert_eq!(opened, Recovered::Raw(Some(payload)));
    let elsewhere = recover(stored.protection.as_deref(), &seal_context("orders", 3, 18), stored.bytes, key);
    assert!(elsewhere.is_err());
    assert_eq!(pii.protect_payload(&context, None).bytes, None, "a tombstone has nothing to protect");
}

#[test]
fn a_rule_on_a_pii_field_does_not_quote_its_value() {
    let pii = policy(PayloadProtection::Encrypt);
    let rule = FailureReason::RuleViolation { rule: "customer_known".into() };
    let mut failure =
        DecodeFailure { reason: rule, detail: "field `customer_id` = \"x@y\" does not match".into() };
    pii.redact(&mut failure);
    assert_eq!(failure.detail, "field `customer_id` broke rule `customer_known` (value withheld: PII)");
}

#[test]
fn fields_are_checked_against_the_contract() {
    let key = Arc::new(PiiKey::new(Secret::new("a test key, long enough")).unwrap());
    let compile = |pii: serde_json::Value| {
        TopicPii::compile(&topic(pii), &order_type(), Some(&key), PayloadProtection::Encrypt)
            .map(|p| p.is_some())
    };
    let error = |pii| compile(pii).unwrap_err().to_string();
    assert!(
        error(serde_json::json!([{ "field": "email", "action": "drop" }])).contains("`email` is not a field")
    );
    assert!(
        error(serde_json::json!([{ "field": "total.units", "action": "tokenize" }]))
            .contains("string fields")
    );
    assert!(
        error(serde_json::json!([{ "field": "attributes", "action": "mask" }])).contains("string fields")
    );
    assert!(
        error(serde_json::json!([{ "field": "attributes.x", "action": "drop" }]))
            .contains("not a nested message")
    );
    assert!(
        error(serde_json::json!([{ "field": "order_id", "action": "drop", "keep": 2 }])).contains("`keep`")
    );
    assert!(compile(serde_json::json!([{ "field": "total.units", "action": "drop" }])).unwrap());
    assert!(!compile(serde_json::json!([])).unwrap());
    let no_key = TopicPii::compile(
        &topic(serde_json::json!([{ "field": "order_id", "action": "drop" }])),
        &order_type(),
        None,
        PayloadProtection::Encrypt,
    );
    assert!(no_key.is_err());
}

#[test]
fn masks_keep_a_prefix_and_hide_the_length() {
    assert_eq!(mask("203.0.113.77", 7), "203.0.1****");
    assert_eq!(mask("203.0.1****", 7), "203.0.1****", "masking twice changes nothing");
    assert_eq!(mask("abc", 4), "****");
    assert_eq!(mask("****", 4), "****");
    assert_eq!(mask("ünïcödé", 2), "ün****");
}
