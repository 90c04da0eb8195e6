//! `ingot replay <gold table> --as-of T`: recompute the gold table as it was at T from the
//! bronze snapshots its inputs had read by then — silver run by run, as the incremental runs
//! went (same SQL, same dedup, same watermarks), then gold — and compare with what gold said
//! at T. Nothing live is written.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use ingot_lake::{
    AsOf, Lake, TableState, ancestry_complete, files_added_between, parse_ident, read_changes, read_table,
    snapshot_as_of, source_history, table_arrow_schema,
};

use crate::backfill::cells;
use crate::dedup::{Held, KeySet};
use crate::lake_session::{collect, lake_session, memory_table, replace_table};
use crate::rows::{conform, iceberg_ready};
use crate::silver::silver_step;
use crate::{TransformConfig, TransformError};

/// One window whose values differ.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowDiff {
    pub window: String,
    pub gold: Option<String>,
    pub replayed: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    pub table: String,
    pub gold_snapshot: i64,
    pub silver_snapshot: i64,
    pub silver_runs: usize,
    /// The silver snapshot replay started from when silver's older history was expired.
    pub checkpoint: Option<i64>,
    pub equal: usize,
    pub different: Vec<WindowDiff>,
    /// The recomputed rows, in the gold table's schema (for `--write-to`).
    pub rows: Vec<RecordBatch>,
    pub schema: Option<SchemaRef>,
}

impl ReplayReport {
    pub fn matches(&self) -> bool {
        self.different.is_empty()
    }
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "replay of {} (gold snapshot {}, silver snapshot {}, {} silver runs replayed from bronze)",
            self.table, self.gold_snapshot, self.silver_snapshot, self.silver_runs
        )?;
        if let Some(checkpoint) = self.checkpoint {
            writeln!(
                f,
                "  (silver's history before snapshot {checkpoint} is expired: replayed from silver as of it)"
            )?;
        }
        writeln!(f, "  windows equal:     {}", self.equal)?;
        let only = |gold: bool| {
            self.different
                .iter()
                .filter(|d| d.gold.is_some() != d.replayed.is_some() && d.gold.is_some() == gold)
                .count()
        };
        let both = self.different.iter().filter(|d| d.gold.is_some() && d.replayed.is_some()).count();
        writeln!(f, "  windows different: {both}")?;
        writeln!(f, "  only in gold:      {}", only(true))?;
        writeln!(f, "  only in replay:    {}", only(false))?;
        for d in &self.different {
            writeln!(
                f,
                "    {}: gold {} | replay {}",
                d.window,
                d.gold.as_deref().unwrap_or("(missing)"),
                d.replayed.as_deref().unwrap_or("(missing)")
            )?;
        }
        write!(f, "{}", if self.matches() { "MATCH" } else { "MISMATCH" })
    }
}

/// Replays `gold` (with `silver`, the transform writing its input) as of `as_of`.
pub async fn replay(
    lake: &Lake,
    gold: &TransformConfig,
    gold_sql: &str,
    silver: &TransformConfig,
    silver_sql: &str,
    as_of: AsOf,
) -> Result<ReplayReport, TransformError> {
    let gold_table = lake.load(&parse_ident(&gold.table)?).await?;
    let gold_snapshot = snapshot_as_of(&gold_table, as_of)?;
    let silver_table = lake.load(&parse_ident(&silver.table)?).await?;
    let bronze = lake.load(&parse_ident(&silver.input)?).await?;
    let recorded = TableState::at(&gold_table, Some(gold_snapshot))?.sources.get(&gold.input).copied();
    let silver_snapshot = recorded.ok_or_else(|| {
        TransformError::Sql(format!(
            "{} snapshot {gold_snapshot} records no {} snapshot",
            gold.table, gold.input
        ))
    })?;

    // Silver's runs up to the snapshot gold had read, oldest first: (silver, bronze read up to).
    let history = source_history(&silver_table, silver_snapshot, &silver.input);
    let ctx = lake_session(lake).await?;
    let bronze_schema: SchemaRef = Arc::new(table_arrow_schema(&bronze)?);
    let silver_schema: SchemaRef = Arc::new(table_arrow_schema(&silver_table)?);
    let in_silver_schema = |rows: Vec<RecordBatch>| -> Result<Vec<RecordBatch>, TransformError> {
        rows.iter().map(|b| conform(b, &silver_schema, &|_, _| None)).collect()
    };
    let (mut replayed, mut watermark, mut previous) = (Vec::<RecordBatch>::new(), None, None);
    let mut runs = &history[..];
    let mut checkpoint = None;
    if !ancestry_complete(&silver_table, silver_snapshot)
        && let Some(&(silver_at, bronze_at)) = history.first()
    {
        // Silver's history before this run was expired (the audit horizon): start from silver
        // as that run left it, and replay every run since.
        replayed = in_silver_schema(read_table(&silver_table, Some(silver_at)).await?)?;
        watermark = TableState::at(&silver_table, Some(silver_at))?.watermark_us;
        previous = Some(bronze_at);
        runs = &history[1..];
        checkpoint = Some(silver_at);
    }
    for &(_, up_to) in runs {
        let added = files_added_between(&bronze, previous, up_to).await?;
        let new_rows = read_changes(&bronze, &added).await?.added;
        let step = silver_step(
            &ctx,
            silver,
            silver_sql,
            bronze_schema.clone(),
            new_rows,
            watermark,
            &mut KeySet::new(Held::Rows(&replayed)),
        )
        .await?;
        replayed.extend(in_silver_schema(step.accepted)?);
        watermark = step.watermark;
        previous = Some(up_to);
    }

    // Gold over the replayed silver.
    replace_table(&ctx, &gold.input, memory_table(silver_schema.clone(), replayed)?)?;
    let (_, output) = collect(&ctx, gold_sql).await?;
    let gold_schema: SchemaRef = Arc::new(table_arrow_schema(&gold_table)?);
    let rows = iceberg_ready(output)?
        .iter()
        .map(|b| conform(b, &gold_schema, &|_, _| None))
        .collect::<Result<Vec<_>, _>>()?;
    let stored = read_table(&gold_table, Some(gold_snapshot)).await?;
    let stored =
        stored.iter().map(|b| conform(b, &gold_schema, &|_, _| None)).collect::<Result<Vec<_>, _>>()?;
    let (theirs, ours) = (cells(&stored, &gold_schema)?, cells(&rows, &gold_schema)?);
    let mut report = ReplayReport {
        table: gold.table.clone(),
        gold_snapshot,
        silver_snapshot,
        silver_runs: runs.len(),
        checkpoint,
        rows,
        schema: Some(gold_schema),
        ..Default::default()
    };
    let keys: std::collections::BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for key in keys {
        match (theirs.get(key), ours.get(key)) {
            (Some(a), Some(b)) if a == b => report.equal += 1,
            (a, b) => report.different.push(WindowDiff {
                window: key.clone(),
                gold: a.cloned(),
                replayed: b.cloned(),
            }),
        }
    }
    Ok(report)
}
