//! Replacing the rows of chosen partitions in one snapshot: what gold window rewrites and
//! backfills stand on.

use std::collections::{HashMap, HashSet};

use arrow_array::RecordBatch;
use iceberg::spec::{DataFile, Operation};
use iceberg::table::Table;

use crate::commit::{Committed, FileSelection, OnConflict, SnapshotChange};
use crate::{Lake, LakeError, write_data_files};

/// What rows an overwrite takes out before adding its own.
#[derive(Debug, Clone)]
pub enum Replaced {
    /// The partitions the new rows fall in, plus these (partitions that end up empty).
    PartitionsWritten { also: HashSet<String> },
    /// Exactly these live files.
    Files(HashSet<String>),
    /// The whole table.
    Everything,
}

/// An overwrite request: the rows, what they replace, and summary properties (commit id,
/// source snapshot ids, …).
#[derive(Debug, Clone)]
pub struct Overwrite {
    pub replaced: Replaced,
    pub commit_id: String,
    pub properties: HashMap<String, String>,
    pub on_conflict: OnConflict,
}

impl Lake {
    /// Writes `batches` and, in one `overwrite` snapshot, removes the files `request`
    /// selects and adds the new ones. Readers see either all old rows or all new rows.
    pub async fn overwrite(
        &self,
        table: &Table,
        batches: &[RecordBatch],
        request: &Overwrite,
    ) -> Result<Committed, LakeError> {
        let files = write_data_files(table, batches).await?;
        let remove = match &request.replaced {
            Replaced::PartitionsWritten { also } => {
                let mut partitions = partition_paths(table, &files.files);
                partitions.extend(also.iter().cloned());
                FileSelection::Partitions(partitions)
            }
            Replaced::Files(paths) => FileSelection::Paths(paths.clone()),
            Replaced::Everything => FileSelection::All,
        };
        let mut change = SnapshotChange::new(Operation::Overwrite, request.commit_id.clone());
        change.properties.extend(request.properties.clone());
        change.add = files.files;
        change.remove = remove;
        change.on_conflict = request.on_conflict;
        self.commit_change(table, &change).await
    }
}

/// The partition paths (`event_time_day=2026-11-20`) of files in the table's default spec.
pub fn partition_paths(table: &Table, files: &[DataFile]) -> HashSet<String> {
    let metadata = table.metadata();
    let spec = metadata.default_partition_spec();
    if spec.is_unpartitioned() {
        return HashSet::new();
    }
    files.iter().map(|f| spec.partition_to_path(f.partition(), metadata.current_schema().clone())).collect()
}
