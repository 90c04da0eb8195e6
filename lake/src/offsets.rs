//! Source offsets kept in snapshot summaries: the table itself says which Kafka messages it
//! holds, which is what makes ingestion exactly-once without any outside offset store.

use std::collections::BTreeMap;

use iceberg::table::Table;
use serde::{Deserialize, Serialize};

use crate::{LakeError, TableState};

/// Summary property holding the cumulative [`SourceOffsets`] as JSON.
pub const OFFSETS_PROPERTY: &str = "ingot.source-offsets";
/// Summary property holding the deterministic id of the commit that made the snapshot.
pub const COMMIT_ID_PROPERTY: &str = "ingot.commit-id";

/// For each topic and partition, the next offset the table does not hold yet. Every commit
/// carries the whole map (its parent's merged with its own progress).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceOffsets(pub BTreeMap<String, BTreeMap<i32, i64>>);

impl SourceOffsets {
    /// The offsets the table records (see [`TableState`]: the newest in the current
    /// snapshot's ancestry, so another engine's commit on top does not hide them).
    pub fn of_table(table: &Table) -> Result<Self, LakeError> {
        Ok(TableState::of_table(table)?.offsets)
    }

    /// Next offset the table lacks for a partition, if it holds any of it.
    pub fn next(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic)?.get(&partition).copied()
    }

    /// Records that everything before `next` of the partition is in the table. Never moves
    /// a partition backwards.
    pub fn advance(&mut self, topic: &str, partition: i32, next: i64) {
        // Called for every consumed message: look the topic up by `&str` first, so the
        // common case allocates nothing.
        let partitions = match self.0.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.0.entry(topic.to_string()).or_default(),
        };
        let entry = partitions.entry(partition).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// Merges another map in, keeping the larger offset of each partition.
    pub fn merge(&mut self, other: &SourceOffsets) {
        for (topic, partitions) in &other.0 {
            for (partition, next) in partitions {
                self.advance(topic, *partition, *next);
            }
        }
    }

    /// The JSON stored in the summary.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("offsets serialize")
    }
}

/// The snapshot a commit with this id produced, if it is in the table's history. Used to
/// settle a commit whose outcome is unknown (timeout, lost connection) without guessing.
pub fn find_commit(table: &Table, commit_id: &str) -> Option<i64> {
    table
        .metadata()
        .snapshots()
        .find(|s| {
            s.summary().additional_properties.get(COMMIT_ID_PROPERTY).map(String::as_str) == Some(commit_id)
        })
        .map(|s| s.snapshot_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_never_moves_backwards() {
        let mut offsets = SourceOffsets::default();
        offsets.advance("orders", 0, 10);
        offsets.advance("orders", 0, 5);
        assert_eq!(offsets.next("orders", 0), Some(10));
        assert_eq!(offsets.next("orders", 1), None);
    }

    #[test]
    fn summary_json_round_trips() {
        let mut offsets = SourceOffsets::default();
        offsets.advance("orders", 2, 7);
        let back: SourceOffsets = serde_json::from_str(&offsets.to_json()).unwrap();
        assert_eq!(back, offsets);
        assert_eq!(offsets.to_json(), r#"{"orders":{"2":7}}"#);
    }
}
