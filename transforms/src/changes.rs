//! What a run reads of its input. New whole files are read lazily, one file after another, in
//! parts of a row budget, so a run's memory follows the budget and not the backlog; rows that
//! another engine's rewrite changed are settled by content, which needs both sides at once.

use std::collections::{BTreeSet, HashSet, VecDeque};

use arrow_array::RecordBatch;
use futures::StreamExt;
use futures::stream::BoxStream;
use ingot_lake::{AddedFiles, LakeError, RowChanges, Table, read_changes, stream_files_at};

use crate::TransformError;
use crate::gold::DAY_US;
use crate::rows::event_micros;

/// The input rows a run covers.
pub(crate) enum Changes {
    /// Files whose rows are all new, read when asked for.
    Files { input: Box<Table>, files: AddedFiles },
    /// Rows gained and lost by a rewrite, read already.
    Rows(RowChanges),
}

impl Changes {
    pub async fn of(input: &Table, files: AddedFiles) -> Result<Self, TransformError> {
        Ok(match files.rewritten {
            None => Changes::Files { input: Box::new(input.clone()), files },
            Some(_) => Changes::Rows(read_changes(input, &files).await?),
        })
    }

    pub fn added_rows(&self) -> u64 {
        match self {
            Changes::Files { files, .. } => files.rows(),
            Changes::Rows(rows) => rows.added_rows(),
        }
    }

    pub fn removed_rows(&self) -> u64 {
        match self {
            Changes::Files { .. } => 0,
            Changes::Rows(rows) => rows.removed_rows(),
        }
    }

    /// The added rows in parts of at least `budget` rows (the last may be smaller), file by
    /// file in path order: the same input gives the same parts.
    pub fn added_parts(&self, budget: usize) -> Parts<'_> {
        let paths = match self {
            Changes::Files { files, .. } => {
                let mut paths: Vec<String> = files.paths.iter().cloned().collect();
                paths.sort();
                paths.into()
            }
            Changes::Rows(_) => VecDeque::new(),
        };
        Parts { changes: self, paths, reading: None, budget: budget.max(1), rows_given: false }
    }

    /// The days (since the epoch) of `column` that added or removed rows fall in. Files
    /// partitioned by the day of `column` tell it from their partition alone; other files
    /// are read, that column only.
    pub async fn days(&self, column: &str) -> Result<BTreeSet<i64>, TransformError> {
        let mut days = BTreeSet::new();
        let batches: Vec<RecordBatch> = match self {
            Changes::Rows(rows) => rows.added.iter().chain(&rows.removed).cloned().collect(),
            Changes::Files { input, files } => {
                let mut unread = HashSet::new();
                for path in &files.paths {
                    let partition = files.placement.get(path).map(|p| p.partition.as_str());
                    match partition.and_then(|p| day_of_partition(p, column)) {
                        Some(day) => drop(days.insert(day)),
                        None => drop(unread.insert(path.clone())),
                    }
                }
                if unread.is_empty() {
                    return Ok(days);
                }
                let up_to = files.up_to;
                let stream = stream_files_at(input, up_to, &unread, Some(&[column])).await?;
                stream.collect::<Vec<_>>().await.into_iter().collect::<Result<_, LakeError>>()?
            }
        };
        for batch in &batches {
            days.extend(event_micros(batch, column)?.into_iter().flatten().map(|t| t.div_euclid(DAY_US)));
        }
        Ok(days)
    }
}

/// The day of a `<column>_day=YYYY-MM-DD` partition (ingot's partitioning by event day).
fn day_of_partition(partition: &str, column: &str) -> Option<i64> {
    let date = partition.strip_prefix(column)?.strip_prefix("_day=")?;
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp().div_euclid(86_400))
}

/// Parts of the added rows; see [`Changes::added_parts`].
pub(crate) struct Parts<'a> {
    changes: &'a Changes,
    paths: VecDeque<String>,
    reading: Option<BoxStream<'static, Result<RecordBatch, LakeError>>>,
    budget: usize,
    rows_given: bool,
}

impl Parts<'_> {
    /// The next part; `None` when every row was given.
    pub async fn next(&mut self) -> Result<Option<Vec<RecordBatch>>, TransformError> {
        let (input, files) = match self.changes {
            Changes::Rows(rows) => {
                let first = !std::mem::replace(&mut self.rows_given, true);
                return Ok(first.then(|| rows.added.clone()));
            }
            Changes::Files { input, files } => (input, files),
        };
        let mut part = Vec::new();
        let mut rows = 0;
        while rows < self.budget {
            if self.reading.is_none() {
                let Some(path) = self.paths.pop_front() else { break };
                let one = HashSet::from([path]);
                self.reading = Some(stream_files_at(input, files.up_to, &one, None).await?);
            }
            match self.reading.as_mut().expect("a file is being read").next().await {
                Some(batch) => {
                    let batch = batch?;
                    rows += batch.num_rows();
                    part.push(batch);
                }
                None => self.reading = None,
            }
        }
        Ok((!part.is_empty()).then_some(part))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_come_from_ingots_day_partitions() {
        assert_eq!(day_of_partition("occurred_at_day=1970-01-02", "occurred_at"), Some(1));
        assert_eq!(day_of_partition("occurred_at_day=2026-11-30", "occurred_at"), Some(20_787));
        assert_eq!(day_of_partition("other_day=2026-11-30", "occurred_at"), None);
        assert_eq!(day_of_partition("occurred_at_day=2026-11-30/region=eu", "occurred_at"), None);
        assert_eq!(day_of_partition("", "occurred_at"), None);
    }
}
