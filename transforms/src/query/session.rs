//! A DataFusion session over the lake: every table registered as `<namespace>.<table>`,
//! pinned to its snapshot when the query starts, plus the time-travel references of the
//! query pinned to theirs. Read-only: DDL, DML and statements are refused.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::TableReference;
use ingot_lake::{AsOf, Lake, Table, parse_ident, snapshot_as_of};

use super::limits::{check_depth, check_length};
use super::rewrite_time_travel;
use super::{QueryLimits, QueryPool};
use crate::TransformError;
use crate::lake_session::{lake_session_in, name_unreadable_files, pinned, replace_table};

/// A query's rows and the snapshots it read.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// `table → snapshot id` for every time-travel reference (tables read at their current
    /// snapshot are not listed).
    pub pinned: Vec<(String, i64)>,
}

/// Runs one read-only SQL query over the lake within the default [`QueryLimits`] and collects
/// its rows (for tests and small answers; the API and `ingot query` stream theirs).
pub async fn run_query(lake: &Lake, sql: &str) -> Result<QueryResult, TransformError> {
    let pool = QueryPool::new(QueryLimits::default())?;
    let mut stream = pool.start(lake, sql, None).await?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch?);
    }
    Ok(QueryResult { schema: stream.schema.clone(), batches, pinned: stream.pinned.clone() })
}

/// A query planned and ready to run.
pub(crate) struct Planned {
    pub schema: SchemaRef,
    /// `table → snapshot id` for every time-travel reference.
    pub pinned: Vec<(String, i64)>,
    pub plan: Arc<dyn ExecutionPlan>,
    pub task: Arc<TaskContext>,
    /// What [`explain`] needs to name unreadable files when the run fails.
    pub logical: LogicalPlan,
    pub aliases: Vec<(String, String, i64)>,
}

/// Plans `sql` in `ctx` (a session over the lake), every table pinned to its snapshot now
/// or as of `as_of`, time-travel references to theirs; SQL outside `limits`' shape is
/// refused before anything but the parser sees it.
pub(crate) async fn plan_query(
    lake: &Lake,
    ctx: SessionContext,
    sql: &str,
    as_of: Option<AsOf>,
    limits: &QueryLimits,
) -> Result<Planned, TransformError> {
    check_length(sql, limits)?;
    let (sql, refs) = rewrite_time_travel(sql)?;
    // Checked as DataFusion will parse it, with Trino's clauses already resolved.
    check_depth(&sql, limits)?;
    let ctx = lake_session_in(lake, ctx).await?;
    if let Some(as_of) = as_of {
        pin_all(lake, &ctx, as_of).await?;
    }
    let mut pinned_at = Vec::new();
    let mut aliases = Vec::new();
    for reference in refs {
        let table = lake.load(&parse_ident(&reference.table)?).await?;
        let snapshot_id = snapshot_as_of(&table, reference.as_of)?;
        ctx.register_table(
            TableReference::bare(reference.alias_table.clone()),
            pinned(table, Some(snapshot_id)).await?,
        )?;
        aliases.push((reference.alias_table.clone(), reference.table.clone(), snapshot_id));
        pinned_at.push((reference.table, snapshot_id));
    }
    let sql_options =
        SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let frame = ctx.sql_with_options(&sql, sql_options).await.map_err(refusal)?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let logical = frame.logical_plan().clone();
    let task = Arc::new(frame.task_ctx());
    let plan = match frame.create_physical_plan().await {
        Ok(plan) => plan,
        Err(e) => return Err(explain(lake, &logical, &aliases, e.into()).await),
    };
    Ok(Planned { schema, pinned: pinned_at, plan, task, logical, aliases })
}

/// A failed query, with the data files of the tables it scans that the reader cannot map
/// named (a time-travel reference at its snapshot, other tables at their current one).
pub(crate) async fn explain(
    lake: &Lake,
    plan: &LogicalPlan,
    aliases: &[(String, String, i64)],
    error: TransformError,
) -> TransformError {
    let mut scanned = Vec::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.table();
            match aliases.iter().find(|(alias, _, _)| alias == name) {
                Some((_, table, snapshot)) => scanned.push((table.clone(), Some(*snapshot))),
                None => scanned.push((scan.table_name.to_string(), None)),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut tables = Vec::new();
    for (name, snapshot) in scanned {
        if let Ok(ident) = parse_ident(&name)
            && let Ok(table) = lake.load(&ident).await
        {
            tables.push((table, snapshot));
        }
    }
    let tables: Vec<(&Table, Option<i64>)> = tables.iter().map(|(t, s)| (t, *s)).collect();
    name_unreadable_files(&tables, error).await
}

/// Re-registers every table at its snapshot as of `as_of`; one without such a snapshot is
/// removed, so a query naming it fails with "table not found".
async fn pin_all(lake: &Lake, ctx: &SessionContext, as_of: AsOf) -> Result<(), TransformError> {
    for ident in lake.list_tables().await? {
        let table = lake.load(&ident).await?;
        let name = ident.to_string();
        let snapshot = match as_of {
            AsOf::Version(id) if table.metadata().snapshot_by_id(id).is_none() => continue,
            _ => snapshot_as_of(&table, as_of).ok(),
        };
        match snapshot {
            Some(id) => replace_table(ctx, &name, pinned(table, Some(id)).await?)?,
            None => {
                if let Some(schema) =
                    ctx.catalog("datafusion").and_then(|c| c.schema(&ident.namespace().join(".")))
                {
                    schema.deregister_table(ident.name())?;
                }
            }
        }
    }
    Ok(())
}

/// DataFusion's "DDL not supported" and friends, said plainly.
fn refusal(error: datafusion::error::DataFusionError) -> TransformError {
    let text = error.to_string();
    if text.contains("not supported")
        && (text.contains("DDL") || text.contains("DML") || text.contains("Statement"))
    {
        TransformError::Sql(format!(
            "only queries are allowed here (the lake is written by ingot itself): {text}"
        ))
    } else {
        TransformError::DataFusion(error)
    }
}
