//! Re-drive: quarantined messages decoded again with the current contract and rules, and the
//! ones that now pass appended to bronze with their original Kafka coordinates — exactly once.
//!
//! The quarantine stays as it is (immutable); a message's bronze row is the record that it was
//! re-driven. Exactly once comes from two checks made against the very snapshot the append
//! commits on (a lost race checks again):
//! - only offsets below what bronze records for the partition are re-driven: ingest never
//!   appends below that, so it cannot append the same message again (a message at or past it
//!   will be read again by ingest itself, and decoded with the current contract there);
//! - offsets bronze already holds (an earlier re-drive, or one cut off by a crash) are left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use arrow_select::filter::filter_record_batch;
use ingot_lake::TableIdent;
use ingot_lake::{
    COMMIT_ID_PROPERTY, Lake, LakeError, SourceOffsets, Table, find_commit, read_columns_in_range,
    table_arrow_schema, write_data_files,
};
use ingot_proto::{ContractRegistry, MessageDescriptor};
use sha2::{Digest, Sha256};

use crate::bronze::{BronzeBuffer, bronze_ident, bronze_table_spec};
use crate::commit::kafka_columns;
use crate::meta::{self, MessageMeta};
use crate::pii::{PiiKey, Recovered, TopicPii, recover, seal_context};
use crate::{IngestConfig, IngestError, TopicConfig};

/// Summary property of a re-drive's snapshot: how many quarantined messages it appended.
pub const REDRIVEN_PROPERTY: &str = "ingot.redriven-messages";

/// How often a re-drive's append is tried when other writers keep committing first.
const ATTEMPTS: u32 = 20;

/// One quarantined message, as the quarantine table holds it.
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// How the stored payload is protected (the quarantine's `payload_protection`).
    pub protection: Option<String>,
    /// The contract rule that quarantined it, if one did.
    pub rule: Option<String>,
}

/// What a re-drive of one topic found and did.
#[derive(Debug, Clone, Default)]
pub struct RedriveReport {
    pub topic: String,
    pub table: String,
    /// Quarantined messages considered.
    pub candidates: usize,
    /// Messages that now decode and pass every rule.
    pub passing: usize,
    /// Appended to bronze by this run (0 in a dry run).
    pub appended: usize,
    /// Passing, but already in bronze (re-driven before).
    pub already_in_bronze: usize,
    /// Passing, but at or past bronze's progress on their partition: ingest reads them again.
    pub left_to_ingest: usize,
    /// Messages that still fail, by reason code.
    pub still_failing: BTreeMap<String, usize>,
    pub snapshot_id: Option<i64>,
}

impl std::fmt::Display for RedriveReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} quarantined considered, {} pass now; appended {} to {}, {} already there, {} left to ingest",
            self.topic,
            self.candidates,
            self.passing,
            self.appended,
            self.table,
            self.already_in_bronze,
            self.left_to_ingest
        )?;
        for (reason, n) in &self.still_failing {
            write!(f, "\n  still failing ({reason}): {n}")?;
        }
        Ok(())
    }
}

