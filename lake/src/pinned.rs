//! A catalog view that pins one table to the state a writer based its decisions on.
//!
//! iceberg-rust's `Transaction::commit` reloads the table and silently rebases the
//! transaction onto whatever it finds. For an append whose rows were chosen by looking at the
//! table's recorded offsets, that rebase could commit rows another writer has just added.
//! Serving the pinned table to the transaction makes its commit apply to the exact snapshot
//! we looked at, and ingot's own compare-and-swap (`Lake::swap`) rejects it if the table has
//! moved since. Every failure is reported as not retryable, so iceberg's own retry loop (and
//! the table's `commit.retry.*` properties, which are there for other engines) never applies:
//! ingot's callers decide what a lost race means.

use std::collections::HashMap;

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, Namespace, NamespaceIdent, Result, TableCommit, TableCreation, TableIdent,
};

use crate::{Lake, LakeError};

#[derive(Debug)]
pub(crate) struct PinnedCatalog<'a> {
    pub lake: &'a Lake,
    pub table: Table,
}

impl PinnedCatalog<'_> {
    fn inner(&self) -> &dyn Catalog {
        self.lake.catalog()
    }
}

#[async_trait]
impl Catalog for PinnedCatalog<'_> {
    async fn list_namespaces(&self, parent: Option<&NamespaceIdent>) -> Result<Vec<NamespaceIdent>> {
        self.inner().list_namespaces(parent).await
    }
    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.inner().create_namespace(namespace, properties).await
    }
    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.inner().get_namespace(namespace).await
    }
    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.inner().namespace_exists(namespace).await
    }
    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.inner().update_namespace(namespace, properties).await
    }
    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.inner().drop_namespace(namespace).await
    }
    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.inner().list_tables(namespace).await
    }
    async fn create_table(&self, namespace: &NamespaceIdent, creation: TableCreation) -> Result<Table> {
        self.inner().create_table(namespace, creation).await
    }
    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        if table == self.table.identifier() {
            return Ok(self.table.clone());
        }
        self.inner().load_table(table).await
    }
    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.inner().drop_table(table).await
    }
    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.inner().purge_table(table).await
    }
    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.inner().table_exists(table).await
    }
    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.inner().rename_table(src, dest).await
    }
    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.inner().register_table(table, metadata_location).await
    }
    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        if &ident != self.table.identifier() {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("{ident} is not the table this commit is pinned to"),
            ));
        }
        let staged = commit.apply(self.table.clone())?;
        self.lake.swap(&self.table, staged.metadata()).await.map_err(|e| match e {
            LakeError::CommitConflict { .. } => Error::new(ErrorKind::CatalogCommitConflicts, e.to_string()),
            other => Error::new(ErrorKind::Unexpected, other.to_string()),
        })?;
        self.inner().load_table(&ident).await
    }
}
