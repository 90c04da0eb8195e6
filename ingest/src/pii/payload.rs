//! PII in a quarantined payload: the raw bytes are sealed (encrypted under the PII key) or
//! rewritten (decoded, the PII fields acted on, encoded again) before they are stored or sent
//! to a DLQ. How a payload was protected is stored beside it, so a re-drive can undo a seal
//! and knows a rewritten payload's fields are protected already.

use prost::Message;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};

use super::{PiiAction, PiiKey, TopicPii};

/// How quarantined payloads of topics with PII fields are stored.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PayloadProtection {
    /// AES-256-GCM under the PII key: nothing is readable without the key; a re-drive opens it
    /// and decodes the message exactly as it arrived.
    #[default]
    Encrypt,
    /// The message decoded, its PII fields tokenized/dropped/masked and its unknown fields left
    /// out (nobody can tell whether they hold PII), then encoded again. Readable by anyone with
    /// the contract; a message that cannot be decoded cannot be rewritten and its payload is
    /// withheld (not stored).
    Rewrite,
}

/// A `protection` value: the payload as stored is the raw message.
pub const RAW: Option<&str> = None;
/// A `protection` value: no payload stored, because it could not be rewritten.
pub const WITHHELD: &str = "withheld";
const ENCRYPTED: &str = "encrypted:";
const REWRITTEN: &str = "rewritten:";

/// A payload as the quarantine and the DLQ get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedPayload {
    pub bytes: Option<Vec<u8>>,
    /// `encrypted:<key id>`, `rewritten:<key id>`, `withheld`, or none for the raw payload.
    pub protection: Option<String>,
}

/// A stored payload made ready to decode again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The message as it arrived: apply the topic's PII actions when decoding.
    Raw(Option<Vec<u8>>),
    /// Rewritten: its PII fields are protected already (tokenizing again would change them).
    Protected(Vec<u8>),
    /// Nothing was stored.
    Withheld,
}

/// What binds a sealed payload to its message.
pub fn seal_context(topic: &str, partition: i32, offset: i64) -> Vec<u8> {
    format!("{topic}/{partition}/{offset}").into_bytes()
}

impl TopicPii {
    /// `payload` (from `topic`/`partition`/`offset`) as it may be stored.
    pub fn protect_payload(&self, context: &[u8], payload: Option<&[u8]>) -> ProtectedPayload {
        let Some(payload) = payload else {
            return ProtectedPayload { bytes: None, protection: None };
        };
        match self.quarantine_payload {
            PayloadProtection::Encrypt => ProtectedPayload {
                bytes: Some(self.key.seal(context, payload)),
                protection: Some(format!("{ENCRYPTED}{}", self.key.id())),
            },
            PayloadProtection::Rewrite => match self.rewrite(payload) {
                Some(bytes) => ProtectedPayload {
                    bytes: Some(bytes),
                    protection: Some(format!("{REWRITTEN}{}", self.key.id())),
                },
                None => ProtectedPayload { bytes: None, protection: Some(WITHHELD.into()) },
            },
        }
    }

    /// The message re-encoded with its PII fields acted on; `None` when it does not decode.
    fn rewrite(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let mut message = DynamicMessage::decode(self.message.clone(), payload).ok()?;
        drop_unknown_fields(&mut message);
        for field in &self.fields {
            rewrite_at(&mut message, &field.path, field.action, &self.key);
        }
        Some(message.encode_to_vec())
    }
}

/// A stored payload (with its `protection`) ready to decode again; `key` opens sealed ones.
pub fn recover(
    protection: Option<&str>,
    context: &[u8],
    payload: Option<Vec<u8>>,
    key: impl FnOnce() -> Result<PiiKey, String>,
) -> Result<Recovered, String> {
    match protection {
        None => Ok(Recovered::Raw(payload)),
        Some(WITHHELD) => Ok(Recovered::Withheld),
        Some(p) if p.starts_with(ENCRYPTED) => {
            let sealed = payload.ok_or("an encrypted payload is missing")?;
            Ok(Recovered::Raw(Some(key()?.open(context, &sealed)?)))
        }
        Some(p) if p.starts_with(REWRITTEN) => Ok(Recovered::Protected(payload.unwrap_or_default())),
        Some(other) => Err(format!("unknown payload protection `{other}`")),
    }
}

fn drop_unknown_fields(message: &mut DynamicMessage) {
    let _ = message.take_unknown_fields().count();
    for (_, value) in message.fields_mut() {
        match value {
            Value::Message(inner) => drop_unknown_fields(inner),
            Value::List(items) => items.iter_mut().for_each(|item| {
                if let Value::Message(inner) = item {
                    drop_unknown_fields(inner);
                }
            }),
            Value::Map(entries) => entries.values_mut().for_each(|item| {
                if let Value::Message(inner) = item {
                    drop_unknown_fields(inner);
                }
            }),
            _ => {}
        }
    }
}

fn rewrite_at(message: &mut DynamicMessage, path: &[String], action: PiiAction, key: &PiiKey) {
    let Some((name, rest)) = path.split_first() else { return };
    let Some(field) = message.descriptor().get_field_by_name(name) else { return };
    if !message.has_field(&field) {
        return;
    }
    if rest.is_empty() && action == PiiAction::Drop {
        message.clear_field(&field);
        return;
    }
    match message.get_field_mut(&field) {
        Value::Message(inner) => rewrite_at(inner, rest, action, key),
        Value::List(items) if !rest.is_empty() => items.iter_mut().for_each(|item| {
            if let Value::Message(inner) = item {
                rewrite_at(inner, rest, action, key);
            }
        }),
        value if rest.is_empty() => rewrite_strings(value, action, key),
        _ => {}
    }
}

fn rewrite_strings(value: &mut Value, action: PiiAction, key: &PiiKey) {
    match value {
        Value::String(s) => {
            if let Some(rewritten) = action.rewrite(s, key) {
                *s = rewritten;
            }
        }
        Value::List(items) => items.iter_mut().for_each(|item| rewrite_strings(item, action, key)),
        _ => {}
    }
}
