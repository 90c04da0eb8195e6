//! Data files without Iceberg field ids: Parquet written outside Iceberg and registered by
//! another engine (PyIceberg `add_files`, Spark's `add_files` procedure). Iceberg allows them
//! through the table's name mapping, but the reader ingot is built on (iceberg-rust 0.10)
//! maps only top-level columns by name: a nested column of such a file cannot be read. When a
//! read fails, these files are named, so the user knows which file to rewrite, instead of
//! seeing only the reader's type error.

use parquet::file::metadata::ParquetMetaDataReader;

use crate::commit::live_files_at;
use crate::offsets::COMMIT_ID_PROPERTY;
use crate::{LakeError, Table};

/// `cause` (a failed read of `table` at `snapshot`) as [`LakeError::FieldIdsMissing`] when
/// the snapshot holds data files without field ids; `None` when it holds
/// none (or they cannot be inspected), so the caller keeps its own error.
pub async fn explain_read_failure(table: &Table, snapshot: Option<i64>, cause: String) -> Option<LakeError> {
    match files_without_field_ids(table, snapshot).await {
        Ok(files) if !files.is_empty() => {
            Some(LakeError::FieldIdsMissing { table: table.identifier().to_string(), files, cause })
        }
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(table = %table.identifier(), error = %e, "could not inspect data files for field ids");
            None
        }
    }
}

/// Live data files of `snapshot` (the current one when `None`) whose Parquet schema carries no
/// field ids. Only files another engine added are opened: ingot writes ids.
pub async fn files_without_field_ids(table: &Table, snapshot: Option<i64>) -> Result<Vec<String>, LakeError> {
    let metadata = table.metadata();
    let snapshot = snapshot.or(metadata.current_snapshot_id());
    let written_by_ingot = |id: Option<i64>| {
        id.and_then(|id| metadata.snapshot_by_id(id))
            .is_some_and(|s| s.summary().additional_properties.contains_key(COMMIT_ID_PROPERTY))
    };
    let mut missing = Vec::new();
    for file in live_files_at(table, snapshot).await? {
        if written_by_ingot(file.entry.snapshot_id()) {
            continue;
        }
        let path = file.entry.file_path().to_string();
        let context = format!("read the footer of {path}");
        let input = table.file_io().new_input(&path).map_err(LakeError::iceberg(context.clone()))?;
        let bytes = input.read().await.map_err(LakeError::iceberg(context.clone()))?;
        let footer = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .map_err(|e| LakeError::Unsupported(format!("{context}: {e}")))?;
        // The reader's own test: a file whose first column has no id has none (a writer
        // either assigns them all or none).
        let columns = footer.file_metadata().schema_descr().root_schema().get_fields();
        if columns.first().is_some_and(|c| !c.get_basic_info().has_id()) {
            missing.push(path);
        }
    }
    Ok(missing)
}
