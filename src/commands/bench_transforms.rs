//! `ingot bench transforms`: one incremental silver + gold run over N new bronze rows, on top
//! of a base that silver and gold already hold, timed. Bronze is filled from memory through
//! the ingest write path into a scratch lake; the transforms are the configured ones.

use std::time::Instant;

use ingot_ingest::{IngestConfig, MessageMeta, Pipeline, TopicConfig};
use ingot_lake::parse_ident;
use ingot_proto::ContractRegistry;
use ingot_transforms::{RunContext, run_transforms};

use super::CliError;
use super::bench::{cpu_seconds, peak_rss_mib, reset_peak_rss, rss_mib, scratch_lake};
use super::bench_duckdb::{self, DuckDbRun};
use crate::config::Config;
use crate::output::outln;
use crate::sample::{Mix, SampleGenerator};

pub async fn transforms(config: &Config, base: usize, events: usize) -> Result<(), CliError> {
    let Some(silver) = config.transforms.iter().find(|t| t.kind == ingot_transforms::Kind::Silver) else {
        return Err(CliError::Usage("bench transforms needs the [[transforms]] of ingot.toml".into()));
    };
    let bronze = parse_ident(&silver.input)?;
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    let topic = config
        .topics
        .iter()
        .find(|t| t.table.as_deref().unwrap_or(&t.topic) == bronze.name())
        .cloned()
        .ok_or_else(|| CliError::Usage(format!("no [[topics]] entry fills {bronze}")))?;
    let topic = TopicConfig { dlq_topic: Some(String::new()), ..topic };
    let (_dir, lake) = scratch_lake().await?;
    let mut pipeline = Pipeline::prepare(
        lake.clone(),
        &registry,
        config.kafka.clone(),
        IngestConfig::default(),
        vec![topic.clone()],
    )
    .await?;
    let message = registry.message(&topic.message)?;
    let mut generator = SampleGenerator::new(message, Mix { bad: 0.0, duplicate: 0.05, late: 0.0 }, 3);
    let quarantine = parse_ident(&config.ingest.quarantine_table)?;
    let mut offset = 0i64;
    let mut fill = |pipeline: &mut Pipeline, count: usize| -> Result<(), CliError> {
        for _ in 0..count {
            let sample = generator.next_sample();
            let meta = MessageMeta {
                topic: &topic.topic,
                partition: (offset % 3) as i32,
                offset: offset / 3,
                timestamp_ms: Some(chrono::Utc::now().timestamp_millis()),
                key: None,
            };
            pipeline.accept(&meta, Some(&sample.payload))?;
            offset += 1;
        }
        Ok(())
    };
    eprintln!("filling bronze with a base of {base} events and running the transforms over it...");
    fill(&mut pipeline, base)?;
    pipeline.commit_buffered().await?;
    run_transforms(&lake, &config.transforms, &quarantine, None, &RunContext::silent()).await?;
    let base_snapshot = lake.load(&bronze).await?.metadata().current_snapshot_id();
    eprintln!("adding {events} new events to bronze...");
    let mut left = events;
    while left > 0 {
        let chunk = left.min(500_000);
        fill(&mut pipeline, chunk)?;
        pipeline.commit_buffered().await?;
        left -= chunk;
    }
    // The run is measured alone: bronze's write buffers go, and the peak starts over here.
    drop(pipeline);
    let filled_peak = peak_rss_mib();
    reset_peak_rss();
    let at_start = rss_mib();

    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let reports = run_transforms(&lake, &config.transforms, &quarantine, None, &RunContext::silent()).await?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    outln!("bench transforms: one incremental run over {events} new bronze rows (base {base})");
    for report in &reports {
        outln!("  {report}");
    }
    outln!("  wall {wall:.2} s, cpu {cpu:.2} s ({:.0} new rows/s)", events as f64 / wall);
    outln!(
        "  peak RSS {} MiB during the run, {at_start} MiB at its start (the allocator keeps what filling bronze used: {filled_peak} MiB)",
        peak_rss_mib()
    );
    // The peer: DuckDB on the same new bronze files, same SQL, Parquet (ZSTD) out.
    let table = lake.load(&bronze).await?;
    let up_to = table.metadata().current_snapshot_id().unwrap_or_default();
    let added = ingot_lake::files_added_between(&table, base_snapshot, up_to).await?;
    let mut files: Vec<String> =
        added.paths.iter().map(|p| p.strip_prefix("file://").unwrap_or(p).to_string()).collect();
    files.sort();
    match bench_duckdb::run(&files) {
        DuckDbRun::Took { seconds, silver_rows, version } => outln!(
            "  DuckDB {version}, same work on the same {} files (dedup within the new rows only, no catalog): {seconds:.2} s, {silver_rows} silver rows; ingot/DuckDB = {:.2}",
            files.len(),
            wall / seconds
        ),
        DuckDbRun::NotRun(why) => outln!("  DuckDB: not run ({why})"),
    }
    Ok(())
}
