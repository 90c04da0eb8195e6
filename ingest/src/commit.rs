//! The exactly-once commit: rows whose offsets the table already records are dropped, the
//! rest appended with the advanced offsets, against the exact table state that was checked.

use std::collections::HashMap;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{BooleanArray, RecordBatch};
use arrow_select::filter::filter_record_batch;
use ingot_lake::{
    COMMIT_ID_PROPERTY, DataFiles, Lake, LakeError, OFFSETS_PROPERTY, SourceOffsets, TableIdent, find_commit,
    write_data_files,
};
use sha2::{Digest, Sha256};

use crate::IngestError;
use crate::meta;

/// What one commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    pub snapshot_id: Option<i64>,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    /// Rows dropped because the table already held their offsets (a restart or a zombie).
    pub skipped_rows: u64,
}

/// Appends `batches` (rows carrying the Kafka columns) and records `progress`, exactly once.
///
/// Each attempt reloads the table, keeps only rows at or past the offsets it records, and
/// commits against that very snapshot; a lost race reloads and checks again. A commit whose
/// outcome is unknown is settled by looking for its deterministic id in the history.
pub(crate) async fn commit_exactly_once(
    lake: &Lake,
    ident: &TableIdent,
    batches: Vec<RecordBatch>,
    progress: &SourceOffsets,
    attempts: u32,
) -> Result<CommitReport, IngestError> {
    let commit_id = commit_id(ident, progress);
    let total_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut written: Option<(usize, DataFiles)> = None;
    let mut last_error = String::new();
    for attempt in 1..=attempts.max(1) {
        let table = lake.load(ident).await?;
        if let Some(snapshot_id) = find_commit(&table, &commit_id) {
            return Ok(CommitReport { snapshot_id: Some(snapshot_id), ..written_report(&written) });
        }
        let recorded = SourceOffsets::of_table(&table)?;
        let kept = keep_unrecorded(&batches, &recorded)?;
        let kept_rows: usize = kept.iter().map(RecordBatch::num_rows).sum();
        let skipped_rows = (total_rows - kept_rows) as u64;
        if kept_rows == 0 {
            // Nothing new for this table; its offsets move on with its next real append.
            return Ok(CommitReport { skipped_rows, ..Default::default() });
        }
        let files = match written.take() {
            // Same rows as the files already written for an earlier attempt: reuse them.
            Some((rows, files)) if rows == kept_rows => files,
            _ => write_data_files(&table, &kept).await?,
        };
        let mut offsets = recorded.clone();
        offsets.merge(progress);
        let summary = HashMap::from([
            (OFFSETS_PROPERTY.to_string(), offsets.to_json()),
            (COMMIT_ID_PROPERTY.to_string(), commit_id.clone()),
        ]);
        written = Some((kept_rows, files.clone()));
        match lake.commit_append(&table, files.clone(), summary).await {
            Ok(table) => {
                let report = CommitReport {
                    snapshot_id: table.metadata().current_snapshot_id(),
                    rows: files.rows,
                    files: files.files.len(),
                    bytes: files.bytes,
                    skipped_rows,
                };
                tracing::info!(table = %ident, rows = report.rows, files = report.files, bytes = report.bytes, skipped = skipped_rows, snapshot = ?report.snapshot_id, "committed");
                return Ok(report);
            }
            Err(e @ LakeError::CommitConflict { .. }) => {
                tracing::info!(table = %ident, attempt, "commit conflict, re-checking offsets");
                last_error = e.to_string();
            }
            Err(e) => {
                // Unknown outcome: the next attempt first looks for our commit id.
                tracing::warn!(table = %ident, attempt, error = %e, "commit failed");
                if !e.retryable() && !is_ambiguous(&e) {
                    return Err(e.into());
                }
                last_error = e.to_string();
            }
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
    Err(IngestError::RetriesExhausted { what: format!("commit to {ident}"), attempts, last: last_error })
}

fn written_report(written: &Option<(usize, DataFiles)>) -> CommitReport {
    match written {
        Some((_, files)) => CommitReport {
            rows: files.rows,
            files: files.files.len(),
            bytes: files.bytes,
            ..Default::default()
        },
        None => CommitReport::default(),
    }
}

/// An error after which the commit may or may not have landed (the catalog update was sent).
fn is_ambiguous(error: &LakeError) -> bool {
    matches!(error, LakeError::Iceberg { source, .. } if source.kind() == ingot_lake::IcebergErrorKind::Unexpected)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(6)).min(3_000))
}

/// Deterministic for the same table and source range, so a retried commit is recognised.
fn commit_id(ident: &TableIdent, progress: &SourceOffsets) -> String {
    let mut hash = Sha256::new();
    hash.update(ident.to_string().as_bytes());
    hash.update(progress.to_json().as_bytes());
    hex::encode(&hash.finalize()[..16])
}

/// Rows whose offset the table does not hold yet.
fn keep_unrecorded(
    batches: &[RecordBatch],
    recorded: &SourceOffsets,
) -> Result<Vec<RecordBatch>, IngestError> {
    let mut kept = Vec::with_capacity(batches.len());
    for batch in batches {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| IngestError::Topic {
                topic: String::new(),
                problem: format!("batch lacks the `{name}` column"),
            })
        };
        let topics = column(meta::TOPIC)?.as_string::<i32>();
        let partitions = column(meta::PARTITION)?.as_primitive::<Int32Type>();
        let offsets = column(meta::OFFSET)?.as_primitive::<Int64Type>();
        let mask: BooleanArray = (0..batch.num_rows())
            .map(|i| {
                let next = recorded.next(topics.value(i), partitions.value(i));
                Some(next.is_none_or(|next| offsets.value(i) >= next))
            })
            .collect();
        if mask.true_count() == batch.num_rows() {
            kept.push(batch.clone());
        } else if mask.true_count() > 0 {
            kept.push(filter_record_batch(batch, &mask).map_err(|e| IngestError::Topic {
                topic: String::new(),
                problem: format!("filter batch: {e}"),
            })?);
        }
    }
    Ok(kept)
}
