//! The exactly-once commit: rows whose offsets the table already records are dropped, the
//! rest appended with the advanced offsets, against the exact table state that was checked.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

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
use crate::retry::{RetryPolicy, backoff};

/// What one commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    pub snapshot_id: Option<i64>,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    /// Rows dropped because the table already held their offsets (a restart or a zombie),
    /// or because the same offset was buffered twice (a rebalance re-delivered it).
    pub skipped_rows: u64,
    /// Everything the table records after this commit: its own progress and what other
    /// writers (another member of the group, an earlier run) committed.
    pub table_offsets: SourceOffsets,
}

/// Appends `batches` (rows carrying the Kafka columns) and records `progress`, exactly once.
///
/// Each attempt reloads the table, keeps only rows at or past the offsets it records (and
/// the first copy of an offset buffered twice), and commits against that very snapshot; a
/// lost race reloads and checks again. A commit whose outcome is unknown is settled by
/// looking for its deterministic id in the history. A catalog or storage that is briefly
/// unavailable (locked, unreachable, read-only) is waited for, up to `policy.transient_for`.
/// `extra_summary` goes into the snapshot's summary beside the offsets and the commit id.
pub(crate) async fn commit_exactly_once(
    lake: &Lake,
    ident: &TableIdent,
    batches: Vec<RecordBatch>,
    progress: &SourceOffsets,
    extra_summary: HashMap<String, String>,
    policy: RetryPolicy,
) -> Result<CommitReport, IngestError> {
    let commit_id = commit_id(ident, progress);
    let total_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let batches = drop_repeated_offsets(batches)?;
    let mut written: Option<(usize, DataFiles)> = None;
    let mut retry = Retry::new(ident, policy);
    loop {
        let attempt = retry.attempt;
        let table = match lake.load(ident).await {
            Ok(table) => table,
            Err(e) => {
                retry.failed(e).await?;
                continue;
            }
        };
        if let Some(snapshot_id) = find_commit(&table, &commit_id) {
            let table_offsets = SourceOffsets::of_table(&table)?;
            return Ok(CommitReport {
                snapshot_id: Some(snapshot_id),
                table_offsets,
                ..written_report(&written)
            });
        }
        let recorded = SourceOffsets::of_table(&table)?;
        let kept = keep_unrecorded(&batches, &recorded)?;
        let kept_rows: usize = kept.iter().map(RecordBatch::num_rows).sum();
        let skipped_rows = (total_rows - kept_rows) as u64;
        if kept_rows == 0 {
            // Nothing new for this table; its offsets move on with its next real append.
            return Ok(CommitReport { skipped_rows, table_offsets: recorded, ..Default::default() });
        }
        let files = match written.take() {
            // Same rows as the files already written for an earlier attempt: reuse them.
            Some((rows, files)) if rows == kept_rows => files,
            _ => match write_data_files(&table, &kept).await {
                Ok(files) => files,
                Err(e) => {
                    retry.failed(e).await?;
                    continue;
                }
            },
        };
        let mut offsets = recorded.clone();
        offsets.merge(progress);
        let mut summary = extra_summary.clone();
        summary.insert(OFFSETS_PROPERTY.to_string(), offsets.to_json());
        summary.insert(COMMIT_ID_PROPERTY.to_string(), commit_id.clone());
        written = Some((kept_rows, files.clone()));
        match lake.commit_append(&table, files.clone(), summary).await {
            Ok(table) => {
                let report = CommitReport {
                    snapshot_id: table.metadata().current_snapshot_id(),
                    rows: files.rows,
                    files: files.files.len(),
                    bytes: files.bytes,
                    skipped_rows,
                    table_offsets: offsets,
                };
                tracing::info!(table = %ident, rows = report.rows, files = report.files, bytes = report.bytes, skipped = skipped_rows, snapshot = ?report.snapshot_id, attempt, "committed");
                return Ok(report);
            }
            Err(e) => retry.failed(e).await?,
        }
    }
}

/// The retry state of one commit: lost races are counted, unavailable storage is timed.
struct Retry<'a> {
    ident: &'a TableIdent,
    policy: RetryPolicy,
    attempt: u32,
    conflicts: u32,
    /// When the current run of transient failures began.
    unavailable_since: Option<Instant>,
}

impl<'a> Retry<'a> {
    fn new(ident: &'a TableIdent, policy: RetryPolicy) -> Self {
        Self { ident, policy, attempt: 1, conflicts: 0, unavailable_since: None }
    }

