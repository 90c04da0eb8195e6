//! `[[transforms]]`: one entry per silver or gold table, next to its SQL file.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::TransformError;

/// What a transform produces.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Incremental: new bronze rows, deduplicated, rules applied, appended.
    Silver,
    /// Windowed aggregates: touched windows recomputed from silver and replaced.
    Gold,
}

/// One silver or gold table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// `namespace.table` written, e.g. `silver.orders`.
    pub table: String,
    pub kind: Kind,
    /// The SQL file (relative to the config file).
    pub sql: PathBuf,
    /// The one table the SQL reads, e.g. `bronze.orders`.
    pub input: String,
    /// Event-time column (of the input for silver; the column windows are built from for gold).
    pub event_time: String,
    /// Silver: the idempotency key to dedup on.
    #[serde(default)]
    pub key: Option<String>,
    /// Silver: how far back (in event time, from the oldest new row) silver is searched for a
    /// key already held. A duplicate arriving later than this is not recognised.
    #[serde(default = "default_dedup_horizon", with = "humantime_serde")]
    pub dedup_horizon: Duration,
    /// Silver: rows whose event time is behind the watermark (max event time seen − this)
    /// are quarantined as `late`: the windows they belong to are final.
    #[serde(default = "default_lateness", with = "humantime_serde")]
    pub lateness: Duration,
    /// Gold: the tumbling window the SQL groups by (documentation and freshness; the SQL
    /// computes it).
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    /// Gold: the SQL's output column holding the window start; gold is partitioned by its day.
    #[serde(default = "default_window_column")]
    pub window_column: String,
    /// Memory the run's operators (dedup, joins, aggregates, sorts) may hold; past it they
    /// spill to temporary files where they can, and the run fails naming this key where they
    /// cannot, rather than growing until the OOM killer stops the whole service.
    #[serde(default = "default_max_memory", deserialize_with = "crate::query::byte_size")]
    pub max_memory: usize,
    /// Silver works through its new input this many rows at a time (whole files, read one
    /// after another), writing each part's files before reading the next and committing once
    /// at the end: memory follows this, not the size of a backlog.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
}

impl TransformConfig {
    /// The entry of `kind` that writes `table`.
    pub fn find<'a>(
        transforms: &'a [TransformConfig],
        table: &str,
        kind: Kind,
    ) -> Result<&'a Self, TransformError> {
        transforms.iter().find(|t| t.table == table && t.kind == kind).ok_or_else(|| {
            let kind = if kind == Kind::Silver { "silver" } else { "gold" };
            TransformError::Sql(format!("no {kind} [[transforms]] entry writes {table}"))
        })
    }

    /// The SQL file's text.
    pub fn read_sql(&self) -> Result<String, TransformError> {
        std::fs::read_to_string(&self.sql).map_err(|e| {
            TransformError::Sql(format!("transform {}: cannot read {}: {e}", self.table, self.sql.display()))
        })
    }
}

fn default_dedup_horizon() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_lateness() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_memory() -> usize {
    512 << 20
}
fn default_chunk_rows() -> usize {
    200_000
}

fn default_window_column() -> String {
    "window_start".into()
}

/// `[transform]`: when `ingot run` runs the transforms.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Transforms run after bronze commits, at most this often (commits in between coalesce).
    #[serde(default = "default_min_interval", with = "humantime_serde")]
    pub min_interval: Duration,
}

fn default_min_interval() -> Duration {
    Duration::from_secs(10)
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { min_interval: default_min_interval() }
    }
}
