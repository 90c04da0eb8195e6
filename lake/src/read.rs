//! Reading tables back: rows (current or as of a snapshot) and the snapshot history.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use iceberg::scan::TableScanBuilder;
use iceberg::table::Table;

use crate::LakeError;
use crate::field_ids::explain_read_failure;

/// One snapshot as `ingot snapshots` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    pub snapshot_id: i64,
    pub parent_id: Option<i64>,
    pub timestamp_ms: i64,
    pub operation: String,
    pub summary: HashMap<String, String>,
}

/// A table's size and last commit, from its current snapshot's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableSize {
    pub rows: u64,
    pub files: u64,
    pub snapshots: usize,
    pub current_snapshot: Option<i64>,
    pub last_commit_ms: Option<i64>,
}

/// [`TableSize`] of `table` (zeros before its first snapshot).
pub fn table_size(table: &Table) -> TableSize {
    let metadata = table.metadata();
    let current = metadata.current_snapshot();
    let total = |key: &str| {
        current
            .and_then(|s| s.summary().additional_properties.get(key))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    TableSize {
        rows: total("total-records"),
        files: total("total-data-files"),
        snapshots: metadata.snapshots().len(),
        current_snapshot: current.map(|s| s.snapshot_id()),
        last_commit_ms: current.map(|s| s.timestamp_ms()),
    }
}

/// All rows of the table at its current snapshot, or at `snapshot_id`. A failed read names
/// the files the reader cannot map (see [`explain_read_failure`]).
pub async fn read_table(table: &Table, snapshot_id: Option<i64>) -> Result<Vec<RecordBatch>, LakeError> {
    let context = format!("scan {}", table.identifier());
    let mut scan = table.scan().select_all();
    if let Some(id) = snapshot_id {
        scan = scan.snapshot_id(id);
    }
    match collect(scan, context).await {
        Ok(batches) => Ok(batches),
        Err(e) => Err(explain_read_failure(table, snapshot_id, e.to_string()).await.unwrap_or(e)),
    }
}

/// The values of `columns` in the rows whose Int64 column `range.0` lies within
/// `range.1..=range.2`, at the current snapshot: a narrow read (only those columns; files
/// whose statistics put them outside the range are skipped). Callers that need exactness
/// check the range column again: a reader may return rows of a file it could not prune.
pub async fn read_columns_in_range(
    table: &Table,
    columns: &[&str],
    range: (&str, i64, i64),
) -> Result<Vec<RecordBatch>, LakeError> {
    use iceberg::expr::Reference;
    use iceberg::spec::Datum;
    let context = format!("scan {}", table.identifier());
    let (column, low, high) = range;
    let filter = Reference::new(column)
        .greater_than_or_equal_to(Datum::long(low))
        .and(Reference::new(column).less_than_or_equal_to(Datum::long(high)));
    collect(table.scan().select(columns.iter().copied()).with_filter(filter), context).await
}

/// Every batch the scan yields.
async fn collect(scan: TableScanBuilder<'_>, context: String) -> Result<Vec<RecordBatch>, LakeError> {
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

/// `batch` with exactly `schema`'s fields, matched by name (see [`column_for`]). The arrays'
/// own types are what is compared: a batch's schema may claim nested field ids its arrays
/// lack (the Iceberg reader's batches from a file without them).
pub fn to_schema(
    batch: &RecordBatch,
    schema: &arrow_schema::SchemaRef,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let columns =
        schema.fields().iter().map(|field| column_for(batch, field)).collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// `batch`'s column for `field`, matched by name: cast when its type differs (a promotion, a
/// SQL output type), null when the batch lacks it (a column added to the table later).
pub fn column_for(
    batch: &RecordBatch,
    field: &arrow_schema::Field,
) -> Result<arrow_array::ArrayRef, arrow_schema::ArrowError> {
    match batch.column_by_name(field.name()) {
        None => Ok(arrow_array::new_null_array(field.data_type(), batch.num_rows())),
        Some(c) if c.data_type() == field.data_type() => Ok(c.clone()),
        Some(c) => arrow_cast::cast(c, field.data_type()),
    }
}
