//! Contract rules: declarative checks on decoded messages, configured per topic.
//!
//! A rule names one field (a dotted path into nested messages) and one or more checks. The
//! first rule that fails sends the message to the quarantine under that rule's name. Rules
//! read values from the wire occurrences the decoder found, before the message becomes a row.

use std::time::Duration;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use regex::Regex;
use serde::Deserialize;

use crate::ProtoError;
use crate::wire::Node;
use crate::wire::reader::{FieldReader, Raw};
use crate::wire::scalar::{Scalar, decode_scalar, for_each_packed, packable, timestamp_micros};

/// One rule as written in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Stable name, stored with every message the rule quarantines.
    pub name: String,
    /// Dotted path to the field, e.g. `total.units` or `occurred_at`.
    pub field: String,
    /// The field must be set (for proto3 scalars without presence: not the default value;
    /// for repeated fields and maps: not empty).
    #[serde(default)]
    pub required: bool,
    /// Smallest allowed numeric value (inclusive).
    pub min: Option<f64>,
    /// Largest allowed numeric value (inclusive).
    pub max: Option<f64>,
    /// Allowed values, compared as text (enum values by name).
    pub allowed: Option<Vec<String>>,
    /// Regular expression a string value must match (anchor it yourself).
    pub pattern: Option<String>,
    /// A timestamp may be at most this old when ingested, e.g. "7d".
    #[serde(default, with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// A timestamp may be at most this far in the future when ingested, e.g. "5m".
    #[serde(default, with = "humantime_serde")]
    pub max_future_skew: Option<Duration>,
}

/// The check a rule failed, for reports.
pub type RuleCheck = &'static str;

/// A failed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub rule: String,
    pub check: RuleCheck,
    pub detail: String,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    config: RuleConfig,
    /// Field numbers from the message down to the field the rule looks at.
    path: Vec<u32>,
    /// Whether each field of the path is repeated.
    repeated: Vec<bool>,
    /// The field the path ends at.
    leaf: FieldDescriptor,
    pattern: Option<Regex>,
}

/// The rules of one topic, validated against its contract.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContractRules {
    rules: Vec<CompiledRule>,
}

impl ContractRules {
    /// Checks every rule's field path and regex against the contract up front, so a typo
    /// fails at start-up rather than quarantining every message.
    pub fn compile(message: &MessageDescriptor, rules: &[RuleConfig]) -> Result<Self, ProtoError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for config in rules {
            let rule_error = |problem: String| ProtoError::Rule { rule: config.name.clone(), problem };
            let names: Vec<&str> = config.field.split('.').collect();
            let (path, repeated, leaf) = resolve_path(message, &names).map_err(rule_error)?;
            let pattern = config
                .pattern
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| rule_error(format!("invalid pattern: {e}")))?;
            let has_check = config.required
                || config.min.is_some()
                || config.max.is_some()
                || config.allowed.is_some()
                || pattern.is_some()
                || config.max_age.is_some()
                || config.max_future_skew.is_some();
            if !has_check {
                return Err(rule_error(
                    "declares no check (required, min, max, allowed, pattern, max_age or max_future_skew)"
                        .into(),
                ));
            }
            compiled.push(CompiledRule { config: config.clone(), path, repeated, leaf, pattern });
        }
        Ok(Self { rules: compiled })
    }

    /// The first rule the parsed message breaks, if any.
    pub fn check(&self, root: &Node, buf: &[u8], now_micros: i64) -> Result<(), RuleViolation> {
        for rule in &self.rules {
            rule.check(root, buf, now_micros)?;
        }
        Ok(())
    }
}

