//! Transform runs as each instance's lineage file records them, for tests of several
//! instances: which ran what, and when.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

/// One transform run as its lineage tells it: when it started and when it ended (`None`
/// while it has not, or never will because its process was killed).
#[derive(Debug, Clone)]
pub struct RunSpan {
    pub job: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

/// The transform runs (silver and gold jobs) a lineage file records, by start.
pub fn transform_runs(path: &Path) -> Vec<RunSpan> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut runs: BTreeMap<String, RunSpan> = BTreeMap::new();
    for event in text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        let job = event["job"]["name"].as_str().unwrap_or_default();
        if !(job.starts_with("pipeline.silver_") || job.starts_with("pipeline.gold_")) {
            continue;
        }
        let at: DateTime<Utc> = event["eventTime"].as_str().unwrap().parse().unwrap();
        let id = event["run"]["runId"].as_str().unwrap().to_string();
        let span = runs.entry(id).or_insert(RunSpan { job: job.to_string(), start: at, end: None });
        match event["eventType"].as_str().unwrap() {
            "START" => span.start = at,
            "COMPLETE" | "FAIL" | "ABORT" => span.end = Some(at),
            _ => {}
        }
    }
    let mut runs: Vec<RunSpan> = runs.into_values().collect();
    runs.sort_by_key(|r| r.start);
    runs
}

/// One instance's transform runs; a run without an end lasted until the process was killed
/// (`killed_at`), or is still going.
pub struct Instance {
    pub name: String,
    pub runs: Vec<RunSpan>,
    pub killed_at: Option<DateTime<Utc>>,
}

/// Fails if a run of one instance overlaps a run of another.
pub fn assert_never_two_at_once(instances: &[Instance]) {
    let far = Utc::now() + chrono::Duration::days(1);
    for (i, one) in instances.iter().enumerate() {
        let (name_a, runs_a, killed_a) = (&one.name, &one.runs, &one.killed_at);
        for other in &instances[i + 1..] {
            let (name_b, runs_b, killed_b) = (&other.name, &other.runs, &other.killed_at);
            for a in runs_a {
                for b in runs_b {
                    let end_a = a.end.or(*killed_a).unwrap_or(far);
                    let end_b = b.end.or(*killed_b).unwrap_or(far);
                    assert!(
                        end_a <= b.start || end_b <= a.start,
                        "{name_a}'s {} ({} – {end_a}) overlaps {name_b}'s {} ({} – {end_b})",
                        a.job,
                        a.start,
                        b.job,
                        b.start
                    );
                }
            }
        }
    }
}
