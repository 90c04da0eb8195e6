//! What a silver or gold snapshot records about its inputs, so the next run knows where to
//! start and a re-run of the same range is recognised.

use std::collections::BTreeMap;

use ingot_lake::Table;
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
