//! A backfill of a gold table over `[from, to)`: its windows recomputed from silver and
//! replaced, reported as a lineage run. `ingot backfill` and the scheduler both run it.

use chrono::{DateTime, Utc};
use ingot_lake::{Lake, parse_ident};
use ingot_transforms::{
    BackfillReport, Kind, RunContext, RunLineage, TransformConfig, TransformReport, backfill as recompute,
    column_lineage_of,
};

use crate::commands::CliError;
use crate::config::Config;
use crate::pipeline_run::PIPELINE_JOB;

/// One backfill run of `table` over `[from, to)`, reported as a lineage run under `context`.
pub async fn backfill(
    config: &Config,
    lake: &Lake,
    table: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    context: &RunContext,
) -> Result<BackfillReport, CliError> {
    let transform = TransformConfig::find(&config.transforms, table, Kind::Gold)?;
    let sql = transform.read_sql()?;
    let (gold_ident, silver_ident) = (parse_ident(table)?, parse_ident(&transform.input)?);
    let silver = lake.load(&silver_ident).await?;
    let gold = match lake.exists(&gold_ident).await? {
        true => Some(lake.load(&gold_ident).await?),
        false => None,
    };
    let input = lake.lineage_dataset(&silver_ident, Some(&silver), silver.metadata().current_snapshot_id());
    let output = lake.lineage_dataset(
        &gold_ident,
        gold.as_ref(),
        gold.as_ref().and_then(|g| g.metadata().current_snapshot_id()),
    );
    let plan = column_lineage_of(lake, &sql).await;
    let job = format!("{PIPELINE_JOB}.backfill_{}", table.rsplit('.').next().unwrap_or(table));
    let lineage = RunLineage::start(context, job, transform, &sql, input, output, plan);
    let result = recompute(lake, transform, &sql, from, to).await;
    match &result {
        Ok(report) => {
            let written = lake.load(&gold_ident).await?;
            let stats = TransformReport {
                table: table.to_string(),
                written_rows: report.windows_after as u64,
                snapshot_id: report.snapshot_id,
                ..Default::default()
            };
            let snapshot = written.metadata().current_snapshot_id();
            lineage.complete(&stats, lake.lineage_dataset(&gold_ident, Some(&written), snapshot));
        }
        Err(e) => lineage.fail(&e.to_string()),
    }
    Ok(result?)
}
