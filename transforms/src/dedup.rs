//! Silver's dedup: the first row of each key, against the keys silver already holds within
//! the dedup horizon and the keys this run accepted so far. Keys are kept as 128-bit hashes
//! (16 bytes each, whatever the key's length), so a long run's key set stays small.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::DataType;
use datafusion::prelude::{SessionContext, col};
use ingot_lake::Table;

use crate::lake_session::pinned;
use crate::rows::{event_micros, filter, text_column, timestamp_literal};
use crate::{TransformConfig, TransformError};

/// Where the keys silver already holds come from.
pub(crate) enum Held<'a> {
    /// The silver table (none before its first run).
    Table(Option<&'a Table>),
    /// Rows held in memory (a replay's silver).
    Rows(&'a [RecordBatch]),
}

/// Keys that make a row a duplicate: held ones, loaded for event times from `since` on as
/// parts of the run ask for them, and the ones the run accepted.
pub(crate) struct KeySet<'a> {
    held: Held<'a>,
    /// Held keys of events from here on are in `keys` (none loaded yet: `None`).
    since: Option<i64>,
    keys: HashSet<u128>,
}

impl<'a> KeySet<'a> {
    pub fn new(held: Held<'a>) -> Self {
        Self { held, since: None, keys: HashSet::new() }
    }

    /// Makes sure held keys of events from `since` on are in the set (reading only the range
    /// not loaded before).
    pub async fn cover(
        &mut self,
        ctx: &SessionContext,
        config: &TransformConfig,
        key: &str,
        since: i64,
    ) -> Result<(), TransformError> {
        if self.since.is_some_and(|loaded| loaded <= since) {
            return Ok(());
        }
        let until = self.since;
        let in_range = |t: i64| t >= since && until.is_none_or(|u| t < u);
        let rows = match &self.held {
            Held::Table(None) => Vec::new(),
            Held::Table(Some(target)) => {
                let at = timestamp_literal(target, &config.event_time)?;
                let mut range = col(config.event_time.as_str()).gt_eq(at(since));
                if let Some(until) = until {
                    range = range.and(col(config.event_time.as_str()).lt(at(until)));
                }
                // Only the keys and event times in the range leave the scan.
                ctx.read_table(pinned((*target).clone(), None).await?)?
                    .filter(range)?
                    .select_columns(&[key, config.event_time.as_str()])?
                    .collect()
                    .await?
            }
            Held::Rows(rows) => rows.to_vec(),
        };
        for batch in &rows {
            let times = event_micros(batch, &config.event_time)?;
            let Some(column) = batch.column_by_name(key) else { continue };
            let column = text_column(column, &format!("key `{key}`"))?;
            for (i, t) in times.iter().enumerate() {
                if t.is_some_and(in_range) && column.is_valid(i) {
                    self.keys.insert(key_hash(column.value(i)));
                }
            }
        }
        self.since = Some(since);
        Ok(())
    }

    /// Adds `key`; false when it was there (held, or accepted earlier in the run).
    fn insert(&mut self, key: &str) -> bool {
        self.keys.insert(key_hash(key))
    }
}

/// 128 bits of two SipHash passes with different prefixes: a false duplicate among a billion
/// keys has a chance near 10^-21.
fn key_hash(key: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut hasher);
        key.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// The first row of each key not in `keys`, by Kafka position when the rows carry it; the
/// keys of the rows kept join `keys`.
pub(crate) fn dedup(
    batches: &[RecordBatch],
    key: &str,
    keys: &mut KeySet<'_>,
) -> Result<(Vec<RecordBatch>, u64), TransformError> {
    // (partition, offset, batch, row)
    let mut rows: Vec<(i64, i64, usize, usize)> = Vec::new();
    let mut key_columns = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let keys = batch
            .column_by_name(key)
            .ok_or_else(|| TransformError::Sql(format!("the SQL output lacks the key column `{key}`")))?;
        key_columns.push(text_column(keys, &format!("key `{key}`"))?);
        let position = |name: &str| -> Result<Option<Int64Array>, TransformError> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(c) => Ok(Some(
                    arrow_cast::cast(c, &DataType::Int64)
                        .map_err(|e| TransformError::Sql(format!("`{name}`: {e}")))?
                        .as_primitive::<Int64Type>()
                        .clone(),
                )),
            }
        };
        let partitions = position("_kafka_partition")?;
        let offsets = position("_kafka_offset")?;
        for i in 0..batch.num_rows() {
            let p = partitions.as_ref().map_or(0, |c| c.value(i));
            let o = offsets.as_ref().map_or(0, |c| c.value(i));
            rows.push((p, o, b, i));
        }
    }
    rows.sort_unstable();
    let mut masks: Vec<Vec<bool>> = batches.iter().map(|b| vec![false; b.num_rows()]).collect();
    let mut duplicates = 0;
    for (_, _, b, i) in rows {
        let column = &key_columns[b];
        // A row without a key cannot be a duplicate of anything.
        if column.is_null(i) || keys.insert(column.value(i)) {
            masks[b][i] = true;
        } else {
            duplicates += 1;
        }
    }
    let kept = batches.iter().zip(&masks).map(|(b, m)| filter(b, m)).collect::<Result<Vec<_>, _>>()?;
    Ok((kept.into_iter().filter(|b| b.num_rows() > 0).collect(), duplicates))
}
