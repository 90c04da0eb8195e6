//! A DataFusion session whose `<namespace>.<table>` names are the lake's tables, each pinned
//! to the snapshot current when the session was made; transforms swap one input for the
//! rows they should see.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::execution::context::SessionContext;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use iceberg_datafusion::IcebergStaticTableProvider;
use ingot_lake::{Lake, Table};

use crate::TransformError;
use crate::conforming::ConformingTable;

/// A session over every lake table at its current snapshot.
pub async fn lake_session(lake: &Lake) -> Result<SessionContext, TransformError> {
    lake_session_in(lake, SessionContext::new()).await
}

/// A session whose operators may hold at most `max_memory` bytes between them; past it they
/// spill to temporary files when `spill` is set, else the query fails with DataFusion's
/// "resources exhausted" (see [`TransformError::from_run`]).
pub fn bounded_context(max_memory: usize, spill: bool) -> Result<SessionContext, TransformError> {
    let mode = if spill { DiskManagerMode::OsTmpDirectory } else { DiskManagerMode::Disabled };
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(max_memory, 1.0)
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(SessionConfig::new(), runtime))
}

/// `ctx` with every lake table registered at its current snapshot.
pub async fn lake_session_in(lake: &Lake, ctx: SessionContext) -> Result<SessionContext, TransformError> {
    let catalog = ctx.catalog("datafusion").expect("the default catalog exists");
    let mut schemas: HashMap<String, Arc<MemorySchemaProvider>> = HashMap::new();
    for ident in lake.list_tables().await? {
        let namespace = ident.namespace().join(".");
        let schema = schemas.entry(namespace.clone()).or_insert_with(|| {
            let schema = Arc::new(MemorySchemaProvider::new());
            catalog.register_schema(&namespace, schema.clone()).expect("memory catalog accepts schemas");
            schema
        });
        let table = lake.load(&ident).await?;
        schema.register_table(ident.name().to_string(), pinned(table, None).await?)?;
    }
    Ok(ctx)
}

/// A provider reading `table` at `snapshot` (its current one when `None`), every batch in
/// the table's declared types (see [`ConformingTable`]).
pub async fn pinned(table: Table, snapshot: Option<i64>) -> Result<Arc<dyn TableProvider>, TransformError> {
    let name = table.identifier().to_string();
    // The scan reads the snapshot in the snapshot's schema; the current schema may have more.
    let metadata = table.metadata();
    let scanned = snapshot.or(metadata.current_snapshot_id()).and_then(|id| metadata.snapshot_by_id(id));
    let unread: HashSet<String> = match (snapshot, scanned.and_then(|s| s.schema(metadata).ok())) {
        (None, Some(read)) => metadata
            .current_schema()
            .as_struct()
            .fields()
            .iter()
            .filter(|f| read.field_by_id(f.id).is_none())
            .map(|f| f.name.clone())
            .collect(),
        _ => HashSet::new(),
    };
    let provider = match snapshot {
        Some(id) => IcebergStaticTableProvider::try_new_from_table_snapshot(table, id).await,
        None => IcebergStaticTableProvider::try_new_from_table(table).await,
    };
    let inner = Arc::new(provider.map_err(|e| TransformError::Sql(format!("{name}: {e}")))?);
    Ok(Arc::new(ConformingTable { inner, unread }))
}

/// Makes `name` (`namespace.table`) read `provider` in this session.
pub fn replace_table(
    ctx: &SessionContext,
    name: &str,
    provider: Arc<dyn TableProvider>,
) -> Result<(), TransformError> {
    let (namespace, table) = name
        .rsplit_once('.')
        .ok_or_else(|| TransformError::Sql(format!("`{name}` is not <namespace>.<table>")))?;
    let catalog = ctx.catalog("datafusion").expect("the default catalog exists");
    let schema = match catalog.schema(namespace) {
        Some(schema) => schema,
        None => {
            let schema: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
            catalog.register_schema(namespace, schema.clone())?;
            schema
        }
    };
    schema.deregister_table(table)?;
    schema.register_table(table.to_string(), provider)?;
    Ok(())
}

/// An in-memory table of `batches` (with `schema` when there are none).
pub fn memory_table(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Arc<dyn TableProvider>, TransformError> {
    // One partition, possibly empty: DataFusion refuses a table with none.
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

/// Runs `sql` and collects its rows and schema.
pub async fn collect(
    ctx: &SessionContext,
    sql: &str,
) -> Result<(SchemaRef, Vec<RecordBatch>), TransformError> {
    let frame = ctx.sql(sql).await?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    Ok((schema, frame.collect().await?))
}

/// A failed read of `tables` (each at a snapshot, the current one when `None`), with the data
/// files the reader cannot map named when some table holds any (see
/// [`ingot_lake::explain_read_failure`]); otherwise the error as it was.
pub(crate) async fn name_unreadable_files(
    tables: &[(&Table, Option<i64>)],
    error: TransformError,
) -> TransformError {
    for (table, snapshot) in tables {
        if let Some(explained) = ingot_lake::explain_read_failure(table, *snapshot, error.to_string()).await {
            return explained.into();
        }
    }
    error
}
