//! The ingest loop: one consumer for all topics; messages, a flush ticker and shutdown in
//! one `select!`; a flush commits the quarantine first and the bronze tables after it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingot_lake::{Lake, SourceOffsets, TableStatus, parse_ident};
use ingot_proto::ContractRegistry;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::bronze::{BronzeBuffer, bronze_table_spec};
use crate::caught_up::{CatchUp, CatchUpState};
use crate::consumer::{Assignment, IngestContext, ResumeOffsets, create_consumer};
use crate::dlq::DlqProducer;
use crate::flush::{BronzeWork, FlushJob, FlushOutcome};
use crate::lineage::{BronzeLineage, LineageParent, TopicSource};
use crate::meta::{MessageMeta, now_micros};
use crate::orphans::Orphans;
use crate::pii::{ProtectedPayload, TopicPii, seal_context};
use crate::quarantine::{QuarantineBuffer, quarantine_schema};
use crate::report::IngestReport;
use crate::retry::{RetryPolicy, until_available};
use crate::watch::Watch;
use crate::{IngestConfig, IngestError, KafkaConfig, TopicConfig};

/// Whether `run` keeps serving or stops once the tables hold what the topics held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Service,
    /// Stops when every partition of every topic is in the tables up to the end it had at
    /// start; fails when some partition makes no progress for `timeout`.
    UntilCaughtUp {
        timeout: Duration,
    },
}

type InFlight = tokio::task::JoinHandle<Result<FlushOutcome, IngestError>>;

/// A prepared ingest service: tables exist in their current contract's shape.
pub struct Pipeline {
    lake: Lake,
    kafka: KafkaConfig,
    config: IngestConfig,
    topics: HashMap<String, (TopicConfig, BronzeBuffer)>,
    quarantine: QuarantineBuffer,
    resume: ResumeOffsets,
    report: IngestReport,
    /// Each topic's bronze table as prepared, for lineage.
    bronze_tables: HashMap<String, ingot_lake::Table>,
    lineage_parent: Option<LineageParent>,
    lineage: Option<BronzeLineage>,
}

impl Pipeline {
    /// Creates or evolves every bronze table and the quarantine table, and reads the offsets
    /// they record.
    pub async fn prepare(
        lake: Lake,
        registry: &ContractRegistry,
        kafka: KafkaConfig,
        config: IngestConfig,
        topic_configs: Vec<TopicConfig>,
    ) -> Result<Self, IngestError> {
        // A certificate or a password that cannot work stops the start here, in one line; a
        // cluster that is down may come back, and the consumer waits for it.
        match crate::probe::check_connection(&kafka).await {
            Err(e) if !e.retryable() => return Err(e),
            Err(e) => tracing::warn!(error = %e, "Kafka is not answering yet; ingest waits for it"),
            Ok(()) => {}
        }
        let mut report = IngestReport::default();
        let resume: ResumeOffsets = Arc::default();
        let mut topics = HashMap::new();
        let mut bronze_tables = HashMap::new();
        let key = match topic_configs.iter().any(|t| !t.pii.is_empty()) {
            true => Some(Arc::new(config.pii.key()?)),
            false => None,
        };
        for topic in topic_configs {
            let message = registry.message(&topic.message)?;
            let pii = TopicPii::compile(&topic, &message, key.as_ref(), config.pii.quarantine_payload)?;
            let ident = crate::bronze::bronze_ident(&config, &topic)?;
            let spec = bronze_table_spec(ident, &message, topic.event_time.as_deref())?;
            let (table, status) =
                until_available(&format!("prepare {}", spec.ident), config.retry_unavailable_for, || async {
                    Ok(lake.ensure_table(&spec).await?)
                })
                .await?;
            note_status(&mut report, &spec.ident.to_string(), status);
            let recorded = SourceOffsets::of_table(&table)?;
            if let Some(partitions) = recorded.0.get(&topic.topic) {
                let mut resume = resume.lock().expect("resume lock");
                for (partition, next) in partitions {
                    resume.insert((topic.topic.clone(), *partition), *next);
                }
            }
            if let Some(pii) = &pii {
                let rotated_from = config.pii.rotated_from.as_deref();
                crate::pii::check_key_continuity(&table, pii.key_id(), rotated_from)?;
            }
            bronze_tables.insert(topic.topic.clone(), table.clone());
            let buffer = BronzeBuffer::new(&table, &topic, message, config.max_message_bytes, pii)?;
            topics.insert(topic.topic.clone(), (topic, buffer));
        }
        let dlq_topics: Vec<String> =
            topics.values().filter_map(|(t, _): &(TopicConfig, BronzeBuffer)| t.dlq()).collect();
        crate::admin::ensure_dlq_topics(&kafka, &dlq_topics, config.max_message_bytes).await?;
        let quarantine_spec = quarantine_schema(parse_ident(&config.quarantine_table)?);
        let (table, status) = until_available(
            &format!("prepare {}", config.quarantine_table),
            config.retry_unavailable_for,
            || async { Ok(lake.ensure_table(&quarantine_spec).await?) },
        )
        .await?;
        note_status(&mut report, &config.quarantine_table, status);
        let quarantine = QuarantineBuffer::new(&table, key.map(|k| k.id().to_string()))?;
        Ok(Self {
            lake,
            kafka,
            config,
            topics,
            quarantine,
            resume,
            report,
            bronze_tables,
            lineage_parent: None,
            lineage: None,
        })
    }

