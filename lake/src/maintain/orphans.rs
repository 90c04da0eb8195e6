//! Orphan-file cleanup: delete files under a table's location that no snapshot and no
//! metadata file in the log references, once they are older than a safety age (a writer
//! may be about to commit files it has just written).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
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
        let root = local_path(metadata.location())?;
        let snapshots: Vec<_> = metadata.snapshots().cloned().collect();
        let referenced = files_of(table, &snapshots).await?;
        let mut keep: HashSet<PathBuf> = referenced
            .metadata
            .iter()
            .chain(referenced.named_data.iter())
            .filter_map(|p| local_path(p).ok())
            .collect();
        keep.extend(table.metadata_location().and_then(|p| local_path(p).ok()));
        keep.extend(metadata.metadata_log().iter().filter_map(|m| local_path(&m.metadata_file).ok()));
        keep.extend(metadata.statistics_iter().filter_map(|s| local_path(&s.statistics_path).ok()));

        let cutoff = SystemTime::now() - options.older_than;
        let mut report = OrphanReport::default();
        for file in walk(&root)? {
            report.scanned_files += 1;
            if keep.contains(&file) || file.file_name().is_some_and(|n| n == "version-hint.text") {
                continue;
            }
            let modified =
                std::fs::metadata(&file).and_then(|m| m.modified()).unwrap_or_else(|_| SystemTime::now());
            if modified > cutoff {
                report.too_young += 1;
                continue;
            }
            report.orphans.push(file.display().to_string());
        }
        report.orphans.sort();
        if !options.dry_run {
            for path in &report.orphans {
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::warn!(path, error = %e, "could not delete orphan file");
                }
            }
            if !report.orphans.is_empty() {
                tracing::info!(table = %table.identifier(), files = report.orphans.len(), "deleted orphan files");
            }
        }
        Ok(report)
    }
}

/// The local path of a `file://` location (the only storage this build writes).
fn local_path(location: &str) -> Result<PathBuf, LakeError> {
    match location.strip_prefix("file://").or_else(|| location.starts_with('/').then_some(location)) {
        Some(path) => Ok(PathBuf::from(path)),
        None => Err(LakeError::Unsupported(format!(
            "orphan cleanup lists local directories only; table location is {location}"
        ))),
    }
}

fn walk(root: &Path) -> Result<Vec<PathBuf>, LakeError> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LakeError::Config(format!("list {}: {e}", dir.display()))),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}
