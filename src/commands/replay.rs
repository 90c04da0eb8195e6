//! `ingot replay <gold table> --as-of <time> [--write-to <table>]`: does gold as of T follow
//! from bronze as of T? Exit code 0 only when every window matches.

use chrono::{DateTime, Utc};
use ingot_lake::{
    AsOf, Lake, OnConflict, Operation, SnapshotChange, TableSpec, parse_ident, write_data_files,
};
use ingot_transforms::query::parse_timestamp;
use ingot_transforms::{Kind, ReplayReport, TransformConfig, replay as recompute};

use super::CliError;
use crate::config::Config;
use crate::output::outln;

pub async fn replay(
    config: &Config,
    table: &str,
    as_of: &str,
    write_to: Option<&str>,
) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let report = replay_check(config, &lake, table, parse_timestamp(as_of)?).await?;
    outln!("{report}");
    if let Some(target) = write_to {
        keep(&lake, config, table, target, &report).await?;
        outln!("recomputed rows written to {target}");
    }
    if report.matches() {
        Ok(())
    } else {
        Err(CliError::Usage(format!("{table} as of the given time does not follow from its inputs")))
    }
}

/// Replays `table` as of `at` (see `ingot_transforms::replay`).
pub async fn replay_check(
    config: &Config,
    lake: &Lake,
    table: &str,
    at: DateTime<Utc>,
) -> Result<ReplayReport, CliError> {
    let gold = TransformConfig::find(&config.transforms, table, Kind::Gold)?;
    let silver = TransformConfig::find(&config.transforms, &gold.input, Kind::Silver)?;
    let (gold_sql, silver_sql) = (gold.read_sql()?, silver.read_sql()?);
    Ok(recompute(lake, gold, &gold_sql, silver, &silver_sql, AsOf::Timestamp(at)).await?)
}

/// Keeps the recomputed rows as their own table, partitioned like the gold table.
async fn keep(
    lake: &Lake,
    config: &Config,
    table: &str,
    target: &str,
    report: &ReplayReport,
) -> Result<(), CliError> {
    let Some(schema) = &report.schema else { return Ok(()) };
    let window_column = config
        .transforms
        .iter()
        .find(|t| t.table == table)
        .map(|t| t.window_column.clone())
        .unwrap_or_else(|| "window_start".into());
    let spec = TableSpec {
        ident: parse_ident(target)?,
        schema: schema.as_ref().clone(),
        partition_day: Some(window_column),
    };
    let (kept, _) = lake.ensure_table(&spec).await?;
    let files = write_data_files(&kept, &report.rows).await?;
    let commit_id = format!("replay-{}-{}", kept.identifier(), report.gold_snapshot);
    let mut change = SnapshotChange::new(Operation::Append, commit_id);
    change.add = files.files;
    change.on_conflict = OnConflict::Fail;
    lake.commit_change(&kept, &change).await?;
    Ok(())
}
