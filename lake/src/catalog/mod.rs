//! The catalog seam: where tables are registered and how a commit swaps a table's current
//! metadata. [`CatalogBackend`] is the one trait a catalog protocol implements (load, create
//! and list through iceberg's `Catalog`; compare-and-swap commits of ingot's own metadata);
//! [`Lake`] is what the rest of ingot holds. The SQL catalog is in `sql.rs`, REST in
//! `rest.rs`, Glue in `glue/`; another catalog is one more file beside them and one more arm
//! in [`Lake::open`].

mod glue;
mod metadata_diff;
mod rest;
mod sql;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableIdent};
use ingot_secret::Secret;
use serde::Deserialize;

use crate::LakeError;
use crate::storage::{StorageConfig, Warehouse};
use glue::GlueBackend;
pub use glue::GlueConfig;
pub(crate) use glue::athena::unreadable as athena_unreadable;
use rest::RestBackend;
pub use rest::RestConfig;
use sql::SqlBackend;

/// One catalog protocol.
#[async_trait::async_trait]
pub(crate) trait CatalogBackend: std::fmt::Debug + Send + Sync {
    /// iceberg's view of the catalog: load, create, list, namespaces.
    fn catalog(&self) -> &dyn Catalog;

    /// Makes `metadata` the table's current metadata if nobody else committed since `base`
    /// was loaded: [`LakeError::CommitConflict`] if someone did, [`LakeError::CommitUnknown`]
    /// if the catalog's answer was lost (settled by the caller from the table's history).
    async fn commit(&self, base: &Table, metadata: &TableMetadata) -> Result<(), LakeError>;
}

/// Where tables are catalogued and stored. The embedded default is a SQLite file and a local
/// directory; a `postgres://` URI uses the same JDBC-compatible schema in Postgres.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Which catalog protocol: `sql` (SQLite or PostgreSQL, JDBC-compatible schema), `rest`
    /// (an Iceberg REST catalog at `uri`) or `glue` (AWS Glue, see `[catalog.glue]`; `uri`
    /// is not used).
    #[serde(default, rename = "type")]
    pub kind: CatalogKind,
    /// `sqlite://<path>` (created if missing) or `postgres://user:pass@host/db` for the SQL
    /// catalog; the catalog's `http(s)://` URL for REST. A password in it is never shown.
    #[serde(default = "default_uri")]
    pub uri: Secret,
    /// Where table data and metadata are written: a directory (or `file://` URI), or
    /// `s3://<bucket>/<prefix>` (AWS or any S3-compatible store; see `[catalog.storage]`).
    #[serde(default = "default_warehouse")]
    pub warehouse: String,
    /// The catalog name recorded in the catalog database (`catalog_name` column).
    #[serde(default = "default_name")]
    pub name: String,
    /// How to authenticate to a REST catalog (`[catalog.rest]`).
    #[serde(default)]
    pub rest: RestConfig,
    /// Which AWS Glue catalog (`[catalog.glue]`).
    #[serde(default)]
    pub glue: GlueConfig,
    /// How to reach an object-store warehouse (`[catalog.storage]`).
    #[serde(default)]
    pub storage: StorageConfig,
}

/// The catalog protocols `catalog.type` names.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CatalogKind {
    #[default]
    Sql,
    Rest,
    Glue,
}

impl std::fmt::Display for CatalogKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CatalogKind::Sql => "sql",
            CatalogKind::Rest => "rest",
            CatalogKind::Glue => "glue",
        })
    }
}

fn default_uri() -> Secret {
    "sqlite://ingot-data/catalog.db".into()
}
fn default_warehouse() -> String {
    "ingot-data/warehouse".into()
}
fn default_name() -> String {
    "ingot".into()
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            kind: CatalogKind::default(),
            uri: default_uri(),
            warehouse: default_warehouse(),
            name: default_name(),
            storage: StorageConfig::default(),
            rest: RestConfig::default(),
            glue: GlueConfig::default(),
        }
    }
}

/// An open catalog plus what ingot needs to know about it.
#[derive(Debug, Clone)]
pub struct Lake {
    backend: Arc<dyn CatalogBackend>,
    warehouse: Warehouse,
    name: String,
    /// Columns Athena cannot read are refused (a Glue catalog, unless turned off).
    pub(crate) athena_types: bool,
    /// Test hook: this many successful commits report a lost answer instead (see
    /// [`Lake::lose_next_commit_answers`]).
    pub(crate) lose_answers: Arc<AtomicU32>,
}

impl Lake {
    /// Opens (and on first use creates) the catalog and the warehouse.
    pub async fn open(config: &CatalogConfig) -> Result<Self, LakeError> {
        let warehouse = Warehouse::open(&config.warehouse, &config.storage)?;
        if let Err(cause) = warehouse.probe().await {
            let cause = config.storage.scrub(&cause);
            return Err(LakeError::unavailable(format!("reach warehouse {}", warehouse.uri()), cause));
        }
        let backend: Arc<dyn CatalogBackend> = match config.kind {
            CatalogKind::Sql => Arc::new(SqlBackend::open(config, &warehouse).await?),
            CatalogKind::Rest => Arc::new(RestBackend::open(config, &warehouse).await?),
            CatalogKind::Glue => Arc::new(GlueBackend::open(config, &warehouse).await?),
        };
        let athena_types = config.kind == CatalogKind::Glue && config.glue.athena_types.unwrap_or(true);
        Ok(Self {
            backend,
            warehouse,
            name: config.name.clone(),
            athena_types,
            lose_answers: Default::default(),
        })
    }

