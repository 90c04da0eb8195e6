//! A silver run: the bronze rows that arrived since the last run, through the table's SQL,
//! then late rows and rule violations to the quarantine, duplicates dropped, the rest
//! appended with the bronze snapshot it read up to.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use iceberg::spec::Operation;
use ingot_lake::{
    Lake, OnConflict, SnapshotChange, Table, TableIdent, TableSpec, TableState, failpoint, find_commit,
    table_arrow_schema, write_data_files,
};

use crate::dedup::{Held, KeySet, dedup};
use crate::lake_session::{collect, memory_table, replace_table};
use crate::progress::{Pending, QUARANTINED_FOR_PROPERTY, QuarantinedFor, run_id};
use crate::rows::{conform, event_micros, filter, iceberg_ready, text_column};
use crate::{TransformConfig, TransformError, TransformReport};

/// The column a silver SQL sets to a broken rule's name.
pub const RULE_COLUMN: &str = "_rule_violation";

/// Why a row went to the quarantine instead of silver.
enum Rejection {
    /// Behind the watermark: its windows are final.
    Late,
    /// Broke the named rule of the SQL.
    Rule(String),
}

impl Rejection {
    fn reason(&self) -> &'static str {
        match self {
            Rejection::Late => "late",
            Rejection::Rule(_) => "silver_rule",
        }
    }
    fn rule(&self) -> Option<String> {
        match self {
            Rejection::Late => None,
            Rejection::Rule(name) => Some(name.clone()),
        }
    }
    fn error(&self, table: &str) -> String {
        match self {
            Rejection::Late => format!("{table}: event time behind the watermark; its windows are final"),
            Rejection::Rule(rule) => format!("{table}: breaks rule `{rule}`"),
        }
    }
}

/// Rejected rows of one output batch, with the reason for each.
pub(crate) struct Rejected {
    rows: RecordBatch,
    why: Vec<Rejection>,
}

pub(crate) async fn run_silver(
    lake: &Lake,
    ctx: &datafusion::prelude::SessionContext,
    config: &TransformConfig,
    sql: &str,
    quarantine: &TableIdent,
    pending: Pending,
) -> Result<TransformReport, TransformError> {
    let mut report = TransformReport::new(&config.table);
    let base = pending.base();
    let Pending { ident, input, target, state, from, to, changes, .. } = pending;
    report.input_rows = changes.added_rows();

    // Not keyed by silver's snapshot: which rows a range rejects depends on the range and
    // the watermark it starts from only, and a compaction of silver between a crashed run
    // and its re-run must not make the same rejects a new commit.
    let quarantine_id = run_id(&config.table, "quarantine", &from, &to, None);
    // Opened at the first reject (a run without any needs no quarantine table); `Some(None)`:
    // this run's rejects are committed already.
    let mut rejects: Option<Option<QuarantineWriter>> = None;
    let input_schema: SchemaRef = Arc::new(table_arrow_schema(&input)?);
    let mut keys = KeySet::new(Held::Table(target.as_ref()));
    let mut output: Option<(Table, SchemaRef)> = None;
    let mut files = Vec::new();
    let mut watermark = state.watermark_us;
    // Part by part: each part's rows are decided, and its files written, before the next is
    // read; one commit at the end.
    let mut parts = changes.added_parts(config.chunk_rows);
    while let Some(rows) = parts.next().await? {
        let step =
            silver_step(ctx, config, sql, input_schema.clone(), rows, state.watermark_us, &mut keys).await?;
        report.parts += 1;
        report.late += step.late;
        report.rule_violations += step.rule_violations;
        report.duplicates += step.duplicates;
        watermark = watermark.max(step.watermark);
        if !step.rejected.is_empty() {
            if rejects.is_none() {
                rejects = Some(QuarantineWriter::open(lake, quarantine, &quarantine_id).await?);
            }
            if let Some(Some(writer)) = &mut rejects {
                writer.write(step.rejected, &config.table).await?;
            }
        }
        let Some(schema) = step.schema else { continue };
        if output.is_none() {
            let spec = TableSpec {
                ident: ident.clone(),
                schema: schema.as_ref().clone(),
                partition_day: Some(config.event_time.clone()),
            };
            let (table, _) = lake.ensure_table(&spec).await?;
            let table_schema: SchemaRef = Arc::new(table_arrow_schema(&table)?);
            output = Some((table, table_schema));
        }
        let (table, table_schema) = output.as_ref().expect("set above");
        let rows: Vec<RecordBatch> =
            step.accepted.iter().map(|b| conform(b, table_schema, &|_, _| None)).collect::<Result<_, _>>()?;
        let written = write_data_files(table, &rows).await?;
        report.written_rows += written.rows;
        files.extend(written.files);
    }
    if let Some(Some(rejects)) = rejects {
        let run = QuarantinedFor { table: config.table.clone(), from: from.clone(), to: to.clone() };
        rejects.commit(lake, &run).await?;
    }
    failpoint("after-silver-quarantine-commit");

    let Some((table, _)) = output else {
        return Err(TransformError::Sql(format!("transform {}: the SQL returned no schema", config.table)));
    };
    let next = TableState { sources: to.clone(), watermark_us: watermark, ..Default::default() };
    let mut change =
        SnapshotChange::new(Operation::Append, run_id(&config.table, "silver", &from, &to, base));
    change.add = files;
    change.properties.extend(next.progress_properties());
    change.on_conflict = OnConflict::Fail;
    report.snapshot_id = Some(lake.commit_change(&table, &change).await?.snapshot_id);
    failpoint("after-silver-commit");
    Ok(report)
}

