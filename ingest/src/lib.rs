//! Kafka → bronze: consume Protobuf messages, decode them into Arrow, check contract rules,
//! and append them to bronze tables exactly once; everything that fails goes to the
//! quarantine table and the DLQ topic with its reason.

mod admin;
mod bronze;
mod caught_up;
mod client;
mod commit;
mod config;
mod consumer;
mod dlq;
mod error;
mod events;
mod failpoint;
mod flush;
mod latency;
mod lineage;
mod meta;
mod orphans;
pub mod pii;
mod pipeline;
mod probe;
mod quarantine;
mod redrive;
mod report;
mod retry;
mod security;
mod watch;

pub use admin::ensure_topics;
pub use bronze::{KAFKA_COLUMNS, bronze_ident, bronze_table_spec};
pub use client::client_config;
pub use config::{FlushConfig, IngestConfig, KafkaConfig, StartFrom, TopicConfig};
pub use error::IngestError;
pub use failpoint::POINTS as FAILPOINTS;
pub use latency::LatencySample;
pub use lineage::LineageParent;
pub use meta::MessageMeta;
pub use pipeline::{Pipeline, RunMode};
pub use probe::check_connection;
pub use quarantine::{PAYLOAD_PROTECTION, quarantine_schema};
pub use redrive::{Quarantined, REDRIVEN_PROPERTY, RedriveReport, redrive_topic};
pub use report::IngestReport;
pub use retry::until_available;
