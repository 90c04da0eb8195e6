//! `ingot transform [<table>]`, and the transforms `ingot run` runs after bronze commits.

use ingot_lake::{Lake, parse_ident};
use ingot_transforms::{RunContext, run_transforms};

use super::CliError;
use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::output::outln;
use crate::pipeline_run::PipelineRun;
use crate::service::Stop;

pub async fn transform(config: &Config, only: Option<&str>) -> Result<(), CliError> {
    if config.transforms.is_empty() {
        return Err(CliError::Usage("no [[transforms]] configured".into()));
    }
    let lake = Lake::open(&config.catalog).await?;
    let quarantine = parse_ident(&config.ingest.quarantine_table)?;
    let run = PipelineRun::start(&config.lineage, false)?;
    let context = run.context();
    let transforms =
        async { Ok(run_transforms(&lake, &config.transforms, &quarantine, only, &context).await?) };
    let result = Coordinator::once(lake.clone(), &config.service, "run the transforms", transforms).await;
    run.finish(result.as_ref().err().map(|e| e.to_string()).as_deref()).await;
    for report in result? {
        outln!("{report}");
    }
    Ok(())
}

/// Runs the transforms once as part of an existing pipeline run (`run --until-caught-up`).
pub async fn transform_in(lake: &Lake, config: &Config, context: &RunContext) -> Result<(), CliError> {
    let quarantine = parse_ident(&config.ingest.quarantine_table)?;
    for report in run_transforms(lake, &config.transforms, &quarantine, None, context).await? {
        outln!("{report}");
    }
    Ok(())
}

/// Every `transform.min_interval`, runs the transforms if this instance coordinates; each
/// reads only what its input gained since its last run, so bronze commits in between are
/// coalesced into one run. A failure is logged and retried next time; it never stops ingest.
pub async fn run_scheduled(
    lake: Lake,
    config: Config,
    context: RunContext,
    coordinator: Coordinator,
    mut stop: Stop,
) {
    if config.transforms.is_empty() {
        return;
    }
    let quarantine = match parse_ident(&config.ingest.quarantine_table) {
        Ok(q) => q,
        Err(e) => return tracing::error!(error = %e, "transforms disabled"),
    };
    let mut tick = tokio::time::interval(config.transform.min_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.requested() => return,
        }
        // A run in progress is finished, not cut by a stop (its lineage ends COMPLETE or FAIL);
        // only losing the lease cuts it.
        let transforms = run_transforms(&lake, &config.transforms, &quarantine, None, &context);
        if let Some(Err(e)) = coordinator.lead("the transform run", transforms).await {
            tracing::warn!(error = %e, "transform run failed; trying again next interval");
        }
    }
}