    /// The catalog, for operations this crate does not wrap.
    pub fn catalog(&self) -> &dyn Catalog {
        self.backend.catalog()
    }

    pub(crate) fn backend(&self) -> &dyn CatalogBackend {
        self.backend.as_ref()
    }

    /// The catalog's name (`catalog_name` in its database).
    pub fn catalog_name(&self) -> &str {
        &self.name
    }

    /// The warehouse's root URI (`file:///…` or `s3://…`).
    pub fn warehouse(&self) -> &str {
        self.warehouse.uri()
    }

    /// The warehouse's storage, for listing and deleting files.
    pub fn storage(&self) -> &Warehouse {
        &self.warehouse
    }

    /// Loads a table's current metadata from the catalog.
    pub async fn load(&self, ident: &TableIdent) -> Result<Table, LakeError> {
        match self.catalog().load_table(ident).await {
            Ok(table) => Ok(table),
            // iceberg reports an unreadable metadata file as invalid data, with the cause
            // flattened into text; whether the warehouse itself answers tells the two apart.
            Err(e) if e.retryable() || self.warehouse.probe().await.is_err() => {
                Err(LakeError::Unavailable { context: format!("load table {ident}"), source: Box::new(e) })
            }
            Err(e) => Err(LakeError::iceberg(format!("load table {ident}"))(e)),
        }
    }

    /// Whether the table exists.
    pub async fn exists(&self, ident: &TableIdent) -> Result<bool, LakeError> {
        self.catalog().table_exists(ident).await.map_err(LakeError::iceberg(format!("look up table {ident}")))
    }

    /// Every table in every namespace, sorted by name.
    pub async fn list_tables(&self) -> Result<Vec<TableIdent>, LakeError> {
        let namespaces =
            self.catalog().list_namespaces(None).await.map_err(LakeError::iceberg("list namespaces"))?;
        let mut tables = Vec::new();
        for ns in namespaces {
            tables.extend(
                self.catalog()
                    .list_tables(&ns)
                    .await
                    .map_err(LakeError::iceberg(format!("list tables of {}", ns.join("."))))?,
            );
        }
        tables.sort_by_key(|t| t.to_string());
        Ok(tables)
    }

    pub(crate) async fn ensure_namespace(&self, ns: &NamespaceIdent) -> Result<(), LakeError> {
        let exists =
            self.catalog().namespace_exists(ns).await.map_err(LakeError::iceberg("look up namespace"))?;
        if !exists {
            // A concurrent creator may win; only fail if it still does not exist afterwards.
            if let Err(e) = self.catalog().create_namespace(ns, HashMap::new()).await
                && !self.catalog().namespace_exists(ns).await.unwrap_or(false)
            {
                return Err(LakeError::iceberg(format!("create namespace {}", ns.join(".")))(e));
            }
        }
        Ok(())
    }
}

/// Parses `a.b` into a table identifier.
pub fn parse_ident(name: &str) -> Result<TableIdent, LakeError> {
    TableIdent::from_strs(name.split('.'))
        .map_err(|_| LakeError::Config(format!("table name `{name}` must look like <namespace>.<table>")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rest_catalog_uri_that_is_not_a_url_is_refused_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let config: CatalogConfig =
            toml_like(&format!("type = \"rest\"\nwarehouse = \"{}\"", dir.path().display()));
        assert_eq!(config.kind, CatalogKind::Rest);
        let err = Lake::open(&config).await.unwrap_err().to_string();
        assert!(err.contains("catalog.uri") && err.contains("catalog.type = \"rest\""), "{err}");
    }

    #[tokio::test]
    async fn a_glue_endpoint_nobody_answers_is_one_retryable_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut config: CatalogConfig =
            toml_like(&format!("type = \"glue\"\nwarehouse = \"{}\"", dir.path().display()));
        config.glue.endpoint = Some("http://127.0.0.1:9".into());
        config.storage.access_key_id = Some("AKIDGLUETEST".into());
        config.storage.secret_access_key = Some("glue-secret-never-shown".into());
        let err = Lake::open(&config).await.unwrap_err();
        assert!(err.retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains("Glue") && text.contains("127.0.0.1:9"), "{text}");
        assert!(!text.contains("glue-secret-never-shown"), "{text}");
    }

    /// The few `key = "value"` lines these tests need, without a TOML parser in this crate.
    fn toml_like(text: &str) -> CatalogConfig {
        let map: serde_json::Map<String, serde_json::Value> = text
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.trim_matches('"').to_string())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).unwrap()
    }
}
