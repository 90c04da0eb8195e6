//! Table maintenance as config describes it: what `ingot maintain` runs once and what
//! `ingot run` runs on a schedule.

use std::time::Duration;

use ingot_lake::{
    CompactOptions, ExpireOptions, Lake, LakeError, OrphanOptions, Table, TableIdent, parse_ident,
};
use ingot_lineage::{JobKind, LineageRun, facets, insert};
use ingot_transforms::RunContext;
use metrics::{counter, histogram};
use serde::Deserialize;

use crate::coordinator::Coordinator;
use crate::service::Stop;

/// `[maintenance]`: how tables are compacted and cleaned.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// How often `ingot run` compacts, expires and cleans every table; `0s` turns it off.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Tables to maintain (`namespace.table`); empty means every table in the catalog.
    #[serde(default)]
    pub tables: Vec<String>,
    /// A partition is compacted once it has this many small files.
    #[serde(default = "default_min_files")]
    pub compact_min_files: usize,
    /// Size of compacted files in bytes; a table's `write.target-file-size-bytes` wins.
    #[serde(default)]
    pub compact_target_bytes: Option<u64>,
    /// Snapshots older than this are expired — the audit horizon for time travel.
    #[serde(default = "default_expire_after", with = "humantime_serde")]
    pub expire_older_than: Duration,
    /// The newest this many snapshots are kept whatever their age.
    #[serde(default = "default_retain_last")]
    pub retain_last: usize,
    /// Unreferenced files younger than this are never deleted (writers in flight).
    #[serde(default = "default_orphan_age", with = "humantime_serde")]
    pub orphan_older_than: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_min_files() -> usize {
    CompactOptions::default().min_input_files
}
fn default_expire_after() -> Duration {
    ExpireOptions::default().older_than
}
fn default_retain_last() -> usize {
    ExpireOptions::default().retain_last
}
fn default_orphan_age() -> Duration {
    OrphanOptions::default().older_than
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            tables: Vec::new(),
            compact_min_files: default_min_files(),
            compact_target_bytes: None,
            expire_older_than: default_expire_after(),
            retain_last: default_retain_last(),
            orphan_older_than: default_orphan_age(),
        }
    }
}

impl MaintenanceConfig {
    pub fn compact_options(&self, dry_run: bool) -> CompactOptions {
        CompactOptions {
            target_bytes: self.compact_target_bytes,
            min_input_files: self.compact_min_files,
            dry_run,
        }
    }
    pub fn expire_options(&self, dry_run: bool) -> ExpireOptions {
        ExpireOptions { older_than: self.expire_older_than, retain_last: self.retain_last, dry_run }
    }
    pub fn orphan_options(&self, dry_run: bool) -> OrphanOptions {
        OrphanOptions { older_than: self.orphan_older_than, dry_run }
    }

    /// The tables to maintain: `only` if given, else the configured list, else all.
    pub async fn tables(&self, lake: &Lake, only: Option<&str>) -> Result<Vec<TableIdent>, LakeError> {
        match only {
            Some(name) => Ok(vec![parse_ident(name)?]),
            None if !self.tables.is_empty() => self.tables.iter().map(|t| parse_ident(t)).collect(),
            None => lake.list_tables().await,
        }
    }
}

/// Runs compaction, expiry and orphan cleanup on every table each `interval` if this instance
/// coordinates, until the future is dropped. A failure is logged and tried again next round;
/// it never stops ingest. Each table's round is a lineage run (`pipeline.maintain_<table>`)
/// with its nominal time.
pub async fn run_scheduled(
    lake: Lake,
    config: MaintenanceConfig,
    context: RunContext,
    coordinator: Coordinator,
    mut stop: Stop,
) {
    if config.interval.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start one interval in
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.requested() => return,
        }
        let nominal = ingot_lineage::now();
        let round = maintain_all(&lake, &config, &context, &nominal, Some(&stop));
        if let Some(Err(e)) = coordinator.lead("the maintenance round", round).await {
            tracing::warn!(error = %e, "scheduled maintenance failed; trying again next interval");
        }
    }
}

