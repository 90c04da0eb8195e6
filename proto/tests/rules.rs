//! Contract rules: each check, and the rule's name on failure.

use std::sync::Arc;

use ingot_proto::{
    BatchDecoder, ContractRegistry, DynamicMessage, FailureReason, RuleConfig, contract_arrow_schema,
};
use prost::Message;
use prost_reflect::Value;

fn order(fields: &[(&str, Value)]) -> DynamicMessage {
    let registry = ContractRegistry::load(format!("{}/contracts", manifest_dir())).unwrap();
    let mut m = DynamicMessage::new(registry.message("ingot.demo.v1.OrderEvent").unwrap());
    for (name, value) in fields {
        m.set_field_by_name(name, value.clone());
    }
    m
}

fn rule(toml_text: &str) -> RuleConfig {
    toml::from_str(toml_text).unwrap()
}

fn decoder(rules: &[RuleConfig]) -> Result<BatchDecoder, ingot_proto::ProtoError> {
    let registry = ContractRegistry::load(format!("{}/contracts", manifest_dir())).unwrap();
    let message = registry.message("ingot.demo.v1.OrderEvent").unwrap();
    let schema = Arc::new(contract_arrow_schema(&message).unwrap());
    BatchDecoder::new(message, schema, 1 << 20).unwrap().with_rules(rules)
}

/// Encodes the message and pushes it through a decoder with the one rule; on failure,
/// `<rule name>:<check>` where the check is read off the explanation.
fn check(rule_toml: &str, message: &DynamicMessage) -> Result<(), String> {
    let mut decoder = decoder(&[rule(rule_toml)]).unwrap();
    match decoder.push(Some(&message.encode_to_vec()), 1_800_000_000_000_000).unwrap() {
        Ok(()) => Ok(()),
        Err(failure) => {
            let FailureReason::RuleViolation { rule } = &failure.reason else { panic!("{failure}") };
            let check = [
                ("is missing", "required"),
                ("below the minimum", "min"),
                ("above the maximum", "max"),
                ("is not one of", "allowed"),
                ("does not match", "pattern"),
                ("is older than", "max_age"),
                ("in the future", "max_future_skew"),
            ]
            .iter()
            .find(|(phrase, _)| failure.detail.contains(phrase))
            .map_or("?", |(_, check)| check);
            Err(format!("{rule}:{check}"))
        }
    }
}

#[test]
fn required_treats_proto3_defaults_as_missing() {
    let r = "name = \"id\"\nfield = \"order_id\"\nrequired = true";
    assert_eq!(check(r, &order(&[])), Err("id:required".into()));
    assert_eq!(check(r, &order(&[("order_id", Value::String("o".into()))])), Ok(()));
}

#[test]
fn allowed_compares_enums_by_name() {
    let r = "name = \"st\"\nfield = \"status\"\nallowed = [\"ORDER_STATUS_PAID\"]";
    assert_eq!(check(r, &order(&[("status", Value::EnumNumber(2))])), Ok(()));
    assert_eq!(check(r, &order(&[("status", Value::EnumNumber(1))])), Err("st:allowed".into()));
}

#[test]
fn ranges_and_patterns() {
    let min = "name = \"q\"\nfield = \"currency\"\npattern = \"^[A-Z]{3}$\"";
    assert_eq!(check(min, &order(&[("currency", Value::String("eur".into()))])), Err("q:pattern".into()));
    assert_eq!(check(min, &order(&[("currency", Value::String("EUR".into()))])), Ok(()));
}

#[test]
fn nested_paths_and_numeric_bounds() {
    let registry = ContractRegistry::load(format!("{}/contracts", manifest_dir())).unwrap();
    let money = registry.message("ingot.demo.v1.Money").unwrap();
    let mut total = DynamicMessage::new(money);
    total.set_field_by_name("units", Value::I64(-5));
    let r = "name = \"neg\"\nfield = \"total.units\"\nmin = 0";
    assert_eq!(check(r, &order(&[("total", Value::Message(total))])), Err("neg:min".into()));
    // An unset parent message has no value below it: the bound does not apply.
    assert_eq!(check(r, &order(&[])), Ok(()));
}

#[test]
fn event_time_skew_and_age() {
    let registry = ContractRegistry::load(format!("{}/contracts", manifest_dir())).unwrap();
    let ts = |seconds: i64| {
        let mut t = DynamicMessage::new(registry.message("google.protobuf.Timestamp").unwrap());
        t.set_field_by_name("seconds", Value::I64(seconds));
        Value::Message(t)
    };
    let now = 1_800_000_000;
    let skew = "name = \"future\"\nfield = \"occurred_at\"\nmax_future_skew = \"5m\"";
    assert_eq!(check(skew, &order(&[("occurred_at", ts(now + 3600))])), Err("future:max_future_skew".into()));
    assert_eq!(check(skew, &order(&[("occurred_at", ts(now + 60))])), Ok(()));
    let age = "name = \"old\"\nfield = \"occurred_at\"\nmax_age = \"1d\"";
    assert_eq!(check(age, &order(&[("occurred_at", ts(now - 2 * 86_400))])), Err("old:max_age".into()));
}

#[test]
fn typo_in_rule_fails_at_start_up() {
    let bad_field = rule("name = \"x\"\nfield = \"ordr_id\"\nrequired = true");
    let err = decoder(&[bad_field]).err().unwrap().to_string();
    assert!(err.contains("rule `x`") && err.contains("ordr_id"), "{err}");
    let no_check = rule("name = \"y\"\nfield = \"order_id\"");
    assert!(decoder(&[no_check]).is_err());
}

#[test]
fn rules_look_into_every_element_of_repeated_messages() {
    let registry = ContractRegistry::load(format!("{}/contracts", manifest_dir())).unwrap();
    let item_type = registry.message("ingot.demo.v1.LineItem").unwrap();
    let item = |quantity: i32| {
        let mut i = DynamicMessage::new(item_type.clone());
        i.set_field_by_name("sku", Value::String("SKU-1".into()));
        i.set_field_by_name("quantity", Value::I32(quantity));
        Value::Message(i)
    };
    let r = "name = \"qty\"\nfield = \"items.quantity\"\nmin = 1";
    assert_eq!(check(r, &order(&[("items", Value::List(vec![item(2), item(3)]))])), Ok(()));
    assert_eq!(check(r, &order(&[("items", Value::List(vec![item(2), item(-1)]))])), Err("qty:min".into()));
    let sku = "name = \"sku\"\nfield = \"items.sku\"\npattern = \"^SKU-\"";
    assert_eq!(check(sku, &order(&[("items", Value::List(vec![item(1)]))])), Ok(()));
}

/// The package directory, read when the test runs: a test binary another checkout built into
/// a shared target directory must read this checkout's files, not that one's.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
}
