//! ingot's state in a table: the keys it keeps in snapshot summaries, read and written in one
//! place.
//!
//! A table is shared: another engine's snapshot (a PyIceberg append, Trino's `OPTIMIZE`) carries
//! none of these keys, and ingot's own compaction changes no progress. So every key is read
//! from the newest snapshot in the current one's ancestry that carries it, never from the
//! current snapshot alone, and every snapshot ingot writes carries every key its parent's
//! state holds unless the commit sets a new value.

use std::collections::{BTreeMap, HashMap};

use iceberg::spec::{SnapshotRef, TableMetadata};
use iceberg::table::Table;

use crate::LakeError;
use crate::offsets::{OFFSETS_PROPERTY, SourceOffsets};

/// `{"<input table>": <snapshot id read up to>}`: what a silver or gold table has read.
pub const SOURCE_SNAPSHOTS_PROPERTY: &str = "ingot.source-snapshots";
/// Event time (µs since the epoch) behind which a silver table's windows are final.
pub const WATERMARK_PROPERTY: &str = "ingot.watermark-us";

/// The keys that describe a table's progress and are carried forward by every ingot snapshot.
/// (`ingot.commit-id` and notes such as `ingot.backfill` belong to one snapshot only.)
pub const CARRIED_KEYS: [&str; 3] = [OFFSETS_PROPERTY, SOURCE_SNAPSHOTS_PROPERTY, WATERMARK_PROPERTY];

/// What a table records about its inputs, as of one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    /// Kafka messages held (bronze and quarantine tables).
    pub offsets: SourceOffsets,
    /// Input snapshots read up to (silver and gold tables).
    pub sources: BTreeMap<String, i64>,
    /// Silver's watermark; gold copies its input's.
    pub watermark_us: Option<i64>,
}

impl TableState {
    /// The state as of the table's current snapshot (empty for a table without snapshots).
    pub fn of_table(table: &Table) -> Result<Self, LakeError> {
        Self::at(table, table.metadata().current_snapshot_id())
    }

    /// The state as of `snapshot` (empty for `None`).
    pub fn at(table: &Table, snapshot: Option<i64>) -> Result<Self, LakeError> {
        let raw = carried_properties(table.metadata(), snapshot);
        let invalid = |key: &str, e: &dyn std::fmt::Display| LakeError::Summary {
            table: table.identifier().to_string(),
            problem: format!("{key} is not valid: {e}"),
        };
        let mut state = TableState::default();
        if let Some(json) = raw.get(OFFSETS_PROPERTY) {
            state.offsets = serde_json::from_str(json).map_err(|e| invalid(OFFSETS_PROPERTY, &e))?;
        }
        if let Some(json) = raw.get(SOURCE_SNAPSHOTS_PROPERTY) {
            state.sources = serde_json::from_str(json).map_err(|e| invalid(SOURCE_SNAPSHOTS_PROPERTY, &e))?;
        }
        if let Some(value) = raw.get(WATERMARK_PROPERTY) {
            state.watermark_us = Some(value.parse().map_err(|e| invalid(WATERMARK_PROPERTY, &e))?);
        }
        Ok(state)
    }

    /// Summary properties recording the progress keys of this state that are set.
    pub fn progress_properties(&self) -> Vec<(String, String)> {
        let mut props = Vec::new();
        if !self.sources.is_empty() {
            props.push((
                SOURCE_SNAPSHOTS_PROPERTY.to_string(),
                serde_json::to_string(&self.sources).expect("source snapshots serialize"),
            ));
        }
        if let Some(w) = self.watermark_us {
            props.push((WATERMARK_PROPERTY.to_string(), w.to_string()));
        }
        props
    }
}

/// `snapshot` and its ancestors, newest first, as far as the metadata still holds them
/// (expiry cuts the chain).
pub fn ancestors(metadata: &TableMetadata, snapshot: Option<i64>) -> impl Iterator<Item = &SnapshotRef> {
    std::iter::successors(snapshot.and_then(|id| metadata.snapshot_by_id(id)), move |s| {
        s.parent_snapshot_id().and_then(|p| metadata.snapshot_by_id(p))
    })
}

/// For each carried key set as of `snapshot`, the newest snapshot in its ancestry that has it.
fn carriers(metadata: &TableMetadata, snapshot: Option<i64>) -> Vec<(&'static str, &SnapshotRef)> {
    let mut found: Vec<(&'static str, &SnapshotRef)> = Vec::new();
    for snapshot in ancestors(metadata, snapshot) {
        let props = &snapshot.summary().additional_properties;
        for key in CARRIED_KEYS {
            if props.contains_key(key) && !found.iter().any(|(k, _)| *k == key) {
                found.push((key, snapshot));
            }
        }
        if found.len() == CARRIED_KEYS.len() {
            break;
        }
    }
    found
}

/// The raw value of every carried key as of `snapshot`: each from the newest snapshot in its
/// ancestry that has it.
pub(crate) fn carried_properties(metadata: &TableMetadata, snapshot: Option<i64>) -> HashMap<String, String> {
    carriers(metadata, snapshot)
        .into_iter()
        .map(|(key, s)| (key.to_string(), s.summary().additional_properties[key].clone()))
        .collect()
}

/// The snapshots the current state's keys are read from (see [`carried_properties`]).
pub(crate) fn state_snapshots(metadata: &TableMetadata) -> Vec<i64> {
    carriers(metadata, metadata.current_snapshot_id()).into_iter().map(|(_, s)| s.snapshot_id()).collect()
}

/// Adds to `properties` every carried key of the table's current state it does not set
/// itself: what every snapshot ingot writes does, so progress survives its own commits.
pub(crate) fn carry_forward(metadata: &TableMetadata, properties: &mut HashMap<String, String>) {
    for (key, value) in carried_properties(metadata, metadata.current_snapshot_id()) {
        properties.entry(key).or_insert(value);
    }
}

/// Which snapshot of `input` each snapshot of `table` records having read, oldest first,
/// following the ancestry of `up_to`: `(snapshot of table, snapshot of input)`, one entry per
/// change of the recorded input snapshot (snapshots that did not move it — compactions,
/// another engine's edits — are skipped).
pub fn source_history(table: &Table, up_to: i64, input: &str) -> Vec<(i64, i64)> {
    let chain: Vec<&SnapshotRef> = ancestors(table.metadata(), Some(up_to)).collect();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for snapshot in chain.into_iter().rev() {
        let Some(&source) = recorded_sources(snapshot).as_ref().and_then(|s| s.get(input)) else { continue };
        if runs.last().map(|r| r.1) != Some(source) {
            runs.push((snapshot.snapshot_id(), source));
        }
    }
    runs
}

/// The input snapshots this one snapshot's own summary records (not its ancestors').
pub(crate) fn recorded_sources(snapshot: &SnapshotRef) -> Option<BTreeMap<String, i64>> {
    let json = snapshot.summary().additional_properties.get(SOURCE_SNAPSHOTS_PROPERTY)?;
    serde_json::from_str(json).ok()
}

/// False when expiry cut `snapshot`'s ancestry (a parent is no longer in the metadata).
pub fn ancestry_complete(table: &Table, snapshot: i64) -> bool {
    ancestors(table.metadata(), Some(snapshot))
        .last()
        .is_some_and(|oldest| oldest.parent_snapshot_id().is_none())
}
