//! What a table gained since a snapshot: the files appended after it, so incremental
//! transforms read only new rows.

use std::collections::HashSet;

use futures::future::try_join_all;
use iceberg::spec::{ManifestStatus, Operation};
use iceberg::table::Table;

use crate::LakeError;
use crate::commit::live_files_at;

/// Data files a table gained after a snapshot, up to its current one.
#[derive(Debug, Clone, Default)]
pub struct AddedFiles {
    pub paths: HashSet<String>,
    /// The snapshot read up to (the current one), if the table has any.
    pub up_to: Option<i64>,
    /// False when `after` was not in the current snapshot's ancestry (expired, or rewritten
    /// history): then `paths` holds every live file and the caller must dedup.
    pub complete: bool,
}

/// Files added by `append` and `overwrite` snapshots after `after` (all live files when
/// `after` is `None`). `replace` snapshots rewrite rows already there and add nothing new.
pub async fn files_added_since(table: &Table, after: Option<i64>) -> Result<AddedFiles, LakeError> {
    match table.metadata().current_snapshot_id() {
        Some(current) => files_added_between(table, after, current).await,
        None => Ok(AddedFiles { complete: true, ..Default::default() }),
    }
}

/// Like [`files_added_since`], up to the snapshot `up_to` instead of the current one.
pub async fn files_added_between(
    table: &Table,
    after: Option<i64>,
    up_to: i64,
) -> Result<AddedFiles, LakeError> {
    let metadata = table.metadata();
    let Some(current) = metadata.snapshot_by_id(up_to) else {
        return Err(LakeError::TimeTravel {
            table: table.identifier().to_string(),
            problem: format!("snapshot {up_to} is not in the table's history"),
        });
    };
    let up_to = Some(current.snapshot_id());
    if after == up_to {
        return Ok(AddedFiles { up_to, complete: true, ..Default::default() });
    }
    let mut chain = Vec::new();
    let mut cursor = Some(current.clone());
    let mut found = after.is_none();
    while let Some(snapshot) = cursor {
        if Some(snapshot.snapshot_id()) == after {
            found = true;
            break;
        }
        cursor = snapshot.parent_snapshot_id().and_then(|p| metadata.snapshot_by_id(p).cloned());
        chain.push(snapshot);
    }
    if !found || after.is_none() {
        let paths =
            live_files_at(table, up_to).await?.into_iter().map(|f| f.entry.file_path().to_string()).collect();
        return Ok(AddedFiles { paths, up_to, complete: after.is_none() });
    }
    let context = format!("read manifests of {}", table.identifier());
    let mut paths = HashSet::new();
    for snapshot in chain.iter().filter(|s| s.summary().operation != Operation::Replace) {
        let list =
            table.manifest_list_reader(snapshot).load().await.map_err(LakeError::iceberg(context.clone()))?;
        let ours: Vec<_> = list
            .entries()
            .iter()
            .filter(|m| m.added_snapshot_id == snapshot.snapshot_id())
            .cloned()
            .collect();
        let loads = ours.iter().map(|m| m.load_manifest(table.file_io()));
        for manifest in try_join_all(loads).await.map_err(LakeError::iceberg(context.clone()))? {
            paths.extend(
                manifest
                    .entries()
                    .iter()
                    .filter(|e| {
                        e.status() == ManifestStatus::Added && e.snapshot_id() == Some(snapshot.snapshot_id())
                    })
                    .map(|e| e.file_path().to_string()),
            );
        }
    }
    // A file added and then removed again (overwritten) within the range is gone.
    let live: HashSet<String> =
        live_files_at(table, up_to).await?.into_iter().map(|f| f.entry.file_path().to_string()).collect();
    paths.retain(|p| live.contains(p));
    Ok(AddedFiles { paths, up_to, complete: true })
}
