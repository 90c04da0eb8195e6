//! `ingot quarantine stats|list|redrive`: what the quarantine holds, by topic, reason and
//! contract rule, or the messages themselves — SQL over the quarantine table through the same
//! bounded query path as `ingot query` — and the re-drive of messages that pass now. Silver's
//! own rejections (late rows, silver rules) are there too, with the Kafka coordinates of the
//! message they came from (`message_type` names the silver table); they are in bronze
//! already and are never re-driven.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use ingot_ingest::{
    IngestError, PAYLOAD_PROTECTION, Quarantined, RedriveReport, TopicConfig, bronze_ident, redrive_topic,
};
use ingot_lake::{Lake, TableIdent, parse_ident};
use ingot_lineage::{JobKind, LineageRun};
use ingot_proto::ContractRegistry;
use ingot_transforms::RunContext;
use ingot_transforms::query::{parse_timestamp, run_query};

use super::CliError;
use super::query::run_sql;
use crate::cli::{QuarantineFilter, QuarantineKind};
use crate::config::Config;
use crate::output::outln;
use crate::pipeline_run::PipelineRun;

pub async fn quarantine(config: &Config, which: &QuarantineKind) -> Result<(), CliError> {
    let table = &config.ingest.quarantine_table;
    match which {
        QuarantineKind::Stats { filter, format } => {
            let sql = format!(
                "SELECT _kafka_topic AS topic, reason, rule, count(*) AS messages, \
                 min(_ingested_at) AS first_seen, max(_ingested_at) AS last_seen \
                 FROM {table}{} GROUP BY 1, 2, 3 ORDER BY messages DESC, 1, 2, 3",
                filter.where_clause()?
            );
            run_sql(config, &sql, *format).await
        }
        QuarantineKind::List { filter, limit, format } => {
            let sql = format!(
                "SELECT _kafka_topic AS topic, _kafka_partition AS partition, _kafka_offset AS offset, \
                 _ingested_at AS quarantined_at, reason, rule, error \
                 FROM {table}{} ORDER BY _ingested_at DESC, 1, 2, 3 LIMIT {limit}",
                filter.where_clause()?
            );
            run_sql(config, &sql, *format).await
        }
        QuarantineKind::Redrive { filter, dry_run } => redrive(config, filter, *dry_run).await,
    }
}

/// Re-drives, topic by topic, the quarantined messages the filter selects.
async fn redrive(config: &Config, filter: &QuarantineFilter, dry_run: bool) -> Result<(), CliError> {
    if let Some(topic) = &filter.topic
        && !config.topics.iter().any(|t| &t.topic == topic)
    {
        return Err(CliError::Usage(format!("--topic {topic} is not one of the config's [[topics]]")));
    }
    let lake = Lake::open(&config.catalog).await?;
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    // A re-drive writes bronze: it is a lineage run (one per topic) under a pipeline run. A
    // dry run changes nothing and is not.
    let pipeline = (!dry_run).then(|| PipelineRun::start(&config.lineage, false)).transpose()?;
    let context = pipeline.as_ref().map(PipelineRun::context);
    let result = redrive_topics(config, &lake, &registry, filter, dry_run, context.as_ref()).await;
    if let Some(pipeline) = pipeline {
        pipeline.finish(result.as_ref().err().map(|e| e.to_string()).as_deref()).await;
    }
    result
}

async fn redrive_topics(
    config: &Config,
    lake: &Lake,
    registry: &ContractRegistry,
    filter: &QuarantineFilter,
    dry_run: bool,
    context: Option<&RunContext>,
) -> Result<(), CliError> {
    let table = &config.ingest.quarantine_table;
    // Transform tables' rejections are rows of bronze already: never re-driven.
    let transform_tables: Vec<String> = config.transforms.iter().map(|t| literal(&t.table)).collect();
    for topic in config.topics.iter().filter(|t| filter.topic.as_ref().is_none_or(|only| only == &t.topic)) {
        let only_this = QuarantineFilter { topic: Some(topic.topic.clone()), ..filter.clone() };
        let mut conditions = only_this.conditions()?;
        if !transform_tables.is_empty() {
            conditions.push(format!("message_type NOT IN ({})", transform_tables.join(", ")));
        }
        // A quarantine written before PII protection existed has no protection column.
        let quarantine = lake.load(&parse_ident(table)?).await?;
        let protection = match quarantine.metadata().current_schema().field_by_name(PAYLOAD_PROTECTION) {
            Some(_) => PAYLOAD_PROTECTION,
            None => "CAST(NULL AS VARCHAR)",
        };
        let sql = format!(
            "SELECT _kafka_partition, _kafka_offset, _kafka_timestamp, _kafka_key, payload, {protection}, rule \
             FROM {table} WHERE {} ORDER BY _kafka_partition, _kafka_offset",
            conditions.join(" AND ")
        );
        let messages = quarantined(run_query(lake, &sql).await?.batches)?;
        let lineage = match context {
            Some(context) => Some(RedriveLineage::start(lake, config, topic, context).await?),
            None => None,
        };
        let result = redrive_topic(lake, registry, &config.ingest, topic, messages, dry_run).await;
        if let Some(lineage) = lineage {
            lineage.finish(lake, &result).await;
        }
        outln!("{}{}", if dry_run { "(dry run) " } else { "" }, result?);
    }
    Ok(())
}

