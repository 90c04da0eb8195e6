use chrono::{TimeZone, Utc};
use ingot_lake::{Lake, list_snapshots, parse_ident};

use super::CliError;
use crate::config::Config;

pub async fn tables(config: &Config) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    println!("{:<32} {:>12} {:>8} {:>10}  last commit (UTC)", "table", "rows", "files", "snapshots");
    for ident in lake.list_tables().await? {
        let table = lake.load(&ident).await?;
        let metadata = table.metadata();
        let (rows, files, when) = match metadata.current_snapshot() {
            Some(s) => {
                let props = &s.summary().additional_properties;
                let get = |k: &str| props.get(k).cloned().unwrap_or_else(|| "0".into());
                (get("total-records"), get("total-data-files"), format_ms(s.timestamp_ms()))
            }
            None => ("0".into(), "0".into(), "-".into()),
        };
        println!(
            "{:<32} {:>12} {:>8} {:>10}  {}",
            ident.to_string(),
            rows,
            files,
            metadata.snapshots().len(),
            when
        );
    }
    Ok(())
}

pub async fn snapshots(config: &Config, name: &str) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let table = lake.load(&parse_ident(name)?).await?;
    println!(
        "{:<20} {:<20} {:<24} {:<10} {:>10} {:>12}  commit id",
        "snapshot", "parent", "committed (UTC)", "operation", "added", "total"
    );
    for s in list_snapshots(&table) {
        let get = |k: &str| s.summary.get(k).cloned().unwrap_or_default();
        println!(
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
