//! ingot's own snapshot commits: overwrite, replace (compaction), manifest rewrites and
//! snapshot expiry, which iceberg-rust 0.10 cannot produce.
//!
//! A commit is described by a [`SnapshotChange`] — files to add, a selection of live files to
//! remove — and applied to one table state: new manifests and a manifest list are written,
//! a new metadata file is built, and the catalog pointer is swapped with the catalog's own
//! compare-and-swap. A lost race is rebased onto the new state only when the change says that
//! is safe; an unknown outcome is settled by looking for the commit id in the history.

mod metadata_file;
mod produce;
mod swap;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use iceberg::spec::{DataFile, Operation, TableMetadata};
use iceberg::table::Table;

use crate::offsets::{COMMIT_ID_PROPERTY, find_commit};
use crate::{Lake, LakeError};

pub(crate) use metadata_file::{write_metadata, write_next_metadata};
pub(crate) use produce::{LiveFile, live_files, live_files_at, partition_path};

/// Which live data files a change removes.
#[derive(Clone, Default)]
pub enum FileSelection {
    /// None: the change only adds.
    #[default]
    Nothing,
    /// Exactly these file paths.
    Paths(HashSet<String>),
    /// Files whose partition path (as in `event_time_day=2026-11-20`) is in the set.
    Partitions(HashSet<String>),
    /// Every live data file.
    All,
}

impl fmt::Debug for FileSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSelection::Nothing => write!(f, "Nothing"),
            FileSelection::Paths(p) => write!(f, "Paths({} files)", p.len()),
            FileSelection::Partitions(p) => write!(f, "Partitions({p:?})"),
            FileSelection::All => write!(f, "All"),
        }
    }
}

/// What to do when another writer committed between our read and our swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Re-apply the change to the new state, provided the files it removes are exactly the
    /// ones it would have removed before (nobody touched them): concurrent appends survive.
    RebaseIfUntouched,
    /// Give up with [`LakeError::CommitConflict`]: the caller decided what to write from the
    /// exact state it read and must look again.
    Fail,
}

/// One snapshot's worth of change.
#[derive(Debug, Clone)]
pub struct SnapshotChange {
    pub operation: Operation,
    pub add: Vec<DataFile>,
    pub remove: FileSelection,
    /// Summary properties beyond the computed counts. Must hold [`COMMIT_ID_PROPERTY`]: it is
    /// how an unknown outcome is settled.
    pub properties: HashMap<String, String>,
    /// Rewrite all live entries into as few manifests as possible.
    pub merge_manifests: bool,
    pub on_conflict: OnConflict,
}

impl SnapshotChange {
    /// A change with the given operation and commit id, adding and removing nothing yet.
    pub fn new(operation: Operation, commit_id: impl Into<String>) -> Self {
        Self {
            operation,
            add: Vec::new(),
            remove: FileSelection::Nothing,
            properties: HashMap::from([(COMMIT_ID_PROPERTY.to_string(), commit_id.into())]),
            merge_manifests: false,
            on_conflict: OnConflict::RebaseIfUntouched,
        }
    }

    fn commit_id(&self) -> &str {
        self.properties.get(COMMIT_ID_PROPERTY).map(String::as_str).unwrap_or_default()
    }
}

/// What a successful commit produced.
#[derive(Debug, Clone)]
pub struct Committed {
    pub table: Table,
    pub snapshot_id: i64,
    /// Attempts it took (1 when nobody raced us).
    pub attempts: u32,
}

/// How often a lost race or an unknown outcome is tried again before giving up.
pub const COMMIT_ATTEMPTS: u32 = 8;

impl Lake {
    /// Applies `change` to `table` in one new snapshot (see the module docs for races).
    pub async fn commit_change(
        &self,
        table: &Table,
        change: &SnapshotChange,
    ) -> Result<Committed, LakeError> {
        if change.commit_id().is_empty() {
            return Err(LakeError::Config(format!("a commit to {} needs a commit id", table.identifier())));
        }
        let ident = table.identifier().clone();
        let mut table = table.clone();
        let mut last_error = String::new();
        // What the change removes in the state the caller decided on (the first attempt's);
        // after a lost race the rebased attempt must remove exactly the same files.
        let mut expected: Option<HashSet<String>> = None;
        let mut rebasing = false;
        for attempt in 1..=COMMIT_ATTEMPTS {
            let must_remove = if rebasing { expected.as_ref() } else { None };
            let prepared = produce::prepare(&table, change, must_remove).await?;
            expected.get_or_insert_with(|| prepared.selected.clone());
            rebasing = false;
            let snapshot_id = prepared.snapshot_id;
            match self.swap(&table, &prepared.metadata).await {
                Ok(()) => {
                    let table = self.load(&ident).await?;
                    return Ok(Committed { table, snapshot_id, attempts: attempt });
                }
                Err(e @ LakeError::CommitConflict { .. }) => {
                    produce::discard(&table, &prepared).await;
                    table = self.load(&ident).await?;
                    if change.on_conflict == OnConflict::Fail {
                        return Err(e);
                    }
                    tracing::info!(table = %ident, attempt, "lost a commit race; rebasing");
                    rebasing = true;
                    last_error = e.to_string();
                }
                Err(e) if e.retryable() => {
                    // Unknown outcome: the swap may have landed. Never retry blindly.
                    table = self.load(&ident).await?;
                    if let Some(snapshot_id) = find_commit(&table, change.commit_id()) {
                        return Ok(Committed { table, snapshot_id, attempts: attempt });
                    }
                    tracing::warn!(table = %ident, attempt, error = %e, "commit outcome unknown and not in history; retrying");
                    last_error = e.to_string();
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(LakeError::RetriesExhausted {
            what: format!("commit to {ident}"),
            attempts: COMMIT_ATTEMPTS,
            last: last_error,
        })
    }

    /// Replaces the table's metadata with `metadata` (already built from the table's current
    /// state, e.g. with snapshots removed), through the catalog's compare-and-swap.
    pub(crate) async fn commit_metadata(
        &self,
        table: &Table,
        metadata: TableMetadata,
    ) -> Result<Table, LakeError> {
        self.swap(table, &metadata).await?;
        self.load(table.identifier()).await
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((25u64 << attempt.min(6)).min(2_000))
}
