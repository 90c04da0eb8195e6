//! Small Arrow helpers the transforms share: event times, row masks, and shaping batches
//! into what an Iceberg table accepts.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use datafusion::prelude::{Expr, lit};
use datafusion::scalar::ScalarValue;
use ingot_lake::{Table, column_for, table_arrow_schema};

use crate::TransformError;

/// The event-time column as µs since the epoch (any timestamp unit; nulls as `None`).
pub fn event_micros(batch: &RecordBatch, column: &str) -> Result<Vec<Option<i64>>, TransformError> {
    let array = batch.column_by_name(column).ok_or_else(|| {
        TransformError::Sql(format!("the SQL output lacks the event-time column `{column}`"))
    })?;
    let tz = match array.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        other => {
            return Err(TransformError::Sql(format!(
                "event-time column `{column}` is {other}, not a timestamp"
            )));
        }
    };
    let micros = arrow_cast::cast(array, &DataType::Timestamp(TimeUnit::Microsecond, tz))
        .map_err(|e| TransformError::Sql(format!("event-time column `{column}`: {e}")))?;
    let micros = micros.as_primitive::<TimestampMicrosecondType>();
    Ok((0..micros.len()).map(|i| micros.is_valid(i).then(|| micros.value(i))).collect())
}

/// A literal builder for comparisons with the timestamp column `column` of `table`: µs since
/// the epoch in the column's own time zone, so the filter reaches the Iceberg scan.
pub fn timestamp_literal(
    table: &Table,
    column: &str,
) -> Result<impl Fn(i64) -> Expr + use<>, TransformError> {
    match table_arrow_schema(table)?.field_with_name(column).map(|f| f.data_type().clone()) {
        Ok(DataType::Timestamp(_, tz)) => {
            Ok(move |us: i64| lit(ScalarValue::TimestampMicrosecond(Some(us), tz.clone())))
        }
        _ => Err(TransformError::Sql(format!("{} has no timestamp column `{column}`", table.identifier()))),
    }
}

/// A column read as text (`what` names it in errors).
pub fn text_column(array: &ArrayRef, what: &str) -> Result<StringArray, TransformError> {
    let text =
        arrow_cast::cast(array, &DataType::Utf8).map_err(|e| TransformError::Sql(format!("{what}: {e}")))?;
    Ok(text.as_string::<i32>().clone())
}

/// Rows of `batch` where `mask` is true.
pub fn filter(batch: &RecordBatch, mask: &[bool]) -> Result<RecordBatch, TransformError> {
    let mask = BooleanArray::from(mask.to_vec());
    arrow_select::filter::filter_record_batch(batch, &mask)
        .map_err(|e| TransformError::Sql(format!("filter rows: {e}")))
}

/// Iceberg stores timestamps in µs and has no view types: such columns are cast, the rest kept.
pub fn iceberg_ready(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, TransformError> {
    batches
        .into_iter()
        .map(|batch| {
            let schema = batch.schema();
            let mut fields = Vec::with_capacity(schema.fields().len());
            let mut columns = Vec::with_capacity(schema.fields().len());
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let wanted = match field.data_type() {
                    DataType::Timestamp(unit, tz) if *unit != TimeUnit::Microsecond => {
                        Some(DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))
                    }
                    DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
                    DataType::BinaryView => Some(DataType::Binary),
                    _ => None,
                };
                match wanted {
                    Some(ty) => {
                        let cast = arrow_cast::cast(column, &ty)
                            .map_err(|e| TransformError::Sql(format!("column `{}`: {e}", field.name())))?;
                        fields.push(Field::new(field.name(), ty, field.is_nullable()));
                        columns.push(cast);
                    }
                    None => {
                        fields.push(field.as_ref().clone());
                        columns.push(column.clone());
                    }
                }
            }
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| TransformError::Sql(format!("shape output: {e}")))
        })
        .collect()
}

/// Lays `batch` out in `target`'s columns: `fill` supplies named constants, the rest come from
/// [`column_for`] (same-named columns, cast if needed; null when missing). Used to write rows
/// into the quarantine, whose columns the transform's output only partly has.
pub fn conform(
    batch: &RecordBatch,
    target: &SchemaRef,
    fill: &dyn Fn(&Field, usize) -> Option<ArrayRef>,
) -> Result<RecordBatch, TransformError> {
    let rows = batch.num_rows();
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match fill(field, rows) {
            Some(column) => column,
            None => column_for(batch, field)
                .map_err(|e| TransformError::Sql(format!("column `{}`: {e}", field.name())))?,
        };
        columns.push(column);
    }
    RecordBatch::try_new(target.clone(), columns)
        .map_err(|e| TransformError::Sql(format!("quarantine rows: {e}")))
}
