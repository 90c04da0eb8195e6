//! Running the configured transforms: every silver table, then every gold table.

use std::time::Instant;

use ingot_lake::{Lake, TableIdent};

use ingot_lineage::Emitter;

use crate::column_lineage::{PlanLineage, plan_lineage};
use crate::config::Kind;
use crate::events::TransformRan;
use crate::gold::run_gold;
use crate::lake_session::{bounded_context, lake_session, lake_session_in, name_unreadable_files};
use crate::lineage::{ParentRun, RunLineage, job_name};
use crate::progress::Pending;
use crate::silver::run_silver;
use crate::{TransformConfig, TransformError};

/// What one transform run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformReport {
    pub table: String,
    /// New input rows read.
    pub input_rows: u64,
    pub written_rows: u64,
    /// Silver: rows dropped because their key was already held or came earlier in the batch.
    pub duplicates: u64,
    /// Silver: rows behind the watermark, quarantined as `late`.
    pub late: u64,
    /// Silver: rows breaking a rule of the SQL, quarantined with the rule's name.
    pub rule_violations: u64,
    /// Gold: days whose windows were recomputed.
    pub windows_days: u64,
    /// Silver: the parts (of `chunk_rows`) the input was read in.
    pub parts: u64,
    /// The snapshot committed, if anything was.
    pub snapshot_id: Option<i64>,
    pub seconds: f64,
}

impl TransformReport {
    pub(crate) fn new(table: &str) -> Self {
        Self { table: table.to_string(), ..Default::default() }
    }
}

impl std::fmt::Display for TransformReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.snapshot_id {
            None => write!(f, "{}: up to date", self.table),
            Some(snapshot) => write!(
                f,
                "{}: read {} new rows, wrote {} (duplicates {}, late {}, rule violations {}, days recomputed {}) in {:.2}s{} → snapshot {snapshot}",
                self.table,
                self.input_rows,
                self.written_rows,
                self.duplicates,
                self.late,
                self.rule_violations,
                self.windows_days,
                self.seconds,
                if self.parts > 1 { format!(", {} parts", self.parts) } else { String::new() }
            ),
        }
    }
}

/// Where transform runs report: the lineage emitter and the run they belong to.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub emitter: Emitter,
    pub parent: ParentRun,
    /// The scheduled time of the runs (their `nominalTime`), when a schedule started them.
    pub nominal: Option<String>,
}

impl RunContext {
    /// No lineage (benchmarks, tests of the transforms alone).
    pub fn silent() -> Self {
        Self {
            emitter: Emitter::disabled(),
            parent: ParentRun { run_id: uuid::Uuid::now_v7(), job_name: "pipeline".into() },
            nominal: None,
        }
    }
}

/// Runs the transforms (only `only` if given): silver tables first, then gold, each once.
/// A transform with new input emits START and then
/// COMPLETE or FAIL; one with nothing to read emits nothing.
pub async fn run_transforms(
    lake: &Lake,
    transforms: &[TransformConfig],
    quarantine: &TableIdent,
    only: Option<&str>,
    context: &RunContext,
) -> Result<Vec<TransformReport>, TransformError> {
    if let Some(name) = only
        && !transforms.iter().any(|t| t.table == name)
    {
        return Err(TransformError::Sql(format!("no [[transforms]] entry writes {name}")));
    }
    let mut reports = Vec::new();
    for kind in [Kind::Silver, Kind::Gold] {
        for config in transforms.iter().filter(|t| t.kind == kind && only.is_none_or(|o| o == t.table)) {
            // A run that finished what a crashed one started stops where that one did: run
            // again for what came after.
            loop {
                let (report, finished_crashed_run) = run_one(lake, config, kind, quarantine, context).await?;
                reports.push(report);
                if !finished_crashed_run {
                    break;
                }
            }
        }
    }
    Ok(reports)
}

/// One run of one transform: (its report, whether it finished a crashed run's range only).
async fn run_one(
    lake: &Lake,
    config: &TransformConfig,
    kind: Kind,
    quarantine: &TableIdent,
    context: &RunContext,
) -> Result<(TransformReport, bool), TransformError> {
    let sql = config.read_sql()?;
    let started = Instant::now();
    let Some(pending) = Pending::find(lake, config, quarantine).await? else {
        return Ok((TransformReport::new(&config.table), false));
    };
    let narrowed = pending.narrowed;
    let input =
        lake.lineage_dataset(&pending.input.identifier().clone(), Some(&pending.input), Some(pending.up_to));
    let output = lake.lineage_dataset(&pending.ident, pending.target.as_ref(), pending.base());
    // One session per run, pinned when it starts: the plan for lineage and the run
    // itself see the same tables.
    let ctx = lake_session_in(lake, bounded_context(config.max_memory, true)?).await?;
    let plan = match context.emitter.enabled() {
        true => plan_lineage_in(&ctx, &sql).await,
        false => None,
    };
    let job = job_name(&context.parent.job_name, config);
    let run = RunLineage::start(context, job, config, &sql, input, output, plan);
    let ident = pending.ident.clone();
    // What the run reads through DataFusion: its input at the snapshot read up to, and its
    // target (silver's held keys).
    let read = (pending.input.clone(), pending.up_to, pending.target.clone());
    let result = match kind {
        Kind::Silver => run_silver(lake, &ctx, config, &sql, quarantine, pending).await,
        Kind::Gold => run_gold(lake, &ctx, config, &sql, pending).await,
    };
    let budget_key = format!("max_memory of the [[transforms]] entry for {}", config.table);
    let result = match result {
        Err(TransformError::DataFusion(e)) => {
            match TransformError::from_run(e, config.max_memory, &budget_key) {
                e @ TransformError::DataFusion(_) => {
                    let mut tables = vec![(&read.0, Some(read.1))];
                    tables.extend(read.2.as_ref().map(|t| (t, None)));
                    Err(name_unreadable_files(&tables, e).await)
                }
                other => Err(other),
            }
        }
        other => other,
    }
    .map_err(|e| e.context(&config.table));
    let mut report = match result {
        Ok(report) => report,
        Err(e) => {
            let (error, seconds) = (e.to_string(), started.elapsed().as_secs_f64());
            TransformRan::Failed { table: &config.table, error: &error, seconds }.emit();
            run.fail(&error);
            return Err(e);
        }
    };
    report.seconds = started.elapsed().as_secs_f64();
    let written = lake.load(&ident).await?;
    run.complete(&report, lake.lineage_dataset(&ident, Some(&written), report.snapshot_id));
    TransformRan::Completed(&report).emit();
    Ok((report, narrowed))
}

/// The SQL's column lineage, from its plan over the current tables; `None` (and a log line)
/// when the plan cannot be built — lineage never fails a run.
pub async fn column_lineage_of(lake: &Lake, sql: &str) -> Option<PlanLineage> {
    match lake_session(lake).await {
        Ok(ctx) => plan_lineage_in(&ctx, sql).await,
        Err(e) => {
            tracing::debug!(error = %e, "no column lineage for this run");
            None
        }
    }
}

/// [`column_lineage_of`] in an existing session.
async fn plan_lineage_in(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Option<PlanLineage> {
    match ctx.sql(sql).await {
        Ok(frame) => Some(plan_lineage(frame.logical_plan())),
        Err(e) => {
            tracing::debug!(error = %e, "no column lineage for this run");
            None
        }
    }
}
