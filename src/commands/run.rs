use ingot_ingest::{IngestReport, Pipeline, RunMode, until_available};
use ingot_lake::Lake;
use ingot_proto::ContractRegistry;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::CliError;
use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::output::outln;
use crate::pipeline_run::PipelineRun;
use crate::service::Supervisor;

pub async fn run(config: &Config, mode: RunMode) -> Result<(), CliError> {
    // Listening starts before any start-up work: a SIGTERM that arrives while the catalog
    // opens or Kafka is first asked is kept and drains the run as soon as it starts, instead
    // of killing the process by the signal's default action.
    let stop_requested = ShutdownSignal::listen();
    let until_caught_up = mode != RunMode::Service;
    if config.topics.is_empty() {
        return Err(CliError::Usage("no [[topics]] configured: nothing to ingest".into()));
    }
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    // A catalog that is locked or unreachable at start is waited for, like one mid-stream;
    // every failed attempt is logged, so a wrong URI shows at once.
    let limit = config.ingest.retry_unavailable_for;
    let lake =
        until_available("open the catalog", limit, || async { Ok(Lake::open(&config.catalog).await?) })
            .await?;
    let pipeline = Pipeline::prepare(
        lake.clone(),
        &registry,
        config.kafka.clone(),
        config.ingest.clone(),
        config.topics.clone(),
    )
    .await?;
    // After `prepare`, which creates the quarantine table the transforms write to.
    let run = PipelineRun::start(&config.lineage, !until_caught_up)?;
    // Every instance ingests its share of the partitions; transforms, maintenance and
    // schedules run where the coordinator lease is.
    let (coordinator, resign) = Coordinator::start(lake.clone(), &config.service)?;
    let mut service = Supervisor::new();
    service.spawn(
        "maintenance",
        crate::jobs::maintenance::run_scheduled(
            lake.clone(),
            config.maintenance.clone(),
            run.context(),
            coordinator.clone(),
            service.stop_signal(),
        ),
    );
    if !until_caught_up {
        let task = super::transform::run_scheduled(
            lake.clone(),
            config.clone(),
            run.context(),
            coordinator.clone(),
            service.stop_signal(),
        );
        service.spawn("transforms", task);
    }
    let pipeline = pipeline.with_lineage(run.lineage_parent());
    crate::schedule::validate(&config.schedule).map_err(CliError::Usage)?;
    if !until_caught_up {
        service.spawn(
            "schedules",
            crate::schedule::run_scheduled(
                config.clone(),
                run.context(),
                coordinator.clone(),
                service.stop_signal(),
            ),
        );
    }
    if config.api.enabled {
        let (lake, api, limits) = (lake.clone(), config.api.clone(), config.query.clone());
        let mut stop = service.stop_signal();
        service.spawn("api", async move {
            if let Err(e) = crate::api::serve(lake, api, limits, async move { stop.requested().await }).await
            {
                tracing::error!(error = %e, "HTTP API stopped");
            }
        });
    }
    if let Some(listen) = config.metrics.listen.clone() {
        let (lake, mut stop) = (lake.clone(), service.stop_signal());
        service.spawn("metrics", async move {
            if let Err(e) =
                crate::api::serve_metrics(lake, listen, async move { stop.requested().await }).await
            {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    let shutdown = async {
        stop_requested.received().await;
        tracing::info!("shutting down: flushing what is buffered");
    };
    let report = pipeline.run(mode, shutdown).await;
    // Ingest has drained; the other tasks finish the unit of work they are in.
    let abandoned = service.shutdown(config.service.shutdown_timeout).await;
    let result = match report {
        Ok(report) => {
            print_report(&report);
            match until_caught_up && !config.transforms.is_empty() {
                true => {
                    let context = run.context();
                    let transforms = super::transform::transform_in(&lake, config, &context);
                    coordinator.when_leading(&config.service, "run the transforms", transforms).await
                }
                false => Ok(()),
            }
        }
        Err(e) => Err(e.into()),
    };
    resign.resign().await;
    let result = result.and_then(|()| match abandoned.is_empty() {
        true => Ok(()),
        false => Err(CliError::Usage(format!(
            "stopped with {} still busy after service.shutdown_timeout ({:?}); their next runs redo or find what they did",
            abandoned.join(", "),
            config.service.shutdown_timeout
        ))),
    });
    run.finish(result.as_ref().err().map(|e| e.to_string()).as_deref()).await;
    result
}

fn print_report(report: &IngestReport) {
    for change in &report.table_changes {
        outln!("{change}");
    }
    outln!("consumed {} messages, committed {} snapshots", report.consumed, report.snapshots);
    // Per topic, what the tables lacked at start beside what this run wrote: a short read
    // shows at a glance (another member of the group may have written the rest).
    for (topic, expected) in &report.expected {
        let bronze = report.bronze_rows_by_topic.get(topic).copied().unwrap_or(0);
        let quarantined = report.quarantined_by_topic.get(topic).copied().unwrap_or(0);
        outln!("  {topic}: {expected} new at start; this run: {bronze} to bronze, {quarantined} quarantined");
    }
    for (table, rows) in &report.bronze_rows {
        outln!("  {table}: {rows} rows");
    }
    let quarantined: u64 = report.quarantined.values().sum();
    outln!("  quarantined: {quarantined}");
    for (reason, n) in &report.quarantined {
        outln!("    {reason}: {n}");
    }
    if report.dlq_failed > 0 {
        outln!("  not produced to the DLQ (kept in the quarantine table): {}", report.dlq_failed);
    }
    if report.skipped_rows > 0 {
        outln!("  skipped (already in the table): {}", report.skipped_rows);
    }
}

/// Ctrl-C or SIGTERM (what service managers and Kubernetes send), listened for from the
/// moment it is made: a signal that arrives before anyone waits is kept, not lost.
pub(super) struct ShutdownSignal {
    term: Option<Signal>,
    interrupt: Option<Signal>,
}

impl ShutdownSignal {
    pub(super) fn listen() -> Self {
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(stream) => Some(stream),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for {name}; it will not stop ingot gracefully");
                None
            }
        };
        Self {
            term: listen(SignalKind::terminate(), "SIGTERM"),
            interrupt: listen(SignalKind::interrupt(), "Ctrl-C"),
        }
    }

    /// Resolves at the first of the two signals (never, if neither could be listened for).
    pub(super) async fn received(mut self) {
        let wait = |stream: Option<Signal>| async move {
            match stream {
                Some(mut stream) => {
                    stream.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(self.term.take()) => {}
            _ = wait(self.interrupt.take()) => {}
        }
    }
}
