//! Where a silver or gold run starts and ends: the input snapshot its target recorded (see
//! [`TableState`]), the input's current one, and the rows that changed in between. Commit ids
//! name that work, so a crashed run re-run over the same range finds what it committed.

use std::collections::BTreeMap;

use iceberg::spec::Operation;
use ingot_lake::{
    Lake, SnapshotChange, Table, TableIdent, TableState, ancestors, files_added_between, find_commit,
    parse_ident, source_history,
};
use sha2::{Digest, Sha256};

use crate::changes::Changes;
use crate::config::Kind;
use crate::{TransformConfig, TransformError};

/// Summary property of a quarantine snapshot written by a silver run: which run, over which
/// input range (`{"table":…, "from":{…}, "to":{…}}`). A re-run after a crash between the
/// quarantine commit and the silver commit narrows itself to that range, so nothing is
/// quarantined twice even when the input moved on meanwhile.
pub const QUARANTINED_FOR_PROPERTY: &str = "ingot.quarantined-for";

/// Deterministic id of one run's commit to one table: the target, the step, the input range
/// and the target snapshot the run built on. Two attempts of the same work get the same id;
/// different work (another range, or the same range over a target someone changed) another.
pub fn run_id(
    table: &str,
    step: &str,
    from: &BTreeMap<String, i64>,
    to: &BTreeMap<String, i64>,
    base: Option<i64>,
) -> String {
    let mut hash = Sha256::new();
    let base = base.map(|b| b.to_string()).unwrap_or_default();
    for part in
        [table, step, &serde_json::to_string(from).unwrap(), &serde_json::to_string(to).unwrap(), &base]
    {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

/// The input range one run covers: from the snapshot the target recorded to the input's
/// current one, and the rows that changed in between.
pub(crate) struct Pending {
    pub ident: TableIdent,
    pub input: Table,
    pub target: Option<Table>,
    pub state: TableState,
    pub from: BTreeMap<String, i64>,
    pub to: BTreeMap<String, i64>,
    pub up_to: i64,
    pub changes: Changes,
    /// The range stops where a crashed run's quarantine commit did, before the input's end.
    pub narrowed: bool,
}

impl Pending {
    /// The target's snapshot the run builds on.
    pub fn base(&self) -> Option<i64> {
        self.target.as_ref().and_then(|t| t.metadata().current_snapshot_id())
    }

    /// What `config`'s target has not read of its input yet; `None` when it is up to date or
    /// the input does not exist yet. A range whose only changes kept every row (another
    /// engine's rewrite of the same rows) is recorded as read and gives `None` too.
    pub async fn find(
        lake: &Lake,
        config: &TransformConfig,
        quarantine: &TableIdent,
    ) -> Result<Option<Pending>, TransformError> {
        let input_ident = parse_ident(&config.input)?;
        if !lake.exists(&input_ident).await? {
            return Ok(None);
        }
        let input = lake.load(&input_ident).await?;
        let ident = parse_ident(&config.table)?;
        let target = if lake.exists(&ident).await? { Some(lake.load(&ident).await?) } else { None };
        let state = target.as_ref().map(TableState::of_table).transpose()?.unwrap_or_default();
        let from = state.sources.get(&config.input).copied();
        let mut narrowed = false;
        let Some(mut up_to) = input.metadata().current_snapshot_id().filter(|u| Some(*u) != from) else {
            return Ok(None);
        };
        let from_map: BTreeMap<String, i64> = from.map(|f| (config.input.clone(), f)).into_iter().collect();
        if config.kind == Kind::Silver
            && let Some(earlier) =
                unfinished_quarantine(lake, quarantine, &config.table, target.as_ref(), &from_map).await?
            && input.metadata().snapshot_by_id(earlier).is_some()
        {
            tracing::info!(table = %config.table, up_to = earlier, "finishing a run whose quarantine commit landed before a crash");
            narrowed = earlier != up_to;
            up_to = earlier;
        }
        let added = files_added_between(&input, from, up_to).await?;
        if added.is_empty() {
            // Only rewrites of rows already read (compactions): the next run walks past them
            // again, reading manifests only.
            return Ok(None);
        }
        if !added.complete {
            tracing::warn!(table = %config.table, input = %config.input, "the snapshot last read is no longer in the input's history (expired?): reading every row; keys already held are dropped");
        }
        let changes = Changes::of(&input, added).await?;
        let pending = Pending {
            ident,
            input,
            target,
            state,
            from: from_map,
            to: BTreeMap::from([(config.input.clone(), up_to)]),
            up_to,
            changes,
            narrowed,
        };
        let unchanged = match config.kind {
            Kind::Silver => pending.changes.added_rows() == 0,
            Kind::Gold => pending.changes.added_rows() == 0 && pending.changes.removed_rows() == 0,
        };
        if unchanged {
            pending.record_read(lake, config).await?;
            return Ok(None);
        }
        Ok(Some(pending))
    }

    /// Commits a snapshot that only records the input range as read (a rewrite of rows the
    /// target already has), so later runs do not compare the same files again.
    async fn record_read(&self, lake: &Lake, config: &TransformConfig) -> Result<(), TransformError> {
        let Some(target) = &self.target else { return Ok(()) };
        let id = run_id(&config.table, "read", &self.from, &self.to, self.base());
        if find_commit(target, &id).is_some() {
            return Ok(());
        }
        let next = TableState { sources: self.to.clone(), ..Default::default() };
        let mut change = SnapshotChange::new(Operation::Append, id);
        change.properties.extend(next.progress_properties());
        change.on_conflict = ingot_lake::OnConflict::Fail;
        lake.commit_change(target, &change).await?;
        tracing::info!(table = %config.table, "input rewritten without new rows; recorded as read");
        Ok(())
    }
}

/// The input snapshot a crashed silver run had quarantined up to, if its quarantine commit
/// landed and its silver commit did not: a quarantine snapshot newer than the target's
/// snapshot that recorded `from`, recording a run of this table from the same place.
async fn unfinished_quarantine(
    lake: &Lake,
    quarantine: &TableIdent,
    table: &str,
    target: Option<&Table>,
    from: &BTreeMap<String, i64>,
) -> Result<Option<i64>, TransformError> {
    if !lake.exists(quarantine).await? {
        return Ok(None);
    }
    let quarantine = lake.load(quarantine).await?;
    // The crashed run started after the snapshot that recorded `from` — not after the target's
    // current one, which a compaction may have written since (carrying `from` forward).
    let recorded_from = target.zip(from.keys().next()).and_then(|(t, input)| {
        let current = t.metadata().current_snapshot_id()?;
        let (snapshot, _) = source_history(t, current, input).pop()?;
        t.metadata().snapshot_by_id(snapshot)
    });
    let since_ms = recorded_from.map_or(i64::MIN, |s| s.timestamp_ms());
    let metadata = quarantine.metadata();
    let newer =
        ancestors(metadata, metadata.current_snapshot_id()).take_while(|s| s.timestamp_ms() >= since_ms);
    for snapshot in newer {
        if let Some(json) = snapshot.summary().additional_properties.get(QUARANTINED_FOR_PROPERTY)
            && let Ok(run) = serde_json::from_str::<QuarantinedFor>(json)
            && run.table == table
            && &run.from == from
        {
            return Ok(run.to.values().next().copied());
        }
    }
    Ok(None)
}

/// The value of [`QUARANTINED_FOR_PROPERTY`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct QuarantinedFor {
    pub table: String,
    pub from: BTreeMap<String, i64>,
    pub to: BTreeMap<String, i64>,
}
