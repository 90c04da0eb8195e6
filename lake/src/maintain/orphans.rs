//! Orphan-file cleanup: delete files under a table's location that no snapshot and no
//! metadata file in the log references, once they are older than a safety age (a writer
//! may be about to commit files it has just written).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use iceberg::table::Table;

use super::reachable::files_of;
use crate::{Lake, LakeError};

#[derive(Debug, Clone)]
pub struct OrphanOptions {
    /// Files younger than this are never deleted.
    pub older_than: Duration,
    pub dry_run: bool,
}

impl Default for OrphanOptions {
    fn default() -> Self {
        Self { older_than: Duration::from_secs(3 * 24 * 3600), dry_run: false }
    }
}

#[derive(Debug, Clone, Default)]
pub struct OrphanReport {
    /// Files under the table's location.
    pub scanned_files: usize,
    /// Unreferenced files old enough to delete (deleted unless a dry run).
    pub orphans: Vec<String>,
    /// Unreferenced files kept because they are younger than the safety age.
    pub too_young: usize,
}

impl Lake {
    /// Finds (and unless `dry_run`, deletes) the table's orphan files.
    pub async fn clean_orphans(
        &self,
        table: &Table,
        options: &OrphanOptions,
    ) -> Result<OrphanReport, LakeError> {
        let metadata = table.metadata();
        let storage = self.storage();
        let snapshots: Vec<_> = metadata.snapshots().cloned().collect();
        let referenced = files_of(table, &snapshots).await?;
        // Compared as object paths: `file:///a` and `/a` are the same file.
        let keep: HashSet<_> = referenced
            .metadata
            .iter()
            .chain(referenced.named_data.iter())
            .map(String::as_str)
            .chain(table.metadata_location())
            .chain(metadata.metadata_log().iter().map(|m| m.metadata_file.as_str()))
            .chain(metadata.statistics_iter().map(|s| s.statistics_path.as_str()))
            .filter_map(|location| storage.object_path(location).ok())
            .collect();

        let cutoff = SystemTime::now() - options.older_than;
        let mut report = OrphanReport::default();
        for file in storage.list(metadata.location()).await? {
            report.scanned_files += 1;
            let path = storage.object_path(&file.location)?;
            if keep.contains(&path) || path.filename() == Some("version-hint.text") {
                continue;
            }
            if file.last_modified > cutoff {
                report.too_young += 1;
                continue;
            }
            report.orphans.push(file.location);
        }
        report.orphans.sort();
        if !options.dry_run {
            for location in &report.orphans {
                if let Err(e) = storage.delete(location).await {
                    tracing::warn!(location, error = %e, "could not delete orphan file");
                }
            }
            if !report.orphans.is_empty() {
                tracing::info!(table = %table.identifier(), files = report.orphans.len(), "deleted orphan files");
            }
        }
        Ok(report)
    }
}
