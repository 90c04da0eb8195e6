//! `ingot query "<sql>"`: read-only SQL over the lake, with Trino's time-travel syntax, within
//! the same `[query]` bounds as the HTTP API; rows are printed as they are produced.

use ingot_lake::Lake;
use ingot_transforms::query::{OutputFormat, QueryPool, ResultEncoder};

use super::CliError;
use crate::config::Config;

pub async fn query(config: &Config, sql: &str, format: OutputFormat) -> Result<(), CliError> {
    run_sql(config, sql, format).await
}

/// Runs `sql` within the `[query]` bounds and prints its rows as they come.
pub(super) async fn run_sql(config: &Config, sql: &str, format: OutputFormat) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let pool = QueryPool::new(config.query.clone())?;
    let mut stream = pool.start(&lake, sql, None).await?;
    for (table, snapshot) in &stream.pinned {
        tracing::info!(%table, snapshot, "read as of snapshot");
    }
    let mut encoder = ResultEncoder::new(&stream.schema, format, config.query.max_result_bytes)?;
    while let Some(batch) = stream.next().await {
        crate::output::write(&encoder.encode(&batch?)?);
    }
    crate::output::write(&encoder.finish()?);
    Ok(())
}
