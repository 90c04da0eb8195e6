//! A lake table as DataFusion reads it, with every batch in exactly the schema the table
//! declares.
//!
//! The Iceberg reader hands batches in the data file's own Arrow types. For files ingot (or any
//! Iceberg writer) wrote those are the table's types, field ids included. A Parquet file
//! another engine registered without field ids (PyIceberg `add_files`) is mapped by name for
//! its top-level columns only, so its nested fields come without ids: a type DataFusion
//! considers different, which its operators assert on (a panic, not an error). Casting such
//! columns to the declared type (a metadata change for the same shape) makes the file read
//! like any other.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use ingot_lake::to_schema;

/// `inner`, with its scans' batches conformed to their declared schema.
#[derive(Debug)]
pub(crate) struct ConformingTable {
    pub inner: Arc<dyn TableProvider>,
}

#[async_trait::async_trait]
impl TableProvider for ConformingTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = self.inner.scan(state, projection, filters, limit).await?;
        Ok(Arc::new(ConformExec { input }))
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }
}

/// Passes `input`'s batches on in `input`'s declared schema.
#[derive(Debug)]
struct ConformExec {
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for ConformExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ConformExec")
    }
}

impl ExecutionPlan for ConformExec {
    fn name(&self) -> &str {
        "ConformExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // Nothing may sit between the scan and this node (a repartition would meet the
    // unconformed batches first), and rows pass in the order they come.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(Arc::new(ConformExec { input })),
            _ => Err(DataFusionError::Internal("ConformExec has exactly one child".into())),
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.input.schema();
        let declared = schema.clone();
        let batches =
            self.input.execute(partition, context)?.map(move |batch| Ok(to_schema(&batch?, &declared)?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}
