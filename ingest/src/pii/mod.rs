//! PII protection at the edge: fields a topic marks as PII are tokenized, dropped or masked
//! before anything is written — bronze rows, quarantine payloads and errors, DLQ messages —
//! and the key that tokens and sealed payloads depend on lives only in the environment.
//! The threat model is in the README ("PII at the edge").

mod columns;
mod key;
mod payload;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use ingot_proto::{DecodeFailure, FailureReason, MessageDescriptor};
use prost_reflect::Kind;
use serde::Deserialize;

pub use key::{MIN_KEY_BYTES, PiiKey};
pub use payload::{PayloadProtection, ProtectedPayload, RAW, Recovered, WITHHELD, recover, seal_context};

use crate::{IngestError, TopicConfig};

/// Snapshot summary property of bronze and quarantine commits holding protected data: the id
/// of the PII key, so that a key rotation shows in the table's history.
pub const KEY_ID_PROPERTY: &str = "ingot.pii.key-id";

/// Refuses to add tokens of `key_id` to `table` when its latest tokens are of another key,
/// unless that key is `rotated_from`.
pub fn check_key_continuity(
    table: &ingot_lake::Table,
    key_id: &str,
    rotated_from: Option<&str>,
) -> Result<(), IngestError> {
    let metadata = table.metadata();
    let latest = metadata
        .snapshots()
        .filter_map(|s| {
            s.summary().additional_properties.get(KEY_ID_PROPERTY).map(|id| (s.sequence_number(), id))
        })
        .max_by_key(|(sequence, _)| *sequence)
        .map(|(_, id)| id.as_str());
    match latest {
        Some(previous) if previous != key_id && rotated_from != Some(previous) => {
            Err(IngestError::Config(format!(
                "{} holds tokens of PII key {previous}, but the configured key ({}) is {key_id}: new tokens \
             would not join the old ones. If the key was rotated on purpose, set \
             ingest.pii.rotated_from = \"{previous}\"",
                table.identifier(),
                "ingest.pii.key_env"
            )))
        }
        _ => Ok(()),
    }
}

/// `[ingest.pii]`: the key and how quarantined payloads are protected.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Environment variable holding the key (at least 16 bytes). Needed when a topic has
    /// `pii` fields; the key itself is never in a file.
    #[serde(default = "default_key_env")]
    pub key_env: String,
    /// `encrypt` (default) or `rewrite`; see [`PayloadProtection`].
    #[serde(default)]
    pub quarantine_payload: PayloadProtection,
    /// The id of the key used before, when the key was rotated on purpose: a bronze table
    /// whose tokens are of another key is refused at start unless it is this one (a second
    /// instance with the wrong key would otherwise write tokens that never join).
    #[serde(default)]
    pub rotated_from: Option<String>,
}

fn default_key_env() -> String {
    "INGOT_PII_KEY".into()
}

impl Default for PiiConfig {
    fn default() -> Self {
        Self {
            key_env: default_key_env(),
            quarantine_payload: PayloadProtection::default(),
            rotated_from: None,
        }
    }
}

impl PiiConfig {
    /// The key, read from the environment.
    pub fn key(&self) -> Result<PiiKey, IngestError> {
        PiiKey::from_env("ingest.pii.key_env", &self.key_env).map_err(IngestError::Config)
    }
}

/// One `pii` entry of a topic: `{ field = "customer.email", action = "tokenize" }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PiiField {
    /// Dotted path of a contract field; it passes through repeated messages.
    pub field: String,
    pub action: PiiActionName,
    /// `mask` only: how many leading characters stay readable (default 4).
    #[serde(default)]
    pub keep: Option<usize>,
}

/// What happens to a PII field.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PiiActionName {
    /// Keyed HMAC-SHA256, hex: equal values give equal tokens, so joins still work.
    Tokenize,
    /// Stored as null.
    Drop,
    /// The first `keep` characters, then `****` (the length is not kept either).
    Mask,
}

const DEFAULT_MASK_KEEP: usize = 4;

/// A compiled action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PiiAction {
    Tokenize,
    Drop,
    Mask {
        keep: usize,
    },
    /// Applied already (a rewritten payload's tokens): left as it is.
    Kept,
}

