//! Where table files live. The warehouse is a URI — a local directory (plain path or
//! `file://`) or an S3 bucket prefix (`s3://bucket/prefix`, AWS or any S3-compatible store) —
//! served by one `object_store` client. Every file ingot reads, writes, lists or deletes
//! (data, manifests, metadata JSON, expiry, orphan cleanup) goes through it: iceberg reaches
//! it through [`ObjectStorage`], maintenance through [`Warehouse::list`] and
//! [`Warehouse::delete`]. `gs://` and `abfss://` would be one more arm in [`Warehouse::open`].

mod config;
mod object_io;

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

pub use config::StorageConfig;
pub(crate) use object_io::ObjectStorageFactory;

use crate::LakeError;

/// How long a reachability probe of the warehouse waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// An opened warehouse: its root URI and the client that reaches every file under it.
#[derive(Debug, Clone)]
pub struct Warehouse {
    /// The root, normalised: `file:///abs/dir` or `s3://bucket/prefix` (no trailing slash).
    uri: String,
    kind: Kind,
    store: Arc<dyn ObjectStore>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Locations are `file:///abs/path` (or bare absolute paths, as older tables may hold).
    Local,
    /// Locations are `s3://<bucket>/<key>` (or `s3a://`).
    S3 { bucket: String },
}

/// A file found under a location.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Its full location, in the form table metadata uses.
    pub location: String,
    pub last_modified: SystemTime,
    pub size: u64,
}

impl Warehouse {
    /// Opens the warehouse at `location` (creating a local directory if missing). Nothing is
    /// sent to object storage yet: credentials and reachability are checked by [`probe`].
    ///
    /// [`probe`]: Warehouse::probe
    pub fn open(location: &str, config: &StorageConfig) -> Result<Self, LakeError> {
        if let Some(rest) = location.strip_prefix("s3://").or_else(|| location.strip_prefix("s3a://")) {
            let rest = rest.trim_end_matches('/');
            let bucket = rest.split('/').next().unwrap_or_default();
            if bucket.is_empty() {
                return Err(LakeError::Config(format!(
                    "warehouse `{location}` names no bucket (s3://<bucket>/<prefix>)"
                )));
            }
            let store =
                config.s3_builder(AmazonS3Builder::from_env().with_bucket_name(bucket)).build().map_err(
                    |e| LakeError::Config(config.scrub(&format!("warehouse {location}: S3 settings: {e}"))),
                )?;
            return Ok(Self {
                uri: format!("s3://{rest}"),
                kind: Kind::S3 { bucket: bucket.to_string() },
                store: Arc::new(store),
            });
        }
        if let Some((scheme, _)) = location.split_once("://")
            && scheme != "file"
        {
            let location = location.trim_end_matches('/');
            return Err(LakeError::Config(format!(
                "warehouse `{location}`: scheme `{scheme}://` is not supported (use a local directory, file:// or s3://)"
            )));
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        let dir = std::path::absolute(FsPath::new(dir))
            .map_err(|e| LakeError::Config(format!("cannot resolve warehouse {location}: {e}")))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| LakeError::Config(format!("cannot create warehouse {}: {e}", dir.display())))?;
        Ok(Self {
            uri: format!("file://{}", dir.display()),
            kind: Kind::Local,
            store: Arc::new(LocalFileSystem::new()),
        })
    }

    /// The root URI, as table locations start.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Whether the warehouse answers at all: a local directory exists; a bucket answers a
    /// listing within a few seconds. An error while it does not is an outage, not a problem
    /// with a table. Returns the cause when it does not.
    pub async fn probe(&self) -> Result<(), String> {
        match &self.kind {
            Kind::Local => {
                let dir = self.uri.strip_prefix("file://").unwrap_or(&self.uri);
                if FsPath::new(dir).is_dir() { Ok(()) } else { Err(format!("{dir} is not a directory")) }
            }
            Kind::S3 { .. } => {
                let root = self.object_path(&self.uri).map_err(|e| e.to_string())?;
                let mut listing = self.store.list(Some(&root));
                match tokio::time::timeout(PROBE_TIMEOUT, listing.next()).await {
                    Err(_) => Err(format!("no answer from {} within {PROBE_TIMEOUT:?}", self.uri)),
                    Ok(Some(Err(e))) => Err(e.to_string()),
                    Ok(_) => Ok(()),
                }
            }
        }
    }

