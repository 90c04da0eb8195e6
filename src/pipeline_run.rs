//! The parent run every ingot process reports its work under: job `<namespace>/pipeline`,
//! START when the process starts working, COMPLETE (or FAIL with the error) when it ends.
//! Transform runs hang under it through their `parent` facet.

use std::time::Duration;

use ingot_lineage::{Emitter, EventType, Job, LineageConfig, RunEvent, facets};
use ingot_transforms::{ParentRun, RunContext};
use serde_json::Map;

use crate::commands::CliError;

/// The parent job's name; children are `pipeline.silver_orders` and so on.
pub const PIPELINE_JOB: &str = "pipeline";

pub struct PipelineRun {
    emitter: Emitter,
    start: RunEvent,
}

impl PipelineRun {
    /// Starts the emitter and emits the pipeline's START. `streaming` for the service.
    pub fn start(config: &LineageConfig, streaming: bool) -> Result<Self, CliError> {
        let emitter = Emitter::start(config).map_err(|e| CliError::Usage(format!("lineage config: {e}")))?;
        let mut job =
            Job { namespace: emitter.namespace().to_string(), name: PIPELINE_JOB.into(), facets: Map::new() };
        let (processing, window) = if streaming { ("STREAMING", Some(60)) } else { ("BATCH", None) };
        let (key, value) = facets::job_type(processing, "JOB", window);
        job.facets.insert(key, value);
        let (key, value) = facets::documentation_job("ingot: Kafka → bronze → silver → gold");
        job.facets.insert(key, value);
        let start = RunEvent::new(EventType::Start, uuid::Uuid::now_v7(), job);
        emitter.emit(&start);
        Ok(Self { emitter, start })
    }

    /// What child runs need to point at this one.
    pub fn context(&self) -> RunContext {
        RunContext {
            emitter: self.emitter.clone(),
            parent: ParentRun { run_id: self.start.run.run_id, job_name: PIPELINE_JOB.into() },
            nominal: None,
        }
    }

    /// What bronze ingest runs need to point at this one.
    pub fn lineage_parent(&self) -> ingot_ingest::LineageParent {
        ingot_ingest::LineageParent {
            emitter: self.emitter.clone(),
            run_id: self.start.run.run_id,
            job_name: PIPELINE_JOB.into(),
        }
    }

    /// Emits COMPLETE or FAIL and waits (briefly) for delivery or spooling.
    pub async fn finish(self, error: Option<&str>) {
        let mut end = self.start.next(if error.is_some() { EventType::Fail } else { EventType::Complete });
        if let Some(message) = error {
            let (key, value) = facets::error_message(message);
            end.run.facets.insert(key, value);
        }
        self.emitter.emit(&end);
        self.emitter.flush(Duration::from_secs(10)).await;
    }
}
