//! The service's watch over partitions it does not own: every few seconds it compares each
//! partition's end with what the tables hold, and asks the consume loop to rejoin the group
//! when some lagging partition has no live owner (see `orphans`). It runs as its own task,
//! with its own group-less client, so slow metadata requests never hold up consuming.

use std::sync::Arc;
use std::time::Duration;

use ingot_lake::{Lake, TableIdent};
use rdkafka::consumer::BaseConsumer;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::caught_up::{tables_offsets, watermarks};
use crate::consumer::Assignment;
use crate::orphans::Orphans;
use crate::{IngestError, KafkaConfig};

const EVERY: Duration = Duration::from_secs(5);

/// What the watch needs to see.
pub(crate) struct Watch {
    pub kafka: KafkaConfig,
    pub topics: Vec<String>,
    /// The bronze and quarantine tables, whose offsets say what has been read.
    pub tables: Vec<TableIdent>,
    pub lake: Lake,
    pub assignment: Assignment,
    pub patience: Duration,
}

impl Watch {
    /// Starts watching; each message on the receiver names orphaned partitions.
    pub fn spawn(self) -> Result<(JoinHandle<()>, mpsc::Receiver<Vec<String>>), IngestError> {
        let client: BaseConsumer = crate::client_config(&self.kafka, &[])?
            .create()
            .map_err(IngestError::kafka("create the partition watch client"))?;
        let client = Arc::new(client);
        let (tx, rx) = mpsc::channel(1);
        let handle = tokio::spawn(async move {
            let mut orphans = Orphans::new(self.patience);
            loop {
                tokio::time::sleep(EVERY).await;
                if tx.is_closed() {
                    return;
                }
                match self.orphaned(&client, &mut orphans).await {
                    Ok(Some(partitions)) => {
                        if tx.send(partitions).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "partition watch: cannot read ends or tables"),
                }
            }
        });
        Ok((handle, rx))
    }

    async fn orphaned(
        &self,
        client: &Arc<BaseConsumer>,
        orphans: &mut Orphans,
    ) -> Result<Option<Vec<String>>, IngestError> {
        let recorded = tables_offsets(&self.lake, &self.tables).await?;
        let mut behind = Vec::new();
        for topic in &self.topics {
            let (client, name) = (client.clone(), topic.clone());
            let ends = tokio::task::spawn_blocking(move || watermarks(client.as_ref(), &name))
                .await
                .map_err(|e| IngestError::Topic { topic: topic.clone(), problem: e.to_string() })??;
            for (partition, high) in ends {
                let covered = recorded.next(topic, partition).unwrap_or(0);
                if covered < high {
                    behind.push(((topic.clone(), partition), covered));
                }
            }
        }
        let owned = self.assignment.lock().expect("assignment lock").clone();
        Ok(orphans.check(behind.iter().map(|(key, covered)| (key, *covered)), &owned))
    }
}