    /// Reports each topic's ingest as a STREAMING lineage run under `parent`.
    pub fn with_lineage(mut self, parent: LineageParent) -> Self {
        self.lineage_parent = Some(parent);
        self
    }

    /// Consumes until `shutdown` resolves (or, in `UntilCaughtUp` mode, until every assigned
    /// partition is read to its end), then flushes what it holds and leaves the group.
    pub async fn run(
        mut self,
        mode: RunMode,
        shutdown: impl Future<Output = ()>,
    ) -> Result<IngestReport, IngestError> {
        if let Some(parent) = &self.lineage_parent {
            let sources: Vec<TopicSource<'_>> = self
                .topics
                .values()
                .map(|(topic, buffer)| TopicSource {
                    topic,
                    table: &self.bronze_tables[&topic.topic],
                    pii: buffer.pii(),
                })
                .collect();
            self.lineage = Some(BronzeLineage::start(parent, &self.lake, &self.kafka.brokers, &sources));
        }
        let result = self.consume(mode, shutdown).await;
        if let Some(lineage) = self.lineage.take() {
            lineage.finish(result.as_ref().err().map(|e| e.to_string()).as_deref());
        }
        result.map(|()| self.report)
    }

    async fn consume(
        &mut self,
        mode: RunMode,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), IngestError> {
        let assignment: Assignment = Arc::default();
        let context = IngestContext {
            resume: self.resume.clone(),
            start_from: self.kafka.start_from,
            assignment: assignment.clone(),
        };
        let consumer = create_consumer(&self.kafka, context)?;
        let mut names: Vec<String> = self.topics.keys().cloned().collect();
        names.sort();
        let mut catch_up = match mode {
            RunMode::UntilCaughtUp { timeout } => {
                let patience = Orphans::patience(self.config.flush.interval);
                let (tables, group) = (self.offset_tables(), &self.kafka.group_id);
                let catch_up =
                    CatchUp::start(&consumer, &names, tables, &self.lake, group, timeout, patience).await?;
                self.report.expected = catch_up.expected();
                Some(catch_up)
            }
            RunMode::Service => None,
        };
        // The service watches for partitions nobody reads (`--until-caught-up` does so itself).
        let (watch, mut orphaned) = match mode {
            RunMode::Service => {
                let watch = Watch {
                    kafka: self.kafka.clone(),
                    topics: names.clone(),
                    tables: self.offset_tables(),
                    lake: self.lake.clone(),
                    assignment: assignment.clone(),
                    patience: Orphans::patience(self.config.flush.interval),
                };
                let (handle, rx) = watch.spawn()?;
                (Some(handle), rx)
            }
            RunMode::UntilCaughtUp { .. } => (None, mpsc::channel(1).1),
        };
        let topic_names: Vec<&str> = names.iter().map(String::as_str).collect();
        consumer.subscribe(&topic_names).map_err(IngestError::kafka("subscribe"))?;
        let dlq = if self.topics.values().any(|(t, _)| t.dlq().is_some()) {
            Some(Arc::new(DlqProducer::new(&self.kafka, self.config.max_message_bytes)?))
        } else {
            None
        };
        let mut in_flight: Option<InFlight> = None;
        let flush = self.config.flush.clone();
        let mut ticker = tokio::time::interval(tick_for(flush.interval));
        let mut pending = Pending::default();
        // Next offset after the last one delivered, per partition.
        let mut delivered = SourceOffsets::default();
        let started = Instant::now();
        let mut warned_unassigned = false;
        let mut outcome = Ok(());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(partitions) = orphaned.recv() => self.rejoin(&consumer, &topic_names, &partitions)?,
                _ = ticker.tick() => {
                    let read_all = catch_up.as_ref().is_some_and(|c| c.own_partitions_read(&assignment, &delivered));
                    if pending.oldest.is_some_and(|t| t.elapsed() >= flush.interval || read_all) {
                        self.start_flush(&mut in_flight, &consumer, &dlq).await?;
                        pending = Pending::default();
                    }
                    if in_flight.as_ref().is_some_and(|h| h.is_finished()) {
                        self.finish_flush(&mut in_flight, &consumer).await?;
                    }
                    if let Some(catch_up) = &mut catch_up {
                        match catch_up.check(&self.lake, &self.resume, &assignment).await {
                            Ok(CatchUpState::Done) => break,
                            Ok(CatchUpState::Waiting) => {}
                            Ok(CatchUpState::Rejoin(partitions)) => self.rejoin(&consumer, &topic_names, &partitions)?,
                            Err(e) => {
                                outcome = Err(e);
                                break;
                            }
                        }
                    }
                    if !warned_unassigned && started.elapsed() > Duration::from_secs(60)
                        && assignment.lock().expect("assignment lock").is_empty() {
                        warned_unassigned = true;
                        tracing::warn!("no partitions assigned after 60s; is the broker reachable and are the topics created?");
                    }
                }
                received = consumer.recv() => match received {
                    Ok(message) => {
                        let payload = message.payload();
                        let meta = MessageMeta {
                            topic: message.topic(),
                            partition: message.partition(),
                            offset: message.offset(),
                            timestamp_ms: message.timestamp().to_millis(),
                            key: message.key(),
                        };
                        delivered.advance(meta.topic, meta.partition, meta.offset + 1);
                        self.accept(&meta, payload)?;
                        pending.add(payload.map_or(0, <[u8]>::len));
                        if pending.rows >= flush.rows || pending.bytes >= flush.bytes {
                            self.start_flush(&mut in_flight, &consumer, &dlq).await?;
                            pending = Pending::default();
                        }
                    }
                    Err(KafkaError::PartitionEOF(_)) => {}
                    Err(e) => {
                        // librdkafka reconnects by itself; a broker outage shows up here
                        // as transient errors while the loop keeps going.
                        tracing::warn!(error = %e, "consumer error");
                    }
                }
            }
        }
        if let Some(watch) = watch {
            watch.abort();
        }
        // Drain: the flush in flight, then what is still buffered.
        self.start_flush(&mut in_flight, &consumer, &dlq).await?;
        self.finish_flush(&mut in_flight, &consumer).await?;
        consumer.unsubscribe();
        outcome
    }

    /// Decodes one message into its bronze buffer or the quarantine. The Kafka loop calls
    /// this for every message; benchmarks call it with messages served from memory.
    pub fn accept(&mut self, meta: &MessageMeta<'_>, payload: Option<&[u8]>) -> Result<(), IngestError> {
        self.report.consumed += 1;
        let Some((topic, buffer)) = self.topics.get_mut(meta.topic) else {
            return Err(IngestError::Topic {
                topic: meta.topic.to_string(),
                problem: "received a message from a topic that is not configured".into(),
            });
        };
        let now = now_micros();
        if let Some(failure) = buffer.push(meta, payload, now)? {
            let message_type = buffer.message_type().to_string();
            let payload = match buffer.pii() {
                Some(pii) => {
                    pii.protect_payload(&seal_context(meta.topic, meta.partition, meta.offset), payload)
                }
                None => ProtectedPayload { bytes: payload.map(<[u8]>::to_vec), protection: None },
            };
            self.quarantine.push(meta, payload, &message_type, failure, topic.dlq(), now);
        }
        Ok(())
    }

    /// Commits what `accept` buffered, without Kafka (no DLQ, no offset commit): the
    /// benchmark's way to drive the same write path.
    pub async fn commit_buffered(&mut self) -> Result<(), IngestError> {
        let job = self.take_job()?;
        let outcome = job.run(self.lake.clone(), None, self.retry_policy()).await?;
        self.report.absorb(outcome.report);
        Ok(())
    }

    /// What has happened so far.
    pub fn report(&self) -> &IngestReport {
        &self.report
    }

    /// Leaves and rejoins the consumer group, so that orphaned `partitions` get a live owner.
    fn rejoin(
        &self,
        consumer: &StreamConsumer<IngestContext>,
        topics: &[&str],
        partitions: &[String],
    ) -> Result<(), IngestError> {
        tracing::warn!(?partitions, group = %self.kafka.group_id,
            "partitions unread and owned by no live member; rejoining the consumer group");
        consumer.unsubscribe();
        consumer.subscribe(topics).map_err(IngestError::kafka("subscribe"))
    }

    /// The tables whose offsets together say how far each partition has been read: every
    /// bronze table and the quarantine.
    fn offset_tables(&self) -> Vec<ingot_lake::TableIdent> {
        let mut tables: Vec<_> = self.topics.values().map(|(_, buffer)| buffer.ident.clone()).collect();
        tables.push(self.quarantine.ident.clone());
        tables
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            conflicts: self.config.commit_attempts,
            transient_for: self.config.retry_unavailable_for,
        }
    }

    /// Takes everything buffered out as one flush job.
    fn take_job(&mut self) -> Result<FlushJob, IngestError> {
        let mut progress = SourceOffsets::default();
        let quarantine = if self.quarantine.rows() > 0 {
            let work = self.quarantine.take()?;
            progress.merge(&work.consumed);
            Some(work)
        } else {
            None
        };
        let mut bronze = Vec::new();
        for (topic, buffer) in self.topics.values_mut() {
            let (batches, consumed) = buffer.take()?;
            progress.merge(&consumed);
            if !batches.is_empty() {
                let (topic, ident) = (topic.topic.clone(), buffer.ident.clone());
                let key_id = buffer.pii().map(|pii| pii.key_id().to_string());
                bronze.push(BronzeWork { topic, ident, batches, consumed, key_id });
            }
        }
        Ok(FlushJob { quarantine, bronze, progress })
    }

    /// Waits for the flush in flight, if any, and records what it did.
    async fn finish_flush(
        &mut self,
        in_flight: &mut Option<InFlight>,
        consumer: &StreamConsumer<IngestContext>,
    ) -> Result<(), IngestError> {
        if let Some(handle) = in_flight.take() {
            let outcome = handle.await.map_err(|e| IngestError::Topic {
                topic: String::new(),
                problem: format!("flush task failed: {e}"),
            })??;
            self.after_commit(consumer, &outcome.progress, &outcome.bronze_offsets);
            if let Some(lineage) = &mut self.lineage {
                lineage.committed(&outcome.report, &outcome.progress);
            }
            self.report.absorb(outcome.report);
        }
        Ok(())
    }

    /// Starts committing what is buffered, after the previous flush has finished.
    async fn start_flush(
        &mut self,
        in_flight: &mut Option<InFlight>,
        consumer: &StreamConsumer<IngestContext>,
        dlq: &Option<Arc<DlqProducer>>,
    ) -> Result<(), IngestError> {
        self.finish_flush(in_flight, consumer).await?;
        let job = self.take_job()?;
        *in_flight = Some(tokio::spawn(job.run(self.lake.clone(), dlq.clone(), self.retry_policy())));
        Ok(())
    }

    /// Everything in `progress` is now in a table: resume from there on the next
    /// assignment, and tell Kafka (for lag monitoring only). What the bronze tables record
    /// beyond it was committed by other members: a partition that comes back starts there.
    fn after_commit(
        &self,
        consumer: &StreamConsumer<IngestContext>,
        progress: &SourceOffsets,
        bronze_offsets: &SourceOffsets,
    ) {
        let mut tpl = TopicPartitionList::new();
        let mut resume = self.resume.lock().expect("resume lock");
        let mut raise = |topic: &str, partition: i32, next: i64| {
            let entry = resume.entry((topic.to_string(), partition)).or_insert(next);
            *entry = (*entry).max(next);
        };
        for (topic, partitions) in
            bronze_offsets.0.iter().filter(|(topic, _)| self.topics.contains_key(*topic))
        {
            for (partition, next) in partitions {
                raise(topic, *partition, *next);
            }
        }
        for (topic, partitions) in &progress.0 {
            for (partition, next) in partitions {
                raise(topic, *partition, *next);
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
            }
        }
        drop(resume);
        if tpl.count() > 0
            && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(error = %e, "kafka offset commit not sent");
        }
    }
}

/// What is buffered since the last flush.
#[derive(Default)]
struct Pending {
    oldest: Option<Instant>,
    rows: usize,
    bytes: usize,
}

impl Pending {
    fn add(&mut self, bytes: usize) {
        self.oldest.get_or_insert_with(Instant::now);
        self.rows += 1;
        self.bytes += bytes;
    }
}

fn note_status(report: &mut IngestReport, table: &str, status: TableStatus) {
    match status {
        TableStatus::Created => report.table_changes.push(format!("created {table}")),
        TableStatus::Evolved(columns) => {
            report.table_changes.push(format!("evolved {table}: added {}", columns.join(", ")))
        }
        TableStatus::Unchanged => {}
    }
}

/// How often the loop checks the flush age: a batch is committed within a twentieth of the
/// interval of becoming due (it counts against produce → visible latency).
fn tick_for(interval: Duration) -> Duration {
    (interval / 20).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
