//! `--until-caught-up`: done when the tables hold every message the topics held at start.
//!
//! "Caught up" is a property of the topics, not of this member's assignment: every
//! partition of every configured topic must be covered up to the high watermark sampled at
//! start, by this run's commits or by what the tables record (another member of the group
//! commits the partitions it owns). A partition nobody covers within the timeout fails the
//! run with the partitions, the group and the likely cause, instead of a silent short read.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ingot_lake::{Lake, SourceOffsets, TableIdent};
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use crate::IngestError;
use crate::consumer::{Assignment, IngestContext, ResumeOffsets};
use crate::orphans::{Orphans, PartitionKey};

/// How long metadata and watermark requests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the tables are read to see other members' progress.
const TABLE_POLL: Duration = Duration::from_secs(1);

/// The end each partition had when the run started, and how far the tables are from it.
pub(crate) struct CatchUp {
    /// High watermark per partition at start: the offset after the last message.
    targets: BTreeMap<PartitionKey, i64>,
    /// What the tables recorded at start, per partition (for "expected" in the summary).
    at_start: SourceOffsets,
    /// The bronze and quarantine tables, read for other members' progress.
    tables: Vec<TableIdent>,
    /// Offsets the tables record, as last read.
    recorded: SourceOffsets,
    last_poll: Option<Instant>,
    timeout: Duration,
    group: String,
    last_progress: Instant,
    progress_mark: i64,
    orphans: Orphans,
}

/// Where the run stands.
pub(crate) enum CatchUpState {
    /// Every partition is covered.
    Done,
    /// Some partitions are not, but they still move (or the timeout has not passed).
    Waiting,
    /// These partitions are owned by no one here and have not moved for a while: the group
    /// should be joined anew, so that a live member gets them.
    Rejoin(Vec<String>),
}

impl CatchUp {
    /// Samples every partition's high watermark. A configured topic the broker does not
    /// have is an error naming it, not a wait.
    pub async fn start(
        consumer: &impl Consumer<IngestContext>,
        topics: &[String],
        tables: Vec<TableIdent>,
        lake: &Lake,
        group: &str,
        timeout: Duration,
        rejoin_after: Duration,
    ) -> Result<Self, IngestError> {
        let mut targets = BTreeMap::new();
        for topic in topics {
            for (partition, high) in tokio::task::block_in_place(|| watermarks(consumer, topic))? {
                targets.insert((topic.clone(), partition), high);
            }
        }
        let mut catch_up = Self {
            targets,
            at_start: SourceOffsets::default(),
            tables,
            recorded: SourceOffsets::default(),
            last_poll: None,
            timeout,
            group: group.to_string(),
            last_progress: Instant::now(),
            progress_mark: -1,
            orphans: Orphans::new(rejoin_after),
        };
        catch_up.poll_tables(lake).await?;
        catch_up.at_start = catch_up.recorded.clone();
        Ok(catch_up)
    }

    /// Messages each topic held at start that the tables did not.
    pub fn expected(&self) -> BTreeMap<String, u64> {
        let mut expected = BTreeMap::new();
        for ((topic, partition), high) in &self.targets {
            let from = self.at_start.next(topic, *partition).unwrap_or(0);
            *expected.entry(topic.clone()).or_default() += (high - from).max(0) as u64;
        }
        expected
    }

    /// Whether every partition this member owns has been delivered up to its target, so
    /// what is buffered should be committed now rather than when the flush interval ends.
    pub fn own_partitions_read(&self, assignment: &Assignment, delivered: &SourceOffsets) -> bool {
        let owned = assignment.lock().expect("assignment lock");
        owned.iter().all(|key| {
            let target = self.targets.get(key).copied().unwrap_or(0);
            delivered.next(&key.0, key.1).unwrap_or(0) >= target
        })
    }

