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
use std::sync::Arc;

use arrow_schema::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::StreamExt;
use ingot_lake::to_schema;

use crate::stream_exec::{StreamExec, StreamFn};

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
        Ok(Arc::new(conform(input)))
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }
}

/// `input`, its batches passed on in its declared schema. Nothing may sit between the scan and
/// this node (a repartition would meet the unconformed batches first).
fn conform(input: Arc<dyn ExecutionPlan>) -> StreamExec {
    let wrap: StreamFn = Arc::new(|stream: SendableRecordBatchStream| {
        let declared = stream.schema();
        let batches = stream.map({
            let declared = declared.clone();
            move |batch| Ok(to_schema(&batch?, &declared)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(declared, batches)) as SendableRecordBatchStream)
    });
    StreamExec::new("ConformExec", input, wrap, false)
}