/// One silver run's decisions over new input rows, without writing anything.
pub(crate) struct SilverStep {
    pub accepted: Vec<RecordBatch>,
    /// The SQL's output schema without the rule column (`None` if it gave no batch).
    pub schema: Option<SchemaRef>,
    pub rejected: Vec<Rejected>,
    pub late: u64,
    pub rule_violations: u64,
    pub duplicates: u64,
    /// The watermark after this run.
    pub watermark: Option<i64>,
}

/// Runs the silver SQL over `new_rows` (registered as the input table in `ctx`) and decides
/// each row: late (behind `watermark`), broken rule, duplicate, or accepted.
pub(crate) async fn silver_step(
    ctx: &datafusion::prelude::SessionContext,
    config: &TransformConfig,
    sql: &str,
    input_schema: SchemaRef,
    new_rows: Vec<RecordBatch>,
    watermark: Option<i64>,
    keys: &mut KeySet<'_>,
) -> Result<SilverStep, TransformError> {
    let key = config.key.as_deref().ok_or_else(|| {
        TransformError::Sql(format!(
            "transform {}: a silver table needs `key` (the idempotency key)",
            config.table
        ))
    })?;
    replace_table(ctx, &config.input, memory_table(input_schema, new_rows)?)?;
    let (_, output) = collect(ctx, sql).await?;
    let output = iceberg_ready(output)?;
    let mut step = SilverStep {
        accepted: Vec::new(),
        schema: None,
        rejected: Vec::new(),
        late: 0,
        rule_violations: 0,
        duplicates: 0,
        watermark,
    };
    let mut candidates = Vec::new();
    let mut max_event = watermark.unwrap_or(i64::MIN);
    for batch in &output {
        let times = event_micros(batch, &config.event_time)?;
        let rules = rule_names(batch)?;
        let mut keep = vec![false; batch.num_rows()];
        let mut reject = vec![false; batch.num_rows()];
        let mut why = Vec::new();
        for i in 0..batch.num_rows() {
            let late = matches!((times[i], watermark), (Some(t), Some(w)) if t < w);
            if late {
                reject[i] = true;
                why.push(Rejection::Late);
            } else if let Some(rule) = &rules[i] {
                reject[i] = true;
                why.push(Rejection::Rule(rule.clone()));
            } else {
                keep[i] = true;
                if let Some(t) = times[i] {
                    max_event = max_event.max(t);
                }
            }
        }
        step.late += why.iter().filter(|r| matches!(r, Rejection::Late)).count() as u64;
        step.rule_violations += why.iter().filter(|r| matches!(r, Rejection::Rule(_))).count() as u64;
        if !why.is_empty() {
            step.rejected.push(Rejected { rows: filter(batch, &reject)?, why });
        }
        candidates.push(drop_column(&filter(batch, &keep)?, RULE_COLUMN));
    }
    step.schema = candidates.first().map(|b| b.schema());
    if let Some(since) = horizon_start(config, &candidates)? {
        keys.cover(ctx, config, key, since).await?;
    }
    let (accepted, duplicates) = dedup(&candidates, key, keys)?;
    (step.accepted, step.duplicates) = (accepted, duplicates);
    let lateness = config.lateness.as_micros() as i64;
    let moved = (max_event != i64::MIN).then(|| max_event.saturating_sub(lateness));
    step.watermark = moved.max(watermark);
    Ok(step)
}