pub(crate) async fn maintain_all(
    lake: &Lake,
    config: &MaintenanceConfig,
    context: &RunContext,
    nominal: &str,
    stop: Option<&Stop>,
) -> Result<(), LakeError> {
    for ident in config.tables(lake, None).await? {
        // Between tables: the one in progress is finished (no half-cleaned table, lineage
        // ends), the rest wait for the next round.
        if stop.is_some_and(Stop::is_requested) {
            return Ok(());
        }
        let before = lake.load(&ident).await?;
        if ingot_lake::is_lease_table(&before) {
            continue;
        }
        let run = MaintenanceLineage::start(lake, context, &before, Some(nominal));
        let started = std::time::Instant::now();
        let result = maintain_one(lake, config, &ident).await;
        MaintenanceRan { table: &ident, result: &result, seconds: started.elapsed().as_secs_f64() }.emit();
        let after = lake.load(&ident).await?;
        run.finish(lake, &after, result.as_ref().err().map(|e| e.to_string()).as_deref());
        result?;
    }
    Ok(())
}

/// What one table's maintenance round did.
struct Maintained {
    compacted_partitions: usize,
    expired_snapshots: usize,
    deleted_files: usize,
}

async fn maintain_one(
    lake: &Lake,
    config: &MaintenanceConfig,
    ident: &TableIdent,
) -> Result<Maintained, LakeError> {
    let table = lake.load(ident).await?;
    let compacted = lake.compact(&table, &config.compact_options(false)).await;
    if let Err(e) = &compacted {
        tracing::warn!(table = %ident, error = %e, "compaction failed");
    }
    let table = lake.load(ident).await?;
    let expired = lake.expire_snapshots(&table, &config.expire_options(false)).await?;
    let table = lake.load(ident).await?;
    let orphans = lake.clean_orphans(&table, &config.orphan_options(false)).await?;
    Ok(Maintained {
        compacted_partitions: compacted.map(|r| r.groups.len()).unwrap_or(0),
        expired_snapshots: expired.expired_snapshots.len(),
        deleted_files: expired.deleted_files.len() + orphans.orphans.len(),
    })
}

/// One table's maintenance round: its log line and its metrics.
struct MaintenanceRan<'a> {
    table: &'a TableIdent,
    result: &'a Result<Maintained, LakeError>,
    seconds: f64,
}

impl MaintenanceRan<'_> {
    fn emit(&self) {
        let table = self.table.to_string();
        let outcome = match self.result {
            Ok(done) => {
                tracing::info!(
                    table,
                    compacted_partitions = done.compacted_partitions,
                    expired_snapshots = done.expired_snapshots,
                    deleted_files = done.deleted_files,
                    seconds = self.seconds,
                    "maintained"
                );
                counter!("ingot_maintenance_compacted_partitions_total", "table" => table.clone())
                    .increment(done.compacted_partitions as u64);
                counter!("ingot_maintenance_expired_snapshots_total", "table" => table.clone())
                    .increment(done.expired_snapshots as u64);
                counter!("ingot_maintenance_deleted_files_total", "table" => table.clone())
                    .increment(done.deleted_files as u64);
                "completed"
            }
            Err(e) => {
                tracing::warn!(table, error = %e, seconds = self.seconds, "maintenance failed");
                "failed"
            }
        };
        counter!("ingot_maintenance_runs_total", "table" => table.clone(), "outcome" => outcome).increment(1);
        histogram!("ingot_maintenance_duration_seconds", "table" => table).record(self.seconds);
    }
}

/// A maintenance run's events: START with the table as it was, COMPLETE or FAIL with the
/// snapshot it ended at.
pub struct MaintenanceLineage {
    run: LineageRun,
}

impl MaintenanceLineage {
    pub fn start(lake: &Lake, context: &RunContext, table: &Table, nominal: Option<&str>) -> Self {
        let ident = table.identifier();
        let name = format!("{}.maintain_{}", context.parent.job_name, ident.to_string().replace('.', "_"));
        let description = format!("compact, expire snapshots and clean orphans of {ident}");
        let kind = JobKind {
            processing: "BATCH",
            job_type: "MAINTENANCE",
            window_secs: None,
            description: &description,
        };
        let run = LineageRun::start(&context.emitter, name, &kind, Some(&context.parent), |event| {
            if let Some(start) = nominal {
                insert(&mut event.run.facets, facets::nominal_time(start, None));
            }
            let snapshot = table.metadata().current_snapshot_id();
            let dataset = lake.lineage_dataset(ident, Some(table), snapshot);
            (event.inputs, event.outputs) = (vec![dataset.clone()], vec![dataset]);
        });
        Self { run }
    }

    pub fn finish(self, lake: &Lake, after: &Table, error: Option<&str>) {
        self.run.finish(error, |event| {
            let snapshot = after.metadata().current_snapshot_id();
            event.outputs = vec![lake.lineage_dataset(after.identifier(), Some(after), snapshot)];
        });
    }
}
