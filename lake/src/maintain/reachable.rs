//! Which files each snapshot needs: its manifest list, its manifests, the data files live
//! in it. Expiry and orphan cleanup both start from here.

use std::collections::HashSet;

use futures::future::try_join_all;
use iceberg::spec::SnapshotRef;
use iceberg::table::Table;

use crate::LakeError;

/// Files one or more snapshots reference.
#[derive(Debug, Default)]
pub(crate) struct FileSet {
    /// Manifest lists and manifests.
    pub metadata: HashSet<String>,
    /// Data (and delete) files live in at least one of the snapshots.
    pub live_data: HashSet<String>,
    /// Data files named by any entry, live or DELETED.
    pub named_data: HashSet<String>,
}

/// The files `snapshots` reference, reading each manifest once.
pub(crate) async fn files_of(table: &Table, snapshots: &[SnapshotRef]) -> Result<FileSet, LakeError> {
    let context = format!("read manifests of {}", table.identifier());
    let mut set = FileSet::default();
    let mut manifests = Vec::new();
    for snapshot in snapshots {
        set.metadata.insert(snapshot.manifest_list().to_string());
        let list =
            table.manifest_list_reader(snapshot).load().await.map_err(LakeError::iceberg(context.clone()))?;
        for manifest in list.consume_entries() {
            if set.metadata.insert(manifest.manifest_path.clone()) {
                manifests.push(manifest);
            }
        }
    }
    let loads = manifests.iter().map(|m| m.load_manifest(table.file_io()));
    for manifest in try_join_all(loads).await.map_err(LakeError::iceberg(context))? {
        for entry in manifest.entries() {
            set.named_data.insert(entry.file_path().to_string());
            if entry.is_alive() {
                set.live_data.insert(entry.file_path().to_string());
            }
        }
    }
    Ok(set)
}
