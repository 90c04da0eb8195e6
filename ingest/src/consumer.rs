//! The Kafka consumer: a group member that, on every assignment, starts each partition at
//! the offset the tables record, not at Kafka's committed offset.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::events::{ConsumerError, PartitionLag, Rebalanced};
use crate::{IngestError, KafkaConfig, StartFrom};

/// Partition → next offset to read, as the tables record it; shared with the rebalance
/// callback, which runs on the consumer's thread.
pub(crate) type ResumeOffsets = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// The partitions this member owns right now.
pub(crate) type Assignment = Arc<Mutex<BTreeSet<(String, i32)>>>;

pub(crate) struct IngestContext {
    pub resume: ResumeOffsets,
    /// Where partitions the tables have never seen start.
    pub start_from: StartFrom,
    pub assignment: Assignment,
}

impl ClientContext for IngestContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // End of partition is reported here too; it is normal, not an error.
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode;
        if !matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF))
        {
            ConsumerError { error: &error, reason }.emit();
        }
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let owned = self.assignment.lock().expect("assignment lock").clone();
        for (topic, partitions) in &statistics.topics {
            for (partition, stats) in &partitions.partitions {
                // Partitions this member no longer owns keep stale figures; -1 is unknown.
                if owned.contains(&(topic.clone(), *partition)) && stats.consumer_lag >= 0 {
                    PartitionLag { topic, partition: *partition, lag: stats.consumer_lag }.emit();
                }
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    // Overridden whole (eager protocol) so the offsets can be set before `assign`; seeking
    // after assignment races the first fetch.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let resume = self.resume.lock().expect("resume offsets lock");
                let mut owned = self.assignment.lock().expect("assignment lock");
                owned.clear();
                for elem in tpl.elements() {
                    owned.insert((elem.topic().to_string(), elem.partition()));
                }
                // Every partition gets an explicit start, so librdkafka never falls back to the
                // group's committed offset (which may belong to a dropped table or another lake).
                for (topic, partition) in owned.iter() {
                    let start = match resume.get(&(topic.clone(), *partition)) {
                        Some(next) => Offset::Offset(*next),
                        None if self.start_from == StartFrom::Latest => Offset::End,
                        None => Offset::Beginning,
                    };
                    if let Err(e) = tpl.set_partition_offset(topic, *partition, start) {
                        tracing::error!(%topic, partition, error = %e, "cannot set start offset");
                    }
                }
                Rebalanced { assigned: true, partitions: owned.len() }.emit();
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assign failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Buffered rows of revoked partitions may still be committed: the offset
                // check in the commit drops whatever the new owner already wrote, and rows
                // read again after the next assignment are dropped as repeats in the batch.
                Rebalanced { assigned: false, partitions: tpl.count() }.emit();
                self.assignment.lock().expect("assignment lock").clear();
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                self.assignment.lock().expect("assignment lock").clear();
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Kafka's offsets only feed lag monitoring; the tables hold the truth.
            tracing::debug!(error = %e, "kafka offset commit failed");
        }
    }
}

pub(crate) fn create_consumer(
    kafka: &KafkaConfig,
    context: IngestContext,
) -> Result<StreamConsumer<IngestContext>, IngestError> {
    let settings = [
        ("group.id", kafka.group_id.clone()),
        ("enable.auto.commit", "false".into()),
        ("enable.auto.offset.store", "false".into()),
        // Only reached when a start offset is out of range (the topic was truncated past
        // what the table records); every assignment sets an explicit start otherwise.
        ("auto.offset.reset", "earliest".into()),
        ("enable.partition.eof", "true".into()),
        ("partition.assignment.strategy", "range".into()),
        // A crashed member holds its partitions until its session expires; Kafka's 45 s
        // default would stall a restarted ingot that long.
        ("session.timeout.ms", "10000".into()),
        ("heartbeat.interval.ms", "2000".into()),
        // Bounds what librdkafka prefetches while a flush is being written: the fetcher
        // pauses when this fills, which is the backpressure on the broker.
        ("queued.max.messages.kbytes", "65536".into()),
        ("fetch.max.bytes", "52428800".into()),
        // librdkafka's 500 ms default lets a quiet partition's fetch sit at the broker for
        // half a second, which shows up directly in produce → visible latency.
        ("fetch.wait.max.ms", "100".into()),
        // Consumer lag per partition for /metrics (`ingot_consumer_lag_messages`).
        ("statistics.interval.ms", "5000".into()),
    ];
    let config = crate::client_config(kafka, &settings)?;
    config.create_with_context(context).map_err(IngestError::kafka("create consumer"))
}
