//! What the lake reports as it goes: one type per notable thing, which logs its line and
//! counts it through the `metrics` facade (`ingot` installs the Prometheus recorder). Every
//! commit — ingest's appends, transforms' overwrites, maintenance — passes the catalog swap,
//! so that is where these are emitted; callers log what they do about it.

use metrics::counter;

/// Another writer committed first: the catalog refused the swap.
pub(crate) struct CommitRaceLost<'a> {
    pub table: &'a str,
}

impl CommitRaceLost<'_> {
    pub fn emit(&self) {
        tracing::debug!(table = self.table, "catalog refused the swap: another writer committed first");
        counter!("ingot_commit_conflicts_total", "table" => self.table.to_string()).increment(1);
    }
}

/// The catalog's answer to a swap was lost: it may or may not have landed (the caller looks
/// for its commit id in the table's history).
pub(crate) struct CommitOutcomeUnknown<'a> {
    pub table: &'a str,
    pub error: &'a str,
}

impl CommitOutcomeUnknown<'_> {
    pub fn emit(&self) {
        tracing::debug!(table = self.table, error = self.error, "commit outcome unknown");
        counter!("ingot_commit_unknown_outcomes_total", "table" => self.table.to_string()).increment(1);
    }
}
