use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableIdent};
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle, SqlCatalog,
    SqlCatalogBuilder,
};
use ingot_secret::Secret;
use serde::Deserialize;
use sqlx::Connection;

use crate::LakeError;
use crate::commit::SqlPointer;
use crate::storage::{ObjectStorageFactory, StorageConfig, Warehouse};

/// Where tables are catalogued and stored. The embedded default is a SQLite file and a local
/// directory; a `postgres://` URI uses the same JDBC-compatible schema in Postgres.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// `sqlite://<path>` (created if missing) or `postgres://user:pass@host/db`; its password
    /// is never shown (see [`Secret`]).
    #[serde(default = "default_uri")]
    pub uri: Secret,
    /// Where table data and metadata are written: a directory (or `file://` URI), or
    /// `s3://<bucket>/<prefix>` (AWS or any S3-compatible store; see `[catalog.storage]`).
    #[serde(default = "default_warehouse")]
    pub warehouse: String,
    /// The catalog name recorded in the catalog database (`catalog_name` column).
    #[serde(default = "default_name")]
    pub name: String,
    /// How to reach an object-store warehouse (`[catalog.storage]`).
    #[serde(default)]
    pub storage: StorageConfig,
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
            uri: default_uri(),
            warehouse: default_warehouse(),
            name: default_name(),
            storage: StorageConfig::default(),
        }
    }
}

/// How long opening the catalog waits for its database to accept a connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An open catalog plus what ingot needs to know about it.
#[derive(Debug, Clone)]
pub struct Lake {
    catalog: Arc<SqlCatalog>,
    /// ingot's own connection to the catalog database, for commits iceberg-rust cannot make.
    pub(crate) pointer: Arc<SqlPointer>,
    warehouse: Warehouse,
    name: String,
}

impl Lake {
    /// Opens (and on first use creates) the catalog database and the warehouse directory.
    pub async fn open(config: &CatalogConfig) -> Result<Self, LakeError> {
        let warehouse = Warehouse::open(&config.warehouse, &config.storage)?;
        if let Err(cause) = warehouse.probe().await {
            return Err(LakeError::Unavailable {
                context: format!("reach warehouse {}", warehouse.uri()),
                source: Box::new(iceberg::Error::new(
                    iceberg::ErrorKind::Unexpected,
                    config.storage.scrub(&cause),
                )),
            });
        }
        let given = config.uri.expose();
        let (uri, bind_style) = if let Some(path) = given.strip_prefix("sqlite://") {
            let path = sqlite_path(path)?;
            (format!("sqlite://{}?mode=rwc", path.display()), SqlBindStyle::QMark)
        } else if given.starts_with("postgres://") || given.starts_with("postgresql://") {
            (given.to_string(), SqlBindStyle::DollarNumeric)
        } else {
            return Err(LakeError::Config(format!(
                "catalog.uri must start with sqlite:// or postgres://, got `{}`",
                config.uri
            )));
        };
        // The drivers' errors may echo what they were given, password included.
        let scrub = |e: &dyn std::fmt::Display| config.uri.scrub(&e.to_string());
        let props = HashMap::from([
            (SQL_CATALOG_PROP_URI.to_string(), uri.clone()),
            (SQL_CATALOG_PROP_WAREHOUSE.to_string(), warehouse.uri().to_string()),
            (SQL_CATALOG_PROP_BIND_STYLE.to_string(), bind_style.to_string()),
        ]);
        // One connection first, with a short wait and its real cause: iceberg's pool waits
        // 30 s before it reports a database that refuses connections, and then only as a
        // timeout. An unreachable database may come back (a service waits for it); the error
        // names it without the password.
        sqlx::any::install_default_drivers();
        let unavailable = |cause: String| LakeError::Unavailable {
            context: format!("connect to catalog {}", config.uri),
            source: Box::new(iceberg::Error::new(iceberg::ErrorKind::Unexpected, cause)),
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect(&uri)).await {
            Err(_) => return Err(unavailable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
            Ok(Err(e)) => return Err(unavailable(scrub(&e))),
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
            }
        }
        // The database answered just now: the pool connects when first used.
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect_lazy(&uri)
            .map_err(|e| unavailable(scrub(&e)))?;
        let mut attempt = 0;
        let catalog = loop {
            let loaded = SqlCatalogBuilder::default()
                .with_storage_factory(Arc::new(ObjectStorageFactory::new(warehouse.clone())))
                .load(&config.name, props.clone())
                .await;
            match loaded {
                Ok(catalog) => break catalog,
                // Two processes opening a new PostgreSQL catalog at once race in its
                // `CREATE TABLE IF NOT EXISTS` (PostgreSQL reports a duplicate key); the
                // statement is idempotent, so the loser opens it again.
                Err(e) if attempt < 3 && e.to_string().contains("duplicate key") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => {
                    // Same kind (a locked or unreachable database stays a transient failure),
                    // text without the password.
                    let scrubbed = iceberg::Error::new(e.kind(), scrub(&e)).with_retryable(e.retryable());
                    return Err(LakeError::iceberg(format!("open catalog {}", config.uri))(scrubbed));
                }
            }
        };
        let pointer = SqlPointer {
            pool,
            catalog_name: config.name.clone(),
            numbered_params: bind_style == SqlBindStyle::DollarNumeric,
            lose_answers: Default::default(),
        };
        Ok(Self {
            catalog: Arc::new(catalog),
            pointer: Arc::new(pointer),
            warehouse,
            name: config.name.clone(),
        })
    }

    /// The catalog, for operations this crate does not wrap.
    pub fn catalog(&self) -> &dyn Catalog {
        self.catalog.as_ref()
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
        match self.catalog.load_table(ident).await {
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
        self.catalog.table_exists(ident).await.map_err(LakeError::iceberg(format!("look up table {ident}")))
    }

    /// Every table in every namespace, sorted by name.
    pub async fn list_tables(&self) -> Result<Vec<TableIdent>, LakeError> {
        let namespaces =
            self.catalog.list_namespaces(None).await.map_err(LakeError::iceberg("list namespaces"))?;
        let mut tables = Vec::new();
        for ns in namespaces {
            tables.extend(
                self.catalog
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
            self.catalog.namespace_exists(ns).await.map_err(LakeError::iceberg("look up namespace"))?;
        if !exists {
            // A concurrent creator may win; only fail if it still does not exist afterwards.
            if let Err(e) = self.catalog.create_namespace(ns, HashMap::new()).await
                && !self.catalog.namespace_exists(ns).await.unwrap_or(false)
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

fn sqlite_path(path: &str) -> Result<PathBuf, LakeError> {
    let path = absolute(Path::new(path))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| LakeError::Config(format!("cannot create {}: {e}", parent.display())))?;
    }
    Ok(path)
}

fn absolute(path: &Path) -> Result<PathBuf, LakeError> {
    std::path::absolute(path)
        .map_err(|e| LakeError::Config(format!("cannot resolve {}: {e}", path.display())))
}
