//! What a silver or gold snapshot records about its inputs, so the next run knows where to
//! start and a re-run of the same range is recognised.

use std::collections::BTreeMap;

use ingot_lake::{AddedFiles, Lake, Table, TableIdent, files_added_since, parse_ident};

use crate::{TransformConfig, TransformError};
use sha2::{Digest, Sha256};

/// Summary property: `{"<input table>": <snapshot id read up to>}`.
pub const SOURCE_SNAPSHOTS_PROPERTY: &str = "ingot.source-snapshots";
/// Summary property: event time (µs since the epoch) behind which windows are final.
pub const WATERMARK_PROPERTY: &str = "ingot.watermark-us";

/// What the table's current snapshot says it has read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub sources: BTreeMap<String, i64>,
    pub watermark_us: Option<i64>,
}

impl Progress {
    pub fn of(table: Option<&Table>) -> Progress {
        let Some(snapshot) = table.and_then(|t| t.metadata().current_snapshot()) else {
            return Progress::default();
        };
        let props = &snapshot.summary().additional_properties;
        Progress {
            sources: props
                .get(SOURCE_SNAPSHOTS_PROPERTY)
                .and_then(|json| serde_json::from_str(json).ok())
                .unwrap_or_default(),
            watermark_us: props.get(WATERMARK_PROPERTY).and_then(|v| v.parse().ok()),
        }
    }

    /// Summary properties recording this progress.
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut props = vec![(
            SOURCE_SNAPSHOTS_PROPERTY.to_string(),
            serde_json::to_string(&self.sources).expect("serializes"),
        )];
        if let Some(w) = self.watermark_us {
            props.push((WATERMARK_PROPERTY.to_string(), w.to_string()));
        }
        props
    }
}

/// Deterministic id of a run over an input range: a crashed run re-run over the same range
/// gets the same id and finds what it already committed.
pub fn run_id(table: &str, step: &str, from: &BTreeMap<String, i64>, to: &BTreeMap<String, i64>) -> String {
    let mut hash = Sha256::new();
    for part in [table, step, &serde_json::to_string(from).unwrap(), &serde_json::to_string(to).unwrap()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

/// The input range one run covers: from the snapshot the target recorded to the input's
/// current one, and the files added in between.
pub(crate) struct Pending {
    pub ident: TableIdent,
    pub input: Table,
    pub target: Option<Table>,
    pub progress: Progress,
    pub from: BTreeMap<String, i64>,
    pub to: BTreeMap<String, i64>,
    pub up_to: i64,
    pub added: AddedFiles,
}

impl Pending {
    /// What `config`'s target has not read of its input yet; `None` when it is up to date,
    /// the input does not exist yet, or only compactions happened since (no new rows).
    pub async fn find(lake: &Lake, config: &TransformConfig) -> Result<Option<Pending>, TransformError> {
        let input_ident = parse_ident(&config.input)?;
        if !lake.exists(&input_ident).await? {
            return Ok(None);
        }
        let input = lake.load(&input_ident).await?;
        let ident = parse_ident(&config.table)?;
        let target = if lake.exists(&ident).await? { Some(lake.load(&ident).await?) } else { None };
        let progress = Progress::of(target.as_ref());
        let from = progress.sources.get(&config.input).copied();
        let added = files_added_since(&input, from).await?;
        let Some(up_to) = added.up_to.filter(|u| Some(*u) != from) else {
            return Ok(None);
        };
        if added.paths.is_empty() {
            // Only compactions since: the next run walks past them again, cheaply.
            return Ok(None);
        }
        Ok(Some(Pending {
            ident,
            input,
            target,
            from: from.map(|f| (config.input.clone(), f)).into_iter().collect(),
            to: BTreeMap::from([(config.input.clone(), up_to)]),
            progress,
            up_to,
            added,
        }))
    }
}
