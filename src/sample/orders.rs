use std::collections::HashMap;

use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage, Value};
use rand::Rng;
use rand::rngs::StdRng;

use super::{EventTime, Keyed};

const CURRENCIES: [&str; 3] = ["EUR", "USD", "GBP"];
const STATUSES: [i32; 5] = [1, 2, 3, 4, 5];
const CHANNELS: [&str; 3] = ["web", "ios", "android"];

fn child(message: &MessageDescriptor, field: &str) -> DynamicMessage {
    match message.get_field_by_name(field).map(|f| f.kind()) {
        Some(Kind::Message(m)) => DynamicMessage::new(m),
        _ => panic!("{field} is not a message field of {}", message.full_name()),
    }
}

fn money(template: &DynamicMessage, units: i64, nanos: i32) -> Value {
    let mut m = DynamicMessage::new(template.descriptor());
    m.set_field_by_name("units", Value::I64(units));
    m.set_field_by_name("nanos", Value::I32(nanos));
    Value::Message(m)
}

/// A plausible `OrderEvent`; keyed by order id so an order's events share a partition.
pub fn order(message: &MessageDescriptor, rng: &mut StdRng, n: u64, at: EventTime) -> Keyed {
    let mut event = DynamicMessage::new(message.clone());
    let order_id = format!("o-{}", n / 3 + 1);
    // An order's three events: placed, paid, then shipped (or now and then cancelled). Each
    // status once per order, so the idempotency key names exactly one business event.
    let status = match n % 3 {
        2 if rng.random_bool(0.1) => STATUSES[4],
        step => STATUSES[step as usize],
    };
    event.set_field_by_name("event_id", Value::String(uuid::Uuid::new_v4().to_string()));
    event.set_field_by_name("idempotency_key", Value::String(format!("{order_id}:{status}")));
    event.set_field_by_name("order_id", Value::String(order_id.clone()));
    event.set_field_by_name("customer_id", Value::String(format!("c-{}", rng.random_range(1..=500))));
    event.set_field_by_name("status", Value::EnumNumber(status));

    let item_template = child(message, "items");
    let money_template = child(&item_template.descriptor(), "unit_price");
    let mut total_nanos: i64 = 0;
    let items: Vec<Value> = (0..rng.random_range(1..=4))
        .map(|_| {
            let quantity = rng.random_range(1..=5);
            let units = rng.random_range(1..=120);
            let nanos = [0, 490_000_000, 990_000_000][rng.random_range(0..3)];
            total_nanos += quantity as i64 * (units * 1_000_000_000 + nanos as i64);
            let mut item = DynamicMessage::new(item_template.descriptor());
            item.set_field_by_name("sku", Value::String(format!("SKU-{:05}", rng.random_range(1..5000))));
            item.set_field_by_name("quantity", Value::I32(quantity));
            item.set_field_by_name("unit_price", money(&money_template, units, nanos));
            Value::Message(item)
        })
        .collect();
    event.set_field_by_name("items", Value::List(items));
    event.set_field_by_name(
        "total",
        money(&money_template, total_nanos / 1_000_000_000, (total_nanos % 1_000_000_000) as i32),
    );
    event.set_field_by_name("currency", Value::String(CURRENCIES[rng.random_range(0..3)].into()));
    event.set_field_by_name("occurred_at", super::timestamp(message, "occurred_at", at));
    event.set_field_by_name("trace_id", Value::String(format!("{:032x}", rng.random::<u128>())));
    let attributes = HashMap::from([
        (MapKey::String("channel".into()), Value::String(CHANNELS[rng.random_range(0..3)].into())),
        (
            MapKey::String("region".into()),
            Value::String(if rng.random_bool(0.5) { "eu" } else { "us" }.into()),
        ),
    ]);
    event.set_field_by_name("attributes", Value::Map(attributes));
    match rng.random_range(0..3) {
        0 => {
            let mut card = child(message, "card");
            card.set_field_by_name(
                "brand",
                Value::String(if rng.random_bool(0.6) { "visa" } else { "mastercard" }.into()),
            );
            card.set_field_by_name("last4", Value::String(format!("{:04}", rng.random_range(0..10_000))));
            event.set_field_by_name("card", Value::Message(card));
        }
        1 => {
            let mut wallet = child(message, "wallet");
            wallet.set_field_by_name("provider", Value::String("paypal".into()));
            event.set_field_by_name("wallet", Value::Message(wallet));
        }
        _ => event.set_field_by_name("bank_transfer_reference", Value::String(format!("RF{:010}", n))),
    }
    (order_id.into_bytes(), event)
}
