//! AWS Glue as the catalog (what Athena reads). A Glue database is a namespace; a table is an
//! `EXTERNAL_TABLE` entry whose `metadata_location` parameter points at the current metadata
//! file. Commits are compare-and-swap on the entry's `VersionId`: ingot reads the entry,
//! checks it still points where the commit started from, writes the next metadata file and
//! updates the entry with the version it read — Glue refuses the update
//! (`ConcurrentModificationException`) if anyone changed the entry in between.

pub(crate) mod athena;
mod client;
mod columns;

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder};
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, TableCommit, TableCreation,
    TableIdent,
};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{CatalogBackend, CatalogConfig};
use crate::LakeError;
use crate::storage::{ObjectStorageFactory, Warehouse};
use client::{GlueClient, GlueError};

/// `[catalog.glue]`: which Glue catalog. Credentials are the AWS identity the warehouse
/// uses: `[catalog.storage]` keys, else the AWS environment (keys, web identity, ECS/EC2).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GlueConfig {
    /// Glue's endpoint (default `AWS_ENDPOINT_URL_GLUE`, else `https://glue.<region>.amazonaws.com`).
    pub endpoint: Option<String>,
    /// The catalog's region (default: `catalog.storage.region`, `AWS_REGION`, `us-east-1`).
    pub region: Option<String>,
    /// The AWS account id whose catalog to use (default: the caller's own).
    pub catalog_id: Option<String>,
    /// Refuse columns Athena cannot read (`time`, `uuid`, `fixed`, nanosecond timestamps)
    /// when a table is created or evolved (default true; false if only Trino/Spark read it).
    pub athena_types: Option<bool>,
}

#[derive(Debug)]
pub(crate) struct GlueBackend {
    client: GlueClient,
    file_io: FileIO,
    /// iceberg's handle on the tokio runtime the catalog was opened on (every table needs one).
    runtime: iceberg::Runtime,
    warehouse: String,
}

/// The part of a Glue table entry ingot reads.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    version_id: Option<String>,
}

impl Entry {
    fn metadata_location(&self) -> Option<&str> {
        self.parameters.get("metadata_location").and_then(Value::as_str)
    }

    fn is_iceberg(&self) -> bool {
        self.parameters
            .get("table_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("iceberg"))
    }
}

impl GlueBackend {
    pub(crate) async fn open(config: &CatalogConfig, warehouse: &Warehouse) -> Result<Self, LakeError> {
        let glue = &config.glue;
        // The S3 builder resolves the AWS identity and region exactly as the warehouse does;
        // the bucket name is a placeholder it requires, never contacted.
        let mut builder =
            config.storage.s3_builder(AmazonS3Builder::from_env().with_bucket_name("ingot-glue"));
        if let Some(region) = &glue.region {
            builder = builder.with_region(region);
        }
        let region = builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or("us-east-1".into());
        let credentials = builder
            .build()
            .map_err(|e| {
                LakeError::Config(config.storage.scrub(&format!("catalog.glue: AWS settings: {e}")))
            })?
            .credentials()
            .clone();
        let endpoint = glue
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_GLUE").ok())
            .unwrap_or(format!("https://glue.{region}.amazonaws.com"));
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(LakeError::Config(format!(
                "catalog.glue.endpoint must be an http(s):// URL, got `{endpoint}`"
            )));
        }
        let client = GlueClient::new(endpoint.clone(), region, credentials, glue.catalog_id.clone())
            .map_err(LakeError::Config)?;
        // One cheap call: a wrong endpoint or identity is a start-up line, not a later surprise.
        if let Err(e) = client.call::<Value>("GetDatabases", json!({ "MaxResults": 1 })).await {
            let cause = config.storage.scrub(&e.to_string());
            return Err(match e {
                GlueError::Unknown(_) => LakeError::unavailable(format!("reach Glue at {endpoint}"), cause),
                _ => LakeError::Config(format!("Glue at {endpoint}: {cause}")),
            });
        }
        let file_io = FileIOBuilder::new(Arc::new(ObjectStorageFactory::new(warehouse.clone()))).build();
        let runtime = iceberg::Runtime::current();
        Ok(Self { client, file_io, runtime, warehouse: warehouse.uri().to_string() })
    }

