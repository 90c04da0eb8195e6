//! Compaction: rewrite many small data files of a partition into few files of a target size,
//! same rows, in one `replace` snapshot. Appends that land meanwhile survive: the commit is
//! rebased onto them as long as the files it replaces are still there.

use std::collections::{BTreeMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::Operation;
use iceberg::table::Table;

use crate::commit::{FileSelection, LiveFile, SnapshotChange, live_files};
use crate::field_ids::explain_read_failure;
use crate::read::to_schema;
use crate::write::target_file_size_or;
use crate::{Lake, LakeError, table_arrow_schema, write_data_files_sized};

/// Iceberg's `write.target-file-size-bytes` for compaction when the table sets none.
pub const DEFAULT_COMPACT_TARGET_BYTES: u64 = 256 * 1024 * 1024;

/// When a manifest count is too many: Iceberg's `commit.manifest.min-count-to-merge` default.
const MANIFEST_MERGE_THRESHOLD: usize = 100;

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Size of the files written; the table's `write.target-file-size-bytes` wins if set.
    pub target_bytes: Option<u64>,
    /// A partition is compacted when it has at least this many small files.
    pub min_input_files: usize,
    pub dry_run: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self { target_bytes: None, min_input_files: 5, dry_run: false }
    }
}

/// One partition's rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactGroup {
    pub partition: String,
    pub input_files: usize,
    pub input_bytes: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CompactReport {
    pub groups: Vec<CompactGroup>,
    pub output_files: usize,
    pub manifests_before: usize,
    pub manifests_merged: bool,
    pub snapshot_id: Option<i64>,
    /// Commit attempts (more than 1 when the commit was rebased onto a racing writer).
    pub attempts: u32,
}

impl Lake {
    /// Plans (and unless `dry_run`, commits) the compaction of `table`.
    pub async fn compact(&self, table: &Table, options: &CompactOptions) -> Result<CompactReport, LakeError> {
        let target =
            options.target_bytes.unwrap_or_else(|| target_file_size_or(table, DEFAULT_COMPACT_TARGET_BYTES));
        let small = (target as f64 * 0.75) as u64;
        let live = live_files(table).await?;
        let manifests_before = manifest_count(table).await?;
        let mut by_partition: BTreeMap<(i32, String), Vec<LiveFile>> = BTreeMap::new();
        for file in live.into_iter().filter(|f| f.entry.file_size_in_bytes() < small) {
            by_partition.entry((file.spec_id, file.partition_path.clone())).or_default().push(file);
        }
        let groups: Vec<Vec<LiveFile>> = by_partition
            .into_values()
            .filter(|files| files.len() >= options.min_input_files.max(2))
            .collect();
        let mut report = CompactReport {
            groups: groups
                .iter()
                .map(|files| CompactGroup {
                    partition: files[0].partition_path.clone(),
                    input_files: files.len(),
                    input_bytes: files.iter().map(|f| f.entry.file_size_in_bytes()).sum(),
                    rows: files.iter().map(|f| f.entry.record_count()).sum(),
                })
                .collect(),
            manifests_before,
            manifests_merged: manifests_before > MANIFEST_MERGE_THRESHOLD,
            ..Default::default()
        };
        if options.dry_run || (groups.is_empty() && !report.manifests_merged) {
            return Ok(report);
        }

        let inputs: HashSet<String> =
            groups.iter().flatten().map(|f| f.entry.file_path().to_string()).collect();
        let batches = read_files(table, &inputs).await?;
        let written = write_data_files_sized(table, &batches, target).await?;
        let rows_in: u64 = report.groups.iter().map(|g| g.rows).sum();
        if written.rows != rows_in {
            return Err(LakeError::Unsupported(format!(
                "compaction of {} read {} rows from files that hold {rows_in}; nothing committed",
                table.identifier(),
                written.rows
            )));
        }
        report.output_files = written.files.len();
        let commit_id = format!("compact-{}", uuid::Uuid::now_v7());
        let mut change = SnapshotChange::new(Operation::Replace, commit_id);
        change.add = written.files;
        let inputs_len = inputs.len();
        change.remove = FileSelection::Paths(inputs);
        change.merge_manifests = report.manifests_merged;
        let committed = self.commit_change(table, &change).await?;
        tracing::info!(
            table = %table.identifier(),
            partitions = report.groups.len(),
            files_in = inputs_len,
            files_out = report.output_files,
            snapshot = committed.snapshot_id,
            attempts = committed.attempts,
            "compacted"
        );
        report.snapshot_id = Some(committed.snapshot_id);
        report.attempts = committed.attempts;
        Ok(report)
    }
}

