//! `ingot query "<sql>"`: read-only SQL over the lake, with Trino's time-travel syntax.

use ingot_lake::Lake;
use ingot_transforms::query::{OutputFormat, run_query, write_batches};

use super::CliError;
use crate::config::Config;

pub async fn query(config: &Config, sql: &str, format: OutputFormat) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let result = run_query(&lake, sql).await?;
    for (table, snapshot) in &result.pinned {
        tracing::info!(%table, snapshot, "read as of snapshot");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_batches(&mut out, &result.schema, &result.batches, format)?;
    Ok(())
}
