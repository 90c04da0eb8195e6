//! The SQL catalog: SQLite or PostgreSQL holding the JDBC-compatible `iceberg_tables` schema
//! that PyIceberg's `SqlCatalog`, Java's `JdbcCatalog` and Trino's JDBC catalog read. iceberg's
//! `SqlCatalog` loads, creates and lists; ingot's own commits write the next metadata file and
//! move the table's row only if it still points where the commit started from (the JDBC
//! catalog protocol).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder};
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle, SqlCatalog,
    SqlCatalogBuilder,
};
use sqlx::{AnyPool, Connection};

use super::{CatalogBackend, CatalogConfig};
use crate::LakeError;
use crate::storage::{ObjectStorageFactory, Warehouse};

/// How long opening the catalog waits for its database to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct SqlBackend {
    catalog: SqlCatalog,
    /// ingot's own connection to the catalog database, for commits iceberg-rust cannot make.
    pool: AnyPool,
    catalog_name: String,
    /// Postgres numbers its parameters (`$1`), SQLite takes `?`.
    numbered_params: bool,
}

impl SqlBackend {
    /// Opens (and on first use creates) the catalog database.
    pub(crate) async fn open(config: &CatalogConfig, warehouse: &Warehouse) -> Result<Self, LakeError> {
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
        let unavailable =
            |cause: String| LakeError::unavailable(format!("connect to catalog {}", config.uri), cause);
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
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => {
                    // Same kind (a locked or unreachable database stays a transient failure),
                    // text without the password.
                    let scrubbed = iceberg::Error::new(e.kind(), scrub(&e)).with_retryable(e.retryable());
                    return Err(LakeError::iceberg(format!("open catalog {}", config.uri))(scrubbed));
                }
            }
        };
        Ok(Self {
            catalog,
            pool,
            catalog_name: config.name.clone(),
            numbered_params: bind_style == SqlBindStyle::DollarNumeric,
        })
    }

    fn update_statement(&self) -> String {
        let p = |i: usize| if self.numbered_params { format!("${i}") } else { "?".to_string() };
        format!(
            "UPDATE iceberg_tables SET metadata_location = {}, previous_metadata_location = {} \
             WHERE catalog_name = {} AND table_name = {} AND table_namespace = {} \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = {}",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6)
        )
    }
}

#[async_trait::async_trait]
impl CatalogBackend for SqlBackend {
    fn catalog(&self) -> &dyn Catalog {
        &self.catalog
    }

    async fn commit(&self, base: &Table, metadata: &TableMetadata) -> Result<(), LakeError> {
        let ident = base.identifier();
        let old =
            base.metadata_location_result().map_err(LakeError::iceberg(format!("metadata of {ident}")))?;
        let new = crate::commit::write_next_metadata(base, metadata).await?;
        let result = sqlx::query(&self.update_statement())
            .bind(new.clone())
            .bind(old.to_string())
            .bind(self.catalog_name.clone())
            .bind(ident.name().to_string())
            .bind(ident.namespace().join("."))
            .bind(old.to_string())
            .execute(&self.pool)
            .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(()),
            Ok(_) => {
                // The pointer moved on: our metadata file will never be referenced.
                let _ = base.file_io().delete(&new).await;
                Err(LakeError::CommitConflict { table: ident.to_string() })
            }
            Err(e) => Err(LakeError::CommitUnknown { table: ident.to_string(), error: e.to_string() }),
        }
    }
}

fn sqlite_path(path: &str) -> Result<PathBuf, LakeError> {
    let path = std::path::absolute(Path::new(path))
        .map_err(|e| LakeError::Config(format!("cannot resolve {path}: {e}")))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| LakeError::Config(format!("cannot create {}: {e}", parent.display())))?;
    }
    Ok(path)
}
