//! The run event envelope. Facets are JSON maps built by [`crate::facets`]: the spec has
//! dozens of them and each carries its own schema URL, which typed structs would only repeat.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::PRODUCER;

/// The core schema of every event.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
}

impl EventType {
    pub fn is_terminal(self) -> bool {
        matches!(self, EventType::Complete | EventType::Abort | EventType::Fail)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunEvent {
    #[serde(rename = "eventType")]
    pub event_type: EventType,
    #[serde(rename = "eventTime")]
    pub event_time: String,
    pub producer: String,
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
    pub run: Run,
    pub job: Job,
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<Dataset>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    #[serde(rename = "runId")]
    pub run_id: Uuid,
    pub facets: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    pub facets: Map<String, Value>,
}

/// An input or output dataset with its facets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    pub facets: Map<String, Value>,
    #[serde(rename = "inputFacets", skip_serializing_if = "Map::is_empty")]
    pub input_facets: Map<String, Value>,
    #[serde(rename = "outputFacets", skip_serializing_if = "Map::is_empty")]
    pub output_facets: Map<String, Value>,
}

impl RunEvent {
    /// An event of `run_id` for `job`, timestamped now.
    pub fn new(event_type: EventType, run_id: Uuid, job: Job) -> Self {
        Self {
            event_type,
            event_time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            producer: PRODUCER.to_string(),
            schema_url: SCHEMA_URL.to_string(),
            run: Run { run_id, facets: Map::new() },
            job,
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// The same run and job at a later point (`RUNNING`, or the terminal event).
    pub fn next(&self, event_type: EventType) -> Self {
        Self { event_type, event_time: now(), ..self.clone() }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialize")
    }
}

/// `eventTime` format: RFC 3339 with milliseconds, UTC.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 3339 of an instant, as facets want it.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
