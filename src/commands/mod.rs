//! One module per subcommand; this one routes and holds what they share.

mod backfill;
mod bench;
mod bench_duckdb;
mod bench_transforms;
mod check;
mod contract;
mod maintain;
mod produce;
mod quarantine;
mod query;
mod replay;
mod run;
mod tables;
mod transform;

use std::path::Path;

use crate::cli::{BenchKind, Cli, Command};
use crate::config::{Config, ConfigError};

/// Why a command failed. Each source keeps its own `retryable()`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lake(#[from] ingot_lake::LakeError),
    #[error(transparent)]
    Ingest(#[from] ingot_ingest::IngestError),
    #[error(transparent)]
    Contract(#[from] ingot_proto::ProtoError),
    #[error(transparent)]
    Query(#[from] ingot_transforms::TransformError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{0}")]
    Usage(String),
}

pub async fn dispatch(cli: Cli) -> Result<(), CliError> {
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Run { until_caught_up, caught_up_timeout } => {
            let mode = match until_caught_up {
                true => ingot_ingest::RunMode::UntilCaughtUp { timeout: caught_up_timeout },
                false => ingot_ingest::RunMode::Service,
            };
            run::run(&config, mode).await
        }
        Command::Produce(args) => produce::produce(&config, &args).await,
        Command::Check => check::check(&config, &cli.config),
        Command::Tables => tables::tables(&config).await,
        Command::Snapshots { table } => tables::snapshots(&config, &table).await,
        Command::Query { sql, format } => query::query(&config, &sql, format).await,
        Command::Backfill { table, from, to } => backfill::backfill(&config, &table, &from, &to).await,
        Command::Replay { table, as_of, write_to } => {
            replay::replay(&config, &table, &as_of, write_to.as_deref()).await
        }
        Command::Serve { listen } => {
            let stop_requested = run::ShutdownSignal::listen();
            let mut api = config.api.clone();
            api.listen = listen.unwrap_or(api.listen);
            let lake = ingot_lake::Lake::open(&config.catalog).await?;
            crate::api::serve(lake, api, config.query.clone(), stop_requested.received()).await
        }
        Command::Transform { table } => transform::transform(&config, table.as_deref()).await,
        Command::Maintain(args) => maintain::maintain(&config, &args).await,
        Command::Quarantine(args) => quarantine::quarantine(&config, &args.which).await,
        Command::Contract(args) => contract::contract(&config, &cli.config, &args.which).await,
        Command::Bench(args) => match args.which {
            BenchKind::Pipeline { events, flush_rows, warehouse, pii } => {
                bench::pipeline(&config, events, flush_rows, warehouse.as_deref(), pii).await
            }
            BenchKind::EndToEnd { events } => bench::end_to_end(&config, events).await,
            BenchKind::Transforms { base, events } => {
                bench_transforms::transforms(&config, base, events).await
            }
            BenchKind::Latency { rate, seconds, flush_interval } => {
                bench::latency(&config, rate, seconds, flush_interval.into()).await
            }
        },
    }
}

fn load_config(path: &Path) -> Result<Config, ConfigError> {
    // Only the default file may be absent; a file the user named must exist.
    let required = path != Path::new("ingot.toml");
    Config::load(path, required)
}
