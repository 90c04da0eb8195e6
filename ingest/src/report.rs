//! What a run did: counts for the CLI's summary, lineage and tests, added up flush by flush.

use std::collections::BTreeMap;

use crate::commit::CommitReport;
use crate::latency::LatencySample;

/// What a run did, for the CLI's summary and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub consumed: u64,
    pub bronze_rows: BTreeMap<String, u64>,
    /// The latest snapshot committed to each bronze table.
    pub bronze_snapshots: BTreeMap<String, i64>,
    /// Messages each contract rule quarantined, by (topic, rule).
    pub rule_violations: BTreeMap<(String, String), u64>,
    pub quarantined: BTreeMap<String, u64>,
    /// Messages quarantined, by source topic.
    pub quarantined_by_topic: BTreeMap<String, u64>,
    /// Rows committed to bronze, by source topic.
    pub bronze_rows_by_topic: BTreeMap<String, u64>,
    /// `--until-caught-up`: messages per topic the tables lacked at start.
    pub expected: BTreeMap<String, u64>,
    /// Quarantined messages that could not be produced to their DLQ topic (they are in the
    /// quarantine table all the same).
    pub dlq_failed: u64,
    pub snapshots: u64,
    pub skipped_rows: u64,
    /// Tables created or evolved at start-up, with what happened.
    pub table_changes: Vec<String>,
    /// Kafka timestamp → committed to bronze, per row (sampled).
    pub visible_after: LatencySample,
}

impl IngestReport {
    pub(crate) fn note_commit(&mut self, commit: &CommitReport) {
        self.skipped_rows += commit.skipped_rows;
        if commit.snapshot_id.is_some() {
            self.snapshots += 1;
        }
    }

    /// Adds what a flush did.
    pub(crate) fn absorb(&mut self, other: IngestReport) {
        add_counts(&mut self.bronze_rows, other.bronze_rows);
        self.bronze_snapshots.extend(other.bronze_snapshots);
        add_counts(&mut self.rule_violations, other.rule_violations);
        add_counts(&mut self.quarantined, other.quarantined);
        add_counts(&mut self.quarantined_by_topic, other.quarantined_by_topic);
        add_counts(&mut self.bronze_rows_by_topic, other.bronze_rows_by_topic);
        self.dlq_failed += other.dlq_failed;
        self.snapshots += other.snapshots;
        self.skipped_rows += other.skipped_rows;
        self.visible_after.merge(other.visible_after);
    }
}

/// Adds each count in `from` to the same key's count in `into`.
pub(crate) fn add_counts<K: Ord>(into: &mut BTreeMap<K, u64>, from: impl IntoIterator<Item = (K, u64)>) {
    for (key, n) in from {
        *into.entry(key).or_default() += n;
    }
}
