//! Writing a new snapshot: manifests (carried, rewritten or new), the manifest list, the
//! summary with correct counts, and the metadata that points at it.

use std::collections::{BTreeMap, HashSet};

use futures::future::try_join_all;
use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, FormatVersion, MAIN_BRANCH, ManifestContentType,
    ManifestEntry, ManifestFile, ManifestListWriter, ManifestWriter, ManifestWriterBuilder, Operation,
    Snapshot, SnapshotSummaryCollector, Summary, TableMetadata,
};
use iceberg::table::Table;
use uuid::Uuid;

use super::{FileSelection, SnapshotChange};
use crate::LakeError;
use crate::state::carry_forward;

/// A live data file of a snapshot, with what an EXISTING or DELETED entry must preserve.
#[derive(Debug, Clone)]
pub(crate) struct LiveFile {
    pub entry: ManifestEntry,
    pub spec_id: i32,
    pub partition_path: String,
}

/// A snapshot ready to be swapped in.
pub(crate) struct Prepared {
    pub metadata: TableMetadata,
    pub snapshot_id: i64,
    /// Files written for this attempt, removed again if the swap is lost.
    pub written: Vec<String>,
    /// Paths of the live files the change removes.
    pub selected: HashSet<String>,
}

/// Every manifest of the current snapshot with its entries (inherited sequence numbers
/// filled in). Empty for a table without snapshots.
async fn load_manifests(table: &Table) -> Result<Vec<(ManifestFile, Vec<ManifestEntry>)>, LakeError> {
    load_manifests_at(table, table.metadata().current_snapshot_id()).await
}

async fn load_manifests_at(
    table: &Table,
    snapshot: Option<i64>,
) -> Result<Vec<(ManifestFile, Vec<ManifestEntry>)>, LakeError> {
    let Some(snapshot) = snapshot.and_then(|id| table.metadata().snapshot_by_id(id)) else {
        return Ok(Vec::new());
    };
    let context = format!("read manifests of {}", table.identifier());
    let list =
        table.manifest_list_reader(snapshot).load().await.map_err(LakeError::iceberg(context.clone()))?;
    let loads = list.consume_entries().into_iter().map(|manifest| {
        let io = table.file_io().clone();
        let context = context.clone();
        async move {
            let loaded = manifest.load_manifest(&io).await.map_err(LakeError::iceberg(context))?;
            let entries = loaded.entries().iter().map(|e| e.as_ref().clone()).collect();
            Ok::<_, LakeError>((manifest, entries))
        }
    });
    try_join_all(loads).await
}

/// The live data files of the table's current snapshot.
pub(crate) async fn live_files(table: &Table) -> Result<Vec<LiveFile>, LakeError> {
    live_files_at(table, table.metadata().current_snapshot_id()).await
}

/// The live data files of one snapshot.
pub(crate) async fn live_files_at(table: &Table, snapshot: Option<i64>) -> Result<Vec<LiveFile>, LakeError> {
    let metadata = table.metadata();
    let mut out = Vec::new();
    for (manifest, entries) in load_manifests_at(table, snapshot).await? {
        if manifest.content != ManifestContentType::Data {
            continue;
        }
        for entry in entries.into_iter().filter(ManifestEntry::is_alive) {
            let partition_path =
                partition_path(metadata, manifest.partition_spec_id, entry.data_file.partition());
            out.push(LiveFile { entry, spec_id: manifest.partition_spec_id, partition_path });
        }
    }
    Ok(out)
}

/// A data file's partition path (`event_time_day=2026-11-20`; empty when unpartitioned).
pub(crate) fn partition_path(
    metadata: &TableMetadata,
    spec_id: i32,
    partition: &iceberg::spec::Struct,
) -> String {
    match metadata.partition_spec_by_id(spec_id) {
        Some(spec) if !spec.is_unpartitioned() => {
            spec.partition_to_path(partition, metadata.current_schema().clone())
        }
        _ => String::new(),
    }
}

fn is_selected(selection: &FileSelection, file: &LiveFile) -> bool {
    match selection {
        FileSelection::Nothing => false,
        FileSelection::Paths(paths) => paths.contains(file.entry.file_path()),
        FileSelection::Partitions(parts) => parts.contains(&file.partition_path),
        FileSelection::All => true,
    }
}

