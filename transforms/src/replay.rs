//! `ingot replay <gold table> --as-of T`: recompute the gold table as it was at T from the
//! bronze snapshots its inputs had read by then — silver run by run, as the incremental runs
//! went (same SQL, same dedup, same watermarks), then gold — and compare with what gold said
//! at T. Nothing live is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use ingot_lake::{
    AsOf, Lake, Table, files_added_between, parse_ident, read_files_at, read_table, snapshot_as_of,
    table_arrow_schema,
};

use crate::backfill::cells;
use crate::lake_session::{collect, lake_session, memory_table, replace_table};
use crate::progress::SOURCE_SNAPSHOTS_PROPERTY;
use crate::rows::{conform, iceberg_ready};
use crate::silver::{Held, silver_step};
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
    let silver_snapshot = recorded_source(&gold_table, gold_snapshot, &gold.input).ok_or_else(|| {
        TransformError::Sql(format!(
            "{} snapshot {gold_snapshot} records no {} snapshot",
            gold.table, gold.input
        ))
    })?;

    // Silver's runs up to the snapshot gold had read, oldest first: (bronze read up to).
    let runs = silver_runs(&silver_table, silver_snapshot, &silver.input);
    let ctx = lake_session(lake).await?;
    let bronze_schema: SchemaRef = Arc::new(table_arrow_schema(&bronze)?);
    let (mut replayed, mut watermark, mut previous) = (Vec::<RecordBatch>::new(), None, None);
    for &up_to in &runs {
        let added = files_added_between(&bronze, previous, up_to).await?;
        let new_rows = read_files_at(&bronze, Some(up_to), &added.paths).await?;
        let step = silver_step(
            &ctx,
            silver,
            silver_sql,
            bronze_schema.clone(),
            new_rows,
            watermark,
            Held::Rows(&replayed),
        )
        .await?;
        replayed.extend(step.accepted);
        watermark = step.watermark;
        previous = Some(up_to);
    }

    // Gold over the replayed silver.
    let silver_schema: SchemaRef = match replayed.first() {
        Some(b) => b.schema(),
        None => Arc::new(table_arrow_schema(&silver_table)?),
    };
    replace_table(&ctx, &gold.input, memory_table(silver_schema, replayed)?)?;
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

/// The snapshot of `input` that `table`'s snapshot `snapshot` records having read.
fn recorded_source(table: &Table, snapshot: i64, input: &str) -> Option<i64> {
    let props = &table.metadata().snapshot_by_id(snapshot)?.summary().additional_properties;
    let sources: BTreeMap<String, i64> = serde_json::from_str(props.get(SOURCE_SNAPSHOTS_PROPERTY)?).ok()?;
    sources.get(input).copied()
}

/// The input snapshots silver's runs read up to, oldest first, following the ancestry of
/// `up_to` (snapshots that did not move the recorded input — compactions, corrections — are
/// not runs).
fn silver_runs(silver: &Table, up_to: i64, input: &str) -> Vec<i64> {
    let metadata = silver.metadata();
    let mut chain = Vec::new();
    let mut cursor = metadata.snapshot_by_id(up_to).cloned();
    while let Some(snapshot) = cursor {
        chain.push(snapshot.snapshot_id());
        cursor = snapshot.parent_snapshot_id().and_then(|p| metadata.snapshot_by_id(p).cloned());
    }
    chain.reverse();
    let mut runs: Vec<i64> = Vec::new();
    for id in chain {
        let Some(source) = recorded_source(silver, id, input) else { continue };
        if runs.last() != Some(&source) {
            runs.push(source);
        }
    }
    runs
}
