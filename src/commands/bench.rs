//! Benchmarks that print throughput: the write path alone (messages from memory), and end to
//! end against the configured broker next to a no-op consumer of the same topic.

use std::time::{Duration, Instant};

use ingot_ingest::pii::{PiiActionName, PiiField};
use ingot_ingest::{IngestConfig, MessageMeta, Pipeline, RunMode, TopicConfig};
use ingot_lake::{CatalogConfig, Lake, StorageConfig};
use ingot_proto::ContractRegistry;
use rdkafka::consumer::{Consumer, StreamConsumer};

use super::CliError;
use super::produce::send_samples;
use crate::config::Config;
use crate::output::outln;
use crate::sample::{Mix, SampleGenerator};

const BENCH_MESSAGE: &str = "ingot.demo.v1.OrderEvent";
const PARTITIONS: i32 = 3;

/// A throwaway lake in a temp dir, so benchmarks never touch the configured one.
pub(super) async fn scratch_lake() -> Result<(tempfile::TempDir, Lake), CliError> {
    scratch_lake_on(None, &StorageConfig::default()).await
}

/// A throwaway lake whose warehouse is a fresh prefix under `warehouse` (an `s3://` URI, say)
/// when given, else a temp dir; the catalog is always a scratch SQLite file.
async fn scratch_lake_on(
    warehouse: Option<&str>,
    storage: &StorageConfig,
) -> Result<(tempfile::TempDir, Lake), CliError> {
    let dir = tempfile::tempdir().map_err(|e| CliError::Usage(format!("temp dir: {e}")))?;
    let warehouse = match warehouse {
        Some(root) => format!("{}/ingot-bench-{}", root.trim_end_matches('/'), uuid::Uuid::new_v4()),
        None => dir.path().join("warehouse").display().to_string(),
    };
    let catalog = CatalogConfig {
        uri: format!("sqlite://{}", dir.path().join("catalog.db").display()).into(),
        warehouse,
        name: "bench".into(),
        storage: storage.clone(),
        ..Default::default()
    };
    let lake = Lake::open(&catalog).await?;
    Ok((dir, lake))
}

fn pii_field(field: &str, action: PiiActionName, keep: Option<usize>) -> PiiField {
    PiiField { field: field.into(), action, keep }
}

fn bench_topic(name: &str) -> TopicConfig {
    TopicConfig {
        topic: name.into(),
        message: BENCH_MESSAGE.into(),
        table: Some("bench_orders".into()),
        event_time: Some("occurred_at".into()),
        dlq_topic: Some(String::new()),
        allow_unknown_fields: false,
        rules: Vec::new(),
        pii: Vec::new(),
    }
}

