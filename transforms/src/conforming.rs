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
//!
//! A table can also have columns its snapshot's files cannot: a column added (a restart with
//! an evolved contract, a re-drive) before any append since. Iceberg's scan reads a snapshot
//! in the snapshot's schema and refuses such a column by name; here it reads as null, as
//! Iceberg's spec says a column missing from a file does.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions, new_null_array};

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
    /// Columns of the declared schema the scanned snapshot does not have: null in every row.
    pub unread: HashSet<String>,
}

impl ConformingTable {
    fn refers_to_unread(&self, filter: &Expr) -> bool {
        filter.column_refs().iter().any(|c| self.unread.contains(c.name()))
    }
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
        let schema = self.schema();
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..schema.fields().len()).collect());
        let (read, unread): (Vec<usize>, Vec<usize>) =
            wanted.iter().partition(|i| !self.unread.contains(schema.field(**i).name()));
        if unread.is_empty() {
            let input = self.inner.scan(state, projection, filters, limit).await?;
            return Ok(Arc::new(conform(input)));
        }
        // Some column exists in the table only: read the others (at least one, for the row
        // count) and add it as nulls. Filters on it were not pushed down (see below).
        let mut read = read;
        if read.is_empty()
            && let Some(any) =
                (0..schema.fields().len()).find(|i| !self.unread.contains(schema.field(*i).name()))
        {
            read.push(any);
        }
        let filters: Vec<Expr> = filters.iter().filter(|f| !self.refers_to_unread(f)).cloned().collect();
        let input = self.inner.scan(state, Some(&read), &filters, limit).await?;
        let wanted_schema = Arc::new(schema.project(&wanted)?);
        Ok(Arc::new(fill_nulls(conform(input), wanted_schema)))
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let mut answers = self.inner.supports_filters_pushdown(filters)?;
        for (filter, answer) in filters.iter().zip(&mut answers) {
            if self.refers_to_unread(filter) {
                *answer = TableProviderFilterPushDown::Unsupported;
            }
        }
        Ok(answers)
    }
}

/// `input`'s batches in `schema`: its columns by name, the others null.
fn fill_nulls(input: StreamExec, schema: SchemaRef) -> StreamExec {
    let declared = schema.clone();
    let wrap: StreamFn = Arc::new(move |stream: SendableRecordBatchStream| {
        let declared = declared.clone();
        let batches = stream.map({
            let declared = declared.clone();
            move |batch| {
                let batch = batch?;
                let columns = declared
                    .fields()
                    .iter()
                    .map(|field| match batch.column_by_name(field.name()) {
                        Some(column) => column.clone(),
                        None => new_null_array(field.data_type(), batch.num_rows()),
                    })
                    .collect();
                let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                Ok(RecordBatch::try_new_with_options(declared.clone(), columns, &options)?)
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(declared, batches)) as SendableRecordBatchStream)
    });
    StreamExec::new("NullColumnsExec", Arc::new(input), wrap, false).with_schema(schema)
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use ingot_lake::{CatalogConfig, Lake, TableSpec, parse_ident, table_arrow_schema, write_data_files};

    use super::*;
    use crate::query::run_query;

    fn spec(fields: Vec<Field>) -> TableSpec {
        TableSpec { ident: parse_ident("ns.t").unwrap(), schema: Schema::new(fields), partition_day: None }
    }

    async fn append(lake: &Lake, fields: Vec<Field>, columns: Vec<ArrayRef>) {
        let (table, _) = lake.ensure_table(&spec(fields)).await.unwrap();
        let schema = Arc::new(table_arrow_schema(&table).unwrap());
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        let files = write_data_files(&table, &[batch]).await.unwrap();
        lake.commit_append(&table, files, HashMap::new()).await.unwrap();
    }

    async fn number(lake: &Lake, sql: &str) -> i64 {
        let result = run_query(lake, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let column = arrow_cast::cast(result.batches[0].column(0), &DataType::Int64).unwrap();
        column.as_primitive::<Int64Type>().value(0)
    }

    /// A restart with an evolved contract adds a column before anything is appended with it:
    /// queries naming it read nulls instead of failing, filters on it included; once rows
    /// carry it, they read it.
    #[tokio::test]
    async fn a_column_added_after_the_last_append_reads_as_null() {
        let dir = tempfile::tempdir().unwrap();
        let config = CatalogConfig {
            uri: format!("sqlite://{}", dir.path().join("catalog.db").display()).as_str().into(),
            warehouse: dir.path().join("warehouse").display().to_string(),
            ..CatalogConfig::default()
        };
        let lake = Lake::open(&config).await.unwrap();
        let a = Field::new("a", DataType::Int64, true);
        let c = Field::new("c", DataType::Utf8, true);
        append(&lake, vec![a.clone()], vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).await;
        lake.ensure_table(&spec(vec![a.clone(), c.clone()])).await.unwrap();
        for (sql, expected) in [
            ("SELECT count(c) FROM ns.t", 0),
            ("SELECT count(*) FROM (SELECT c FROM ns.t)", 3),
            ("SELECT count(*) FROM ns.t WHERE c IS NULL", 3),
            ("SELECT sum(a) FROM ns.t WHERE c IS NULL AND a > 1", 5),
            ("SELECT count(*) FROM ns.t WHERE c = 'x'", 0),
            ("SELECT sum(a) FROM ns.t", 6),
        ] {
            assert_eq!(number(&lake, sql).await, expected, "{sql}");
        }
        let columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from(vec![4])), Arc::new(StringArray::from(vec!["x"]))];
        append(&lake, vec![a, c], columns).await;
        assert_eq!(number(&lake, "SELECT count(*) FROM ns.t WHERE c = 'x'").await, 1);
        assert_eq!(number(&lake, "SELECT count(c) FROM ns.t").await, 1);
    }
}
