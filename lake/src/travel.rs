//! Resolving "as of" to a snapshot exactly as Trino does, so ingot and Trino answer the same
//! question with the same rows.

use chrono::{DateTime, TimeZone, Utc};
use iceberg::table::Table;

use crate::LakeError;

/// A point in a table's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The snapshot that was current at this instant.
    Timestamp(DateTime<Utc>),
    /// This snapshot id.
    Version(i64),
}

/// The snapshot id `as_of` names. For a timestamp that is the snapshot-log entry with the
/// largest timestamp at or before it (the log's order is not trusted, as in Trino); an
/// instant before the first entry is an error naming the first snapshot's time.
pub fn snapshot_as_of(table: &Table, as_of: AsOf) -> Result<i64, LakeError> {
    let ident = table.identifier();
    match as_of {
        AsOf::Version(id) => match table.metadata().snapshot_by_id(id) {
            Some(_) => Ok(id),
            None => Err(LakeError::TimeTravel {
                table: ident.to_string(),
                problem: format!("snapshot {id} is not in the table's history (expired or never existed)"),
            }),
        },
        AsOf::Timestamp(at) => {
            let history = table.metadata().history();
            let millis = at.timestamp_millis();
            // Later entries win ties: with equal timestamps the later commit is the current one.
            let found = history
                .iter()
                .enumerate()
                .filter(|(_, entry)| entry.timestamp_ms <= millis)
                .max_by_key(|(i, entry)| (entry.timestamp_ms, *i))
                .map(|(_, entry)| entry.snapshot_id);
            match (found, history.iter().map(|e| e.timestamp_ms).min()) {
                (Some(id), _) => Ok(id),
                (None, Some(first)) => Err(LakeError::TimeTravel {
                    table: ident.to_string(),
                    problem: format!(
                        "no snapshot at or before {}; the table's first snapshot is at {}",
                        at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
                        format_millis(first)
                    ),
                }),
                (None, None) => Err(LakeError::TimeTravel {
                    table: ident.to_string(),
                    problem: "the table has no snapshots yet".into(),
                }),
            }
        }
    }
}

fn format_millis(millis: i64) -> String {
    match Utc.timestamp_millis_opt(millis).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        None => format!("{millis} ms"),
    }
}
