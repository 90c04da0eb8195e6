//! What a table's rows changed by between two snapshots, so incremental transforms read only
//! what is new — whoever rewrote the table in between.
//!
//! The files live at the later snapshot and not at the earlier one hold the new rows, with
//! two corrections. A `replace` snapshot (ingot's compaction, Trino's `OPTIMIZE`) promises by
//! the Iceberg spec that its files hold exactly the rows of the files it removed, so when it
//! only rewrote files that were already there, its output is old rows and is skipped without
//! being read. Any other rewrite — another engine's `overwrite` of the same rows into fewer
//! files, a correction, a delete — is settled by content: rows of the files added to the
//! affected partitions minus rows of the files removed from them (as multisets).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use futures::future::try_join_all;
use iceberg::spec::{ManifestStatus, Operation, SnapshotRef};
use iceberg::table::Table;

use crate::LakeError;
use crate::commit::{live_files_at, partition_path};
use crate::maintain::read_files_at;
use crate::state::ancestors;

/// How a table's files changed between two snapshots.
#[derive(Debug, Clone, Default)]
pub struct AddedFiles {
    /// Files whose rows are all new.
    pub paths: HashSet<String>,
    /// Files added into partitions that also lost files: their rows are compared with the
    /// removed files' rows.
    pub rewritten: Option<Rewritten>,
    /// The snapshot read up to, if the table has any.
    pub up_to: Option<i64>,
    /// False when the earlier snapshot is no longer in the table's metadata (expired): then
    /// `paths` holds every live file and the caller must dedup.
    pub complete: bool,
    /// Where each file of `paths` is and how many rows it holds (from the manifests), so a
    /// caller can plan its reads — or learn what it needs from partitions alone.
    pub placement: HashMap<String, FilePlacement>,
}

/// A data file's partition (`<column>_day=2026-11-20`, empty when unpartitioned) and rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePlacement {
    pub partition: String,
    pub rows: u64,
}

impl AddedFiles {
    /// Rows of the files in `paths`.
    pub fn rows(&self) -> u64 {
        self.paths.iter().filter_map(|p| self.placement.get(p)).map(|p| p.rows).sum()
    }
}

/// Files added and removed in the same partitions between `from` and `up_to`.
#[derive(Debug, Clone, Default)]
pub struct Rewritten {
    pub from: i64,
    pub added: HashSet<String>,
    pub removed: HashSet<String>,
}

impl AddedFiles {
    /// True when no file was added or removed (only rewrites that kept every row, if any).
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.rewritten.is_none()
    }
}

/// The rows a table gained and lost between two snapshots, in its current schema.
#[derive(Debug, Clone, Default)]
pub struct RowChanges {
    pub added: Vec<RecordBatch>,
    pub removed: Vec<RecordBatch>,
}

impl RowChanges {
    pub fn added_rows(&self) -> u64 {
        self.added.iter().map(|b| b.num_rows() as u64).sum()
    }
    pub fn removed_rows(&self) -> u64 {
        self.removed.iter().map(|b| b.num_rows() as u64).sum()
    }
}

