//! `ingot backfill <gold table> --from T1 --to T2`: recompute every window of the days in
//! the range from silver as it is now, and replace them in one overwrite snapshot. Windows
//! whose values did not change are reported as such; when none changed nothing is committed,
//! so running the same backfill twice changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use chrono::{DateTime, Utc};
use datafusion::prelude::col;
use ingot_lake::{Lake, OnConflict, Overwrite, Replaced, find_commit, parse_ident, table_arrow_schema};

use crate::config::Kind;
use crate::gold::{DAY_US, day_partition, recompute_days};
use crate::lake_session::{lake_session, pinned};
use crate::progress::run_id;
use crate::rows::{conform, timestamp_literal};
use crate::{TransformConfig, TransformError};

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillReport {
    pub table: String,
    pub days: usize,
    /// Window rows (window × group) in the range before and after.
    pub windows_before: usize,
    pub windows_after: usize,
    /// Windows added, removed or with other values.
    pub changed_windows: usize,
    pub silver_snapshot: i64,
    /// The overwrite committed; `None` when nothing changed.
    pub snapshot_id: Option<i64>,
}

impl std::fmt::Display for BackfillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} days recomputed from snapshot {}: {} windows before, {} after, {} changed → {}",
            self.table,
            self.days,
            self.silver_snapshot,
            self.windows_before,
            self.windows_after,
            self.changed_windows,
            match self.snapshot_id {
                Some(id) => format!("snapshot {id}"),
                None => "nothing to commit".into(),
            }
        )
    }
}

/// Recomputes the windows of `config` (a gold transform) for the days in `[from, to)`.
pub async fn backfill(
    lake: &Lake,
    config: &TransformConfig,
    sql: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<BackfillReport, TransformError> {
    if config.kind != Kind::Gold {
        return Err(TransformError::Sql(format!(
            "{} is a silver table; backfill recomputes gold windows",
            config.table
        )));
    }
    if to <= from {
        return Err(TransformError::Sql(format!(
            "backfill range is empty: --from {from} is not before --to {to}"
        )));
    }
    let ident = parse_ident(&config.table)?;
    if !lake.exists(&ident).await? {
        return Err(TransformError::Sql(format!(
            "{} does not exist yet; run `ingot transform` first",
            config.table
        )));
    }
    let gold = lake.load(&ident).await?;
    let silver = lake.load(&parse_ident(&config.input)?).await?;
    let Some(silver_snapshot) = silver.metadata().current_snapshot_id() else {
        return Err(TransformError::Sql(format!("{} has no snapshot yet", config.input)));
    };
    let first = from.timestamp_micros().div_euclid(DAY_US);
    let last = (to.timestamp_micros() - 1).div_euclid(DAY_US);
    let days: Vec<i64> = (first..=last).collect();

    // Day by day, so a terminal shows progress; one commit at the end keeps it atomic.
    let ctx = lake_session(lake).await?;
    let show = std::io::stderr().is_terminal();
    let mut new_rows = Vec::new();
    for (i, day) in days.iter().enumerate() {
        new_rows.extend(
            recompute_days(&ctx, config, sql, &silver, silver_snapshot, &BTreeSet::from([*day])).await?,
        );
        if show {
            let done = (i + 1) * 30 / days.len();
            eprint!("\r[{}{}] {}/{} days", "#".repeat(done), " ".repeat(30 - done), i + 1, days.len());
        }
    }
    if show {
        eprintln!();
    }
    let schema: SchemaRef = Arc::new(table_arrow_schema(&gold)?);
    let new_rows =
        new_rows.iter().map(|b| conform(b, &schema, &|_, _| None)).collect::<Result<Vec<_>, _>>()?;
    let old_rows = current_rows(&ctx, &gold, &config.window_column, first, last).await?;
    let (before, after) = (cells(&old_rows, &schema)?, cells(&new_rows, &schema)?);
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changed = keys.iter().filter(|k| before.get(**k) != after.get(**k)).count();
    let mut report = BackfillReport {
        table: config.table.clone(),
        days: days.len(),
        windows_before: before.len(),
        windows_after: after.len(),
        changed_windows: changed,
        silver_snapshot,
        snapshot_id: None,
    };
    if changed == 0 {
        return Ok(report);
    }
    // The work is these days recomputed from this silver snapshot over this gold snapshot: a
    // retry of it finds its commit, a backfill after another edit of gold is new work.
    let step = format!("backfill days {first}..={last}");
    let read = BTreeMap::from([(config.input.clone(), silver_snapshot)]);
    let base = gold.metadata().current_snapshot_id();
    let commit_id = run_id(&config.table, &step, &BTreeMap::new(), &read, base);
    if let Some(id) = find_commit(&gold, &commit_id) {
        report.snapshot_id = Some(id);
        return Ok(report);
    }
    // The incremental runs' progress is carried as it was: they resume where they left off.
    let properties = HashMap::from([(
        "ingot.backfill".to_string(),
        format!("{from} .. {to} from {} snapshot {silver_snapshot}", config.input),
    )]);
    let request = Overwrite {
        replaced: Replaced::PartitionsWritten {
            also: days.iter().map(|d| day_partition(&config.window_column, *d)).collect::<HashSet<_>>(),
        },
        commit_id,
        properties,
        on_conflict: OnConflict::Fail,
    };
    report.snapshot_id = Some(lake.overwrite(&gold, &new_rows, &request).await?.snapshot_id);
    Ok(report)
}

/// Gold's current rows of the days `first..=last`.
async fn current_rows(
    ctx: &datafusion::prelude::SessionContext,
    gold: &ingot_lake::Table,
    window_column: &str,
    first: i64,
    last: i64,
) -> Result<Vec<RecordBatch>, TransformError> {
    let at = timestamp_literal(gold, window_column)?;
    let frame = ctx.read_table(pinned(gold.clone(), None).await?)?.filter(
        col(window_column).gt_eq(at(first * DAY_US)).and(col(window_column).lt(at((last + 1) * DAY_US))),
    )?;
    Ok(frame.collect().await?)
}

/// Rows as `key → values`, the key being the window and group columns (timestamps and text),
/// the values the rest, each rendered as text. Several rows under one key (which a correct
/// gold table never has) are kept side by side, so they compare as different.
pub(crate) fn cells(
    batches: &[RecordBatch],
    schema: &SchemaRef,
) -> Result<BTreeMap<String, String>, TransformError> {
    let is_key = |t: &DataType| matches!(t, DataType::Timestamp(..) | DataType::Utf8 | DataType::Date32);
    let mut out = BTreeMap::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &Default::default()))
            .collect::<Result<_, _>>()
            .map_err(|e| TransformError::Sql(format!("compare windows: {e}")))?;
        for row in 0..batch.num_rows() {
            let (mut key, mut values) = (Vec::new(), Vec::new());
            for (i, field) in schema.fields().iter().enumerate() {
                let text = formatters[i].value(row).to_string();
                if is_key(field.data_type()) { key.push(text) } else { values.push(text) }
            }
            let values = values.join("|");
            out.entry(key.join("|"))
                .and_modify(|v: &mut String| *v = format!("{v} ; {values}"))
                .or_insert(values);
        }
    }
    Ok(out)
}
