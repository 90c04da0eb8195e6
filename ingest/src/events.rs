//! What ingest reports as it goes: one type per notable thing, which logs its line and updates
//! its metrics together (through the `metrics` facade; `ingot` installs the Prometheus
//! recorder). Metric names follow Prometheus conventions: `_total` counters, base units.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::commit::CommitReport;

/// A flush's commit to one table (bronze or the quarantine).
pub(crate) struct TableCommitted<'a> {
    pub table: &'a str,
    pub commit: &'a CommitReport,
    pub took: Duration,
}

impl TableCommitted<'_> {
    pub fn emit(&self) {
        let Self { table, commit, took } = self;
        tracing::debug!(
            table,
            rows = commit.rows,
            files = commit.files,
            bytes = commit.bytes,
            skipped = commit.skipped_rows,
            snapshot = commit.snapshot_id,
            seconds = took.as_secs_f64(),
            "committed"
        );
        let table = table.to_string();
        counter!("ingot_rows_committed_total", "table" => table.clone()).increment(commit.rows);
        counter!("ingot_bytes_committed_total", "table" => table.clone()).increment(commit.bytes);
        counter!("ingot_rows_skipped_total", "table" => table.clone()).increment(commit.skipped_rows);
        if commit.snapshot_id.is_some() {
            counter!("ingot_commits_total", "table" => table.clone()).increment(1);
            histogram!("ingot_commit_duration_seconds", "table" => table).record(took.as_secs_f64());
        }
    }
}

/// Rows a bronze commit made readable, by how long after their Kafka timestamp (the
/// produce → visible latency; `latency_counts` groups them by millisecond).
pub(crate) struct RowsVisible<'a> {
    pub table: &'a str,
    pub latency_counts: &'a BTreeMap<u32, usize>,
}

impl RowsVisible<'_> {
    pub fn emit(&self) {
        let histogram = histogram!("ingot_produce_to_visible_seconds", "table" => self.table.to_string());
        for (ms, rows) in self.latency_counts {
            histogram.record_many(f64::from(*ms) / 1e3, *rows);
        }
    }
}

/// Messages a flush quarantined, by topic and reason (`malformed`, `rule_violation`, …), and
/// the contract rules they broke.
pub(crate) struct MessagesQuarantined<'a> {
    pub by_reason: &'a HashMap<(String, String), u64>,
    pub by_rule: &'a HashMap<(String, String), u64>,
}

impl MessagesQuarantined<'_> {
    pub fn emit(&self) {
        for ((topic, reason), n) in self.by_reason {
            tracing::debug!(topic, reason, messages = n, "quarantined");
            counter!("ingot_quarantined_messages_total", "topic" => topic.clone(), "reason" => reason.clone())
                .increment(*n);
        }
        for ((topic, rule), n) in self.by_rule {
            counter!("ingot_rule_violations_total", "topic" => topic.clone(), "rule" => rule.clone())
                .increment(*n);
        }
    }
}

/// Quarantined messages sent to their DLQ topics; those that could not be produced are in
/// the quarantine table all the same.
pub(crate) struct DlqProduced {
    pub messages: u64,
    pub failed: u64,
}

impl DlqProduced {
    pub fn emit(&self) {
        counter!("ingot_dlq_messages_total").increment(self.messages - self.failed);
        if self.failed > 0 {
            tracing::warn!(messages = self.failed, "not produced to the DLQ (kept in the quarantine table)");
            counter!("ingot_dlq_produce_failures_total").increment(self.failed);
        }
    }
}

/// How far this member's consumer is behind a partition it owns (high watermark − committed
/// position), from librdkafka's statistics (`statistics.interval.ms`).
pub(crate) struct PartitionLag<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

impl PartitionLag<'_> {
    pub fn emit(&self) {
        let Self { topic, partition, lag } = self;
        tracing::trace!(topic, partition, lag, "consumer lag");
        gauge!("ingot_consumer_lag_messages", "topic" => topic.to_string(), "partition" => partition.to_string())
            .set(*lag as f64);
    }
}

/// The group gave this member partitions or took them away.
pub(crate) struct Rebalanced {
    pub assigned: bool,
    pub partitions: usize,
}

impl Rebalanced {
    pub fn emit(&self) {
        let kind = if self.assigned { "assigned" } else { "revoked" };
        tracing::info!(partitions = self.partitions, "partitions {kind}");
        counter!("ingot_rebalances_total", "kind" => kind).increment(1);
    }
}

/// An error the Kafka client reported (it retries by itself; these show a struggling link).
pub(crate) struct ConsumerError<'a> {
    pub error: &'a rdkafka::error::KafkaError,
    pub reason: &'a str,
}

impl ConsumerError<'_> {
    pub fn emit(&self) {
        tracing::warn!(error = %self.error, reason = self.reason, "kafka client error");
        counter!("ingot_consumer_errors_total").increment(1);
    }
}