/// How the table changed after `after` (everything live when `None`) up to the snapshot
/// `up_to`.
pub async fn files_added_between(
    table: &Table,
    after: Option<i64>,
    up_to: i64,
) -> Result<AddedFiles, LakeError> {
    let metadata = table.metadata();
    if metadata.snapshot_by_id(up_to).is_none() {
        return Err(LakeError::TimeTravel {
            table: table.identifier().to_string(),
            problem: format!("snapshot {up_to} is not in the table's history"),
        });
    }
    let up_to_id = Some(up_to);
    if after == up_to_id {
        return Ok(AddedFiles { up_to: up_to_id, complete: true, ..Default::default() });
    }
    let live_now = live_files_at(table, up_to_id).await?;
    let placement: HashMap<String, FilePlacement> = live_now
        .iter()
        .map(|f| {
            let rows = f.entry.data_file().record_count();
            (f.entry.file_path().to_string(), FilePlacement { partition: f.partition_path.clone(), rows })
        })
        .collect();
    let found = after.is_some_and(|a| metadata.snapshot_by_id(a).is_some());
    let (Some(after), true) = (after, found) else {
        let paths = live_now.into_iter().map(|f| f.entry.file_path().to_string()).collect();
        return Ok(AddedFiles {
            paths,
            up_to: up_to_id,
            complete: after.is_none(),
            rewritten: None,
            placement,
        });
    };

    // Files holding rows that were there at `after`: its live files, and the output of
    // replace snapshots that rewrote only such files.
    let mut old: HashMap<String, Placement> = live_files_at(table, Some(after))
        .await?
        .into_iter()
        .map(|f| (f.entry.file_path().to_string(), (f.spec_id, f.partition_path)))
        .collect();
    // The replace snapshots on the way from `after`, oldest first: the walk stops at `after`,
    // or where expiry cut the history (the live files of both ends still tell what changed).
    let mut replaces: Vec<&SnapshotRef> = ancestors(metadata, Some(up_to))
        .take_while(|s| s.snapshot_id() != after)
        .filter(|s| s.summary().operation == Operation::Replace)
        .collect();
    replaces.reverse();
    for snapshot in replaces {
        let (added, removed) = snapshot_delta(table, snapshot).await?;
        if removed.iter().all(|p| old.contains_key(p)) {
            for path in &removed {
                old.remove(path);
            }
            old.extend(added);
        }
    }
    let now: HashMap<String, Placement> = live_now
        .into_iter()
        .map(|f| (f.entry.file_path().to_string(), (f.spec_id, f.partition_path)))
        .collect();
    let added: Vec<(&String, &Placement)> = now.iter().filter(|(p, _)| !old.contains_key(*p)).collect();
    let removed: Vec<(&String, &Placement)> = old.iter().filter(|(p, _)| !now.contains_key(*p)).collect();
    let mut out = AddedFiles { up_to: up_to_id, complete: true, placement, ..Default::default() };
    if removed.is_empty() {
        out.paths = added.into_iter().map(|(p, _)| p.clone()).collect();
        return Ok(out);
    }
    // Rows cannot move between partitions of one spec; across specs (a repartitioning)
    // every added file is compared.
    let one_spec =
        removed.iter().chain(&added).map(|(_, (spec, _))| *spec).collect::<HashSet<_>>().len() == 1;
    let touched: HashSet<&String> = removed.iter().map(|(_, (_, part))| part).collect();
    let mut rewritten = Rewritten {
        from: after,
        removed: removed.iter().map(|(p, _)| (*p).clone()).collect(),
        ..Default::default()
    };
    for (path, (_, part)) in added {
        if !one_spec || touched.contains(part) {
            rewritten.added.insert(path.clone());
        } else {
            out.paths.insert(path.clone());
        }
    }
    out.rewritten = Some(rewritten);
    Ok(out)
}

/// Where a data file lives: (partition spec id, partition path).
type Placement = (i32, String);

/// The data files one snapshot added (with their placement) and removed, from the manifests
/// it wrote.
async fn snapshot_delta(
    table: &Table,
    snapshot: &SnapshotRef,
) -> Result<(Vec<(String, Placement)>, Vec<String>), LakeError> {
    let context = format!("read manifests of {}", table.identifier());
    let list =
        table.manifest_list_reader(snapshot).load().await.map_err(LakeError::iceberg(context.clone()))?;
    let id = snapshot.snapshot_id();
    let ours: Vec<_> = list.entries().iter().filter(|m| m.added_snapshot_id == id).cloned().collect();
    let loads = ours.iter().map(|m| m.load_manifest(table.file_io()));
    let loaded = try_join_all(loads).await.map_err(LakeError::iceberg(context))?;
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for (file, manifest) in ours.iter().zip(loaded) {
        for entry in manifest.entries().iter().filter(|e| e.snapshot_id() == Some(id)) {
            let path = entry.file_path().to_string();
            match entry.status() {
                ManifestStatus::Added => {
                    let spec = file.partition_spec_id;
                    let part = partition_path(table.metadata(), spec, entry.data_file().partition());
                    added.push((path, (spec, part)));
                }
                ManifestStatus::Deleted => removed.push(path),
                ManifestStatus::Existing => {}
            }
        }
    }
    Ok((added, removed))
}

