use std::collections::BTreeMap;
use std::time::Duration;

use ingot_proto::RuleConfig;
use ingot_secret::{Secret, is_sensitive_name};
use serde::Deserialize;

use crate::pii::{PiiConfig, PiiField};

/// How to reach Kafka.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port]`.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// Consumer group; Kafka's committed offsets of this group serve lag monitoring only.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Where a partition the bronze table has never recorded starts: `earliest` (default:
    /// everything the topic still holds) or `latest` (only what arrives from now on). Kafka's
    /// committed offsets are never a start point: they feed lag monitoring only.
    #[serde(default)]
    pub start_from: StartFrom,
    /// Extra librdkafka properties (e.g. `security.protocol`), passed through unchanged.
    /// Numbers and booleans are accepted as well as strings (`fetch.wait.max.ms = 50`).
    #[serde(default, deserialize_with = "scalar_map")]
    pub properties: BTreeMap<String, String>,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`, for every Kafka client
    /// (consumer, DLQ producer, admin, `ingot produce`); see `security.rs`.
    #[serde(default)]
    pub security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER` (with a `sasl_*` protocol).
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// Environment variable holding the SASL password (never the password itself).
    #[serde(default)]
    pub sasl_password_env: Option<String>,
    /// CA certificate(s), PEM, the brokers' certificates are checked against (default: the
    /// system's trust store).
    #[serde(default)]
    pub ssl_ca_location: Option<std::path::PathBuf>,
    /// Client certificate and key, PEM, for brokers that require mutual TLS.
    #[serde(default)]
    pub ssl_certificate_location: Option<std::path::PathBuf>,
    #[serde(default)]
    pub ssl_key_location: Option<std::path::PathBuf>,
    /// Environment variable holding the client key's passphrase.
    #[serde(default)]
    pub ssl_key_password_env: Option<String>,
}

/// Properties named like credentials (`sasl.password`, `ssl.key.password`, …) show redacted.
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, String> = self
            .properties
            .iter()
            .map(|(name, value)| match is_sensitive_name(name) {
                true => (name.as_str(), Secret::new(value.as_str()).redacted()),
                false => (name.as_str(), value.clone()),
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("start_from", &self.start_from)
            .field("properties", &properties)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password_env", &self.sasl_password_env)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .finish_non_exhaustive()
    }
}

/// Where a partition with no offsets in the table starts.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

/// A map whose values may be strings, numbers or booleans, kept as their text.
fn scalar_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    let map = BTreeMap::<String, Scalar>::deserialize(deserializer)?;
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Scalar::Text(t) => t,
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            (k, text)
        })
        .collect())
}

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_group() -> String {
    "ingot".into()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: default_brokers(),
            group_id: default_group(),
            start_from: StartFrom::default(),
            properties: BTreeMap::new(),
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password_env: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            ssl_key_password_env: None,
        }
    }
}

/// When a batch is committed: whichever limit is reached first.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlushConfig {
    /// Rows per commit (all topics together). Large, because small files are the first
    /// complaint about every streaming lake writer.
    #[serde(default = "default_flush_rows")]
    pub rows: usize,
    /// Payload bytes per commit.
    #[serde(default = "default_flush_bytes")]
    pub bytes: usize,
    /// Longest time a consumed message waits before it is committed.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub interval: Duration,
}

fn default_flush_rows() -> usize {
    500_000
}
fn default_flush_bytes() -> usize {
    128 << 20
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(10)
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self { rows: default_flush_rows(), bytes: default_flush_bytes(), interval: default_flush_interval() }
    }
}

/// Settings of the ingest service as a whole.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    #[serde(default)]
    pub flush: FlushConfig,
    /// Larger payloads are quarantined as `oversize`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// The quarantine table for every topic, `<namespace>.<table>`.
    #[serde(default = "default_quarantine_table")]
    pub quarantine_table: String,
    /// Namespace of the bronze tables.
    #[serde(default = "default_bronze_namespace")]
    pub bronze_namespace: String,
    /// Lost commit races in a row before the service gives up.
    #[serde(default = "default_commit_attempts")]
    pub commit_attempts: u32,
    /// How long an unavailable catalog or warehouse (locked, unreachable, read-only) is
    /// waited for, retrying with backoff, before the service stops with the error.
    #[serde(default = "default_retry_unavailable_for", with = "humantime_serde")]
    pub retry_unavailable_for: Duration,
    /// The PII key and how quarantined payloads of topics with PII fields are kept.
    #[serde(default)]
    pub pii: PiiConfig,
}

fn default_retry_unavailable_for() -> Duration {
    Duration::from_secs(600)
}

fn default_max_message_bytes() -> usize {
    1 << 20
}
fn default_quarantine_table() -> String {
    "ingot.quarantine".into()
}
fn default_bronze_namespace() -> String {
    "bronze".into()
}
fn default_commit_attempts() -> u32 {
    10
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            flush: FlushConfig::default(),
            max_message_bytes: default_max_message_bytes(),
            quarantine_table: default_quarantine_table(),
            bronze_namespace: default_bronze_namespace(),
            commit_attempts: default_commit_attempts(),
            retry_unavailable_for: default_retry_unavailable_for(),
            pii: PiiConfig::default(),
        }
    }
}

/// One Kafka topic and the contract its messages follow.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// The Kafka topic.
    pub topic: String,
    /// Full Protobuf message name, e.g. `ingot.demo.v1.OrderEvent`.
    pub message: String,
    /// Bronze table name within the bronze namespace; defaults to the topic name with
    /// characters other than letters, digits and `_` replaced by `_`.
    pub table: Option<String>,
    /// Timestamp field that partitions bronze by day; defaults to the Kafka timestamp.
    pub event_time: Option<String>,
    /// Where failed messages are also produced; defaults to `<topic>.dlq`. Empty disables.
    pub dlq_topic: Option<String>,
    /// Keep messages with fields the contract does not know (dropping those fields) instead
    /// of quarantining them as `unknown_fields`.
    #[serde(default)]
    pub allow_unknown_fields: bool,
    /// Contract rules; a message breaking one is quarantined under the rule's name.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Fields protected before anything is written: `{ field, action = "tokenize" | "drop" |
    /// "mask", keep }`; see `pii.rs`.
    #[serde(default)]
    pub pii: Vec<PiiField>,
}

impl TopicConfig {
    /// The bronze table's name within its namespace.
    pub fn table_name(&self) -> String {
        self.table.clone().unwrap_or_else(|| {
            self.topic.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
        })
    }

    /// The DLQ topic, unless disabled.
    pub fn dlq(&self) -> Option<String> {
        match &self.dlq_topic {
            Some(t) if t.is_empty() => None,
            Some(t) => Some(t.clone()),
            None => Some(format!("{}.dlq", self.topic)),
        }
    }
}