/// Writes manifests and the manifest list for `change` on top of `table`'s current snapshot
/// and builds the metadata that makes it current. Nothing is visible until swapped in.
/// With `must_remove`, the change is being rebased after a lost race: if the files it selects
/// now are not exactly those, it fails with [`LakeError::CommitConflict`] before writing anything.
pub(crate) async fn prepare(
    table: &Table,
    change: &SnapshotChange,
    must_remove: Option<&HashSet<String>>,
) -> Result<Prepared, LakeError> {
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(LakeError::Unsupported(format!(
            "{}: ingot writes overwrite/replace snapshots for format v2 tables only",
            table.identifier()
        )));
    }
    let context = |what: &str| format!("{what} for {}", table.identifier());
    let snapshot_id = unique_snapshot_id(metadata);
    let sequence_number = metadata.next_sequence_number();
    let commit_uuid = Uuid::now_v7();
    let mut writer = Manifests { table, snapshot_id, commit_uuid, written: Vec::new(), counter: 0 };

    let schema = metadata.current_schema().clone();
    let mut summary = SnapshotSummaryCollector::default();
    summary.set_partition_summary_limit(100);
    let mut manifests: Vec<ManifestFile> = Vec::new();
    // Entries of rewritten manifests, by partition spec: carried forward, and removed.
    let mut merged: BTreeMap<i32, Vec<ManifestEntry>> = BTreeMap::new();
    let mut deleted: BTreeMap<i32, Vec<ManifestEntry>> = BTreeMap::new();
    let mut selected: HashSet<String> = HashSet::new();
    let mut totals = Totals::default();
    for (manifest, entries) in load_manifests(table).await? {
        let live: Vec<LiveFile> = entries
            .into_iter()
            .filter(ManifestEntry::is_alive)
            .map(|entry| {
                let partition_path =
                    partition_path(metadata, manifest.partition_spec_id, entry.data_file.partition());
                LiveFile { entry, spec_id: manifest.partition_spec_id, partition_path }
            })
            .collect();
        let data = manifest.content == ManifestContentType::Data;
        for file in live.iter().filter(|f| !(data && is_selected(&change.remove, f))) {
            totals.count(&file.entry.data_file);
        }
        let any_selected = data && live.iter().any(|f| is_selected(&change.remove, f));
        let rewrite = any_selected || (change.merge_manifests && data);
        if !rewrite {
            manifests.push(manifest);
            continue;
        }
        let spec = spec_of(metadata, manifest.partition_spec_id)?;
        for file in live {
            let bucket = if is_selected(&change.remove, &file) {
                summary.remove_file(&file.entry.data_file, schema.clone(), spec.clone());
                selected.insert(file.entry.file_path().to_string());
                &mut deleted
            } else {
                &mut merged
            };
            bucket.entry(manifest.partition_spec_id).or_default().push(file.entry);
        }
    }
    if must_remove.is_some_and(|expected| *expected != selected) {
        tracing::info!(table = %table.identifier(), "files to replace changed under us; giving up");
        return Err(LakeError::CommitConflict { table: table.identifier().to_string() });
    }
    // DELETED entries get manifests of their own: snapshot diffs read them (what did this
    // commit remove) and the next rewrite drops them.
    for (spec_id, entries) in deleted {
        let mut out = writer.open(spec_id)?;
        for entry in entries {
            let sequence_number = seq(&entry)?;
            out.add_delete_file(entry.data_file, sequence_number, entry.file_sequence_number)
                .map_err(LakeError::iceberg(context("mark file deleted")))?;
        }
        manifests.push(writer.close(out).await?);
    }
    for (spec_id, entries) in merged {
        if entries.is_empty() {
            continue;
        }
        let mut out = writer.open(spec_id)?;
        for entry in entries {
            let added_by = entry.snapshot_id.unwrap_or(snapshot_id);
            let sequence_number = seq(&entry)?;
            out.add_existing_file(entry.data_file, added_by, sequence_number, entry.file_sequence_number)
                .map_err(LakeError::iceberg(context("carry file forward")))?;
        }
        manifests.push(writer.close(out).await?);
    }
    if !change.add.is_empty() {
        let spec_id = metadata.default_partition_spec_id();
        let spec = spec_of(metadata, spec_id)?;
        let mut out = writer.open(spec_id)?;
        for file in &change.add {
            summary.add_file(file, schema.clone(), spec.clone());
            totals.count(file);
            // A negative sequence number is left unset and inherited from the manifest list.
            out.add_file(file.clone(), -1).map_err(LakeError::iceberg(context("add data file")))?;
        }
        manifests.push(writer.close(out).await?);
    }
    if change.operation == Operation::Replace && !selected.is_empty() && change.add.is_empty() {
        return Err(LakeError::Unsupported(context("a replace that removes files must add their rows back")));
    }

    let mut properties = change.properties.clone();
    // Only some commits move a table's progress (ingest's appends, a transform run); every
    // other one (compaction, expiry's rewrites, backfill) carries it, or the next reader
    // would start over.
    carry_forward(metadata, &mut properties);
    properties.extend(summary.build());
    properties.extend(totals.properties());
    let list_path = format!(
        "{}/metadata/snap-{snapshot_id}-1-{commit_uuid}.{}",
        metadata.location(),
        DataFileFormat::Avro
    );
    let list_out = table
        .file_io()
        .new_output(&list_path)
        .map_err(LakeError::iceberg(context("open manifest list")))?
        .writer()
        .await
        .map_err(LakeError::iceberg(context("open manifest list")))?;
    let mut list =
        ManifestListWriter::v2(list_out, snapshot_id, metadata.current_snapshot_id(), sequence_number);
    list.add_manifests(manifests.into_iter()).map_err(LakeError::iceberg(context("write manifest list")))?;
    list.close().await.map_err(LakeError::iceberg(context("write manifest list")))?;
    writer.written.push(list_path.clone());

    let snapshot = Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(metadata.current_snapshot_id())
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis().max(metadata.last_updated_ms()))
        .with_manifest_list(list_path)
        .with_summary(Summary { operation: change.operation.clone(), additional_properties: properties })
        .with_schema_id(metadata.current_schema_id())
        .build();
    let location =
        table.metadata_location_result().map_err(LakeError::iceberg(context("metadata location")))?;
    let built = metadata
        .clone()
        .into_builder(Some(location.to_string()))
        .set_branch_snapshot(snapshot, MAIN_BRANCH)
        .map_err(LakeError::iceberg(context("add snapshot")))?
        .build()
        .map_err(LakeError::iceberg(context("build metadata")))?;
    Ok(Prepared { metadata: built.metadata, snapshot_id, written: writer.written, selected })
}

