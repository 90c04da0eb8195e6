use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};
use rand::Rng;
use rand::rngs::StdRng;

use super::{EventTime, Keyed};

/// Random values for every scalar field of any contract, so `ingot produce` works for a
/// topic whose contract ingot has never seen. Timestamps get the event time.
pub fn random(message: &MessageDescriptor, rng: &mut StdRng, n: u64, at: EventTime) -> Keyed {
    let mut event = DynamicMessage::new(message.clone());
    for field in message.fields() {
        if field.is_list() || field.is_map() || field.containing_oneof().is_some() {
            continue;
        }
        let value = match field.kind() {
            Kind::String => Value::String(format!("{}-{}", field.name(), n)),
            Kind::Bool => Value::Bool(rng.random_bool(0.5)),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(rng.random_range(0..1000)),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(rng.random_range(0..1_000_000)),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(rng.random_range(0..1000)),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(rng.random_range(0..1_000_000)),
            Kind::Float => Value::F32(rng.random()),
            Kind::Double => Value::F64(rng.random()),
            Kind::Bytes => Value::Bytes(n.to_be_bytes().to_vec().into()),
            Kind::Enum(e) => Value::EnumNumber(e.values().last().map_or(0, |v| v.number())),
            Kind::Message(m) if ingot_proto::is_timestamp_message(&m) => {
                super::timestamp(message, field.name(), at)
            }
            Kind::Message(_) => continue,
        };
        event.set_field(&field, value);
    }
    (n.to_string().into_bytes(), event)
}
