use chrono::{TimeZone, Utc};
use ingot_lake::{Lake, list_snapshots, parse_ident, table_size};

use super::CliError;
use crate::config::Config;
use crate::output::outln;

pub async fn tables(config: &Config) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    outln!("{:<32} {:>12} {:>8} {:>10}  last commit (UTC)", "table", "rows", "files", "snapshots");
    for ident in lake.list_tables().await? {
        let size = table_size(&lake.load(&ident).await?);
        let when = size.last_commit_ms.map_or_else(|| "-".into(), format_ms);
        outln!(
            "{:<32} {:>12} {:>8} {:>10}  {}",
            ident.to_string(),
            size.rows,
            size.files,
            size.snapshots,
            when
        );
    }
    Ok(())
}

pub async fn snapshots(config: &Config, name: &str) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let table = lake.load(&parse_ident(name)?).await?;
    outln!(
        "{:<20} {:<20} {:<24} {:<10} {:>10} {:>12}  commit id",
        "snapshot",
        "parent",
        "committed (UTC)",
        "operation",
        "added",
        "total"
    );
    for s in list_snapshots(&table) {
        let get = |k: &str| s.summary.get(k).cloned().unwrap_or_default();
        outln!(
            "{:<20} {:<20} {:<24} {:<10} {:>10} {:>12}  {}",
            s.snapshot_id,
            s.parent_id.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            format_ms(s.timestamp_ms),
            s.operation,
            get("added-records"),
            get("total-records"),
            get(ingot_lake::COMMIT_ID_PROPERTY),
        );
    }
    Ok(())
}

fn format_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}
