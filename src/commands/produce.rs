use std::time::{Duration, Instant};

use futures::future::try_join_all;
use ingot_ingest::KafkaConfig;
use ingot_proto::ContractRegistry;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::CliError;
use crate::cli::ProduceArgs;
use crate::config::Config;
use crate::output::outln;
use crate::sample::{Mix, SampleGenerator, SampleKind};

/// Messages in flight before waiting for acknowledgements.
const WINDOW: usize = 10_000;

pub async fn produce(config: &Config, args: &ProduceArgs) -> Result<(), CliError> {
    let topic = config.topics.iter().find(|t| t.topic == args.topic).ok_or_else(|| {
        CliError::Usage(format!("topic `{}` is not in the config's [[topics]]", args.topic))
    })?;
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    let message = registry.message(&topic.message)?;
    // Producing to brokers that cannot be reached would wait out every message's timeout.
    ingot_ingest::check_connection(&config.kafka).await?;
    ingot_ingest::ensure_topics(&config.kafka, std::slice::from_ref(&args.topic), args.partitions).await?;

    let mix = Mix { bad: args.bad_ratio, duplicate: args.duplicate_ratio, late: args.late_ratio };
    let mut generator = SampleGenerator::new(message, mix, args.seed);
    let started = Instant::now();
    let counts = send_samples(&config.kafka, &args.topic, &mut generator, args.count, args.rate).await?;
    let secs = started.elapsed().as_secs_f64();
    outln!(
        "produced {} messages to {} in {:.2}s ({:.0} msg/s): good {}, late {}, duplicates {}, malformed {}",
        args.count,
        args.topic,
        secs,
        args.count as f64 / secs.max(1e-9),
        counts[SampleKind::Good as usize],
        counts[SampleKind::Late as usize],
        counts[SampleKind::Duplicate as usize],
        counts[SampleKind::Bad as usize],
    );
    Ok(())
}

/// Produces `count` samples to `topic` (at `rate` per second, 0 = unthrottled) and returns
/// how many of each kind were sent, indexed by `SampleKind`.
pub(super) async fn send_samples(
    kafka: &KafkaConfig,
    topic: &str,
    generator: &mut SampleGenerator,
    count: u64,
    rate: f64,
) -> Result<[u64; 4], CliError> {
    let producer: FutureProducer = ingot_ingest::client_config(
        kafka,
        &[
            ("linger.ms", "20".into()),
            ("batch.size", "1000000".into()),
            ("compression.type", "lz4".into()),
            ("enable.idempotence", "true".into()),
        ],
    )?
    .create()?;
    let mut counts = [0u64; 4];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(WINDOW);
    for i in 0..count {
        let sample = generator.next_sample();
        counts[sample.kind as usize] += 1;
        let producer = &producer;
        pending.push(async move {
            let mut record = FutureRecord::<Vec<u8>, Vec<u8>>::to(topic).key(&sample.key);
            // An empty sample stands for a tombstone: a message without a value.
            if !sample.payload.is_empty() {
                record = record.payload(&sample.payload);
            }
            producer.send(record, Duration::from_secs(60)).await.map_err(|(e, _)| e)
        });
        if pending.len() >= WINDOW {
            try_join_all(pending.drain(..)).await?;
        }
        if rate > 0.0 {
            let due = Duration::from_secs_f64((i + 1) as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                try_join_all(pending.drain(..)).await?;
                tokio::time::sleep(wait).await;
            }
        }
    }
    try_join_all(pending).await?;
    Ok(counts)
}
