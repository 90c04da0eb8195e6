//! The parent run every ingot process reports its work under: job `<namespace>/pipeline`,
//! START when the process starts working, COMPLETE (or FAIL with the error) when it ends.
//! Transform, ingest, maintenance, backfill and replay runs hang under it through their
//! `parent` facet.

use std::time::Duration;

use ingot_lineage::{Emitter, JobKind, LineageConfig, LineageRun};
use ingot_transforms::RunContext;

use crate::commands::CliError;

/// The parent job's name; children are `pipeline.silver_orders` and so on.
pub const PIPELINE_JOB: &str = "pipeline";

pub struct PipelineRun {
    run: LineageRun,
}

impl PipelineRun {
    /// Starts the emitter and emits the pipeline's START. `streaming` for the service.
    pub fn start(config: &LineageConfig, streaming: bool) -> Result<Self, CliError> {
        let emitter = Emitter::start(config).map_err(|e| CliError::Usage(format!("lineage config: {e}")))?;
        let (processing, window_secs) = if streaming { ("STREAMING", Some(60)) } else { ("BATCH", None) };
        let kind = JobKind {
            processing,
            job_type: "JOB",
            window_secs,
            description: "ingot: Kafka → bronze → silver → gold",
        };
        Ok(Self { run: LineageRun::start(&emitter, PIPELINE_JOB, &kind, None, |_| {}) })
    }

    /// What child runs need to point at this one.
    pub fn context(&self) -> RunContext {
        RunContext { emitter: self.run.emitter().clone(), parent: self.run.as_parent(), nominal: None }
    }

    /// What bronze ingest runs need to point at this one.
    pub fn lineage_parent(&self) -> ingot_ingest::LineageParent {
        ingot_ingest::LineageParent { emitter: self.run.emitter().clone(), parent: self.run.as_parent() }
    }

    /// Emits COMPLETE or FAIL and waits (briefly) for delivery or spooling.
    pub async fn finish(self, error: Option<&str>) {
        let emitter = self.run.emitter().clone();
        self.run.finish(error, |_| {});
        emitter.flush(Duration::from_secs(10)).await;
    }
}