/// The oldest event time among `candidates`, minus the dedup horizon: keys of rows from then
/// on count as held.
fn horizon_start(
    config: &TransformConfig,
    candidates: &[RecordBatch],
) -> Result<Option<i64>, TransformError> {
    let mut oldest: Option<i64> = None;
    for batch in candidates {
        for t in event_micros(batch, &config.event_time)?.into_iter().flatten() {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
    }
    Ok(oldest.map(|o| o - config.dedup_horizon.as_micros() as i64))
}

/// The rule each row breaks, if the SQL has a rule column.
fn rule_names(batch: &RecordBatch) -> Result<Vec<Option<String>>, TransformError> {
    let Some(column) = batch.column_by_name(RULE_COLUMN) else {
        return Ok(vec![None; batch.num_rows()]);
    };
    let strings = text_column(column, &format!("`{RULE_COLUMN}` must be text"))?;
    Ok((0..strings.len()).map(|i| strings.is_valid(i).then(|| strings.value(i).to_string())).collect())
}

fn drop_column(batch: &RecordBatch, name: &str) -> RecordBatch {
    match batch.schema().index_of(name) {
        Ok(i) => {
            let mut batch = batch.clone();
            batch.remove_column(i);
            batch
        }
        Err(_) => batch.clone(),
    }
}

/// Rejected rows on their way to the quarantine: written part by part, committed once (with
/// the run's id, so a re-run after a crash finds the commit and writes nothing again).
struct QuarantineWriter {
    target: Table,
    schema: SchemaRef,
    run_id: String,
    files: Vec<iceberg::spec::DataFile>,
}

impl QuarantineWriter {
    /// `None` when this run's rejects are committed already.
    async fn open(
        lake: &Lake,
        quarantine: &TableIdent,
        run_id: &str,
    ) -> Result<Option<Self>, TransformError> {
        if !lake.exists(quarantine).await? {
            return Err(TransformError::Sql(format!(
                "quarantine table {quarantine} does not exist yet; `ingot run` creates it"
            )));
        }
        let target = lake.load(quarantine).await?;
        if find_commit(&target, run_id).is_some() {
            return Ok(None);
        }
        let schema: SchemaRef = Arc::new(table_arrow_schema(&target)?);
        Ok(Some(Self { target, schema, run_id: run_id.to_string(), files: Vec::new() }))
    }

    /// Writes the files of `rejected` (rows of `table`'s run), keeping their Kafka columns so
    /// each points at its bronze row.
    async fn write(&mut self, rejected: Vec<Rejected>, table: &str) -> Result<(), TransformError> {
        let now = chrono::Utc::now().timestamp_micros();
        let mut batches = Vec::new();
        for Rejected { rows: batch, why } in rejected {
            let text = |values: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(values)) };
            let fill = |field: &arrow_schema::Field, rows: usize| -> Option<ArrayRef> {
                match field.name().as_str() {
                    "reason" => Some(text(why.iter().map(|r| Some(r.reason().to_string())).collect())),
                    "rule" => Some(text(why.iter().map(Rejection::rule).collect())),
                    "error" => Some(text(why.iter().map(|r| Some(r.error(table))).collect())),
                    "message_type" => Some(text(vec![Some(table.to_string()); rows])),
                    "_ingested_at" => match field.data_type() {
                        DataType::Timestamp(TimeUnit::Microsecond, tz) => Some(Arc::new(
                            TimestampMicrosecondArray::from(vec![now; rows]).with_timezone_opt(tz.clone()),
                        )),
                        _ => None,
                    },
                    _ => None,
                }
            };
            batches.push(conform(&batch, &self.schema, &fill)?);
        }
        self.files.extend(write_data_files(&self.target, &batches).await?.files);
        Ok(())
    }

    /// Commits what was written (nothing written: no snapshot), recording the run.
    async fn commit(self, lake: &Lake, run: &QuarantinedFor) -> Result<(), TransformError> {
        if self.files.is_empty() {
            return Ok(());
        }
        let mut change = SnapshotChange::new(Operation::Append, &self.run_id);
        change.add = self.files;
        change
            .properties
            .insert(QUARANTINED_FOR_PROPERTY.into(), serde_json::to_string(run).expect("serializes"));
        lake.commit_change(&self.target, &change).await?;
        Ok(())
    }
}
