//! A silver run: the bronze rows that arrived since the last run, through the table's SQL,
//! then late rows and rule violations to the quarantine, duplicates dropped, the rest
//! appended with the bronze snapshot it read up to.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use datafusion::prelude::col;
use iceberg::spec::Operation;
use ingot_lake::{
    Lake, OnConflict, SnapshotChange, Table, TableIdent, TableSpec, TableState, failpoint, find_commit,
    table_arrow_schema, write_data_files,
};

use crate::lake_session::{collect, memory_table, pinned, replace_table};
use crate::progress::{Pending, QUARANTINED_FOR_PROPERTY, QuarantinedFor, run_id};
use crate::rows::{conform, event_micros, filter, iceberg_ready, text_column, timestamp_literal};
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
    let new_rows = changes.added;
    report.input_rows = new_rows.iter().map(|b| b.num_rows() as u64).sum();

    let input_schema: SchemaRef = Arc::new(table_arrow_schema(&input)?);
    let step = silver_step(
        ctx,
        config,
        sql,
        input_schema,
        new_rows,
        state.watermark_us,
        Held::Table(target.as_ref()),
    )
    .await?;
    let SilverStep { accepted, schema, rejected, watermark, .. } = step;
    (report.late, report.rule_violations, report.duplicates) =
        (step.late, step.rule_violations, step.duplicates);

    if !rejected.is_empty() {
        // Not keyed by silver's snapshot: which rows a range rejects depends on the range and
        // the watermark it starts from only, and a compaction of silver between a crashed run
        // and its re-run must not make the same rejects a new commit.
        let id = run_id(&config.table, "quarantine", &from, &to, None);
        let run = QuarantinedFor { table: config.table.clone(), from: from.clone(), to: to.clone() };
        write_quarantine(lake, quarantine, rejected, &id, &run).await?;
    }
    failpoint("after-silver-quarantine-commit");

    let Some(schema) = schema else {
        return Err(TransformError::Sql(format!("transform {}: the SQL returned no schema", config.table)));
    };
    let spec = TableSpec {
        ident: ident.clone(),
        schema: schema.as_ref().clone(),
        partition_day: Some(config.event_time.clone()),
    };
    let (table, _) = lake.ensure_table(&spec).await?;
    let table_schema: SchemaRef = Arc::new(table_arrow_schema(&table)?);
    let rows: Vec<RecordBatch> =
        accepted.iter().map(|b| conform(b, &table_schema, &|_, _| None)).collect::<Result<_, _>>()?;
    let files = write_data_files(&table, &rows).await?;
    report.written_rows = files.rows;
    let next = TableState { sources: to.clone(), watermark_us: watermark, ..Default::default() };
    let mut change =
        SnapshotChange::new(Operation::Append, run_id(&config.table, "silver", &from, &to, base));
    change.add = files.files;
    change.properties.extend(next.progress_properties());
    change.on_conflict = OnConflict::Fail;
    report.snapshot_id = Some(lake.commit_change(&table, &change).await?.snapshot_id);
    failpoint("after-silver-commit");
    Ok(report)
}

