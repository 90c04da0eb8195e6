//! Reading tables back: rows (current or as of a snapshot) and the snapshot history.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use iceberg::table::Table;

use crate::LakeError;

/// One snapshot as `ingot snapshots` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    pub snapshot_id: i64,
    pub parent_id: Option<i64>,
    pub timestamp_ms: i64,
    pub operation: String,
    pub summary: HashMap<String, String>,
}

/// All rows of the table at its current snapshot, or at `snapshot_id`.
pub async fn read_table(table: &Table, snapshot_id: Option<i64>) -> Result<Vec<RecordBatch>, LakeError> {
    let context = format!("scan {}", table.identifier());
    let mut scan = table.scan().select_all();
    if let Some(id) = snapshot_id {
        scan = scan.snapshot_id(id);
    }
    let stream = scan
        .build()
        .map_err(LakeError::iceberg(context.clone()))?
        .to_arrow()
        .await
        .map_err(LakeError::iceberg(context.clone()))?;
    stream.try_collect().await.map_err(LakeError::iceberg(context))
}

/// The table's snapshots, oldest first.
pub fn list_snapshots(table: &Table) -> Vec<SnapshotInfo> {
    let mut snapshots: Vec<SnapshotInfo> = table
        .metadata()
        .snapshots()
        .map(|s| SnapshotInfo {
            snapshot_id: s.snapshot_id(),
            parent_id: s.parent_snapshot_id(),
            timestamp_ms: s.timestamp_ms(),
            operation: s.summary().operation.as_str().to_string(),
            summary: s.summary().additional_properties.clone(),
        })
        .collect();
    snapshots.sort_by_key(|s| (s.timestamp_ms, s.snapshot_id));
    snapshots
}

/// The table's current schema as Arrow, with Iceberg field ids in the field metadata:
/// batches written to the table must have exactly this schema.
pub fn table_arrow_schema(table: &Table) -> Result<arrow_schema::Schema, LakeError> {
    iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema())
        .map_err(LakeError::iceberg(format!("schema of {}", table.identifier())))
}
