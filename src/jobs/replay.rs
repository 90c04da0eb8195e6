//! A replay audit of a gold table as of a time: does gold as of T follow from its inputs as of
//! T? Reported as a lineage run whose gold input carries the verdict as a data-quality
//! assertion; the recomputed rows can be kept as a table of their own. `ingot replay` and the
//! scheduler both run it.

use chrono::{DateTime, Utc};
use ingot_lake::{
    AsOf, Lake, OnConflict, Operation, SnapshotChange, Table, TableIdent, TableSpec, parse_ident,
    write_data_files,
};
use ingot_lineage::{JobKind, LineageRun, facets, insert};
use ingot_transforms::{Kind, ReplayReport, RunContext, TransformConfig, replay as recompute};

use crate::commands::CliError;
use crate::config::Config;

/// Replays `table` as of `at` (see `ingot_transforms::replay`), keeping the recomputed rows in
/// `write_to` when given, as one lineage run under `context`.
pub async fn replay(
    config: &Config,
    lake: &Lake,
    table: &str,
    at: DateTime<Utc>,
    write_to: Option<&str>,
    context: &RunContext,
) -> Result<ReplayReport, CliError> {
    let gold = TransformConfig::find(&config.transforms, table, Kind::Gold)?;
    let silver = TransformConfig::find(&config.transforms, &gold.input, Kind::Silver)?;
    let name = format!("{}.replay_{}", context.parent.job_name, table.rsplit('.').next().unwrap_or(table));
    let description = format!("recompute {table} from {} as of the nominal time and compare", silver.input);
    let kind = JobKind { processing: "BATCH", job_type: "JOB", window_secs: None, description: &description };
    let (bronze_ident, gold_ident) = (parse_ident(&silver.input)?, parse_ident(table)?);
    let (bronze, gold_table) = (lake.load(&bronze_ident).await?, lake.load(&gold_ident).await?);
    let target = write_to.map(parse_ident).transpose()?;
    let existing = match &target {
        Some(ident) if lake.exists(ident).await? => Some(lake.load(ident).await?),
        _ => None,
    };
    let run = LineageRun::start(&context.emitter, name, &kind, Some(&context.parent), |event| {
        insert(&mut event.run.facets, facets::nominal_time(&ingot_lineage::format_time(at), None));
        event.inputs = vec![
            lake.lineage_dataset(&bronze_ident, Some(&bronze), None),
            lake.lineage_dataset(&gold_ident, Some(&gold_table), None),
        ];
        // Every event of a run names the same datasets: the kept table from the start.
        event.outputs =
            target.iter().map(|ident| lake.lineage_dataset(ident, existing.as_ref(), None)).collect();
    });
    let result = async {
        let (gold_sql, silver_sql) = (gold.read_sql()?, silver.read_sql()?);
        let report = recompute(lake, gold, &gold_sql, silver, &silver_sql, AsOf::Timestamp(at)).await?;
        let kept = match write_to {
            Some(target) => keep(lake, config, table, target, &report).await?,
            None => None,
        };
        Ok::<_, CliError>((report, kept))
    }
    .await;
    match &result {
        Ok((report, kept)) => run.complete(|event| {
            // The verdict rides on the gold input: which snapshot was audited and whether it held.
            if let Some(gold) = event.inputs.get_mut(1) {
                insert(&mut gold.facets, facets::version(report.gold_snapshot));
                let assertion = facets::Assertion {
                    name: "replay_matches".into(),
                    column: None,
                    success: report.matches(),
                    failed_rows: report.different.len() as u64,
                };
                insert(&mut gold.input_facets, facets::data_quality_assertions(&[assertion]));
            }
            if let Some((ident, table)) = kept {
                let snapshot = table.metadata().current_snapshot_id();
                event.outputs = vec![lake.lineage_dataset(ident, Some(table), snapshot)];
            }
        }),
        Err(e) => run.fail(&e.to_string(), |_| {}),
    }
    Ok(result?.0)
}

/// Keeps the recomputed rows as their own table, partitioned like the gold table.
async fn keep(
    lake: &Lake,
    config: &Config,
    table: &str,
    target: &str,
    report: &ReplayReport,
) -> Result<Option<(TableIdent, Table)>, CliError> {
    let Some(schema) = &report.schema else { return Ok(None) };
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
    let committed = lake.commit_change(&kept, &change).await?;
    Ok(Some((committed.table.identifier().clone(), committed.table)))
}
