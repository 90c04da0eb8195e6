//! iceberg's file IO over `object_store`: the one path by which iceberg (and ingot's own
//! commits) read and write table files, whatever the warehouse is.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::io::{
    FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::Warehouse;

/// Builds [`ObjectStorage`] for the catalog's file IO. Serialized (iceberg requires it), it
/// keeps only the warehouse URI: a deserialized factory reaches the same warehouse with
/// credentials from the environment, never with secrets carried in the bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "WarehouseUri", try_from = "WarehouseUri")]
pub(crate) struct ObjectStorageFactory {
    warehouse: Warehouse,
}

#[derive(Serialize, Deserialize)]
struct WarehouseUri {
    uri: String,
}

impl From<ObjectStorageFactory> for WarehouseUri {
    fn from(factory: ObjectStorageFactory) -> Self {
        Self { uri: factory.warehouse.uri }
    }
}

impl TryFrom<WarehouseUri> for ObjectStorageFactory {
    type Error = String;
    fn try_from(value: WarehouseUri) -> Result<Self, String> {
        Warehouse::open(&value.uri, &Default::default()).map(Self::new).map_err(|e| e.to_string())
    }
}

impl ObjectStorageFactory {
    pub(crate) fn new(warehouse: Warehouse) -> Self {
        Self { warehouse }
    }
}

#[typetag::serde(name = "ingot-object-store")]
impl StorageFactory for ObjectStorageFactory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(Arc::new(ObjectStorage { factory: self.clone() }))
    }
}

/// One warehouse's files, as iceberg's `Storage`; serialized like its factory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ObjectStorage {
    factory: ObjectStorageFactory,
}

impl ObjectStorage {
    fn warehouse(&self) -> &Warehouse {
        &self.factory.warehouse
    }

    fn path(&self, location: &str) -> iceberg::Result<Path> {
        self.warehouse().object_path(location).map_err(|e| Error::new(ErrorKind::DataInvalid, e.to_string()))
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        self.warehouse().store().clone()
    }
}

#[async_trait::async_trait]
#[typetag::serde(name = "ingot-object-store")]
impl Storage for ObjectStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        match self.store().head(&self.path(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(to_iceberg(e)),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let meta = self.store().head(&self.path(path)?).await.map_err(to_iceberg)?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let got = self.store().get(&self.path(path)?).await.map_err(to_iceberg)?;
        got.bytes().await.map_err(to_iceberg)
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        Ok(Box::new(ObjectRead { store: self.store(), path: self.path(path)? }))
    }

    /// Metadata files are written create-only: two writers racing for the same version can
    /// never overwrite each other's file (the loser gets an error and its commit fails).
    /// Everything else has a fresh unique name and is written plainly.
    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        let mode = if is_metadata_file(path) { PutMode::Create } else { PutMode::Overwrite };
        let options = PutOptions { mode, ..Default::default() };
        match self.store().put_opts(&self.path(path)?, PutPayload::from(bs), options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(Error::new(
                ErrorKind::CatalogCommitConflicts,
                format!("metadata file {path} already exists: another writer committed this version"),
            )),
            Err(e) => Err(to_iceberg(e)),
        }
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        Ok(Box::new(ObjectWrite { writer: BufWriter::new(self.store(), self.path(path)?) }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        match self.store().delete(&self.path(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_iceberg(e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        let prefix = self.path(path)?;
        let store = self.store();
        let found = store.list(Some(&prefix)).map(|meta| meta.map(|m| m.location)).boxed();
        delete_all(store.delete_stream(found)).await
    }

    async fn delete_stream(&self, paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        let storage = self.clone();
        let paths = paths
            .map(move |p| {
                storage
                    .path(&p)
                    .map_err(|e| object_store::Error::Generic { store: "warehouse", source: Box::new(e) })
            })
            .boxed();
        delete_all(self.store().delete_stream(paths)).await
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

async fn delete_all(mut deleted: BoxStream<'static, object_store::Result<Path>>) -> iceberg::Result<()> {
    while let Some(result) = deleted.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(to_iceberg(e)),
        }
    }
    Ok(())
}

fn is_metadata_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".metadata.json")
        || name.ends_with(".metadata.json.gz")
        || name.ends_with(".gz.metadata.json")
}

struct ObjectRead {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

#[async_trait::async_trait]
impl FileRead for ObjectRead {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        self.store.get_range(&self.path, range).await.map_err(to_iceberg)
    }
}

/// A streaming upload: small files go up in one request, large ones as multipart.
struct ObjectWrite {
    writer: BufWriter,
}

#[async_trait::async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        self.writer.put(bs).await.map_err(to_iceberg)
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        self.writer.shutdown().await.map_err(|e| {
            Error::new(ErrorKind::Unexpected, format!("finish upload: {e}"))
                .with_retryable(true)
                .with_source(e)
        })
    }
}

