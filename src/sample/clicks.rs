use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use rand::Rng;
use rand::rngs::StdRng;

use super::{EventTime, Keyed};

const PAGES: [&str; 5] = ["/", "/search", "/product/42", "/cart", "/checkout"];

/// A plausible `ClickEvent`; keyed by session so a session's clicks share a partition.
pub fn click(message: &MessageDescriptor, rng: &mut StdRng, n: u64, at: EventTime) -> Keyed {
    let mut event = DynamicMessage::new(message.clone());
    let session = format!("s-{}", rng.random_range(1..=2000));
    let event_id = uuid::Uuid::new_v4().to_string();
    event.set_field_by_name("event_id", Value::String(event_id.clone()));
    event.set_field_by_name("idempotency_key", Value::String(format!("{session}:{n}")));
    event.set_field_by_name("session_id", Value::String(session.clone()));
    if rng.random_bool(0.6) {
        event.set_field_by_name("customer_id", Value::String(format!("c-{}", rng.random_range(1..=500))));
    }
    let page = PAGES[rng.random_range(0..PAGES.len())];
    event.set_field_by_name("url", Value::String(format!("https://shop.example{page}")));
    if rng.random_bool(0.3) {
        event.set_field_by_name("referrer", Value::String("https://search.example/".into()));
    }
    event.set_field_by_name("device", Value::EnumNumber(rng.random_range(1..=3)));
    event.set_field_by_name("dwell_ms", Value::U32(rng.random_range(50..120_000)));
    event.set_field_by_name("scroll_depth", Value::F64(rng.random_range(0.0..=1.0)));
    event.set_field_by_name("is_bot", Value::Bool(rng.random_bool(0.02)));
    event.set_field_by_name("occurred_at", super::timestamp(message, "occurred_at", at));
    let experiments: Vec<Value> =
        (0..rng.random_range(0..3)).map(|i| Value::String(format!("exp-{i}"))).collect();
    event.set_field_by_name("experiment_ids", Value::List(experiments));
    (session.into_bytes(), event)
}