/// Decode → Arrow → Parquet (ZSTD) → Iceberg commit for pre-serialized events.
/// With `warehouse`, the lake is written there (credentials from `[catalog.storage]` and the
/// environment) instead of a local temp dir.
pub async fn pipeline(
    config: &Config,
    events: usize,
    flush_rows: usize,
    warehouse: Option<&str>,
    pii: bool,
) -> Result<(), CliError> {
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    let message = registry.message(BENCH_MESSAGE)?;
    let mut generator = SampleGenerator::new(message, Mix::default(), 1);
    eprintln!("generating {events} events...");
    let payloads: Vec<Vec<u8>> = (0..events).map(|_| generator.next_sample().payload).collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();

    let (_dir, lake) = scratch_lake_on(warehouse, &config.catalog.storage).await?;
    eprintln!("warehouse: {}", lake.warehouse());
    let ingest = IngestConfig { pii: config.ingest.pii.clone(), ..IngestConfig::default() };
    let mut topic = bench_topic("bench");
    if pii {
        topic.pii = vec![
            pii_field("customer_id", PiiActionName::Tokenize, None),
            pii_field("trace_id", PiiActionName::Mask, Some(6)),
            pii_field("card.last4", PiiActionName::Drop, None),
        ];
    }
    let mut pipeline = Pipeline::prepare(lake, &registry, config.kafka.clone(), ingest, vec![topic]).await?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut commit_time = Duration::ZERO;
    for (i, payload) in payloads.iter().enumerate() {
        let meta = MessageMeta {
            topic: "bench",
            partition: i as i32 % PARTITIONS,
            offset: (i as i32 / PARTITIONS) as i64,
            timestamp_ms: Some(1_790_000_000_000),
            key: None,
        };
        pipeline.accept(&meta, Some(payload))?;
        if (i + 1) % flush_rows == 0 {
            let t = Instant::now();
            pipeline.commit_buffered().await?;
            commit_time += t.elapsed();
        }
    }
    let t = Instant::now();
    pipeline.commit_buffered().await?;
    commit_time += t.elapsed();
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let rows: u64 = pipeline.report().bronze_rows.values().sum();
    assert_eq!(rows as usize, events, "every event landed");
    outln!(
        "bench pipeline: {events} events, {:.0} bytes/event on average, flush every {flush_rows} rows{}",
        bytes as f64 / events as f64,
        if pii { ", PII protected (tokenize, mask, drop)" } else { "" }
    );
    outln!(
        "  wall        {wall:.2} s  ({:.0} events/s, {:.1} MB/s)",
        events as f64 / wall,
        bytes as f64 / wall / 1e6
    );
    outln!(
        "  cpu         {cpu:.2} s  ({:.0} events/s per core used, {:.1} MB/s per core)",
        events as f64 / cpu,
        bytes as f64 / cpu / 1e6
    );
    outln!(
        "  decode+arrow {:.2} s, parquet+commit {:.2} s",
        wall - commit_time.as_secs_f64(),
        commit_time.as_secs_f64()
    );
    outln!("  snapshots   {}", pipeline.report().snapshots);
    outln!(
        "  peak RSS    {} MiB (includes the {} MiB of payloads held in memory)",
        peak_rss_mib(),
        bytes >> 20
    );
    Ok(())
}

/// A no-op consumer and ingot drain the same freshly produced topic; prints both rates.
pub async fn end_to_end(config: &Config, events: u64) -> Result<(), CliError> {
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    let message = registry.message(BENCH_MESSAGE)?;
    let topic = format!("ingot-bench-{}", uuid::Uuid::new_v4().simple());
    ingot_ingest::ensure_topics(&config.kafka, std::slice::from_ref(&topic), PARTITIONS).await?;
    eprintln!("producing {events} events to {topic}...");
    let mut generator = SampleGenerator::new(message, Mix::default(), 1);
    send_samples(&config.kafka, &topic, &mut generator, events, 0.0).await?;

    let noop_secs = drain_without_work(config, &topic, events).await?;
    let (_dir, lake) = scratch_lake().await?;
    let mut kafka = config.kafka.clone();
    kafka.group_id = format!("ingot-bench-{}", uuid::Uuid::new_v4().simple());
    let pipeline =
        Pipeline::prepare(lake, &registry, kafka, IngestConfig::default(), vec![bench_topic(&topic)]).await?;
    let started = Instant::now();
    let mode = RunMode::UntilCaughtUp { timeout: std::time::Duration::from_secs(60) };
    let report = pipeline.run(mode, std::future::pending()).await?;
    let ingot_secs = started.elapsed().as_secs_f64();
    let rows: u64 = report.bronze_rows.values().sum();
    let noop_rate = events as f64 / noop_secs;
    let ingot_rate = rows as f64 / ingot_secs;
    outln!("bench end-to-end: {events} events on {PARTITIONS} partitions of {topic}");
    outln!("  no-op consumer {noop_rate:>10.0} events/s ({noop_secs:.2} s)");
    outln!(
        "  ingot → bronze {ingot_rate:>10.0} events/s ({ingot_secs:.2} s, includes group join and {} commits)",
        report.snapshots
    );
    outln!("  ratio          {:>10.1} %", 100.0 * ingot_rate / noop_rate);
    outln!("  peak RSS       {} MiB", peak_rss_mib());
    Ok(())
}

