//! A DataFusion session over the lake: every table registered as `<namespace>.<table>`,
//! pinned to its snapshot when the query starts, plus the time-travel references of the
//! query pinned to theirs. Read-only: DDL, DML and statements are refused.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::execution::context::SQLOptions;
use datafusion::sql::TableReference;
use ingot_lake::{Lake, parse_ident, snapshot_as_of};

use super::rewrite_time_travel;
use crate::TransformError;
use crate::lake_session::{lake_session, pinned};

/// A query's rows and the snapshots it read.
#[derive(Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// `table → snapshot id` for every time-travel reference (tables read at their current
    /// snapshot are not listed).
    pub pinned: Vec<(String, i64)>,
}

/// Runs one read-only SQL query over the lake.
pub async fn run_query(lake: &Lake, sql: &str) -> Result<QueryResult, TransformError> {
    let (sql, refs) = rewrite_time_travel(sql)?;
    let ctx = lake_session(lake).await?;
    let mut read_at = Vec::new();
    for reference in refs {
        let table = lake.load(&parse_ident(&reference.table)?).await?;
        let snapshot_id = snapshot_as_of(&table, reference.as_of)?;
        ctx.register_table(
            TableReference::bare(reference.alias_table.clone()),
            pinned(table, Some(snapshot_id)).await?,
        )?;
        read_at.push((reference.table, snapshot_id));
    }
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let frame = ctx.sql_with_options(&sql, options).await.map_err(refusal)?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok(QueryResult { schema, batches, pinned: read_at })
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