/// An object-store error as iceberg's: a missing object or a failed precondition is about
/// the data and final; anything else (network, throttling, 5xx, credentials that may be
/// refreshed) may pass, so it is marked retryable.
pub(crate) fn to_iceberg(e: object_store::Error) -> Error {
    let (kind, retryable) = match &e {
        object_store::Error::NotFound { .. } => (ErrorKind::DataInvalid, false),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            (ErrorKind::PreconditionFailed, false)
        }
        object_store::Error::InvalidPath { .. } | object_store::Error::NotSupported { .. } => {
            (ErrorKind::FeatureUnsupported, false)
        }
        _ => (ErrorKind::Unexpected, true),
    };
    Error::new(kind, e.to_string()).with_retryable(retryable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageConfig as Settings;

    fn local() -> (tempfile::TempDir, ObjectStorage) {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::open(dir.path().to_str().unwrap(), &Settings::default()).unwrap();
        (dir, ObjectStorage { factory: ObjectStorageFactory::new(warehouse) })
    }

    #[tokio::test]
    async fn a_metadata_file_is_never_overwritten() {
        let (dir, storage) = local();
        let path = format!("file://{}/t/metadata/00001-a.metadata.json", dir.path().display());
        storage.write(&path, Bytes::from_static(b"first")).await.unwrap();
        let err = storage.write(&path, Bytes::from_static(b"second")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CatalogCommitConflicts, "{err}");
        assert_eq!(storage.read(&path).await.unwrap(), Bytes::from_static(b"first"));
    }

    #[tokio::test]
    async fn files_stream_up_read_by_range_and_delete_idempotently() {
        let (dir, storage) = local();
        let path = format!("{}/t/data/x.parquet", dir.path().display());
        let mut writer = storage.writer(&path).await.unwrap();
        writer.write(Bytes::from_static(b"hello ")).await.unwrap();
        writer.write(Bytes::from_static(b"world")).await.unwrap();
        writer.close().await.unwrap();
        assert_eq!(storage.metadata(&path).await.unwrap().size, 11);
        assert_eq!(
            storage.reader(&path).await.unwrap().read(6..11).await.unwrap(),
            Bytes::from_static(b"world")
        );
        storage.delete_prefix(&format!("{}/t", dir.path().display())).await.unwrap();
        assert!(!storage.exists(&path).await.unwrap());
        storage.delete(&path).await.unwrap();
    }

    #[test]
    fn serialized_storage_carries_the_uri_and_no_credentials() {
        let settings = Settings {
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("s3cr3t-value".into()),
            region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let storage = ObjectStorage {
            factory: ObjectStorageFactory::new(Warehouse::open("s3://bucket/wh", &settings).unwrap()),
        };
        let json = serde_json::to_string(&storage).unwrap();
        assert!(
            json.contains("s3://bucket/wh") && !json.contains("s3cr3t") && !json.contains("AKID"),
            "{json}"
        );
    }
}
