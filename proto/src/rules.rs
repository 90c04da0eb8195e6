//! Contract rules: declarative checks on decoded messages, configured per topic.
//!
//! A rule names one field (a dotted path into nested messages) and one or more checks. The
//! first rule that fails sends the message to the quarantine under that rule's name.

use std::borrow::Cow;
use std::time::Duration;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value};
use regex::Regex;
use serde::Deserialize;

use crate::ProtoError;
use crate::columns::{field_value, timestamp_micros};

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
    path: Vec<String>,
    /// The field the path ends at, to name enum values.
    leaf: FieldDescriptor,
    pattern: Option<Regex>,
}

/// The rules of one topic, validated against its contract.
#[derive(Debug, Clone, Default)]
pub struct ContractRules {
    rules: Vec<CompiledRule>,
}

impl ContractRules {
    /// Checks every rule's field path and regex against the contract up front, so a typo
    /// fails at start-up rather than quarantining every message.
    pub fn compile(message: &MessageDescriptor, rules: &[RuleConfig]) -> Result<Self, ProtoError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for config in rules {
            let rule_error = |problem: String| ProtoError::Rule {
                rule: config.name.clone(),
                problem,
            };
            let path: Vec<String> = config.field.split('.').map(str::to_string).collect();
            let leaf = resolve_path(message, &path).map_err(rule_error)?;
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
                return Err(rule_error("declares no check (required, min, max, allowed, pattern, max_age or max_future_skew)".into()));
            }
            compiled.push(CompiledRule {
                config: config.clone(),
                path,
                leaf,
                pattern,
            });
        }
        Ok(Self { rules: compiled })
    }

    /// The configured rules, for lineage and reports.
    pub fn configs(&self) -> impl Iterator<Item = &RuleConfig> {
        self.rules.iter().map(|r| &r.config)
    }

    /// The first rule the message breaks, if any. `now_micros` is the ingestion time that
    /// age and skew are measured against.
    pub fn check(&self, message: &DynamicMessage, now_micros: i64) -> Result<(), RuleViolation> {
        for rule in &self.rules {
            rule.check(message, now_micros)?;
        }
        Ok(())
    }
}

impl CompiledRule {
    fn check(&self, message: &DynamicMessage, now_micros: i64) -> Result<(), RuleViolation> {
        let fail = |check: RuleCheck, detail: String| RuleViolation {
            rule: self.config.name.clone(),
            check,
            detail: format!("field `{}` {detail}", self.config.field),
        };
        let value = lookup(message, &self.path);
        let values: Vec<&Value> = match value.as_deref() {
            None => vec![],
            Some(Value::List(items)) => items.iter().collect(),
            Some(Value::Map(map)) => map.values().collect(),
            Some(v) => vec![v],
        };
        if self.config.required && (values.is_empty() || is_unset_scalar(&value)) {
            return Err(fail("required", "is missing".into()));
        }
        for v in values {
            if let Some(n) = as_number(v) {
                if let Some(min) = self.config.min.filter(|min| n < *min) {
                    return Err(fail("min", format!("= {n} is below the minimum {min}")));
                }
                if let Some(max) = self.config.max.filter(|max| n > *max) {
                    return Err(fail("max", format!("= {n} is above the maximum {max}")));
                }
            }
            let text = self.as_text(v);
            if let (Some(allowed), Some(text)) = (&self.config.allowed, &text) {
                if !allowed.iter().any(|a| a == text) {
                    return Err(fail("allowed", format!("= {text:?} is not one of {allowed:?}")));
                }
            }
            if let (Some(pattern), Some(text)) = (&self.pattern, &text) {
                if !pattern.is_match(text) {
                    return Err(fail("pattern", format!("= {text:?} does not match /{pattern}/")));
                }
            }
            if let Some(micros) = as_timestamp_micros(v) {
                if let Some(age) = self.config.max_age {
                    if now_micros - micros > age.as_micros() as i64 {
                        return Err(fail("max_age", format!("is older than {}", humantime::format_duration(age))));
                    }
                }
                if let Some(skew) = self.config.max_future_skew {
                    if micros - now_micros > skew.as_micros() as i64 {
                        return Err(fail("max_future_skew", format!("is more than {} in the future", humantime::format_duration(skew))));
                    }
                }
            }
        }
        Ok(())
    }

    fn as_text(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::EnumNumber(n) => Some(self.enum_name(*n).unwrap_or_else(|| n.to_string())),
            Value::Bool(b) => Some(b.to_string()),
            other => as_number(other).map(|n| n.to_string()),
        }
    }

    fn enum_name(&self, number: i32) -> Option<String> {
        match self.leaf.kind() {
            Kind::Enum(e) => e.get_value(number).map(|v| v.name().to_string()),
            _ => None,
        }
    }
}

/// Implicit-presence proto3 scalars read as their default when unset; `required` treats
/// the default ("" or 0 or UNSPECIFIED) as missing, which is what producers mean by it.
fn is_unset_scalar(value: &Option<Cow<'_, Value>>) -> bool {
    match value.as_deref() {
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Bytes(b)) => b.is_empty(),
        Some(Value::EnumNumber(n)) => *n == 0,
        Some(Value::List(l)) => l.is_empty(),
        Some(Value::Map(m)) => m.is_empty(),
        _ => false,
    }
}

fn lookup<'a>(message: &'a DynamicMessage, path: &[String]) -> Option<Cow<'a, Value>> {
    let (first, rest) = path.split_first()?;
    let field = message.descriptor().get_field_by_name(first)?;
    let value = field_value(message, &field)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        Cow::Borrowed(Value::Message(inner)) => lookup(inner, rest),
        // An unset message field reads as an owned default: nothing below it is set.
        _ => None,
    }
}

fn resolve_path(message: &MessageDescriptor, path: &[String]) -> Result<FieldDescriptor, String> {
    let mut current = message.clone();
    let mut fields = path.iter().peekable();
    while let Some(name) = fields.next() {
        let field = current
            .get_field_by_name(name)
            .ok_or_else(|| format!("`{name}` is not a field of {}", current.full_name()))?;
        if fields.peek().is_none() {
            return Ok(field);
        }
        match field.kind() {
            Kind::Message(m) if !field.is_list() && !field.is_map() => current = m,
            _ => return Err(format!("`{name}` is not a nested message, cannot look inside it")),
        }
    }
    Err("the field path is empty".into())
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::I32(v) => Some(f64::from(*v)),
        Value::I64(v) => Some(*v as f64),
        Value::U32(v) => Some(f64::from(*v)),
        Value::U64(v) => Some(*v as f64),
        Value::F32(v) => Some(f64::from(*v)),
        Value::F64(v) => Some(*v),
        _ => None,
    }
}

fn as_timestamp_micros(value: &Value) -> Option<i64> {
    let message = value.as_message()?;
    crate::is_timestamp_message(&message.descriptor()).then(|| timestamp_micros(message))
}