    /// Done when every partition is covered; an error when some partition has not moved
    /// for the whole timeout.
    pub async fn check(
        &mut self,
        lake: &Lake,
        resume: &ResumeOffsets,
        assignment: &Assignment,
    ) -> Result<CatchUpState, IngestError> {
        if self.last_poll.is_none_or(|t| t.elapsed() >= TABLE_POLL) {
            // A table that cannot be read right now is read on a later tick.
            if let Err(e) = self.poll_tables(lake).await {
                tracing::warn!(error = %e, "cannot read the tables' offsets; trying again");
            }
        }
        let resume = resume.lock().expect("resume lock").clone();
        let recorded = &self.recorded;
        let covered = |key: &PartitionKey| covered(&resume, recorded, key);
        let missing: Vec<&PartitionKey> =
            self.targets.iter().filter(|(key, high)| covered(key) < **high).map(|(key, _)| key).collect();
        if missing.is_empty() {
            return Ok(CatchUpState::Done);
        }
        let owned = assignment.lock().expect("assignment lock").clone();
        if let Some(orphaned) = self.orphans.check(missing.iter().map(|key| (*key, covered(key))), &owned) {
            return Ok(CatchUpState::Rejoin(orphaned));
        }
        let mark: i64 = self.targets.iter().map(|(key, high)| covered(key).min(*high)).sum();
        if mark > self.progress_mark {
            self.progress_mark = mark;
            self.last_progress = Instant::now();
            return Ok(CatchUpState::Waiting);
        }
        if self.last_progress.elapsed() < self.timeout {
            return Ok(CatchUpState::Waiting);
        }
        let describe = |key: &&PartitionKey| {
            let (topic, partition) = key;
            let at = covered(key);
            let high = self.targets[*key];
            let whose = if owned.contains(*key) { "assigned here" } else { "not assigned here" };
            format!("{topic}/{partition} (at {at} of {high}, {whose})")
        };
        let partitions: Vec<String> = missing.iter().map(describe).collect();
        let cause = if missing.iter().all(|key| !owned.contains(*key)) {
            "another member of the group holds them without committing: most likely a crashed \
             process whose session has not expired yet, or another consumer using this group id"
        } else {
            "the broker did not deliver them (is it reachable? see the warnings above)"
        };
        Err(IngestError::NotCaughtUp {
            group: self.group.clone(),
            timeout: self.timeout,
            partitions: partitions.join(", "),
            cause: cause.to_string(),
        })
    }

    async fn poll_tables(&mut self, lake: &Lake) -> Result<(), IngestError> {
        self.last_poll = Some(Instant::now());
        self.recorded.merge(&tables_offsets(lake, &self.tables).await?);
        Ok(())
    }
}

/// How far a partition is covered: by this run's commits (`resume` holds them) or by what
/// the tables record.
fn covered(resume: &HashMap<PartitionKey, i64>, recorded: &SourceOffsets, key: &PartitionKey) -> i64 {
    let ours = resume.get(key).copied().unwrap_or(0);
    ours.max(recorded.next(&key.0, key.1).unwrap_or(0))
}

/// What `tables` record together, per partition: how far each has been read by anyone.
pub(crate) async fn tables_offsets(lake: &Lake, tables: &[TableIdent]) -> Result<SourceOffsets, IngestError> {
    let mut recorded = SourceOffsets::default();
    for ident in tables {
        recorded.merge(&SourceOffsets::of_table(&lake.load(ident).await?)?);
    }
    Ok(recorded)
}

/// Each partition of `topic` with its high watermark.
pub(crate) fn watermarks<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
) -> Result<Vec<(i32, i64)>, IngestError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(IngestError::kafka("read topic metadata"))?;
    let missing = || IngestError::Topic {
        topic: topic.to_string(),
        problem: "does not exist on the broker: create it, or remove it from [[topics]]".into(),
    };
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(missing());
    };
    if found.error().is_some() || found.partitions().is_empty() {
        return Err(missing());
    }
    let mut out = Vec::with_capacity(found.partitions().len());
    for partition in found.partitions() {
        let (_, high) =
            consumer.fetch_watermarks(topic, partition.id(), REQUEST_TIMEOUT).map_err(|e: KafkaError| {
                IngestError::kafka(format!("read the end of {topic}/{}", partition.id()))(e)
            })?;
        out.push((partition.id(), high));
    }
    Ok(out)
}
