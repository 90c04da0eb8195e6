use ingot_lake::LakeError;
use ingot_proto::ProtoError;
use rdkafka::error::KafkaError;

/// What can stop ingestion, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: KafkaError,
    },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Contract(#[from] ProtoError),
    #[error("topic `{topic}`: {problem}")]
    Topic { topic: String, problem: String },
    #[error("gave up on {what} after {attempts} attempts: {last}")]
    RetriesExhausted { what: String, attempts: u32, last: String },
    /// `--until-caught-up` could not read every partition to the end it had at start.
    #[error(
        "not caught up: no progress for {} on {partitions} (consumer group `{group}`); {cause}",
        humantime::format_duration(*timeout)
    )]
    NotCaughtUp { group: String, timeout: std::time::Duration, partitions: String, cause: String },
    /// A `[kafka]` or `[ingest]` setting cannot work; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The first request to the cluster failed: no broker answered, the TLS handshake
    /// failed, or the login was refused (`cause` is librdkafka's own words).
    #[error("cannot connect to Kafka at {brokers}: {cause}")]
    Unreachable { brokers: String, cause: String },
}

impl IngestError {
    /// Whether the same work can succeed later (broker or catalog briefly unavailable).
    pub fn retryable(&self) -> bool {
        match self {
            IngestError::Kafka { source, .. } => source.rdkafka_error_code().is_some_and(|code| {
                use rdkafka::types::RDKafkaErrorCode as C;
                matches!(
                    code,
                    C::BrokerTransportFailure
                        | C::AllBrokersDown
                        | C::OperationTimedOut
                        | C::RequestTimedOut
                        | C::NetworkException
                        | C::QueueFull
                        | C::LeaderNotAvailable
                        | C::NotLeaderForPartition
                )
            }),
            IngestError::Lake(e) => e.retryable(),
            IngestError::Contract(e) => e.retryable(),
            IngestError::Topic { .. } | IngestError::RetriesExhausted { .. } | IngestError::Config(_) => {
                false
            }
            // A broker that is down may come back; a certificate or a password will not fix itself.
            IngestError::Unreachable { cause, .. } => !crate::probe::is_credential_failure(cause),
            // Running again later may find the partitions free.
            IngestError::NotCaughtUp { .. } => true,
        }
    }

    pub(crate) fn kafka(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Self {
        let context = context.into();
        move |source| IngestError::Kafka { context, source }
    }
}
