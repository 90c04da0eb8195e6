//! ingot: Kafka topics of Protobuf events into an auditable Iceberg lakehouse.

mod api;
mod cli;
mod commands;
mod config;
mod config_fields;
mod coordinator;
mod jobs;
mod output;
mod pipeline_run;
mod sample;
mod schedule;
mod service;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("INGOT_LOG")
        .unwrap_or_else(|_| "info,iceberg=warn,sqlx=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Text => logs.init(),
        // One JSON object per line, the event's fields flattened beside level and target.
        cli::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    telemetry::install();
    let format = cli.log_format;
    match commands::dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match format {
                cli::LogFormat::Text => eprintln!("error: {e:#}"),
                // A log shipper reads every stderr line as an object, the last one too.
                cli::LogFormat::Json => tracing::error!(error = %e, "command failed"),
            }
            ExitCode::FAILURE
        }
    }
}