    /// Decides whether `error` is worth another attempt; sleeps before it if so.
    async fn failed(&mut self, error: LakeError) -> Result<(), IngestError> {
        let ident = self.ident;
        let attempt = self.attempt;
        self.attempt += 1;
        let pause = match &error {
            LakeError::CommitConflict { .. } => {
                self.conflicts += 1;
                self.unavailable_since = None;
                tracing::info!(table = %ident, attempt, "commit conflict, re-checking offsets");
                if self.conflicts >= self.policy.conflicts.max(1) {
                    return Err(IngestError::RetriesExhausted {
                        what: format!("commit to {ident} (lost {} races in a row)", self.conflicts),
                        attempts: attempt,
                        last: error.to_string(),
                    });
                }
                backoff(self.conflicts)
            }
            // `transient` covers unknown outcomes and every `Unexpected` catalog/storage error.
            e if e.transient() => {
                // Unknown outcome or unavailable: the next attempt first looks for our commit id.
                let since = *self.unavailable_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.policy.transient_for {
                    return Err(IngestError::RetriesExhausted {
                        what: format!(
                            "commit to {ident} (catalog or storage unavailable for {})",
                            humantime::format_duration(Duration::from_secs(since.elapsed().as_secs()))
                        ),
                        attempts: attempt,
                        last: error.to_string(),
                    });
                }
                tracing::warn!(table = %ident, attempt, error = %e, "catalog or storage unavailable; retrying");
                backoff(attempt)
            }
            _ => return Err(error.into()),
        };
        tokio::time::sleep(pause).await;
        Ok(())
    }
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
        let (topics, partitions, offsets) = kafka_columns(batch)?;
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

/// Keeps the first row of each (topic, partition, offset). A rebalance seeks a partition
/// back to what the table records while rows read before it are still buffered, so the same
/// message can be in one flush twice. In the common case offsets only grow within each
/// partition, which one pass confirms without building a set.
fn drop_repeated_offsets(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, IngestError> {
    let mut columns = Vec::with_capacity(batches.len());
    for batch in &batches {
        columns.push(kafka_columns(batch)?);
    }
    // Few partitions, long runs of each: a short list with the last hit first beats hashing
    // every row of a 500k-row flush.
    let mut last: Vec<((&str, i32), i64)> = Vec::new();
    let mut hit = 0;
    let increasing = columns.iter().all(|(topics, partitions, offsets)| {
        (0..offsets.len()).all(|i| {
            let key = (topics.value(i), partitions.value(i));
            let offset = offsets.value(i);
            if last.get(hit).is_none_or(|(k, _)| *k != key) {
                match last.iter().position(|(k, _)| *k == key) {
                    Some(found) => hit = found,
                    None => {
                        last.push((key, offset));
                        hit = last.len() - 1;
                        return true;
                    }
                }
            }
            let previous = std::mem::replace(&mut last[hit].1, offset);
            offset > previous
        })
    });
    if increasing {
        return Ok(batches);
    }
    let mut seen: HashSet<(&str, i32, i64)> = HashSet::new();
    let masks: Vec<BooleanArray> = columns
        .iter()
        .map(|(topics, partitions, offsets)| {
            (0..offsets.len())
                .map(|i| Some(seen.insert((topics.value(i), partitions.value(i), offsets.value(i)))))
                .collect()
        })
        .collect();
    let mut kept = Vec::with_capacity(batches.len());
    for (batch, mask) in batches.iter().zip(&masks) {
        if mask.true_count() > 0 {
            kept.push(filter_record_batch(batch, mask).map_err(|e| IngestError::Topic {
                topic: String::new(),
                problem: format!("filter batch: {e}"),
            })?);
        }
    }
    Ok(kept)
}

pub(crate) type KafkaColumnArrays<'a> = (
    &'a arrow_array::StringArray,
    &'a arrow_array::PrimitiveArray<Int32Type>,
    &'a arrow_array::PrimitiveArray<Int64Type>,
);

/// A batch's topic, partition and offset columns (every bronze and quarantine row has them).
pub(crate) fn kafka_columns(batch: &RecordBatch) -> Result<KafkaColumnArrays<'_>, IngestError> {
    let column = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| IngestError::Topic {
            topic: String::new(),
            problem: format!("batch lacks the `{name}` column"),
        })
    };
    Ok((
        column(meta::TOPIC)?.as_string::<i32>(),
        column(meta::PARTITION)?.as_primitive::<Int32Type>(),
        column(meta::OFFSET)?.as_primitive::<Int64Type>(),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int32Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch(rows: &[(&str, i32, i64)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(meta::TOPIC, DataType::Utf8, true),
            Field::new(meta::PARTITION, DataType::Int32, true),
            Field::new(meta::OFFSET, DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap()
    }

    fn offsets(batches: &[RecordBatch]) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for b in batches {
            let (t, p, o) = kafka_columns(b).unwrap();
            out.extend((0..b.num_rows()).map(|i| (t.value(i).to_string(), p.value(i), o.value(i))));
        }
        out
    }

    #[test]
    fn rows_read_again_after_a_rebalance_are_kept_once() {
        // Partition 0 read to 12, then sought back to 10 by a new assignment.
        let first = batch(&[("a", 0, 10), ("a", 1, 5), ("a", 0, 11), ("a", 0, 12)]);
        let second = batch(&[("a", 0, 10), ("a", 0, 11), ("a", 0, 12), ("a", 0, 13), ("a", 1, 6)]);
        let kept = drop_repeated_offsets(vec![first, second]).unwrap();
        let expected = [("a", 0, 10), ("a", 1, 5), ("a", 0, 11), ("a", 0, 12), ("a", 0, 13), ("a", 1, 6)];
        let expected: Vec<_> = expected.iter().map(|(t, p, o)| (t.to_string(), *p, *o)).collect();
        assert_eq!(offsets(&kept), expected);
    }

    #[test]
    fn increasing_offsets_pass_untouched() {
        let only = batch(&[("a", 0, 1), ("b", 0, 1), ("a", 0, 2), ("b", 0, 7)]);
        let kept = drop_repeated_offsets(vec![only.clone()]).unwrap();
        assert_eq!(kept, vec![only]);
    }
}