/// Produces at a steady rate while ingot runs as a service; prints produce → visible quantiles.
pub async fn latency(
    config: &Config,
    rate: f64,
    seconds: u64,
    flush_interval: Duration,
) -> Result<(), CliError> {
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    let message = registry.message(BENCH_MESSAGE)?;
    let topic = format!("ingot-latency-{}", uuid::Uuid::new_v4().simple());
    ingot_ingest::ensure_topics(&config.kafka, std::slice::from_ref(&topic), PARTITIONS).await?;
    let (_dir, lake) = scratch_lake().await?;
    let mut ingest = IngestConfig::default();
    ingest.flush.interval = flush_interval;
    let mut kafka = config.kafka.clone();
    kafka.group_id = format!("ingot-latency-{}", uuid::Uuid::new_v4().simple());
    let pipeline = Pipeline::prepare(lake, &registry, kafka, ingest, vec![bench_topic(&topic)]).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(pipeline.run(RunMode::Service, async {
        let _ = stopped.await;
    }));
    // Let the consumer join its group first: the join is start-up cost, not latency.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let count = (rate * seconds as f64) as u64;
    eprintln!("producing {count} events at {rate:.0}/s for {seconds} s...");
    let mut generator = SampleGenerator::new(message, Mix::default(), 1);
    send_samples(&config.kafka, &topic, &mut generator, count, rate).await?;
    tokio::time::sleep(flush_interval + Duration::from_secs(2)).await;
    let _ = stop.send(());
    let report = service.await.map_err(|e| CliError::Usage(format!("ingest task failed: {e}")))??;
    let sample = &report.visible_after;
    let q = |q: f64| sample.quantile_ms(q).map_or("-".to_string(), |ms| format!("{ms} ms"));
    let target = flush_interval.as_millis() + 300;
    outln!("bench latency: {count} events at {rate:.0}/s, flush interval {} ms", flush_interval.as_millis());
    outln!("  rows visible  {}", sample.count());
    outln!("  p50 {}  p95 {}  p99 {}  max {}", q(0.5), q(0.95), q(0.99), q(1.0));
    outln!("  target p99 ≤ {target} ms (flush interval + 300 ms)");
    outln!("  peak RSS      {} MiB", peak_rss_mib());
    Ok(())
}

/// Time for a consumer that does nothing with the messages to read `events` of them.
async fn drain_without_work(config: &Config, topic: &str, events: u64) -> Result<f64, CliError> {
    let consumer: StreamConsumer = ingot_ingest::client_config(
        &config.kafka,
        &[
            ("group.id", format!("noop-{}", uuid::Uuid::new_v4().simple())),
            ("auto.offset.reset", "earliest".into()),
            ("enable.auto.commit", "false".into()),
            ("fetch.max.bytes", "52428800".into()),
        ],
    )?
    .create()?;
    consumer.subscribe(&[topic])?;
    let mut seen = 0u64;
    let mut started = None;
    while seen < events {
        let message = consumer.recv().await?;
        started.get_or_insert_with(Instant::now);
        std::hint::black_box(rdkafka::Message::payload(&message));
        seen += 1;
    }
    Ok(started.map_or(0.0, |s| s.elapsed().as_secs_f64()))
}

/// User + system CPU time of this process so far.
pub(super) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: utime and stime are the 12th and 13th fields; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

/// Starts the peak RSS over from the current RSS (Linux ≥ 4.0), so a later `peak_rss_mib`
/// measures one phase.
pub(super) fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak RSS ({e}); the figure includes earlier phases");
    }
}

pub(super) fn peak_rss_mib() -> u64 {
    status_mib("VmHWM:")
}

/// The resident set now.
pub(super) fn rss_mib() -> u64 {
    status_mib("VmRSS:")
}

/// A `kB` line of `/proc/self/status`, in MiB.
fn status_mib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
