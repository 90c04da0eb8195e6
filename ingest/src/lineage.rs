//! OpenLineage events of bronze ingestion, one STREAMING [`LineageRun`] per topic: START when
//! the pipeline starts, RUNNING after every commit that wrote rows (cumulative counts, the
//! bronze snapshot written, the Kafka offsets reached), then COMPLETE on a clean stop or
//! FAIL with the error.

use std::collections::BTreeMap;

use ingot_lake::{Lake, SourceOffsets, Table};
use ingot_lineage::datasets;
use ingot_lineage::{Emitter, JobKind, LineageRun, ParentRun, facets, insert};

use crate::pii::TopicPii;
use crate::{IngestReport, TopicConfig};

/// The run bronze runs report under, and where their events go.
#[derive(Debug, Clone)]
pub struct LineageParent {
    pub emitter: Emitter,
    pub parent: ParentRun,
}

struct TopicRun {
    table: String,
    run: LineageRun,
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
    runs: BTreeMap<String, TopicRun>,
}

/// What lineage needs of one configured topic.
pub(crate) struct TopicSource<'a> {
    pub topic: &'a TopicConfig,
    pub table: &'a Table,
    pub pii: Option<&'a TopicPii>,
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
            let name =
                format!("{}.bronze_{}", parent.parent.job_name, source.topic.topic.replace(['.', '-'], "_"));
            let description = format!(
                "Kafka topic {} ({}) into {} exactly once",
                source.topic.topic,
                source.topic.message,
                source.table.identifier()
            );
            let kind = JobKind {
                processing: "STREAMING",
                job_type: "JOB",
                window_secs: Some(60),
                description: &description,
            };
            let run = LineageRun::start(&parent.emitter, name, &kind, Some(&parent.parent), |event| {
                event.inputs =
                    vec![datasets::kafka_topic(brokers, &source.topic.topic, &source.topic.message)];
                let snapshot = source.table.metadata().current_snapshot_id();
                let mut output =
                    lake.lineage_dataset(source.table.identifier(), Some(source.table), snapshot);
                if let Some(pii) = source.pii {
                    insert(&mut output.facets, pii_tags(pii));
                }
                event.outputs = vec![output];
            });
            let started_at = SourceOffsets::of_table(source.table).unwrap_or_default();
            let rules = source.topic.rules.iter().map(|r| (r.name.clone(), r.field.clone())).collect();
            runs.insert(
                source.topic.topic.clone(),
                TopicRun {
                    table: source.table.identifier().to_string(),
                    run,
                    reached: started_at.clone(),
                    started_at,
                    rules,
                    violations: BTreeMap::new(),
                    rows: 0,
                },
            );
        }
        Self { runs }
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
            let (rows, rules, violations) = (run.rows, &run.rules, &run.violations);
            run.run.running(|event| {
                if let Some(input) = event.inputs.first_mut() {
                    insert(&mut input.input_facets, facets::input_statistics(rows, None, None));
                    insert(&mut input.input_facets, facets::kafka_offsets(&ranges));
                    if !rules.is_empty() {
                        let assertions: Vec<facets::Assertion> = rules
                            .iter()
                            .map(|(name, field)| {
                                let failed = violations.get(name).copied().unwrap_or(0);
                                facets::Assertion {
                                    name: name.clone(),
                                    column: Some(field.clone()),
                                    success: failed == 0,
                                    failed_rows: failed,
                                }
                            })
                            .collect();
                        insert(&mut input.input_facets, facets::data_quality_assertions(&assertions));
                    }
                }
                if let Some(output) = event.outputs.first_mut() {
                    insert(&mut output.facets, facets::version(*snapshot));
                    insert(&mut output.output_facets, facets::output_statistics(rows, None, None));
                }
            });
        }
    }

    /// Emits each run's terminal event: COMPLETE, or FAIL with `error`.
    pub(crate) fn finish(self, error: Option<&str>) {
        for topic_run in self.runs.into_values() {
            topic_run.run.finish(error, |_| {});
        }
    }
}

/// Tags marking each PII column of a bronze table with what was done to it (`pii` =
/// `tokenized` / `dropped` / `masked`) and the key its tokens depend on (`pii.key-id`).
fn pii_tags(pii: &TopicPii) -> (String, serde_json::Value) {
    let mut tags: Vec<(&str, String, Option<String>)> =
        pii.tags().into_iter().map(|(field, action)| ("pii", action.to_string(), Some(field))).collect();
    tags.push(("pii.key-id", pii.key_id().to_string(), None));
    facets::tags(&tags)
}
