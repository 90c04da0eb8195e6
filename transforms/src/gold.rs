//! A gold run: the days new silver rows fall in are recomputed from silver (pinned to the
//! snapshot read up to) through the table's SQL and replace those days' windows in one
//! overwrite snapshot — a reader never sees a half-updated window.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::prelude::{Expr, SessionContext, col, lit};
use ingot_lake::{
    Lake, OnConflict, Overwrite, Replaced, Table, TableSpec, TableState, failpoint, find_commit,
    table_arrow_schema,
};

use crate::lake_session::{collect, pinned, replace_table};
use crate::progress::{Pending, run_id};
use crate::rows::{conform, iceberg_ready, timestamp_literal};
use crate::{TransformConfig, TransformError, TransformReport};

pub(crate) const DAY_US: i64 = 86_400_000_000;

pub(crate) async fn run_gold(
    lake: &Lake,
    ctx: &SessionContext,
    config: &TransformConfig,
    sql: &str,
    pending: Pending,
) -> Result<TransformReport, TransformError> {
    let mut report = TransformReport::new(&config.table);
    let base = pending.base();
    let Pending { ident, input, target: pending_target, from, to, up_to, changes, .. } = pending;
    report.input_rows = changes.added_rows();
    // Days of rows added and of rows another engine removed or changed in silver (from the
    // files' day partitions: the rows are not read here, the SQL reads those days).
    let days = changes.days(&config.event_time).await?;
    if days.is_empty() {
        return Ok(report);
    }
    report.windows_days = days.len() as u64;

    let output = recompute_days(ctx, config, sql, &input, up_to, &days).await?;
    let table = match (output.first(), pending_target) {
        (Some(batch), _) => {
            let spec = TableSpec {
                ident: ident.clone(),
                schema: batch.schema().as_ref().clone(),
                partition_day: Some(config.window_column.clone()),
            };
            lake.ensure_table(&spec).await?.0
        }
        // Every row of these days is gone from silver (another engine deleted them): their
        // windows are emptied.
        (None, Some(target)) => target,
        (None, None) => {
            return Err(TransformError::Sql(format!(
                "transform {}: the SQL returned no rows for days with rows",
                config.table
            )));
        }
    };
    let commit_id = run_id(&config.table, "gold", &from, &to, base);
    if let Some(snapshot) = find_commit(&table, &commit_id) {
        report.snapshot_id = Some(snapshot);
        return Ok(report);
    }
    let table_schema: SchemaRef = Arc::new(table_arrow_schema(&table)?);
    let rows =
        output.iter().map(|b| conform(b, &table_schema, &|_, _| None)).collect::<Result<Vec<_>, _>>()?;
    report.written_rows = rows.iter().map(|b| b.num_rows() as u64).sum();
    let also: HashSet<String> = days.iter().map(|d| day_partition(&config.window_column, *d)).collect();
    let next = TableState {
        sources: to,
        watermark_us: TableState::of_table(&input)?.watermark_us,
        ..Default::default()
    };
    let request = Overwrite {
        replaced: Replaced::PartitionsWritten { also },
        commit_id,
        properties: next.progress_properties().into_iter().collect(),
        on_conflict: OnConflict::Fail,
    };
    report.snapshot_id = Some(lake.overwrite(&table, &rows, &request).await?.snapshot_id);
    failpoint("after-gold-commit");
    Ok(report)
}

/// The gold SQL's rows for `days` (day numbers since the epoch), from `input` at `snapshot`
/// restricted to events of those days (the filter reaches the Iceberg scan).
pub(crate) async fn recompute_days(
    ctx: &SessionContext,
    config: &TransformConfig,
    sql: &str,
    input: &Table,
    snapshot: i64,
    days: &BTreeSet<i64>,
) -> Result<Vec<RecordBatch>, TransformError> {
    let at = timestamp_literal(input, &config.event_time)?;
    let event_time = || col(config.event_time.as_str());
    let in_days = days
        .iter()
        .map(|d| event_time().gt_eq(at(d * DAY_US)).and(event_time().lt(at((d + 1) * DAY_US))))
        .reduce(Expr::or)
        .unwrap_or_else(|| lit(false));
    let touched = ctx.read_table(pinned(input.clone(), Some(snapshot)).await?)?.filter(in_days)?;
    replace_table(ctx, &config.input, touched.into_view())?;
    let (_, output) = collect(ctx, sql).await?;
    iceberg_ready(output)
}

/// Iceberg's partition path of a `day(<column>)` partition: `<column>_day=2026-11-20`.
pub(crate) fn day_partition(column: &str, day: i64) -> String {
    let date = chrono::DateTime::from_timestamp(day * 86_400, 0).expect("a day in range").date_naive();
    format!("{column}_day={date}")
}
