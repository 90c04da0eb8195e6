//! What the transforms report as they go: one type per notable thing, which logs its line and
//! updates its metrics together (see `ingot-ingest`'s events for the conventions).

use metrics::{counter, histogram};

use crate::TransformReport;

/// A transform run that did something, or failed.
pub(crate) enum TransformRan<'a> {
    Completed(&'a TransformReport),
    Failed { table: &'a str, error: &'a str, seconds: f64 },
}

impl TransformRan<'_> {
    pub fn emit(&self) {
        match self {
            TransformRan::Completed(report) => {
                tracing::info!(table = %report.table, "{report}");
                let table = report.table.clone();
                counter!("ingot_transform_runs_total", "table" => table.clone(), "outcome" => "completed")
                    .increment(1);
                counter!("ingot_transform_rows_read_total", "table" => table.clone())
                    .increment(report.input_rows);
                counter!("ingot_transform_rows_written_total", "table" => table.clone())
                    .increment(report.written_rows);
                let quarantined = report.late + report.rule_violations;
                counter!("ingot_transform_rows_quarantined_total", "table" => table.clone())
                    .increment(quarantined);
                histogram!("ingot_transform_duration_seconds", "table" => table).record(report.seconds);
            }
            TransformRan::Failed { table, error, seconds } => {
                tracing::warn!(table, error, "transform run failed");
                counter!("ingot_transform_runs_total", "table" => table.to_string(), "outcome" => "failed")
                    .increment(1);
                histogram!("ingot_transform_duration_seconds", "table" => table.to_string()).record(*seconds);
            }
        }
    }
}
