//! Printing query results: an aligned table for people, CSV and JSON lines for tools.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
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

/// Encodes a result batch by batch as it is produced, refusing to go past `max_bytes`.
pub struct ResultEncoder {
    state: Encoding,
    budget: ByteBudget,
}

/// The bytes a result may take, and those it has taken.
struct ByteBudget {
    max: usize,
    written: usize,
}

impl ByteBudget {
    /// `bytes`, counted against the budget.
    fn take(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, TransformError> {
        self.written += bytes.len();
        if self.written > self.max {
            return Err(TransformError::TooBig(format!(
                "the result is larger than {} bytes (query.max_result_bytes); add a LIMIT or select fewer columns",
                self.max
            )));
        }
        Ok(bytes)
    }
}

enum Encoding {
    /// Column widths depend on every row, so the table is drawn at the end.
    Table(Vec<RecordBatch>),
    Csv {
        header_written: bool,
    },
    Json,
    Arrow(StreamWriter<Vec<u8>>),
}

impl ResultEncoder {
    /// An encoder of rows of `schema` in `format`.
    pub fn new(schema: &SchemaRef, format: OutputFormat, max_bytes: usize) -> Result<Self, TransformError> {
        let state = match format {
            OutputFormat::Table => Encoding::Table(Vec::new()),
            OutputFormat::Csv => Encoding::Csv { header_written: false },
            OutputFormat::Json => Encoding::Json,
            OutputFormat::Arrow => Encoding::Arrow(StreamWriter::try_new(Vec::new(), schema).map_err(arrow)?),
        };
        Ok(Self { state, budget: ByteBudget { max: max_bytes, written: 0 } })
    }

    /// The bytes that encode `batch` (none yet for a table).
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, TransformError> {
        let bytes = match &mut self.state {
            Encoding::Table(batches) => {
                batches.push(batch.clone());
                Vec::new()
            }
            Encoding::Csv { header_written } => {
                let mut out = Vec::new();
                let mut writer = CsvWriterBuilder::new().with_header(!*header_written).build(&mut out);
                writer.write(batch).map_err(|e| TransformError::Sql(format!("write csv: {e}")))?;
                drop(writer);
                *header_written = true;
                out
            }
            Encoding::Json => {
                let mut writer = LineDelimitedWriter::new(Vec::new());
                writer.write(batch).map_err(|e| TransformError::Sql(format!("write json: {e}")))?;
                writer.finish().map_err(|e| TransformError::Sql(format!("write json: {e}")))?;
                writer.into_inner()
            }
            Encoding::Arrow(writer) => {
                writer.write(batch).map_err(arrow)?;
                std::mem::take(writer.get_mut())
            }
        };
        self.budget.take(bytes)
    }

    /// The bytes that end the result (the whole table, an Arrow stream's end marker).
    pub fn finish(self) -> Result<Vec<u8>, TransformError> {
        let Self { state, mut budget } = self;
        let bytes = match state {
            Encoding::Table(batches) => {
                let table = arrow_cast::pretty::pretty_format_batches(&batches)
                    .map_err(|e| TransformError::Sql(format!("format output: {e}")))?;
                format!("{table}\n").into_bytes()
            }
            Encoding::Csv { .. } | Encoding::Json => Vec::new(),
            Encoding::Arrow(mut writer) => {
                writer.finish().map_err(arrow)?;
                std::mem::take(writer.get_mut())
            }
        };
        budget.take(bytes)
    }
}

fn arrow(e: datafusion::arrow::error::ArrowError) -> TransformError {
    TransformError::Sql(format!("write arrow: {e}"))
}