    /// The object path of a full location under this warehouse's store.
    pub(crate) fn object_path(&self, location: &str) -> Result<Path, LakeError> {
        let foreign = || {
            LakeError::Unsupported(format!(
                "location {location} is outside the warehouse's storage ({})",
                self.uri
            ))
        };
        match &self.kind {
            Kind::Local => {
                let path = location.strip_prefix("file://").unwrap_or(location);
                if !path.starts_with('/') {
                    return Err(foreign());
                }
                Path::from_absolute_path(path)
                    .map_err(|e| LakeError::Config(format!("location {location}: {e}")))
            }
            Kind::S3 { bucket } => {
                let rest = location
                    .strip_prefix("s3://")
                    .or_else(|| location.strip_prefix("s3a://"))
                    .ok_or_else(foreign)?;
                let key = match rest.split_once('/') {
                    Some((b, key)) if b == bucket => key,
                    None if rest == bucket => "",
                    _ => return Err(foreign()),
                };
                Ok(Path::parse(key).unwrap_or_else(|_| Path::from(key)))
            }
        }
    }

    /// The full location of an object path (the inverse of `object_path`).
    fn location_of(&self, path: &Path) -> String {
        match &self.kind {
            Kind::Local => format!("file:///{path}"),
            Kind::S3 { bucket } => format!("s3://{bucket}/{path}"),
        }
    }

    /// Every file under `location` (recursively).
    pub async fn list(&self, location: &str) -> Result<Vec<StoredFile>, LakeError> {
        let prefix = self.object_path(location)?;
        let mut listing = self.store.list(Some(&prefix));
        let mut files = Vec::new();
        while let Some(entry) = listing.next().await {
            let meta = entry.map_err(storage_error(format!("list {location}")))?;
            files.push(StoredFile {
                location: self.location_of(&meta.location),
                last_modified: meta.last_modified.into(),
                size: meta.size,
            });
        }
        Ok(files)
    }

    /// Deletes one file; a file already gone is not an error.
    pub async fn delete(&self, location: &str) -> Result<(), LakeError> {
        match self.store.delete(&self.object_path(location)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(format!("delete {location}"))(e)),
        }
    }
}

/// Maps an object-store failure to ingot's error: a missing object or a refused precondition
/// is about the data; anything else (network, throttling, 5xx) is an outage worth retrying.
pub(crate) fn storage_error(context: impl Into<String>) -> impl FnOnce(object_store::Error) -> LakeError {
    move |e| {
        let context = context.into();
        let error = object_io::to_iceberg(e);
        if error.retryable() {
            LakeError::Unavailable { context, source: Box::new(error) }
        } else {
            LakeError::Iceberg { context, source: Box::new(error) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_map_to_keys_of_their_bucket_only() {
        let warehouse = Warehouse::open(
            "s3://lake/wh/",
            &StorageConfig { region: Some("us-east-1".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(warehouse.uri(), "s3://lake/wh");
        assert_eq!(
            warehouse.object_path("s3://lake/wh/a/b=1/c.parquet").unwrap().as_ref(),
            "wh/a/b=1/c.parquet"
        );
        assert_eq!(warehouse.object_path("s3a://lake/x").unwrap().as_ref(), "x");
        assert!(warehouse.object_path("s3://other/wh/a").is_err());
        assert!(warehouse.object_path("/tmp/a").is_err());
        let path = warehouse.object_path("s3://lake/wh/t/metadata/1.metadata.json").unwrap();
        assert_eq!(warehouse.location_of(&path), "s3://lake/wh/t/metadata/1.metadata.json");
    }

    #[test]
    fn local_locations_round_trip_with_or_without_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::open(dir.path().to_str().unwrap(), &StorageConfig::default()).unwrap();
        let file = format!("{}/ns/t/data/event_date=2026-01-01/x.parquet", dir.path().display());
        let uri = format!("file://{file}");
        assert_eq!(warehouse.location_of(&warehouse.object_path(&uri).unwrap()), uri);
        // `file:///a` and `/a` are the same file.
        assert_eq!(warehouse.object_path(&uri).unwrap(), warehouse.object_path(&file).unwrap());
        assert!(warehouse.object_path("s3://b/k").is_err());
    }

    #[test]
    fn unknown_schemes_are_refused_by_name() {
        let err = Warehouse::open("gs://bucket/wh", &StorageConfig::default()).unwrap_err().to_string();
        assert!(err.contains("gs://"), "{err}");
        let err = Warehouse::open("s3://", &StorageConfig::default()).unwrap_err().to_string();
        assert!(err.contains("names no bucket"), "{err}");
    }
}