/// Re-drives `messages` (quarantined from `topic`) into its bronze table; see the module docs.
/// A dry run decodes and checks, and changes nothing.
pub async fn redrive_topic(
    lake: &Lake,
    registry: &ContractRegistry,
    config: &IngestConfig,
    topic: &TopicConfig,
    messages: Vec<Quarantined>,
    dry_run: bool,
) -> Result<RedriveReport, IngestError> {
    let ident = bronze_ident(config, topic)?;
    let message = registry.message(&topic.message)?;
    let spec = bronze_table_spec(ident.clone(), &message, topic.event_time.as_deref())?;
    let mut report = RedriveReport {
        topic: topic.topic.clone(),
        table: ident.to_string(),
        candidates: messages.len(),
        ..Default::default()
    };
    // The table as the current contract wants it: evolved now, or (dry run) as it would be.
    let (table, schema) = match dry_run {
        true => (lake.load(&ident).await?, Arc::new(spec.schema.clone())),
        false => {
            let (table, _) = lake.ensure_table(&spec).await?;
            let schema = Arc::new(table_arrow_schema(&table)?);
            (table, schema)
        }
    };
    let mut decoder = Redecoder::new(config, topic, &message, (ident.clone(), schema), &messages)?;
    if let Some(key_id) = decoder.key_id() {
        crate::pii::check_key_continuity(&table, &key_id, config.pii.rotated_from.as_deref())?;
    }
    for m in messages {
        if let Some(code) = decoder.push(topic, m)? {
            *report.still_failing.entry(code.to_string()).or_default() += 1;
        }
    }
    let key_id = decoder.key_id();
    let passing = decoder.take()?;
    report.passing = passing.iter().map(RecordBatch::num_rows).sum();
    if report.passing == 0 {
        return Ok(report);
    }
    let coordinates = coordinates_of(&passing)?;
    if dry_run {
        let (_, already, later) = not_yet_in(&table, &topic.topic, &passing, &coordinates).await?;
        (report.already_in_bronze, report.left_to_ingest) = (already, later);
        return Ok(report);
    }
    let commit_id = commit_id(&ident.to_string(), &coordinates);
    let mut table = table;
    for attempt in 1..=ATTEMPTS {
        if let Some(snapshot_id) = find_commit(&table, &commit_id) {
            // This very re-drive landed before (a lost answer, or a run cut off after it).
            report.snapshot_id = Some(snapshot_id);
            report.already_in_bronze = report.passing;
            return Ok(report);
        }
        let (kept, already, later) = not_yet_in(&table, &topic.topic, &passing, &coordinates).await?;
        (report.already_in_bronze, report.left_to_ingest) = (already, later);
        let rows: usize = kept.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(report);
        }
        let files = write_data_files(&table, &kept).await?;
        crate::failpoint::hit("redrive-before-commit");
        let mut summary = HashMap::from([
            (COMMIT_ID_PROPERTY.to_string(), commit_id.clone()),
            (REDRIVEN_PROPERTY.to_string(), rows.to_string()),
        ]);
        if let Some(id) = &key_id {
            summary.insert(crate::pii::KEY_ID_PROPERTY.to_string(), id.clone());
        }
        match lake.commit_append(&table, files, summary).await {
            Ok(committed) => {
                crate::failpoint::hit("redrive-after-commit");
                report.appended = rows;
                report.snapshot_id = committed.metadata().current_snapshot_id();
                tracing::info!(table = %ident, rows, attempt, "re-driven from the quarantine");
                return Ok(report);
            }
            Err(LakeError::CommitConflict { .. } | LakeError::CommitUnknown { .. }) => {
                tracing::info!(table = %ident, attempt, "re-drive lost a commit race; checking again");
            }
            Err(e) => return Err(e.into()),
        }
        table = lake.load(&ident).await?;
    }
    Err(IngestError::RetriesExhausted {
        what: format!("re-drive into {ident}"),
        attempts: ATTEMPTS,
        last: "other writers kept committing first".into(),
    })
}

/// Quarantined messages decoded again into bronze rows, their PII protected as ingest would.
struct Redecoder {
    /// Raw (or opened) payloads: the topic's PII actions apply.
    raw: BronzeBuffer,
    /// Rewritten payloads have had their PII actions, and rules on PII fields cannot judge
    /// their tokens: a message such a rule quarantined still fails it, other messages are not
    /// checked by those rules again.
    rewritten: BronzeBuffer,
    key: Option<Arc<PiiKey>>,
    key_id: Option<String>,
    now: i64,
}

impl Redecoder {
    fn new(
        config: &IngestConfig,
        topic: &TopicConfig,
        message: &MessageDescriptor,
        target: (TableIdent, SchemaRef),
        messages: &[Quarantined],
    ) -> Result<Self, IngestError> {
        let key = match !topic.pii.is_empty() || messages.iter().any(|m| m.protection.is_some()) {
            true => Some(Arc::new(config.pii.key()?)),
            false => None,
        };
        let pii = TopicPii::compile(topic, message, key.as_ref(), config.pii.quarantine_payload)?;
        let on_pii = |rule: &str| pii.as_ref().is_some_and(|p| p.rule_on_pii(rule));
        let unchecked = TopicConfig {
            rules: topic.rules.iter().filter(|r| !on_pii(&r.name)).cloned().collect(),
            ..topic.clone()
        };
        let (ident, schema) = target;
        let buffer = |topic: &TopicConfig, pii: Option<TopicPii>| {
            let (ident, schema, message) = (ident.clone(), schema.clone(), message.clone());
            BronzeBuffer::for_schema(ident, schema, topic, message, config.max_message_bytes, pii)
        };
        Ok(Self {
            raw: buffer(topic, pii.clone())?,
            rewritten: buffer(&unchecked, pii.as_ref().map(TopicPii::applied_already))?,
            key_id: pii.as_ref().map(|p| p.key_id().to_string()),
            key,
            now: chrono::Utc::now().timestamp_micros(),
        })
    }