/// A re-drive's lineage: `pipeline.redrive_<bronze table>`, from the quarantine to bronze.
struct RedriveLineage {
    run: LineageRun,
    bronze: TableIdent,
}

impl RedriveLineage {
    async fn start(
        lake: &Lake,
        config: &Config,
        topic: &TopicConfig,
        context: &RunContext,
    ) -> Result<Self, CliError> {
        let quarantine = parse_ident(&config.ingest.quarantine_table)?;
        let bronze = bronze_ident(&config.ingest, topic)?;
        let name = format!("{}.redrive_{}", context.parent.job_name, bronze.to_string().replace('.', "_"));
        let description = format!("re-drive quarantined messages of {} into {bronze}", topic.topic);
        let kind =
            JobKind { processing: "BATCH", job_type: "JOB", window_secs: None, description: &description };
        let source = lake.load(&quarantine).await.ok();
        let input = lake.lineage_dataset(&quarantine, source.as_ref(), None);
        let run = LineageRun::start(&context.emitter, name, &kind, Some(&context.parent), |event| {
            event.inputs = vec![input];
        });
        Ok(Self { run, bronze })
    }

    async fn finish(self, lake: &Lake, result: &Result<RedriveReport, IngestError>) {
        let table = lake.load(&self.bronze).await.ok();
        let error = result.as_ref().err().map(ToString::to_string);
        let bronze = &self.bronze;
        self.run.finish(error.as_deref(), |event| {
            if let Ok(report) = result {
                event.outputs = vec![lake.lineage_dataset(bronze, table.as_ref(), report.snapshot_id)];
            }
        });
    }
}

/// The quarantine's rows as messages to decode again.
fn quarantined(batches: Vec<RecordBatch>) -> Result<Vec<Quarantined>, CliError> {
    let mut messages = Vec::new();
    for batch in &batches {
        let bad = |what: &str| {
            CliError::Usage(format!("the quarantine table's {what} column is not as ingot writes it"))
        };
        let partition =
            batch.column(0).as_primitive_opt::<Int32Type>().ok_or_else(|| bad("_kafka_partition"))?;
        let offset = batch.column(1).as_primitive_opt::<Int64Type>().ok_or_else(|| bad("_kafka_offset"))?;
        let timestamp = batch
            .column(2)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| bad("_kafka_timestamp"))?;
        let key = batch.column(3).as_binary_opt::<i64>().ok_or_else(|| bad("_kafka_key"))?;
        let payload = batch.column(4).as_binary_opt::<i64>().ok_or_else(|| bad("payload"))?;
        let protection = batch.column(5).as_string_opt::<i32>().ok_or_else(|| bad(PAYLOAD_PROTECTION))?;
        let rule = batch.column(6).as_string_opt::<i32>().ok_or_else(|| bad("rule"))?;
        for row in 0..batch.num_rows() {
            let bytes = |column: &arrow_array::LargeBinaryArray| {
                column.is_valid(row).then(|| column.value(row).to_vec())
            };
            messages.push(Quarantined {
                partition: partition.value(row),
                offset: offset.value(row),
                timestamp_ms: timestamp.is_valid(row).then(|| timestamp.value(row).div_euclid(1000)),
                key: bytes(key),
                payload: bytes(payload),
                protection: protection.is_valid(row).then(|| protection.value(row).to_string()),
                rule: rule.is_valid(row).then(|| rule.value(row).to_string()),
            });
        }
    }
    Ok(messages)
}

/// A SQL string literal with quotes doubled, so no value can change the statement.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl QuarantineFilter {
    /// ` WHERE …` for the filters given (empty without any).
    fn where_clause(&self) -> Result<String, CliError> {
        let conditions = self.conditions()?;
        Ok(match conditions.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", conditions.join(" AND ")),
        })
    }

    /// One SQL condition per filter given; values are literals (see [`literal`]).
    fn conditions(&self) -> Result<Vec<String>, CliError> {
        let mut conditions = Vec::new();
        if let Some(topic) = &self.topic {
            conditions.push(format!("_kafka_topic = {}", literal(topic)));
        }
        if let Some(reason) = &self.reason {
            conditions.push(format!("reason = {}", literal(reason)));
        }
        if let Some(rule) = &self.rule {
            conditions.push(format!("rule = {}", literal(rule)));
        }
        if let Some(since) = &self.since {
            let at = parse_timestamp(since)?;
            conditions.push(format!("_ingested_at >= to_timestamp_micros({})", at.timestamp_micros()));
        }
        Ok(conditions)
    }
}
