//! ingot: Kafka topics of Protobuf events into an auditable Iceberg lakehouse.

mod api;
mod cli;
mod commands;
mod config;
mod config_fields;
mod maintenance;
mod output;
mod pipeline_run;
mod sample;
mod schedule;
mod service;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INGOT_LOG")
                .unwrap_or_else(|_| "info,iceberg=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    match commands::dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