    async fn entry(&self, ident: &TableIdent) -> iceberg::Result<Entry> {
        let database = database(ident.namespace())?;
        let answer: Value = self
            .client
            .call("GetTable", json!({ "DatabaseName": database, "Name": ident.name() }))
            .await
            .map_err(|e| e.into_iceberg(&format!("look up table {ident}"), true))?;
        serde_json::from_value(answer["Table"].clone()).map_err(|e| {
            Error::new(ErrorKind::DataInvalid, format!("Glue's entry for {ident} is not a table: {e}"))
        })
    }

    /// Pages through `action` (GetDatabases, GetTables), collecting `list_key`'s items.
    async fn paged(&self, action: &str, body: Value, list_key: &str) -> iceberg::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut body = body;
        loop {
            let answer: Value =
                self.client.call(action, body.clone()).await.map_err(|e| e.into_iceberg(action, false))?;
            items.extend(answer[list_key].as_array().cloned().unwrap_or_default());
            match answer["NextToken"].as_str() {
                Some(token) if !token.is_empty() => body["NextToken"] = token.into(),
                _ => return Ok(items),
            }
        }
    }

    fn table(&self, ident: &TableIdent, location: &str, metadata: TableMetadata) -> iceberg::Result<Table> {
        Table::builder()
            .file_io(self.file_io.clone())
            .runtime(self.runtime.clone())
            .identifier(ident.clone())
            .metadata_location(location)
            .metadata(metadata)
            .build()
    }
}

/// Glue has one level of databases.
fn database(ns: &NamespaceIdent) -> iceberg::Result<&str> {
    match ns.as_ref().as_slice() {
        [name] => Ok(name),
        _ => Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("Glue has one level of databases; namespace `{}` has {}", ns.join("."), ns.len()),
        )),
    }
}

#[async_trait::async_trait]
impl Catalog for GlueBackend {
    async fn list_namespaces(&self, parent: Option<&NamespaceIdent>) -> iceberg::Result<Vec<NamespaceIdent>> {
        if parent.is_some() {
            return Ok(Vec::new());
        }
        let databases = self.paged("GetDatabases", json!({}), "DatabaseList").await?;
        Ok(databases
            .iter()
            .filter_map(|d| d["Name"].as_str())
            .map(|n| NamespaceIdent::new(n.into()))
            .collect())
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<Namespace> {
        let name = database(namespace)?;
        self.client
            .call::<Value>(
                "CreateDatabase",
                json!({ "DatabaseInput": { "Name": name, "Parameters": properties } }),
            )
            .await
            .map_err(|e| e.into_iceberg(&format!("create database {name}"), false))?;
        Ok(Namespace::with_properties(namespace.clone(), properties))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        let name = database(namespace)?;
        let answer: Value = self
            .client
            .call("GetDatabase", json!({ "Name": name }))
            .await
            .map_err(|e| e.into_iceberg(&format!("look up database {name}"), false))?;
        let properties = answer["Database"]["Parameters"]
            .as_object()
            .map(|p| p.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        Ok(Namespace::with_properties(namespace.clone(), properties))
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        match self.get_namespace(namespace).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NamespaceNotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        _: HashMap<String, String>,
    ) -> iceberg::Result<()> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("ingot does not update Glue database {namespace:?}"),
        ))
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        let name = database(namespace)?;
        self.client
            .call::<Value>("DeleteDatabase", json!({ "Name": name }))
            .await
            .map_err(|e| e.into_iceberg(&format!("drop database {name}"), false))?;
        Ok(())
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        let name = database(namespace)?;
        let tables = self.paged("GetTables", json!({ "DatabaseName": name }), "TableList").await?;
        Ok(tables
            .into_iter()
            .filter_map(|t| serde_json::from_value::<Entry>(t).ok())
            // A Glue database may hold Hive or Delta tables too: only Iceberg ones are ours.
            .filter(Entry::is_iceberg)
            .map(|t| TableIdent::new(namespace.clone(), t.name))
            .collect())
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> iceberg::Result<Table> {
        let name = database(namespace)?;
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        // The same layout as the SQL catalog: <warehouse>/<namespace>/<table>.
        let location =
            creation.location.clone().unwrap_or(format!("{}/{}/{}", self.warehouse, name, creation.name));
        let metadata = TableMetadataBuilder::from_table_creation(TableCreation {
            location: Some(location.clone()),
            ..creation
        })?
        .build()?
        .metadata;
        let metadata_location = MetadataLocation::new_with_metadata(location, &metadata);
        crate::commit::write_metadata(&self.file_io, &metadata_location, &metadata)
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        let metadata_location = metadata_location.to_string();
        let input = columns::table_input(ident.name(), &metadata, &metadata_location, None, Map::new());
        let created = self
            .client
            .call::<Value>("CreateTable", json!({ "DatabaseName": name, "TableInput": input }))
            .await;
        if let Err(e) = created {
            // Never referenced: a lost creation race or a refusal leaves no stray file.
            let _ = self.file_io.delete(&metadata_location).await;
            return Err(e.into_iceberg(&format!("create table {ident}"), true));
        }
        self.table(&ident, &metadata_location, metadata)
    }