async fn manifest_count(table: &Table) -> Result<usize, LakeError> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(0);
    };
    let list = table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .map_err(LakeError::iceberg(format!("read manifest list of {}", table.identifier())))?;
    Ok(list.entries().len())
}

/// Rows of exactly these files of the current snapshot, in the table's current schema
/// (columns added after a file was written read as null).
pub async fn read_files(
    table: &Table,
    paths: &HashSet<String>,
) -> Result<Vec<arrow_array::RecordBatch>, LakeError> {
    read_files_at(table, None, paths).await
}

/// [`read_files`] of the files live in `snapshot` (the current one when `None`). A failed
/// read names the files the reader cannot map (see [`explain_read_failure`]).
pub async fn read_files_at(
    table: &Table,
    snapshot: Option<i64>,
    paths: &HashSet<String>,
) -> Result<Vec<arrow_array::RecordBatch>, LakeError> {
    stream_files_at(table, snapshot, paths, None).await?.try_collect().await
}

/// The rows of `paths` (files live in `snapshot`) as a stream of batches in the table's current
/// schema, so a caller can work through more rows than fit in memory. `columns` narrows the
/// read to those columns (then the batches hold just them).
pub async fn stream_files_at(
    table: &Table,
    snapshot: Option<i64>,
    paths: &HashSet<String>,
    columns: Option<&[&str]>,
) -> Result<futures::stream::BoxStream<'static, Result<arrow_array::RecordBatch, LakeError>>, LakeError> {
    let context = format!("read files of {}", table.identifier());
    let mut scan = table.scan();
    scan = match columns {
        Some(columns) => scan.select(columns.iter().copied()),
        None => scan.select_all(),
    };
    let batches = match scan_files_with(table, scan, snapshot, paths, &context).await {
        Ok(batches) => batches,
        Err(e) => return Err(explain_read_failure(table, snapshot, e.to_string()).await.unwrap_or(e)),
    };
    let schema = std::sync::Arc::new(table_arrow_schema(table)?);
    let whole = columns.is_none();
    let table = table.clone();
    Ok(batches
        .then(move |batch| {
            let (table, schema, context) = (table.clone(), schema.clone(), context.clone());
            async move {
                match batch {
                    // A file the reader cannot map (written without field ids) is named.
                    Err(e) => Err(explain_read_failure(&table, snapshot, e.to_string()).await.unwrap_or(e)),
                    Ok(batch) if whole => to_schema(&batch, &schema)
                        .map_err(|e| LakeError::Unsupported(format!("{context}: {e}"))),
                    Ok(batch) => Ok(batch),
                }
            }
        })
        .boxed())
}

/// The rows of exactly `paths` among the files live in `snapshot`, as the reader gives them.
async fn scan_files_with(
    table: &Table,
    mut scan: iceberg::scan::TableScanBuilder<'_>,
    snapshot: Option<i64>,
    paths: &HashSet<String>,
    context: &str,
) -> Result<futures::stream::BoxStream<'static, Result<arrow_array::RecordBatch, LakeError>>, LakeError> {
    if let Some(id) = snapshot {
        scan = scan.snapshot_id(id);
    }
    let scan = scan.build().map_err(LakeError::iceberg(context))?;
    let paths = paths.clone();
    let tasks = scan
        .plan_files()
        .await
        .map_err(LakeError::iceberg(context))?
        .try_filter(move |task| futures::future::ready(paths.contains(&task.data_file_path)))
        .boxed();
    let stream = table.reader_builder().build().read(tasks).map_err(LakeError::iceberg(context))?;
    let context = context.to_string();
    Ok(stream.stream().map_err(move |e| LakeError::iceberg(context.clone())(e)).boxed())
}
