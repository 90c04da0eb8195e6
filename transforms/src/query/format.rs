//! Printing query results: an aligned table for people, CSV and JSON lines for tools.

use std::io::Write;

use arrow_array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::LineDelimitedWriter;

use crate::TransformError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    /// One JSON object per row.
    Json,
    /// An Arrow IPC stream (binary).
    Arrow,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            "arrow" => Ok(Self::Arrow),
            other => Err(format!("unknown format `{other}`: use table, csv, json or arrow")),
        }
    }
}

/// Writes `batches` (of `schema`) to `out` in `format`.
pub fn write_batches(
    out: &mut dyn Write,
    schema: &arrow_schema::SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<(), TransformError> {
    let io = |e: std::io::Error| TransformError::Sql(format!("write output: {e}"));
    match format {
        OutputFormat::Table => {
            let table = arrow_cast::pretty::pretty_format_batches(batches)
                .map_err(|e| TransformError::Sql(format!("format output: {e}")))?;
            writeln!(out, "{table}").map_err(io)?;
        }
        OutputFormat::Csv => {
            let mut writer = CsvWriterBuilder::new().with_header(true).build(out);
            for batch in batches {
                writer.write(batch).map_err(|e| TransformError::Sql(format!("write csv: {e}")))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = LineDelimitedWriter::new(out);
            writer
                .write_batches(&batches.iter().collect::<Vec<_>>())
                .map_err(|e| TransformError::Sql(format!("write json: {e}")))?;
            writer.finish().map_err(|e| TransformError::Sql(format!("write json: {e}")))?;
        }
        OutputFormat::Arrow => {
            let arrow =
                |e: datafusion::arrow::error::ArrowError| TransformError::Sql(format!("write arrow: {e}"));
            let mut writer = StreamWriter::try_new(out, schema).map_err(arrow)?;
            for batch in batches {
                writer.write(batch).map_err(arrow)?;
            }
            writer.finish().map_err(arrow)?;
        }
    }
    Ok(())
}