/// Where the keys silver already holds come from.
pub(crate) enum Held<'a> {
    /// The silver table (none before its first run).
    Table(Option<&'a Table>),
    /// Rows held in memory (a replay's silver).
    Rows(&'a [RecordBatch]),
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
    held: Held<'_>,
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
    let held = match held {
        Held::Table(target) => held_keys(ctx, target, config, key, &candidates).await?,
        Held::Rows(rows) => held_keys_in(rows, config, key, &candidates)?,
    };
    let (accepted, duplicates) = dedup(&candidates, key, &held)?;
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

/// Keys of `rows` whose event time is within the dedup horizon of `candidates`.
fn held_keys_in(
    rows: &[RecordBatch],
    config: &TransformConfig,
    key: &str,
    candidates: &[RecordBatch],
) -> Result<HashSet<String>, TransformError> {
    let Some(since) = horizon_start(config, candidates)? else { return Ok(HashSet::new()) };
    let mut keys = HashSet::new();
    for batch in rows {
        let times = event_micros(batch, &config.event_time)?;
        let Some(column) = batch.column_by_name(key) else { continue };
        let column = text_column(column, &format!("key `{key}`"))?;
        for (i, t) in times.iter().enumerate() {
            if t.is_some_and(|t| t >= since) && column.is_valid(i) {
                keys.insert(column.value(i).to_string());
            }
        }
    }
    Ok(keys)
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

/// Keys silver already holds for events from `dedup_horizon` before the oldest candidate on.
async fn held_keys(
    ctx: &datafusion::prelude::SessionContext,
    target: Option<&Table>,
    config: &TransformConfig,
    key: &str,
    candidates: &[RecordBatch],
) -> Result<HashSet<String>, TransformError> {
    let Some(target) = target else { return Ok(HashSet::new()) };
    let Some(since) = horizon_start(config, candidates)? else { return Ok(HashSet::new()) };
    let at = timestamp_literal(target, &config.event_time)?;
    // Only the keys and event times in the horizon leave the scan.
    let rows = ctx
        .read_table(pinned(target.clone(), None).await?)?
        .filter(col(config.event_time.as_str()).gt_eq(at(since)))?
        .select_columns(&[key, config.event_time.as_str()])?
        .collect()
        .await?;
    held_keys_in(&rows, config, key, candidates)
}

/// The first row of each key not in `held`, by Kafka position when the rows carry it.
fn dedup(
    batches: &[RecordBatch],
    key: &str,
    held: &HashSet<String>,
) -> Result<(Vec<RecordBatch>, u64), TransformError> {
    // (partition, offset, batch, row, key)
    let mut rows: Vec<(i64, i64, usize, usize, Option<String>)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let keys = batch
            .column_by_name(key)
            .ok_or_else(|| TransformError::Sql(format!("the SQL output lacks the key column `{key}`")))?;
        let keys = text_column(keys, &format!("key `{key}`"))?;
        let position = |name: &str| -> Result<Option<Int64Array>, TransformError> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(c) => Ok(Some(
                    arrow_cast::cast(c, &DataType::Int64)
                        .map_err(|e| TransformError::Sql(format!("`{name}`: {e}")))?
                        .as_primitive::<Int64Type>()
                        .clone(),
                )),
            }
        };
        let partitions = position("_kafka_partition")?;
        let offsets = position("_kafka_offset")?;
        for i in 0..batch.num_rows() {
            let p = partitions.as_ref().map_or(0, |c| c.value(i));
            let o = offsets.as_ref().map_or(0, |c| c.value(i));
            rows.push((p, o, b, i, keys.is_valid(i).then(|| keys.value(i).to_string())));
        }
    }
    rows.sort_by_key(|r| (r.0, r.1, r.2, r.3));
    let mut seen: HashSet<String> = HashSet::new();
    let mut masks: Vec<Vec<bool>> = batches.iter().map(|b| vec![false; b.num_rows()]).collect();
    let mut duplicates = 0;
    for (_, _, b, i, k) in rows {
        match k {
            // A row without a key cannot be a duplicate of anything.
            None => masks[b][i] = true,
            Some(k) => {
                if held.contains(&k) || !seen.insert(k) {
                    duplicates += 1;
                } else {
                    masks[b][i] = true;
                }
            }
        }
    }
    let kept = batches.iter().zip(&masks).map(|(b, m)| filter(b, m)).collect::<Result<Vec<_>, _>>()?;
    Ok((kept.into_iter().filter(|b| b.num_rows() > 0).collect(), duplicates))
}

/// Appends rejected rows to the quarantine (once per run id), keeping their Kafka columns
/// so each points at its bronze row, and recording which run they come from.
async fn write_quarantine(
    lake: &Lake,
    quarantine: &TableIdent,
    rejected: Vec<Rejected>,
    run_id: &str,
    run: &QuarantinedFor,
) -> Result<(), TransformError> {
    let table = run.table.as_str();
    if !lake.exists(quarantine).await? {
        return Err(TransformError::Sql(format!(
            "quarantine table {quarantine} does not exist yet; `ingot run` creates it"
        )));
    }
    let target = lake.load(quarantine).await?;
    if find_commit(&target, run_id).is_some() {
        return Ok(());
    }
    let schema: SchemaRef = Arc::new(table_arrow_schema(&target)?);
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
        batches.push(conform(&batch, &schema, &fill)?);
    }
    let files = write_data_files(&target, &batches).await?;
    let mut change = SnapshotChange::new(Operation::Append, run_id);
    change.add = files.files;
    change
        .properties
        .insert(QUARANTINED_FOR_PROPERTY.into(), serde_json::to_string(run).expect("serializes"));
    lake.commit_change(&target, &change).await?;
    Ok(())
}