/// Removes what a lost attempt wrote; failures only leave orphans for `clean-orphans`.
pub(crate) async fn discard(table: &Table, prepared: &Prepared) {
    for path in &prepared.written {
        if let Err(e) = table.file_io().delete(path).await {
            tracing::debug!(path, error = %e, "could not remove file of a lost commit attempt");
        }
    }
}

/// Exact `total-*` counts of the new snapshot, whatever its parent's summary said.
#[derive(Default)]
struct Totals {
    data_files: u64,
    delete_files: u64,
    records: u64,
    size: u64,
}

impl Totals {
    fn count(&mut self, file: &DataFile) {
        match file.content_type() {
            DataContentType::Data => {
                self.data_files += 1;
                self.records += file.record_count();
            }
            _ => self.delete_files += 1,
        }
        self.size += file.file_size_in_bytes();
    }

    fn properties(&self) -> [(String, String); 6] {
        [
            ("total-data-files".into(), self.data_files.to_string()),
            ("total-delete-files".into(), self.delete_files.to_string()),
            ("total-records".into(), self.records.to_string()),
            ("total-files-size".into(), self.size.to_string()),
            ("total-position-deletes".into(), "0".into()),
            ("total-equality-deletes".into(), "0".into()),
        ]
    }
}

fn seq(entry: &ManifestEntry) -> Result<i64, LakeError> {
    entry.sequence_number.ok_or_else(|| {
        LakeError::Unsupported(format!("manifest entry for {} has no sequence number", entry.file_path()))
    })
}

fn spec_of(metadata: &TableMetadata, spec_id: i32) -> Result<iceberg::spec::PartitionSpecRef, LakeError> {
    metadata.partition_spec_by_id(spec_id).cloned().ok_or_else(|| {
        LakeError::Unsupported(format!("partition spec {spec_id} is not in the table metadata"))
    })
}

fn unique_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let (a, b) = Uuid::new_v4().as_u64_pair();
        let id = ((a ^ b) & (i64::MAX as u64)) as i64;
        if id != 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// Opens and closes the manifests of one attempt, remembering their paths.
struct Manifests<'a> {
    table: &'a Table,
    snapshot_id: i64,
    commit_uuid: Uuid,
    written: Vec<String>,
    counter: u32,
}

impl Manifests<'_> {
    fn open(&mut self, spec_id: i32) -> Result<ManifestWriter, LakeError> {
        let metadata = self.table.metadata();
        let path = format!("{}/metadata/{}-m{}.avro", metadata.location(), self.commit_uuid, self.counter);
        self.counter += 1;
        let output = self
            .table
            .file_io()
            .new_output(&path)
            .map_err(LakeError::iceberg(format!("open manifest {path}")))?;
        let spec = spec_of(metadata, spec_id)?;
        self.written.push(path);
        Ok(ManifestWriterBuilder::new(
            output,
            Some(self.snapshot_id),
            metadata.current_schema().clone(),
            spec.as_ref().clone(),
        )
        .build_v2_data())
    }

    async fn close(&mut self, writer: ManifestWriter) -> Result<ManifestFile, LakeError> {
        writer.write_manifest_file().await.map_err(LakeError::iceberg("write manifest"))
    }
}
