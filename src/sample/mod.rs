//! Sample events for the demo contracts (and plausible random ones for any other), plus the
//! malformed, duplicated and late messages a real topic carries.

mod clicks;
mod generic;
mod orders;

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A generated message with the Kafka key it is produced under.
pub(crate) type Keyed = (Vec<u8>, DynamicMessage);

/// When a generated event happened.
pub(crate) type EventTime = chrono::DateTime<chrono::Utc>;

/// What kind of message the generator produced, so callers can reconcile counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    Good,
    Duplicate,
    Late,
    Bad,
}

/// One message to produce.
pub struct Sample {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub kind: SampleKind,
}

/// Shares of each kind of message (the rest are good).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mix {
    pub bad: f64,
    pub duplicate: f64,
    pub late: f64,
}

/// Generates samples of one message type.
pub struct SampleGenerator {
    message: MessageDescriptor,
    rng: StdRng,
    mix: Mix,
    sequence: u64,
    /// Recent good messages, the source of duplicates.
    recent: Vec<(Vec<u8>, Vec<u8>)>,
}

impl SampleGenerator {
    /// Business ids (and so idempotency keys) are numbered from `seed` × 10⁷: runs with
    /// different seeds describe different events; the same seed replays the same ones.
    pub fn new(message: MessageDescriptor, mix: Mix, seed: u64) -> Self {
        let sequence = seed.wrapping_mul(10_000_000);
        Self { message, rng: StdRng::seed_from_u64(seed), mix, sequence, recent: Vec::new() }
    }

    pub fn next_sample(&mut self) -> Sample {
        self.sequence += 1;
        let roll: f64 = self.rng.random();
        if roll < self.mix.bad {
            return self.bad();
        }
        if roll < self.mix.bad + self.mix.duplicate && !self.recent.is_empty() {
            let i = self.rng.random_range(0..self.recent.len());
            let (key, payload) = self.recent[i].clone();
            return Sample { key, payload, kind: SampleKind::Duplicate };
        }
        let late = roll < self.mix.bad + self.mix.duplicate + self.mix.late;
        let now = chrono::Utc::now();
        let event_time = if late {
            now - chrono::Duration::minutes(self.rng.random_range(120..2880))
        } else {
            now - chrono::Duration::milliseconds(self.rng.random_range(0..5_000))
        };
        let (key, message) = self.good(event_time);
        let payload = message.encode_to_vec();
        if self.recent.len() < 1024 {
            self.recent.push((key.clone(), payload.clone()));
        } else {
            let i = self.rng.random_range(0..self.recent.len());
            self.recent[i] = (key.clone(), payload.clone());
        }
        Sample { key, payload, kind: if late { SampleKind::Late } else { SampleKind::Good } }
    }

    fn good(&mut self, event_time: EventTime) -> Keyed {
        let n = self.sequence;
        match self.message.full_name() {
            "ingot.demo.v1.OrderEvent" => orders::order(&self.message, &mut self.rng, n, event_time),
            "ingot.demo.v1.ClickEvent" => clicks::click(&self.message, &mut self.rng, n, event_time),
            _ => generic::random(&self.message, &mut self.rng, n, event_time),
        }
    }

    /// Malformed in one of the ways real topics are: truncated, garbage, empty, or a valid
    /// encoding that breaks the contract's rules.
    fn bad(&mut self) -> Sample {
        let key = format!("bad-{}", self.sequence).into_bytes();
        let (_, mut message) = self.good(chrono::Utc::now());
        let payload = match self.sequence % 4 {
            0 => {
                let mut bytes = message.encode_to_vec();
                bytes.truncate(bytes.len().saturating_sub(3).max(1));
                // A length prefix that runs past the end: never a valid encoding.
                bytes.extend_from_slice(&[0x0a, 0x7f]);
                bytes
            }
            1 => (0..64).map(|_| self.rng.random::<u8>() | 0x80).chain([0xff]).collect(),
            // Produced as a tombstone (no value at all).
            2 => Vec::new(),
            _ => {
                // Valid Protobuf, but every `*_id` string left empty: the demo contracts'
                // rules require their ids.
                let ids = self.message.fields().filter(|f| {
                    f.name().ends_with("_id")
                        && matches!(f.kind(), prost_reflect::Kind::String)
                        && !f.is_list()
                });
                for field in ids {
                    message.set_field(&field, Value::String(String::new()));
                }
                message.encode_to_vec()
            }
        };
        Sample { key, payload, kind: SampleKind::Bad }
    }
}

/// `google.protobuf.Timestamp` for a time.
pub(crate) fn timestamp(
    message: &MessageDescriptor,
    field: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Value {
    let descriptor = match message.get_field_by_name(field).map(|f| f.kind()) {
        Some(prost_reflect::Kind::Message(m)) => m,
        _ => panic!("{field} is not a Timestamp field of {}", message.full_name()),
    };
    let mut ts = DynamicMessage::new(descriptor);
    ts.set_field_by_name("seconds", Value::I64(at.timestamp()));
    ts.set_field_by_name("nanos", Value::I32(at.timestamp_subsec_micros() as i32 * 1000));
    Value::Message(ts)
}
