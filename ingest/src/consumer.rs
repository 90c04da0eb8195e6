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

/// High watermark per partition as the last fetch responses reported it. Taken from
/// librdkafka's statistics rather than a ListOffsets request: fetch responses are what the
/// consumer actually reads against, and some brokers answer ListOffsets loosely.
pub(crate) type HighWatermarks = Arc<Mutex<HashMap<(String, i32), i64>>>;

pub(crate) struct IngestContext {
    pub resume: ResumeOffsets,
    pub assignment: Assignment,
    pub high_watermarks: HighWatermarks,
}

impl ClientContext for IngestContext {
    fn stats_raw(&self, statistics: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<serde_json::Value>(statistics) else {
            return;
        };
        let Some(topics) = stats.get("topics").and_then(|t| t.as_object()) else {
            return;
        };
        let mut highs = self.high_watermarks.lock().expect("watermarks lock");
        for (topic, t) in topics {
            let Some(partitions) = t.get("partitions").and_then(|p| p.as_object()) else { continue };
            for (partition, p) in partitions {
                let (Ok(partition), Some(hi)) =
                    (partition.parse::<i32>(), p.get("hi_offset").and_then(|h| h.as_i64()))
                else {
                    continue;
                };
                // -1 is librdkafka's internal "unassigned" partition; negative offsets are unknown.
                if partition >= 0 && hi >= 0 {
                    highs.insert((topic.clone(), partition), hi);
                }
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // End of partition is reported here too; it is normal, not an error.
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode;
        if !matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF))
        {
            tracing::warn!(%error, reason, "kafka client error");
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
                for (topic, partition) in owned.iter() {
                    if let Some(next) = resume.get(&(topic.clone(), *partition))
                        && let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Offset(*next))
                    {
                        tracing::error!(%topic, partition, error = %e, "cannot set start offset");
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
    context: IngestContext,
    stats_interval_ms: u32,
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
        // A crashed member holds its partitions until its session expires; Kafka's 45 s
        // default would stall a restarted ingot that long.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        // Bounds what librdkafka prefetches while a flush is being written: the fetcher
        // pauses when this fills, which is the backpressure on the broker.
        .set("queued.max.messages.kbytes", "65536")
        .set("fetch.max.bytes", "52428800")
        // librdkafka's 500 ms default lets a quiet partition's fetch sit at the broker for
        // half a second, which shows up directly in produce → visible latency.
        .set("fetch.wait.max.ms", "100")
        .set("statistics.interval.ms", stats_interval_ms.to_string());
    for (k, v) in &kafka.properties {
        config.set(k, v);
    }
    config.create_with_context(context).map_err(IngestError::kafka("create consumer"))
}
