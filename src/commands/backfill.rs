//! `ingot backfill <gold table> --from <time> --to <time>`: one backfill (`jobs::backfill`)
//! under its own pipeline run.

use ingot_lake::Lake;
use ingot_transforms::query::parse_timestamp;

use super::CliError;
use crate::config::Config;
use crate::output::outln;
use crate::pipeline_run::PipelineRun;

pub async fn backfill(config: &Config, table: &str, from: &str, to: &str) -> Result<(), CliError> {
    let (from, to) = (parse_timestamp(from)?, parse_timestamp(to)?);
    let lake = Lake::open(&config.catalog).await?;
    let run = PipelineRun::start(&config.lineage, false)?;
    let result = crate::jobs::backfill(config, &lake, table, from, to, &run.context()).await;
    run.finish(result.as_ref().err().map(|e| e.to_string()).as_deref()).await;
    outln!("{}", result?);
    Ok(())
}
