//! `ingot quarantine stats|list`: what the quarantine holds, by topic, reason and contract
//! rule, or the messages themselves — SQL over the quarantine table through the same bounded
//! query path as `ingot query`. Silver's own rejections (late rows, silver rules) are there
//! too, with the Kafka coordinates of the message they came from (`message_type` names the
//! silver table).

use ingot_transforms::query::parse_timestamp;

use super::CliError;
use super::query::run_sql;
use crate::cli::{QuarantineFilter, QuarantineKind};
use crate::config::Config;

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
    }
}

impl QuarantineFilter {
    /// ` WHERE …` for the filters given (empty without any). Values are SQL string
    /// literals with quotes doubled, so no filter can change the statement.
    fn where_clause(&self) -> Result<String, CliError> {
        let literal = |value: &str| format!("'{}'", value.replace('\'', "''"));
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
        Ok(match conditions.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", conditions.join(" AND ")),
        })
    }
}
