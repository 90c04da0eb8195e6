//! One OpenLineage run, start to end: every ingot job (the pipeline, bronze ingest per topic,
//! each transform, maintenance, backfills and replays) reports through this one lifecycle —
//! START, any number of RUNNING, then exactly one terminal event. A run dropped without an
//! end (an early return, a task abandoned at shutdown) emits ABORT, so Marquez never shows a
//! run as running forever.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Emitter, EventType, Job, RunEvent, facets};

/// The run a child run points at through its `parent` facet.
#[derive(Debug, Clone)]
pub struct ParentRun {
    pub run_id: Uuid,
    pub job_name: String,
}

/// What a job is, for its `jobType` and `documentation` facets.
#[derive(Debug, Clone)]
pub struct JobKind<'a> {
    /// `BATCH` or `STREAMING`.
    pub processing: &'a str,
    /// `JOB`, `QUERY`, `MAINTENANCE`, …
    pub job_type: &'a str,
    /// The window a streaming job reports over.
    pub window_secs: Option<u64>,
    pub description: &'a str,
}

/// A run in progress. Cheap to keep for the length of the work it describes.
#[derive(Debug)]
pub struct LineageRun {
    emitter: Emitter,
    /// The last event emitted: the next one repeats its run, job and datasets.
    last: RunEvent,
    ended: bool,
}

impl LineageRun {
    /// Emits START of a new run of job `name`, a child of `parent` when given; `describe`
    /// adds what the caller knows (inputs, outputs, facets) before it goes out.
    pub fn start(
        emitter: &Emitter,
        name: impl Into<String>,
        kind: &JobKind<'_>,
        parent: Option<&ParentRun>,
        describe: impl FnOnce(&mut RunEvent),
    ) -> Self {
        let mut job =
            Job { namespace: emitter.namespace().to_string(), name: name.into(), facets: Map::new() };
        insert(&mut job.facets, facets::job_type(kind.processing, kind.job_type, kind.window_secs));
        insert(&mut job.facets, facets::documentation_job(kind.description));
        let mut event = RunEvent::new(EventType::Start, Uuid::now_v7(), job);
        if let Some(parent) = parent {
            insert(
                &mut event.run.facets,
                facets::parent(parent.run_id, emitter.namespace(), &parent.job_name),
            );
        }
        describe(&mut event);
        emitter.emit(&event);
        Self { emitter: emitter.clone(), last: event, ended: false }
    }

    /// This run, as its children's parent.
    pub fn as_parent(&self) -> ParentRun {
        ParentRun { run_id: self.last.run.run_id, job_name: self.last.job.name.clone() }
    }

    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// The event the next one starts from (its datasets, for callers that update them).
    pub fn last(&self) -> &RunEvent {
        &self.last
    }

    /// Emits RUNNING with what `update` changes (cumulative statistics, versions reached).
    pub fn running(&mut self, update: impl FnOnce(&mut RunEvent)) {
        let mut event = self.last.next(EventType::Running);
        update(&mut event);
        self.emitter.emit(&event);
        self.last = event;
    }

    /// Emits COMPLETE.
    pub fn complete(self, update: impl FnOnce(&mut RunEvent)) {
        self.end(EventType::Complete, None, update);
    }

    /// Emits FAIL with the error.
    pub fn fail(self, error: &str, update: impl FnOnce(&mut RunEvent)) {
        self.end(EventType::Fail, Some(error), update);
    }

    /// COMPLETE, or FAIL with `error`.
    pub fn finish(self, error: Option<&str>, update: impl FnOnce(&mut RunEvent)) {
        match error {
            None => self.complete(update),
            Some(error) => self.fail(error, update),
        }
    }

    /// Emits ABORT with the reason: the run stopped without finishing its work.
    pub fn abort(self, reason: &str) {
        self.end(EventType::Abort, Some(reason), |_| {});
    }

    fn end(mut self, event_type: EventType, message: Option<&str>, update: impl FnOnce(&mut RunEvent)) {
        let mut event = self.last.next(event_type);
        if let Some(message) = message {
            insert(&mut event.run.facets, facets::error_message(message));
        }
        update(&mut event);
        self.emitter.emit(&event);
        self.ended = true;
    }
}

impl Drop for LineageRun {
    fn drop(&mut self) {
        if !self.ended {
            let mut event = self.last.next(EventType::Abort);
            insert(&mut event.run.facets, facets::error_message("the run stopped before it ended"));
            self.emitter.emit(&event);
        }
    }
}

/// Adds one `(key, facet)` pair from [`facets`] to a facet map.
pub fn insert(map: &mut Map<String, Value>, (key, value): (String, Value)) {
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LineageConfig, TransportKind};

    fn file_emitter(dir: &std::path::Path) -> (Emitter, std::path::PathBuf) {
        let path = dir.join("events.jsonl");
        let config = LineageConfig {
            transport: TransportKind::File,
            path: Some(path.clone()),
            spool_dir: dir.join("spool"),
            ..Default::default()
        };
        (Emitter::start(&config).unwrap(), path)
    }

    fn types(path: &std::path::Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let event: Value = serde_json::from_str(line).unwrap();
                (event["job"]["name"].as_str().unwrap().into(), event["eventType"].as_str().unwrap().into())
            })
            .collect()
    }

    #[tokio::test]
    async fn a_run_dropped_without_an_end_is_aborted_and_a_child_names_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let (emitter, path) = file_emitter(dir.path());
        let kind = JobKind { processing: "BATCH", job_type: "JOB", window_secs: None, description: "test" };
        let parent = LineageRun::start(&emitter, "pipeline", &kind, None, |_| {});
        let mut child =
            LineageRun::start(&emitter, "pipeline.child", &kind, Some(&parent.as_parent()), |_| {});
        child.running(|_| {});
        drop(child);
        parent.complete(|_| {});
        emitter.flush(std::time::Duration::from_secs(5)).await;
        let got = types(&path);
        let expected = [
            ("pipeline", "START"),
            ("pipeline.child", "START"),
            ("pipeline.child", "RUNNING"),
            ("pipeline.child", "ABORT"),
            ("pipeline", "COMPLETE"),
        ];
        assert_eq!(got, expected.map(|(j, t)| (j.to_string(), t.to_string())));
        let events: Vec<Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events[1]["run"]["facets"]["parent"]["run"]["runId"], events[0]["run"]["runId"]);
        assert_eq!(events[1]["run"]["runId"], events[3]["run"]["runId"]);
    }
}
