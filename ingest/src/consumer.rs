//! The Kafka consumer: a group member that, on every assignment, starts each partition at
//! the offset the tables record, not at Kafka's committed offset.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::{IngestError, KafkaConfig};

/// Partition → next offset to read, as the tables record it; shared with the rebalance
/// callback, which runs on the consumer's thread.
pub(crate) type ResumeOffsets = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// The partitions this member owns right now.
pub(crate) type Assignment = Arc<Mutex<BTreeSet<(String, i32)>>>;

pub(crate) struct IngestContext {
    resume: ResumeOffsets,
    assignment: Assignment,
}

impl ClientContext for IngestContext {}

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
                for (topic, partition) in owned.iter() {
                    if let Some(next) = resume.get(&(topic.clone(), *partition)) {
                        if let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Offset(*next)) {
                            tracing::error!(%topic, partition, error = %e, "cannot set start offset");
                        }
                    }
                }
                tracing::info!(partitions = ?owned, "partitions assigned");
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assign failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Buffered rows of revoked partitions may still be committed: the offset
                // check in the commit drops whatever the new owner already wrote.
                tracing::info!(partitions = tpl.count(), "partitions revoked");
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
    resume: ResumeOffsets,
    assignment: Assignment,
) -> Result<StreamConsumer<IngestContext>, IngestError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("partition.assignment.strategy", "range")
        // Bounds what librdkafka prefetches while a flush is being written: the fetcher
        // pauses when this fills, which is the backpressure on the broker.
        .set("queued.max.messages.kbytes", "65536")
        .set("fetch.max.bytes", "52428800");
    for (k, v) in &kafka.properties {
        config.set(k, v);
    }
    config
        .create_with_context(IngestContext { resume, assignment })
        .map_err(IngestError::kafka("create consumer"))
}
