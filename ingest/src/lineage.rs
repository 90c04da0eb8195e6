//! OpenLineage events of bronze ingestion, one STREAMING run per topic: START when the
//! pipeline starts, RUNNING after every commit that wrote rows (cumulative counts, the
//! bronze snapshot written, the Kafka offsets reached), then COMPLETE on a clean stop or
//! FAIL with the error.

use std::collections::BTreeMap;

use ingot_lake::{Lake, SourceOffsets, Table};
use ingot_lineage::datasets;
use ingot_lineage::{Emitter, EventType, Job, RunEvent, facets};
use serde_json::Map;
use uuid::Uuid;

use crate::{IngestReport, TopicConfig};

/// The run bronze runs report under, and where their events go.
#[derive(Debug, Clone)]
pub struct LineageParent {
    pub emitter: Emitter,
    pub run_id: Uuid,
    pub job_name: String,
}

struct TopicRun {
    table: String,
    event: RunEvent,
    /// Offsets the bronze table held when the run started: the consumed range starts here.
    started_at: SourceOffsets,
    /// The contract rules: (name, field).
    rules: Vec<(String, String)>,
    /// Messages each rule quarantined in this run.
    violations: BTreeMap<String, u64>,
    /// Offsets committed so far in this run (merged over flushes).
    reached: SourceOffsets,
    rows: u64,
}

pub(crate) struct BronzeLineage {
    emitter: Emitter,
    runs: BTreeMap<String, TopicRun>,
}

/// What lineage needs of one configured topic.
pub(crate) struct TopicSource<'a> {
    pub topic: &'a TopicConfig,
    pub table: &'a Table,
}

impl BronzeLineage {
    /// Emits START for every topic's ingest run.
    pub(crate) fn start(
        parent: &LineageParent,
        lake: &Lake,
        brokers: &str,
        topics: &[TopicSource<'_>],
    ) -> Self {
        let mut runs = BTreeMap::new();
        for source in topics {
            let mut job = Job {
                namespace: parent.emitter.namespace().to_string(),
                name: format!("{}.bronze_{}", parent.job_name, source.topic.topic.replace(['.', '-'], "_")),
                facets: Map::new(),
            };
            let (k, v) = facets::job_type("STREAMING", "JOB", Some(60));
            job.facets.insert(k, v);
            let (k, v) = facets::documentation_job(&format!(
                "Kafka topic {} ({}) into {} exactly once",
                source.topic.topic,
                source.topic.message,
                source.table.identifier()
            ));
            job.facets.insert(k, v);
            let mut event = RunEvent::new(EventType::Start, Uuid::now_v7(), job);
            let (k, v) = facets::parent(parent.run_id, parent.emitter.namespace(), &parent.job_name);
            event.run.facets.insert(k, v);
            event.inputs = vec![datasets::kafka_topic(brokers, &source.topic.topic, &source.topic.message)];
            let snapshot = source.table.metadata().current_snapshot_id();
            event.outputs =
                vec![lake.lineage_dataset(source.table.identifier(), Some(source.table), snapshot)];
            parent.emitter.emit(&event);
            let started_at = SourceOffsets::of_table(source.table).unwrap_or_default();
            let rules = source.topic.rules.iter().map(|r| (r.name.clone(), r.field.clone())).collect();
            runs.insert(
                source.topic.topic.clone(),
                TopicRun {
                    table: source.table.identifier().to_string(),
                    event,
                    reached: started_at.clone(),
                    started_at,
                    rules,
                    violations: BTreeMap::new(),
                    rows: 0,
                },
            );
        }
        Self { emitter: parent.emitter.clone(), runs }
    }

    /// Emits RUNNING for every topic whose bronze table a flush wrote to.
    pub(crate) fn committed(&mut self, flush: &IngestReport, progress: &SourceOffsets) {
        for (topic, run) in &mut self.runs {
            let Some(snapshot) = flush.bronze_snapshots.get(&run.table) else { continue };
            run.rows += flush.bronze_rows.get(&run.table).copied().unwrap_or(0);
            run.reached.merge(progress);
            for ((t, rule), n) in &flush.rule_violations {
                if t == topic {
                    *run.violations.entry(rule.clone()).or_default() += n;
                }
            }
            let mut event = run.event.next(EventType::Running);
            let ranges: Vec<(i32, i64, i64)> = run
                .reached
                .0
                .get(topic)
                .map(|partitions| {
                    partitions
                        .iter()
                        .map(|(p, to)| (*p, run.started_at.next(topic, *p).unwrap_or(0), *to))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(input) = event.inputs.first_mut() {
                let (k, v) = facets::input_statistics(run.rows, None, None);
                input.input_facets.insert(k, v);
                let (k, v) = facets::kafka_offsets(&ranges);
                input.input_facets.insert(k, v);
                if !run.rules.is_empty() {
                    let assertions: Vec<facets::Assertion> = run
                        .rules
                        .iter()
                        .map(|(name, field)| {
                            let failed = run.violations.get(name).copied().unwrap_or(0);
                            facets::Assertion {
                                name: name.clone(),
                                column: Some(field.clone()),
                                success: failed == 0,
                                failed_rows: failed,
                            }
                        })
                        .collect();
                    let (k, v) = facets::data_quality_assertions(&assertions);
                    input.input_facets.insert(k, v);
                }
            }
            if let Some(output) = event.outputs.first_mut() {
                let (k, v) = facets::version(*snapshot);
                output.facets.insert(k, v);
                let (k, v) = facets::output_statistics(run.rows, None, None);
                output.output_facets.insert(k, v);
            }
            self.emitter.emit(&event);
            run.event = event;
        }
    }

    /// Emits each run's terminal event: COMPLETE, or FAIL with `error`.
    pub(crate) fn finish(self, error: Option<&str>) {
        for run in self.runs.into_values() {
            let mut event =
                run.event.next(if error.is_some() { EventType::Fail } else { EventType::Complete });
            if let Some(message) = error {
                let (k, v) = facets::error_message(message);
                event.run.facets.insert(k, v);
            }
            self.emitter.emit(&event);
        }
    }
}