/// Reads what `changes` describes: the rows added (and, for rewrites, removed) between its
/// snapshots, in the table's current schema.
pub async fn read_changes(table: &Table, changes: &AddedFiles) -> Result<RowChanges, LakeError> {
    let Some(up_to) = changes.up_to else { return Ok(RowChanges::default()) };
    let mut added = if changes.paths.is_empty() {
        Vec::new()
    } else {
        read_files_at(table, Some(up_to), &changes.paths).await?
    };
    let mut removed = Vec::new();
    if let Some(rewritten) = &changes.rewritten {
        let now = read_files_at(table, Some(up_to), &rewritten.added).await?;
        let before = read_files_at(table, Some(rewritten.from), &rewritten.removed).await?;
        let schema: SchemaRef = Arc::new(crate::table_arrow_schema(table)?);
        let (gained, lost) = multiset_difference(&now, &before, &schema)?;
        added.extend(gained);
        removed = lost;
    }
    Ok(RowChanges { added, removed })
}

/// Rows of `a` not in `b` and rows of `b` not in `a`, counting repeats.
fn multiset_difference(
    a: &[RecordBatch],
    b: &[RecordBatch],
    schema: &SchemaRef,
) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>), LakeError> {
    let keys_a = row_keys(a, schema)?;
    let keys_b = row_keys(b, schema)?;
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    for key in keys_b.iter().flatten() {
        *counts.entry(key.as_slice()).or_default() += 1;
    }
    // Pass over `a`: a row matched by a row of `b` is old; what `b` has left is gone.
    let mut keep_a = Vec::new();
    for keys in &keys_a {
        keep_a.push(BooleanArray::from_iter(keys.iter().map(|k| {
            let count = counts.entry(k.as_slice()).or_default();
            *count -= 1;
            Some(*count < 0)
        })));
    }
    let mut keep_b = Vec::new();
    for keys in &keys_b {
        keep_b.push(BooleanArray::from_iter(keys.iter().map(|k| {
            let count = counts.get_mut(k.as_slice()).expect("counted above");
            let left = *count > 0;
            if left {
                *count -= 1;
            }
            Some(left)
        })));
    }
    let filter = |batches: &[RecordBatch], masks: Vec<BooleanArray>| -> Result<Vec<RecordBatch>, LakeError> {
        batches
            .iter()
            .zip(masks)
            .map(|(batch, mask)| arrow_select::filter::filter_record_batch(batch, &mask))
            .filter(|b| b.as_ref().map_or(true, |b| b.num_rows() > 0))
            .collect::<Result<_, _>>()
            .map_err(|e| LakeError::Unsupported(format!("compare rewritten rows: {e}")))
    };
    Ok((filter(a, keep_a)?, filter(b, keep_b)?))
}

/// One comparable byte string per row: Arrow's row format for the columns it supports, the
/// rendered text of the others (maps).
fn row_keys(batches: &[RecordBatch], schema: &SchemaRef) -> Result<Vec<Vec<Vec<u8>>>, LakeError> {
    use arrow::row::{RowConverter, SortField};
    let err = |e: arrow_schema::ArrowError| LakeError::Unsupported(format!("compare rewritten rows: {e}"));
    let (comparable, rendered): (Vec<usize>, Vec<usize>) = (0..schema.fields().len()).partition(|&i| {
        RowConverter::supports_fields(&[SortField::new(schema.field(i).data_type().clone())])
    });
    let converter = RowConverter::new(
        comparable.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect(),
    )
    .map_err(err)?;
    let mut out = Vec::new();
    for batch in batches {
        let columns: Vec<ArrayRef> = comparable.iter().map(|&i| batch.column(i).clone()).collect();
        let rows = converter.convert_columns(&columns).map_err(err)?;
        let formatters: Vec<_> = rendered
            .iter()
            .map(|&i| {
                arrow::util::display::ArrayFormatter::try_new(batch.column(i).as_ref(), &Default::default())
            })
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut keys = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut key = rows.row(row).as_ref().to_vec();
            for formatter in &formatters {
                key.extend_from_slice(formatter.value(row).to_string().as_bytes());
                key.push(0);
            }
            keys.push(key);
        }
        out.push(keys);
    }
    Ok(out)
}