    /// Decodes one message; returns the reason code it still fails with, if it does.
    fn push(&mut self, topic: &TopicConfig, m: Quarantined) -> Result<Option<&'static str>, IngestError> {
        let meta = MessageMeta {
            topic: &topic.topic,
            partition: m.partition,
            offset: m.offset,
            timestamp_ms: m.timestamp_ms,
            key: m.key.as_deref(),
        };
        let context = seal_context(&topic.topic, m.partition, m.offset);
        let open_with = || self.key.as_deref().cloned().ok_or_else(|| "no PII key".to_string());
        Ok(match recover(m.protection.as_deref(), &context, m.payload, open_with) {
            Ok(Recovered::Raw(payload)) => {
                self.raw.push(&meta, payload.as_deref(), self.now)?.map(|f| f.reason.code())
            }
            Ok(Recovered::Protected(_)) if m.rule.as_deref().is_some_and(|r| self.rule_on_pii(r)) => {
                Some("rule_violation")
            }
            Ok(Recovered::Protected(payload)) => {
                self.rewritten.push(&meta, Some(&payload), self.now)?.map(|f| f.reason.code())
            }
            Ok(Recovered::Withheld) => Some("payload_withheld"),
            Err(problem) => {
                tracing::warn!(topic = %topic.topic, partition = m.partition, offset = m.offset, %problem,
                    "cannot read the quarantined payload");
                Some("payload_unreadable")
            }
        })
    }

    fn rule_on_pii(&self, rule: &str) -> bool {
        self.raw.pii().is_some_and(|p| p.rule_on_pii(rule))
    }

    /// The PII key's id, when the rows carry tokens of it.
    fn key_id(&self) -> Option<String> {
        self.key_id.clone()
    }

    /// Every row that passed.
    fn take(&mut self) -> Result<Vec<RecordBatch>, IngestError> {
        let (mut passing, _) = self.raw.take()?;
        passing.extend(self.rewritten.take()?.0);
        Ok(passing)
    }
}

/// The passing rows bronze lacks and may take: below the table's recorded offset for their
/// partition and not in the table yet. Also returns how many were already there and how many
/// are left to ingest. `coordinates` are `passing`'s, batch by batch.
async fn not_yet_in(
    table: &Table,
    topic: &str,
    passing: &[RecordBatch],
    coordinates: &[Vec<(i32, i64)>],
) -> Result<(Vec<RecordBatch>, usize, usize), IngestError> {
    let recorded = SourceOffsets::of_table(table)?;
    let offsets = coordinates.iter().flatten().map(|c| c.1);
    let (low, high) = offsets.fold((i64::MAX, i64::MIN), |(lo, hi), o| (lo.min(o), hi.max(o)));
    let columns = [meta::TOPIC, meta::PARTITION, meta::OFFSET];
    let in_range = read_columns_in_range(table, &columns, (meta::OFFSET, low, high)).await?;
    let present: HashSet<(i32, i64)> = coordinates_of(&in_range)?.into_iter().flatten().collect();
    let (mut already, mut later) = (0, 0);
    let mut kept = Vec::new();
    for (batch, coordinates) in passing.iter().zip(coordinates) {
        let keep: BooleanArray = coordinates
            .iter()
            .map(|&(partition, offset)| {
                let below = recorded.next(topic, partition).is_some_and(|next| offset < next);
                let here = present.contains(&(partition, offset));
                already += usize::from(here);
                later += usize::from(!here && !below);
                Some(below && !here)
            })
            .collect();
        let batch = filter_record_batch(batch, &keep).map_err(|e| IngestError::Topic {
            topic: topic.to_string(),
            problem: format!("filter batch: {e}"),
        })?;
        if batch.num_rows() > 0 {
            kept.push(batch);
        }
    }
    Ok((kept, already, later))
}

/// Each batch's (partition, offset) per row.
fn coordinates_of(batches: &[RecordBatch]) -> Result<Vec<Vec<(i32, i64)>>, IngestError> {
    batches
        .iter()
        .map(|batch| {
            let (_, partitions, offsets) = kafka_columns(batch)?;
            Ok(partitions.values().iter().copied().zip(offsets.values().iter().copied()).collect())
        })
        .collect()
}

/// The same messages re-driven into the same table give the same id, so a re-drive whose
/// answer was lost (or that crashed after committing) is found in the history.
fn commit_id(table: &str, coordinates: &[Vec<(i32, i64)>]) -> String {
    let mut hash = Sha256::new();
    hash.update(table.as_bytes());
    for (partition, offset) in coordinates.iter().flatten() {
        hash.update(partition.to_be_bytes());
        hash.update(offset.to_be_bytes());
    }
    format!("redrive-{:x}", hash.finalize())
}
