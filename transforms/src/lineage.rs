//! OpenLineage events of transform runs: START when a run has input to read, then exactly
//! one COMPLETE (with the snapshots read and written and row counts) or FAIL — one
//! [`LineageRun`] each.

pub use ingot_lineage::ParentRun;
use ingot_lineage::{Dataset, JobKind, LineageRun, facets, insert};
use serde_json::Value;

use crate::column_lineage::PlanLineage;
use crate::config::Kind;
use crate::run::RunContext;
use crate::{TransformConfig, TransformReport};

/// The job name of a transform: `<parent>.silver_orders`, as Marquez stores child jobs.
pub fn job_name(parent: &str, config: &TransformConfig) -> String {
    let kind = match config.kind {
        Kind::Silver => "silver",
        Kind::Gold => "gold",
    };
    let table = config.table.rsplit('.').next().unwrap_or(&config.table);
    format!("{parent}.{kind}_{table}")
}

/// One transform run's events.
pub struct RunLineage {
    run: LineageRun,
    kind: Kind,
    /// The SQL's column lineage, when its plan could be built.
    plan: Option<PlanLineage>,
    input_table: String,
}

impl RunLineage {
    /// Emits START for a run reading `input` up to `input_snapshot` into `output`.
    pub fn start(
        context: &RunContext,
        job_name: String,
        config: &TransformConfig,
        sql: &str,
        input: Dataset,
        output: Dataset,
        plan: Option<PlanLineage>,
    ) -> Self {
        let emitter = &context.emitter;
        let description = format!("{} from {} ({})", config.table, config.input, config.sql.display());
        let kind =
            JobKind { processing: "BATCH", job_type: "QUERY", window_secs: None, description: &description };
        let run = LineageRun::start(emitter, job_name, &kind, Some(&context.parent), |event| {
            insert(&mut event.job.facets, facets::sql(sql.trim()));
            if let Some(url) = emitter.source_url() {
                insert(
                    &mut event.job.facets,
                    facets::source_code_location(url, &config.sql.display().to_string()),
                );
            }
            insert(
                &mut event.run.facets,
                facets::processing_engine("DataFusion", datafusion::DATAFUSION_VERSION),
            );
            if let Some(start) = &context.nominal {
                insert(&mut event.run.facets, facets::nominal_time(start, None));
            }
            let mut output = output;
            if !output.facets.contains_key("schema")
                && let Some(plan) = &plan
            {
                // The table does not exist yet: its columns are what the SQL will write.
                let columns: Vec<(String, String)> = plan
                    .output_types
                    .iter()
                    .filter(|(name, _)| name != crate::RULE_COLUMN)
                    .cloned()
                    .collect();
                insert(&mut output.facets, facets::schema(&columns));
            }
            event.inputs = vec![input];
            event.outputs = vec![output];
        });
        RunLineage { run, kind: config.kind, plan, input_table: config.input.clone() }
    }

    /// Emits COMPLETE with what the run read and wrote.
    pub fn complete(self, report: &TransformReport, output: Dataset) {
        let Self { run, kind, plan, input_table } = self;
        run.complete(|event| {
            if let Some(input) = event.inputs.first_mut() {
                insert(&mut input.input_facets, facets::input_statistics(report.input_rows, None, None));
                if kind == Kind::Silver {
                    let assertions = [
                        facets::Assertion {
                            name: "not_late".into(),
                            column: None,
                            success: report.late == 0,
                            failed_rows: report.late,
                        },
                        facets::Assertion {
                            name: "silver_rules".into(),
                            column: None,
                            success: report.rule_violations == 0,
                            failed_rows: report.rule_violations,
                        },
                    ];
                    insert(&mut input.input_facets, facets::data_quality_assertions(&assertions));
                }
            }
            let mut output = output;
            insert(&mut output.output_facets, facets::output_statistics(report.written_rows, None, None));
            if let (Some(plan), Some(input)) = (&plan, event.inputs.first()) {
                let facet = column_lineage(plan, &input_table, input, &output);
                insert(&mut output.facets, facet);
            }
            event.outputs = vec![output];
        });
    }

    /// Emits FAIL with the error.
    pub fn fail(self, error: &str) {
        self.run.fail(error, |_| {});
    }
}

/// The plan's lineage in terms of the event's datasets: sources in the input table named
/// exactly as the input dataset, output columns only those the table has.
fn column_lineage(
    plan: &PlanLineage,
    input_table: &str,
    input: &Dataset,
    output: &Dataset,
) -> (String, Value) {
    let written: Vec<&str> = output.facets["schema"]["fields"]
        .as_array()
        .map(|fields| fields.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    let from_input = |table: &str| table == input_table;
    let source = |field: &str, kind: &'static str, subtype: &'static str| facets::ColumnSource {
        namespace: input.namespace.clone(),
        name: input.name.clone(),
        field: field.to_string(),
        kind,
        subtype,
    };
    let fields: Vec<(String, Vec<facets::ColumnSource>)> = plan
        .columns
        .iter()
        .filter(|(name, _)| written.is_empty() || written.contains(&name.as_str()))
        .map(|(name, sources)| {
            let sources = sources
                .iter()
                .filter(|((table, _), _)| from_input(table))
                .map(|((_, field), direct)| source(field, "DIRECT", direct.subtype()))
                .collect();
            (name.clone(), sources)
        })
        .collect();
    let dataset: Vec<facets::ColumnSource> = plan
        .indirect
        .iter()
        .filter(|((table, _), _)| from_input(table))
        .map(|((_, field), subtype)| source(field, "INDIRECT", subtype))
        .collect();
    facets::column_lineage(&fields, &dataset)
}