    async fn load_table(&self, ident: &TableIdent) -> iceberg::Result<Table> {
        let entry = self.entry(ident).await?;
        let location = entry.metadata_location().filter(|_| entry.is_iceberg()).ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("Glue's {ident} is not an Iceberg table (no metadata_location)"),
            )
        })?;
        let metadata = TableMetadata::read_from(&self.file_io, location).await?;
        self.table(ident, location, metadata)
    }

    async fn drop_table(&self, ident: &TableIdent) -> iceberg::Result<()> {
        let name = database(ident.namespace())?;
        self.client
            .call::<Value>("DeleteTable", json!({ "DatabaseName": name, "Name": ident.name() }))
            .await
            .map_err(|e| e.into_iceberg(&format!("drop table {ident}"), true))?;
        Ok(())
    }

    async fn purge_table(&self, ident: &TableIdent) -> iceberg::Result<()> {
        self.drop_table(ident).await
    }

    async fn table_exists(&self, ident: &TableIdent) -> iceberg::Result<bool> {
        match self.entry(ident).await {
            Ok(entry) => Ok(entry.is_iceberg()),
            Err(e) if e.kind() == ErrorKind::TableNotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn rename_table(&self, src: &TableIdent, _: &TableIdent) -> iceberg::Result<()> {
        Err(Error::new(ErrorKind::FeatureUnsupported, format!("Glue cannot rename {src} in place")))
    }

    async fn register_table(&self, ident: &TableIdent, metadata_location: String) -> iceberg::Result<Table> {
        let name = database(ident.namespace())?;
        let metadata = TableMetadata::read_from(&self.file_io, &metadata_location).await?;
        let input = columns::table_input(ident.name(), &metadata, &metadata_location, None, Map::new());
        self.client
            .call::<Value>("CreateTable", json!({ "DatabaseName": name, "TableInput": input }))
            .await
            .map_err(|e| e.into_iceberg(&format!("register table {ident}"), true))?;
        self.table(ident, &metadata_location, metadata)
    }

    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        // ingot commits through `CatalogBackend::commit` (its own metadata, its own swap).
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("update {} through ingot's commit path", commit.identifier()),
        ))
    }
}

#[async_trait::async_trait]
impl CatalogBackend for GlueBackend {
    fn catalog(&self) -> &dyn Catalog {
        self
    }

    async fn commit(&self, base: &Table, metadata: &TableMetadata) -> Result<(), LakeError> {
        let ident = base.identifier();
        let table = ident.to_string();
        let old =
            base.metadata_location_result().map_err(LakeError::iceberg(format!("metadata of {ident}")))?;
        let entry =
            self.entry(ident).await.map_err(LakeError::iceberg(format!("look up {ident} in Glue")))?;
        if entry.metadata_location() != Some(old) {
            return Err(LakeError::CommitConflict { table });
        }
        let version = entry.version_id.clone().ok_or_else(|| {
            LakeError::Config(format!(
                "Glue's entry for {ident} has no VersionId: this Glue cannot guard concurrent commits"
            ))
        })?;
        let new = crate::commit::write_next_metadata(base, metadata).await?;
        let input = columns::table_input(ident.name(), metadata, &new, Some(old), entry.parameters);
        let database =
            database(ident.namespace()).map_err(LakeError::iceberg(format!("commit to {ident}")))?;
        let request = json!({ "DatabaseName": database, "TableInput": input, "VersionId": version });
        match self.client.call::<Value>("UpdateTable", request).await {
            Ok(_) => Ok(()),
            Err(GlueError::Unknown(error)) => Err(LakeError::CommitUnknown { table, error }),
            Err(e) => {
                // Refused: our metadata file will never be referenced.
                let _ = base.file_io().delete(&new).await;
                match e {
                    GlueError::Conflict(_) => Err(LakeError::CommitConflict { table }),
                    e => Err(LakeError::iceberg(format!("commit to {ident}"))(
                        e.into_iceberg("UpdateTable", true),
                    )),
                }
            }
        }
    }
}