impl PiiAction {
    /// What a string value becomes, for the actions that rewrite strings (`None`: drop and
    /// kept, which do not). Empty strings stay empty: they hold nothing to protect.
    fn rewrite(self, value: &str, key: &PiiKey) -> Option<String> {
        match self {
            _ if value.is_empty() => Some(String::new()),
            PiiAction::Tokenize => Some(key.token(value.as_bytes())),
            PiiAction::Mask { keep } => Some(mask(value, keep)),
            PiiAction::Drop | PiiAction::Kept => None,
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledField {
    field: String,
    path: Vec<String>,
    action: PiiAction,
}

/// A topic's PII fields, checked against its contract, with the key.
#[derive(Debug, Clone)]
pub struct TopicPii {
    key: Arc<PiiKey>,
    message: MessageDescriptor,
    fields: Vec<CompiledField>,
    quarantine_payload: PayloadProtection,
    /// The topic's rules on a PII field (name → field): their errors must not quote the value,
    /// and they cannot judge a token.
    rules_on_pii: BTreeMap<String, String>,
}

impl TopicPii {
    /// `None` when the topic marks no field as PII. Every field must exist in the contract,
    /// and `tokenize`/`mask` need a string field.
    pub fn compile(
        topic: &TopicConfig,
        message: &MessageDescriptor,
        key: Option<&Arc<PiiKey>>,
        quarantine_payload: PayloadProtection,
    ) -> Result<Option<Self>, IngestError> {
        if topic.pii.is_empty() {
            return Ok(None);
        }
        let problem = |i: usize, problem: String| IngestError::Topic {
            topic: topic.topic.clone(),
            problem: format!("pii[{i}] (`{}`): {problem}", topic.pii[i].field),
        };
        let Some(key) = key else {
            return Err(IngestError::Config(format!(
                "topic {} has pii fields but no key was loaded",
                topic.topic
            )));
        };
        let mut fields = Vec::new();
        for (i, entry) in topic.pii.iter().enumerate() {
            let leaf = resolve(message, &entry.field).map_err(|p| problem(i, p))?;
            let action = match (entry.action, entry.keep) {
                (PiiActionName::Mask, keep) => PiiAction::Mask { keep: keep.unwrap_or(DEFAULT_MASK_KEEP) },
                (_, Some(_)) => return Err(problem(i, "`keep` goes with action = \"mask\" only".into())),
                (PiiActionName::Tokenize, None) => PiiAction::Tokenize,
                (PiiActionName::Drop, None) => PiiAction::Drop,
            };
            if action != PiiAction::Drop && (leaf.is_map() || leaf.kind() != Kind::String) {
                return Err(problem(
                    i,
                    "tokenize and mask apply to string fields; use drop for others".into(),
                ));
            }
            let path = entry.field.split('.').map(str::to_string).collect();
            fields.push(CompiledField { field: entry.field.clone(), path, action });
        }
        let rules_on_pii = topic
            .rules
            .iter()
            .filter(|rule| covers(&fields, &rule.field))
            .map(|rule| (rule.name.clone(), rule.field.clone()))
            .collect();
        let (key, message) = (key.clone(), message.clone());
        Ok(Some(Self { key, message, fields, quarantine_payload, rules_on_pii }))
    }

    /// The same fields for a payload whose PII was rewritten already: tokens stay as they are
    /// (masking and dropping give the same result twice).
    pub fn applied_already(&self) -> Self {
        let mut kept = self.clone();
        for field in &mut kept.fields {
            if field.action == PiiAction::Tokenize {
                field.action = PiiAction::Kept;
            }
        }
        kept
    }

    pub fn key_id(&self) -> &str {
        self.key.id()
    }

    /// `(field, action)` of every PII field, for lineage tags.
    pub fn tags(&self) -> Vec<(String, &'static str)> {
        self.fields
            .iter()
            .map(|f| {
                let action = match f.action {
                    PiiAction::Tokenize | PiiAction::Kept => "tokenized",
                    PiiAction::Drop => "dropped",
                    PiiAction::Mask { .. } => "masked",
                };
                (f.field.clone(), action)
            })
            .collect()
    }

    /// Decoded rows with every PII field acted on (the batch has the contract's columns).
    pub fn protect_batch(&self, batch: RecordBatch) -> Result<RecordBatch, IngestError> {
        let mapping = |field: &str, problem: String| IngestError::Topic {
            topic: self.message.full_name().to_string(),
            problem: format!("pii field `{field}`: {problem}"),
        };
        let mut columns = batch.columns().to_vec();
        for field in &self.fields {
            let (top, rest) = field.path.split_first().expect("a field path has a name");
            let index = batch.schema().index_of(top).map_err(|e| mapping(&field.field, e.to_string()))?;
            columns[index] = columns::apply(&columns[index], rest, field.action, &self.key)
                .map_err(|p| mapping(&field.field, p))?;
        }
        RecordBatch::try_new(batch.schema(), columns).map_err(|e| mapping("", e.to_string()))
    }

    /// Whether the rule named `rule` looks at a PII field.
    pub fn rule_on_pii(&self, rule: &str) -> bool {
        self.rules_on_pii.contains_key(rule)
    }

    /// A failure whose text could quote a PII value (a rule on a PII field prints the value it
    /// rejected) gets a text that does not.
    pub fn redact(&self, failure: &mut DecodeFailure) {
        let FailureReason::RuleViolation { rule } = &failure.reason else { return };
        if let Some(field) = self.rules_on_pii.get(rule) {
            failure.detail = format!("field `{field}` broke rule `{rule}` (value withheld: PII)");
        }
    }
}

/// Whether the value at `field` holds (or is) one of `fields`' values.
fn covers(fields: &[CompiledField], field: &str) -> bool {
    fields.iter().any(|f| {
        field == f.field
            || field.starts_with(&format!("{}.", f.field))
            || f.field.starts_with(&format!("{field}."))
    })
}

/// The field a dotted path ends at; every step before the last must be a message.
fn resolve(message: &MessageDescriptor, path: &str) -> Result<prost_reflect::FieldDescriptor, String> {
    let mut current = message.clone();
    let mut names = path.split('.').peekable();
    while let Some(name) = names.next() {
        let field = current
            .get_field_by_name(name)
            .ok_or_else(|| format!("`{name}` is not a field of {}", current.full_name()))?;
        if names.peek().is_none() {
            return Ok(field);
        }
        current = match field.kind() {
            Kind::Message(inner) if !field.is_map() && !ingot_proto::is_timestamp_message(&inner) => inner,
            _ => return Err(format!("`{name}` is not a nested message, cannot look inside it")),
        };
    }
    Err("empty field path".into())
}

/// The first `keep` characters and `****`; a value no longer than `keep` becomes `****`
/// entirely. Masking a masked value changes nothing.
pub(crate) fn mask(value: &str, keep: usize) -> String {
    match value.char_indices().nth(keep) {
        None => "****".into(),
        Some((end, _)) if &value[end..] == "****" => value.to_string(),
        Some((end, _)) => format!("{}****", &value[..end]),
    }
}

#[cfg(test)]
mod tests;
