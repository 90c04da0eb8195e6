//! Reading and writing Kafka topics directly, around ingot: what a DLQ consumer sees, and
//! hostile messages `ingot produce` never makes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Broker;

/// Reads `count` messages of a topic from the beginning and returns each one's headers.
pub async fn read_topic(broker: &Broker, topic: &str, count: usize) -> Vec<BTreeMap<String, String>> {
    read_records(broker, topic, count).await.into_iter().map(|r| r.headers).collect()
}

/// One message as a consumer sees it.
pub struct Record {
    pub headers: BTreeMap<String, String>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// Reads `count` messages of a topic from the beginning.
pub async fn read_records(broker: &Broker, topic: &str, count: usize) -> Vec<Record> {
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Headers;
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} messages on {topic}", out.len()))
            .unwrap();
        let mut headers = BTreeMap::new();
        if let Some(h) = message.headers() {
            for header in h.iter() {
                let value = header.value.map(|v| String::from_utf8_lossy(v).to_string()).unwrap_or_default();
                headers.insert(header.key.to_string(), value);
            }
        }
        let (key, payload) = (message.key().map(<[u8]>::to_vec), message.payload().map(<[u8]>::to_vec));
        out.push(Record { headers, key, payload });
    }
    out
}

/// Produces raw payloads to `topic` (each with an optional Kafka timestamp in ms), for the
/// hostile messages `ingot produce` never makes; waits until the broker has them all.
pub async fn produce_raw(broker: &Broker, topic: &str, messages: &[(Vec<u8>, Option<i64>)]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("message.max.bytes", (4 << 20).to_string())
        .create()
        .unwrap();
    for (i, (payload, timestamp)) in messages.iter().enumerate() {
        let key = format!("raw-{i}");
        let mut record = FutureRecord::to(topic).payload(payload.as_slice()).key(key.as_str());
        if let Some(ms) = timestamp {
            record = record.timestamp(*ms);
        }
        producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
    }
}