impl CompiledRule {
    fn check(&self, root: &Node, buf: &[u8], now_micros: i64) -> Result<(), RuleViolation> {
        let fail = |check: RuleCheck, detail: String| RuleViolation {
            rule: self.config.name.clone(),
            check,
            detail: format!("field `{}` {detail}", self.config.field),
        };
        let occurrences = self.lookup(root, buf);
        let kind = self.leaf.kind();
        let mut values: Vec<Scalar<'_>> = Vec::with_capacity(occurrences.len());
        for (raw, bytes) in &occurrences {
            if self.leaf.is_map() {
                values.push(Scalar::Message(raw.bytes(bytes).unwrap_or_default()));
            } else if self.leaf.is_list() && packable(&kind) && matches!(raw, Raw::Len { .. }) {
                let packed = raw.bytes(bytes).unwrap_or_default();
                let _ = for_each_packed(&kind, packed, |r| {
                    values.push(decode_scalar(&kind, r, bytes)?);
                    Ok(())
                });
            } else if let Ok(value) = decode_scalar(&kind, *raw, bytes) {
                values.push(value);
            }
        }
        if self.config.required && (values.is_empty() || (values.len() == 1 && is_unset(&values[0]))) {
            return Err(fail("required", "is missing".into()));
        }
        for value in values {
            if let Some(n) = as_number(&value) {
                if let Some(min) = self.config.min.filter(|min| n < *min) {
                    return Err(fail("min", format!("= {n} is below the minimum {min}")));
                }
                if let Some(max) = self.config.max.filter(|max| n > *max) {
                    return Err(fail("max", format!("= {n} is above the maximum {max}")));
                }
            }
            let text = self.as_text(&value);
            if let (Some(allowed), Some(text)) = (&self.config.allowed, &text)
                && !allowed.iter().any(|a| a == text)
            {
                return Err(fail("allowed", format!("= {text:?} is not one of {allowed:?}")));
            }
            if let (Some(pattern), Some(text)) = (&self.pattern, &text)
                && !pattern.is_match(text)
            {
                return Err(fail("pattern", format!("= {text:?} does not match /{pattern}/")));
            }
            if let Some(micros) = self.as_timestamp_micros(&value) {
                if let Some(age) = self.config.max_age
                    && now_micros.saturating_sub(micros) > saturating_micros(age)
                {
                    return Err(fail(
                        "max_age",
                        format!("is older than {}", humantime::format_duration(age)),
                    ));
                }
                if let Some(skew) = self.config.max_future_skew
                    && micros.saturating_sub(now_micros) > saturating_micros(skew)
                {
                    return Err(fail(
                        "max_future_skew",
                        format!("is more than {} in the future", humantime::format_duration(skew)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The leaf's occurrences, each with the buffer its byte ranges point into.
    fn lookup<'a>(&self, root: &Node, buf: &'a [u8]) -> Vec<(Raw, &'a [u8])> {
        let (first, rest) = self.path.split_first().expect("paths are never empty");
        let mut current: Vec<(Raw, &'a [u8])> =
            root.occurrences(*first).into_iter().map(|r| (r, buf)).collect();
        for (depth, number) in rest.iter().enumerate() {
            let repeated = self.repeated[depth + 1];
            let mut next = Vec::new();
            for (raw, bytes) in &current {
                let Some(inner) = raw.bytes(bytes) else { continue };
                let mut found = Vec::new();
                let mut reader = FieldReader::new(inner);
                while let Ok(Some((n, r))) = reader.next_field() {
                    if n == *number {
                        found.push((r, inner));
                    }
                }
                if repeated {
                    next.extend(found);
                } else {
                    // Singular fields: the last occurrence wins, as in Protobuf.
                    next.extend(found.last().copied());
                }
            }
            current = next;
        }
        current
    }

    fn as_text(&self, value: &Scalar<'_>) -> Option<String> {
        match value {
            Scalar::Str(s) => Some((*s).to_string()),
            Scalar::Enum(n) => Some(self.enum_name(*n).unwrap_or_else(|| n.to_string())),
            Scalar::Bool(b) => Some(b.to_string()),
            other => as_number(other).map(|n| n.to_string()),
        }
    }

    fn enum_name(&self, number: i32) -> Option<String> {
        match self.leaf.kind() {
            Kind::Enum(e) => e.get_value(number).map(|v| v.name().to_string()),
            _ => None,
        }
    }

    fn as_timestamp_micros(&self, value: &Scalar<'_>) -> Option<i64> {
        match (self.leaf.kind(), value) {
            (Kind::Message(m), Scalar::Message(bytes)) if crate::is_timestamp_message(&m) => {
                timestamp_micros(bytes).ok()
            }
            _ => None,
        }
    }
}

/// A value on the wire equal to the default: `required` treats it as missing, as it does
/// an implicit-presence field left at its default (which is never on the wire).
fn is_unset(value: &Scalar<'_>) -> bool {
    match value {
        Scalar::Str(s) => s.is_empty(),
        Scalar::Bytes(b) => b.is_empty(),
        Scalar::Enum(n) => *n == 0,
        _ => false,
    }
}

/// Whether `message` has the dotted field path a rule may name (through nested messages,
/// repeated ones included; not into maps).
pub fn has_field_path(message: &MessageDescriptor, path: &str) -> bool {
    resolve_path(message, &path.split('.').collect::<Vec<_>>()).is_ok()
}

type ResolvedPath = (Vec<u32>, Vec<bool>, FieldDescriptor);

fn resolve_path(message: &MessageDescriptor, names: &[&str]) -> Result<ResolvedPath, String> {
    let mut current = message.clone();
    let mut numbers = Vec::with_capacity(names.len());
    let mut repeated = Vec::with_capacity(names.len());
    let mut fields = names.iter().peekable();
    while let Some(name) = fields.next() {
        let field = current
            .get_field_by_name(name)
            .ok_or_else(|| format!("`{name}` is not a field of {}", current.full_name()))?;
        numbers.push(field.number());
        repeated.push(field.is_list() || field.is_map());
        if fields.peek().is_none() {
            return Ok((numbers, repeated, field));
        }
        // Repeated messages are looked into element by element: `items.quantity` checks
        // the quantity of every line item.
        match field.kind() {
            Kind::Message(m) if !field.is_map() => current = m,
            _ => return Err(format!("`{name}` is not a nested message, cannot look inside it")),
        }
    }
    Err("the field path is empty".into())
}

/// A configured duration in microseconds; durations beyond i64 (hundreds of thousands of
/// years) mean "no limit" rather than wrapping around.
fn saturating_micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn as_number(value: &Scalar<'_>) -> Option<f64> {
    match value {
        Scalar::I32(v) => Some(f64::from(*v)),
        Scalar::I64(v) => Some(*v as f64),
        Scalar::U32(v) => Some(f64::from(*v)),
        Scalar::U64(v) => Some(*v as f64),
        Scalar::F32(v) => Some(f64::from(*v)),
        Scalar::F64(v) => Some(*v),
        _ => None,
    }
}
