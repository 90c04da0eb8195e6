//! `ingot replay <gold table> --as-of <time> [--write-to <table>]`: one replay audit
//! (`jobs::replay`) under its own pipeline run. Exit code 0 only when every window matches.

use ingot_lake::Lake;
use ingot_transforms::query::parse_timestamp;

use super::CliError;
use crate::config::Config;
use crate::output::outln;
use crate::pipeline_run::PipelineRun;

pub async fn replay(
    config: &Config,
    table: &str,
    as_of: &str,
    write_to: Option<&str>,
) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let at = parse_timestamp(as_of)?;
    let run = PipelineRun::start(&config.lineage, false)?;
    let result = crate::jobs::replay(config, &lake, table, at, write_to, &run.context()).await;
    run.finish(result.as_ref().err().map(|e| e.to_string()).as_deref()).await;
    let report = result?;
    outln!("{report}");
    if let Some(target) = write_to {
        outln!("recomputed rows written to {target}");
    }
    if report.matches() {
        Ok(())
    } else {
        Err(CliError::Usage(format!("{table} as of the given time does not follow from its inputs")))
    }
}
