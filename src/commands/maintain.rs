//! `ingot maintain compact|expire|clean-orphans [<table>] [--dry-run]`.

use ingot_lake::Lake;

use super::CliError;
use crate::cli::{MaintainArgs, MaintainKind};
use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::jobs::maintenance::MaintenanceLineage;
use crate::output::outln;
use crate::pipeline_run::PipelineRun;

pub async fn maintain(config: &Config, args: &MaintainArgs) -> Result<(), CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let mut settings = config.maintenance.clone();
    let (table, dry_run) = match &args.which {
        MaintainKind::Compact { table, dry_run, min_files, target_bytes } => {
            settings.compact_min_files = min_files.unwrap_or(settings.compact_min_files);
            settings.compact_target_bytes = target_bytes.or(settings.compact_target_bytes);
            (table, *dry_run)
        }
        MaintainKind::Expire { table, dry_run, older_than, retain_last } => {
            settings.expire_older_than = older_than.map(Into::into).unwrap_or(settings.expire_older_than);
            settings.retain_last = retain_last.unwrap_or(settings.retain_last);
            (table, *dry_run)
        }
        MaintainKind::CleanOrphans { table, dry_run, older_than } => {
            settings.orphan_older_than = older_than.map(Into::into).unwrap_or(settings.orphan_older_than);
            (table, *dry_run)
        }
    };
    let verb = if dry_run { "would" } else { "did" };
    let run = PipelineRun::start(&config.lineage, false)?;
    let context = run.context();
    let work = maintain_tables(&lake, &settings, table.as_deref(), args, dry_run, verb, &context);
    // A dry run changes nothing, so it need not wait for the instance that maintains.
    let result = match dry_run {
        true => work.await,
        false => Coordinator::once(lake.clone(), &config.service, "maintain tables", work).await,
    };
    run.finish(result.as_ref().err().map(|e| e.to_string()).as_deref()).await;
    result
}

async fn maintain_tables(
    lake: &Lake,
    settings: &crate::jobs::maintenance::MaintenanceConfig,
    table: Option<&str>,
    args: &MaintainArgs,
    dry_run: bool,
    verb: &str,
    context: &ingot_transforms::RunContext,
) -> Result<(), CliError> {
    for ident in settings.tables(lake, table).await? {
        let loaded = lake.load(&ident).await?;
        if ingot_lake::is_lease_table(&loaded) {
            continue;
        }
        // A dry run changes nothing, so it is not a run lineage records.
        let lineage = (!dry_run).then(|| MaintenanceLineage::start(lake, context, &loaded, None));
        let outcome: Result<(), CliError> = async {
            match &args.which {
                MaintainKind::Compact { .. } => {
                    let report = lake.compact(&loaded, &settings.compact_options(dry_run)).await?;
                    let files: usize = report.groups.iter().map(|g| g.input_files).sum();
                    let merge = if report.manifests_merged {
                        format!("; merge {} manifests", report.manifests_before)
                    } else {
                        String::new()
                    };
                    if report.groups.is_empty() {
                        outln!("{ident}: no partition has {} small files{merge}", settings.compact_min_files);
                    } else if dry_run {
                        outln!(
                            "{ident}: would compact {files} files in {} partitions{merge}",
                            report.groups.len()
                        );
                    } else {
                        outln!(
                            "{ident}: compacted {files} files in {} partitions into {} files{merge}",
                            report.groups.len(),
                            report.output_files
                        );
                    }
                    for group in &report.groups {
                        outln!(
                            "  {:<40} {:>6} files {:>12} bytes {:>10} rows",
                            group.partition, group.input_files, group.input_bytes, group.rows
                        );
                    }
                }
                MaintainKind::Expire { .. } => {
                    let report = lake.expire_snapshots(&loaded, &settings.expire_options(dry_run)).await?;
                    outln!(
                        "{ident}: {verb} expire {} snapshots (keeping {}) and delete {} files",
                        report.expired_snapshots.len(),
                        report.kept_snapshots,
                        report.deleted_files.len()
                    );
                    if dry_run {
                        report.deleted_files.iter().for_each(|f| outln!("  {f}"));
                    }
                }
                MaintainKind::CleanOrphans { .. } => {
                    let report = lake.clean_orphans(&loaded, &settings.orphan_options(dry_run)).await?;
                    outln!(
                        "{ident}: {verb} delete {} orphan files of {} scanned ({} unreferenced but younger than the safety age)",
                        report.orphans.len(),
                        report.scanned_files,
                        report.too_young
                    );
                    if dry_run {
                        report.orphans.iter().for_each(|f| outln!("  {f}"));
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Some(lineage) = lineage {
            let after = lake.load(&ident).await?;
            lineage.finish(lake, &after, outcome.as_ref().err().map(|e| e.to_string()).as_deref());
        }
        outcome?;
    }
    Ok(())
}
