//! A flush, taken out of the buffers as a job so that consuming and decoding go on while it
//! is written and committed. At most one job runs at a time, so memory holds at most two
//! batches and commits stay in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use ingot_lake::{Lake, SourceOffsets, TableIdent};

use crate::IngestError;
use crate::commit::commit_exactly_once;
use crate::dlq::DlqProducer;
use crate::events::{DlqProduced, MessagesQuarantined, RowsVisible, TableCommitted};
use crate::failpoint;
use crate::quarantine::DlqMessage;
use crate::report::{IngestReport, add_counts};
use crate::retry::RetryPolicy;

pub(crate) struct QuarantineWork {
    pub ident: TableIdent,
    pub batch: RecordBatch,
    pub consumed: SourceOffsets,
    pub dlq: Vec<DlqMessage>,
    /// Messages by (topic, reason).
    pub by_reason: HashMap<(String, String), u64>,
    pub by_rule: HashMap<(String, String), u64>,
    pub by_topic: HashMap<String, u64>,
    /// The PII key's id, recorded in the commit's summary.
    pub key_id: Option<String>,
}

/// One topic's rows for its bronze table.
pub(crate) struct BronzeWork {
    pub topic: String,
    pub ident: TableIdent,
    pub batches: Vec<RecordBatch>,
    /// Next offset per partition of everything consumed from the topic, good or bad.
    pub consumed: SourceOffsets,
    /// The PII key's id when the topic has PII fields, recorded in the commit's summary.
    pub key_id: Option<String>,
}

/// Everything one flush commits.
pub(crate) struct FlushJob {
    pub quarantine: Option<QuarantineWork>,
    pub bronze: Vec<BronzeWork>,
    /// Everything consumed up to this flush, good or bad.
    pub progress: SourceOffsets,
}

/// What a finished job did.
pub(crate) struct FlushOutcome {
    pub report: IngestReport,
    pub progress: SourceOffsets,
    /// What the bronze tables record after the job, including other writers' progress:
    /// where a partition this instance is assigned again should start.
    pub bronze_offsets: SourceOffsets,
}

impl FlushJob {
    /// Commits the quarantine first, then each bronze table: a crash between the commits
    /// re-reads from bronze's offsets, and the quarantine's own offsets skip what it holds.
    pub async fn run(
        self,
        lake: Lake,
        dlq: Option<Arc<DlqProducer>>,
        policy: RetryPolicy,
    ) -> Result<FlushOutcome, IngestError> {
        let mut report = IngestReport::default();
        let mut bronze_offsets = SourceOffsets::default();
        if let Some(work) = self.quarantine {
            if let Some(dlq) = &dlq {
                // The quarantine table is the record; a DLQ message that cannot be produced
                // is counted and logged, never a reason to stop ingest.
                let failed = dlq.send_all(&work.dlq).await;
                DlqProduced { messages: work.dlq.len() as u64, failed }.emit();
                report.dlq_failed += failed;
                failpoint::hit("after-dlq-send");
            }
            let started = Instant::now();
            let summary = key_summary(work.key_id);
            let commit =
                commit_exactly_once(&lake, &work.ident, vec![work.batch], &work.consumed, summary, policy)
                    .await?;
            TableCommitted { table: &work.ident.to_string(), commit: &commit, took: started.elapsed() }
                .emit();
            MessagesQuarantined { by_reason: &work.by_reason, by_rule: &work.by_rule }.emit();
            report.note_commit(&commit);
            failpoint::hit("after-quarantine-commit");
            let by_reason = work.by_reason.into_iter().map(|((_, reason), n)| (reason, n));
            for (reason, n) in by_reason {
                *report.quarantined.entry(reason).or_default() += n;
            }
            add_counts(&mut report.rule_violations, work.by_rule);
            add_counts(&mut report.quarantined_by_topic, work.by_topic);
        }
        for BronzeWork { topic, ident, batches, consumed, key_id } in self.bronze {
            // Only the timestamp column is kept past the commit (the batches are moved into it).
            let timestamps: Vec<RecordBatch> = batches.iter().filter_map(timestamps_only).collect();
            let started = Instant::now();
            let commit =
                commit_exactly_once(&lake, &ident, batches, &consumed, key_summary(key_id), policy).await?;
            let table = ident.to_string();
            TableCommitted { table: &table, commit: &commit, took: started.elapsed() }.emit();
            bronze_offsets.merge(&commit.table_offsets);
            let visible_ms = chrono::Utc::now().timestamp_millis();
            let latency_counts = report.visible_after.record(&timestamps, visible_ms);
            RowsVisible { table: &table, latency_counts: &latency_counts }.emit();
            *report.bronze_rows.entry(ident.to_string()).or_default() += commit.rows;
            *report.bronze_rows_by_topic.entry(topic).or_default() += commit.rows;
            if let Some(snapshot) = commit.snapshot_id {
                report.bronze_snapshots.insert(ident.to_string(), snapshot);
            }
            report.note_commit(&commit);
            failpoint::hit("after-bronze-commit");
        }
        Ok(FlushOutcome { report, progress: self.progress, bronze_offsets })
    }
}

/// The snapshot summary naming the PII key, when there is one.
fn key_summary(key_id: Option<String>) -> HashMap<String, String> {
    key_id.map(|id| (crate::pii::KEY_ID_PROPERTY.to_string(), id)).into_iter().collect()
}

fn timestamps_only(batch: &RecordBatch) -> Option<RecordBatch> {
    let index = batch.schema().index_of(crate::meta::TIMESTAMP).ok()?;
    batch.project(&[index]).ok()
}
