//! `ingot transform [<table>]`, and the transforms `ingot run` runs after bronze commits.

use std::path::Path;

use ingot_lake::{Lake, parse_ident};
use ingot_transforms::run_transforms;

use super::CliError;
use crate::config::Config;

pub async fn transform(config: &Config, only: Option<&str>) -> Result<(), CliError> {
    if config.transforms.is_empty() {
        return Err(CliError::Usage("no [[transforms]] configured".into()));
    }
    let lake = Lake::open(&config.catalog).await?;
    let quarantine = parse_ident(&config.ingest.quarantine_table)?;
    for report in run_transforms(&lake, &config.transforms, Path::new(""), &quarantine, only).await? {
        println!("{report}");
    }
    Ok(())
}

/// Every `transform.min_interval`, runs the transforms; each reads only what its input gained
/// since its last run, so bronze commits in between are coalesced into one run. A failure is
/// logged and retried next time; it never stops ingest.
pub async fn run_scheduled(lake: Lake, config: Config) {
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
        tick.tick().await;
        if let Err(e) = run_transforms(&lake, &config.transforms, Path::new(""), &quarantine, None).await {
            tracing::warn!(error = %e, "transform run failed; trying again next interval");
        }
    }
}
