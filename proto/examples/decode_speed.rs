//! Times decoding a realistic OrderEvent (nested items, money, a map, a oneof) into Arrow.
//! `cargo run --release -p ingot-proto --example decode_speed`
use std::sync::Arc;
use std::time::Instant;

use ingot_proto::{BatchDecoder, ContractRegistry, DynamicMessage, contract_arrow_schema};
use prost::Message;
use prost_reflect::{ReflectMessage, Value};

fn main() {
    let registry = ContractRegistry::load(concat!(env!("CARGO_MANIFEST_DIR"), "/contracts")).unwrap();
    let message = registry.message("ingot.demo.v1.OrderEvent").unwrap();
    let schema = Arc::new(contract_arrow_schema(&message).unwrap());
    let mut decoder = BatchDecoder::new(message.clone(), schema, 1 << 20).unwrap();
    let mut m = DynamicMessage::new(message.clone());
    for (f, v) in [
        ("event_id", "2b3c9c1e-8f4e-4b8e-9d55-0a7c6f1a2b3c"),
        ("idempotency_key", "o-1234:2"),
        ("order_id", "o-1234"),
        ("customer_id", "c-42"),
        ("currency", "EUR"),
        ("trace_id", "0123456789abcdef0123456789abcdef"),
    ] {
        m.set_field_by_name(f, Value::String(v.into()));
    }
    m.set_field_by_name("status", Value::EnumNumber(2));
    let sub = |parent: &DynamicMessage, field: &str| match parent
        .descriptor()
        .get_field_by_name(field)
        .unwrap()
        .kind()
    {
        prost_reflect::Kind::Message(d) => DynamicMessage::new(d),
        _ => unreachable!(),
    };
    let mut money = sub(&m, "total");
    money.set_field_by_name("units", Value::I64(120));
    money.set_field_by_name("nanos", Value::I32(990_000_000));
    let mut items = Vec::new();
    for i in 0..3 {
        let mut item = sub(&m, "items");
        item.set_field_by_name("sku", Value::String(format!("SKU-0000{i}")));
        item.set_field_by_name("quantity", Value::I32(2));
        item.set_field_by_name("unit_price", Value::Message(money.clone()));
        items.push(Value::Message(item));
    }
    m.set_field_by_name("items", Value::List(items));
    m.set_field_by_name("total", Value::Message(money.clone()));
    let mut ts = sub(&m, "occurred_at");
    ts.set_field_by_name("seconds", Value::I64(1_790_000_000));
    m.set_field_by_name("occurred_at", Value::Message(ts));
    m.set_field_by_name(
        "attributes",
        Value::Map(
            [
                (prost_reflect::MapKey::String("channel".into()), Value::String("web".into())),
                (prost_reflect::MapKey::String("region".into()), Value::String("eu".into())),
            ]
            .into(),
        ),
    );
    let mut card = sub(&m, "card");
    card.set_field_by_name("brand", Value::String("visa".into()));
    card.set_field_by_name("last4", Value::String("4242".into()));
    m.set_field_by_name("card", Value::Message(card));
    let bytes = m.encode_to_vec();
    let n = 1_000_000;
    let t = Instant::now();
    let mut rows = 0;
    for i in 0..n {
        decoder.push(Some(&bytes), 0).unwrap().unwrap();
        if (i + 1) % 65_536 == 0 {
            rows += std::hint::black_box(decoder.finish().unwrap()).num_rows();
        }
    }
    rows += decoder.finish().unwrap().num_rows();
    let elapsed = t.elapsed().as_secs_f64();
    assert_eq!(rows, n);
    println!(
        "{} bytes/event: {:.2} µs/event, {:.0} events/s on one core",
        bytes.len(),
        elapsed * 1e6 / n as f64,
        n as f64 / elapsed
    );
    let _ = m.descriptor();
}
