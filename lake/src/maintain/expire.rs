//! Snapshot expiry: drop snapshots older than the retention age (always keeping the newest
//! few and the current one), then delete the files only they referenced. The retention age
//! is the audit horizon: time travel cannot reach an expired snapshot.

use std::collections::HashSet;
use std::time::Duration;

use iceberg::TableIdent;
use iceberg::spec::SnapshotRef;
use iceberg::table::Table;

use super::reachable::files_of;
use crate::state::{recorded_sources, state_snapshots};
use crate::{Lake, LakeError, parse_ident};

#[derive(Debug, Clone)]
pub struct ExpireOptions {
    /// Snapshots older than this may go.
    pub older_than: Duration,
    /// The newest this many snapshots stay whatever their age.
    pub retain_last: usize,
    pub dry_run: bool,
}

impl Default for ExpireOptions {
    fn default() -> Self {
        Self { older_than: Duration::from_secs(7 * 24 * 3600), retain_last: 10, dry_run: false }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExpireReport {
    pub expired_snapshots: Vec<i64>,
    pub kept_snapshots: usize,
    /// Manifest lists, manifests and data files deleted (or, in a dry run, to delete).
    pub deleted_files: Vec<String>,
}

impl Lake {
    /// Expires old snapshots of `table` and deletes the files no kept snapshot references.
    pub async fn expire_snapshots(
        &self,
        table: &Table,
        options: &ExpireOptions,
    ) -> Result<ExpireReport, LakeError> {
        let mut table = table.clone();
        let read_from = self.snapshots_read_downstream(table.identifier()).await?;
        for attempt in 1..=crate::COMMIT_ATTEMPTS {
            let (expired, kept) = split(&table, options, &read_from);
            if expired.is_empty() {
                return Ok(ExpireReport { kept_snapshots: kept.len(), ..Default::default() });
            }
            let gone = files_of(&table, &expired).await?;
            let still = files_of(&table, &kept).await?;
            let mut deleted: Vec<String> = gone
                .metadata
                .difference(&still.metadata)
                .chain(gone.named_data.difference(&still.live_data))
                .cloned()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            deleted.sort();
            let report = ExpireReport {
                expired_snapshots: expired.iter().map(|s| s.snapshot_id()).collect(),
                kept_snapshots: kept.len(),
                deleted_files: deleted,
            };
            if options.dry_run {
                return Ok(report);
            }
            let location = table
                .metadata_location_result()
                .map_err(LakeError::iceberg("metadata location"))?
                .to_string();
            let metadata = table
                .metadata()
                .clone()
                .into_builder(Some(location))
                .remove_snapshots(&report.expired_snapshots)
                .build()
                .map_err(LakeError::iceberg(format!("expire snapshots of {}", table.identifier())))?
                .metadata;
            match self.commit_metadata(&table, metadata).await {
                Ok(_) => {
                    // Only now, with no snapshot pointing at them, may the files go.
                    for path in &report.deleted_files {
                        if let Err(e) = table.file_io().delete(path).await {
                            tracing::warn!(path, error = %e, "could not delete expired file; clean-orphans will retry");
                        }
                    }
                    tracing::info!(table = %table.identifier(), expired = report.expired_snapshots.len(), files = report.deleted_files.len(), "expired snapshots");
                    return Ok(report);
                }
                Err(e) if e.retryable() => {
                    tracing::info!(table = %table.identifier(), attempt, error = %e, "expiry raced a commit; re-planning");
                    table = self.load(table.identifier()).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(LakeError::RetriesExhausted {
            what: format!("expire snapshots of {}", table.identifier()),
            attempts: crate::COMMIT_ATTEMPTS,
            last: "commit kept losing races".into(),
        })
    }
}

/// (expired, kept): a snapshot is kept when it is young enough, among the newest
/// `retain_last`, named by a branch or tag (the current snapshot is `main`'s), one a
/// downstream table records as read, or one the table's own state is read from.
fn split(
    table: &Table,
    options: &ExpireOptions,
    read_from: &HashSet<i64>,
) -> (Vec<SnapshotRef>, Vec<SnapshotRef>) {
    let metadata = table.metadata();
    let cutoff = chrono::Utc::now().timestamp_millis() - options.older_than.as_millis() as i64;
    let mut snapshots: Vec<SnapshotRef> = metadata.snapshots().cloned().collect();
    snapshots.sort_by_key(|s| std::cmp::Reverse((s.timestamp_ms(), s.sequence_number())));
    let mut referenced = referenced_snapshots(table);
    referenced.extend(read_from);
    // The snapshots the table's own state is read from (a foreign snapshot on top carries none).
    referenced.extend(state_snapshots(metadata));
    let (mut expired, mut kept) = (Vec::new(), Vec::new());
    for (i, snapshot) in snapshots.into_iter().enumerate() {
        if i >= options.retain_last
            && snapshot.timestamp_ms() < cutoff
            && !referenced.contains(&snapshot.snapshot_id())
        {
            expired.push(snapshot);
        } else {
            kept.push(snapshot);
        }
    }
    (expired, kept)
}

impl Lake {
    /// Snapshots of `input` that a snapshot of another table in the catalog records as read
    /// up to: its next run starts there, and replay walks back through them.
    async fn snapshots_read_downstream(&self, input: &TableIdent) -> Result<HashSet<i64>, LakeError> {
        let mut ids = HashSet::new();
        for ident in self.list_tables().await? {
            if &ident == input {
                continue;
            }
            let table = self.load(&ident).await?;
            for sources in table.metadata().snapshots().filter_map(recorded_sources) {
                ids.extend(
                    sources
                        .iter()
                        .filter(|(name, _)| parse_ident(name).ok().as_ref() == Some(input))
                        .map(|(_, id)| *id),
                );
            }
        }
        Ok(ids)
    }
}

/// Snapshot ids named by any branch or tag. iceberg-rust keeps `refs` private, so they are
/// read from the metadata's JSON form; the current snapshot is always included.
fn referenced_snapshots(table: &Table) -> HashSet<i64> {
    let metadata = table.metadata();
    let mut ids: HashSet<i64> = metadata.current_snapshot_id().into_iter().collect();
    if let Ok(json) = serde_json::to_value(metadata)
        && let Some(refs) = json.get("refs").and_then(|r| r.as_object())
    {
        ids.extend(refs.values().filter_map(|r| r.get("snapshot-id")?.as_i64()));
    }
    ids
}
