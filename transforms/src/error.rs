use std::time::Duration;

use datafusion::error::DataFusionError;
use ingot_lake::LakeError;

/// What can go wrong running SQL over the lake, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The SQL itself is wrong or asks for something not allowed; fix the query.
    #[error("{0}")]
    Sql(String),
    /// DataFusion failed planning or running the query.
    #[error("query failed: {0}")]
    DataFusion(#[from] DataFusionError),
    /// The query is outside a configured bound before it runs (its size, its nesting).
    #[error("{0}")]
    Refused(String),
    /// Every query slot is taken; try again shortly.
    #[error("{0} queries are already running (query.max_concurrent); try again shortly")]
    Busy(usize),
    /// The query ran past its deadline and was stopped.
    #[error("the query ran longer than {0:?} (query.timeout) and was stopped")]
    TimedOut(Duration),
    /// The query needed more than a configured bound while running (memory, result size).
    #[error("{0}")]
    TooBig(String),
}

impl TransformError {
    /// Prefixes SQL errors with the transform's table, so the message says which file failed.
    pub(crate) fn context(self, table: &str) -> Self {
        match self {
            TransformError::Sql(m) if !m.contains(table) => {
                TransformError::Sql(format!("transform {table}: {m}"))
            }
            TransformError::DataFusion(e) => TransformError::Sql(format!("transform {table}: {e}")),
            TransformError::TooBig(m) => TransformError::TooBig(format!("transform {table}: {m}")),
            other => other,
        }
    }

    /// A DataFusion failure while running, with running out of the memory budget named as
    /// such: `budget_key` is the config key that sets it.
    pub(crate) fn from_run(error: DataFusionError, max_memory: usize, budget_key: &str) -> Self {
        let exhausted = matches!(error.find_root(), DataFusionError::ResourcesExhausted(_))
            || error.to_string().contains("Resources exhausted");
        if exhausted {
            TransformError::TooBig(format!(
                "the query needs more memory than {budget_key} ({} MiB) allows: {}",
                max_memory >> 20,
                error.find_root()
            ))
        } else {
            TransformError::DataFusion(error)
        }
    }

    pub fn retryable(&self) -> bool {
        match self {
            TransformError::Lake(e) => e.retryable(),
            TransformError::Sql(_) | TransformError::Refused(_) | TransformError::TooBig(_) => false,
            // Planning errors repeat; an execution error reading files may be transient, but
            // DataFusion does not say which, so the caller decides.
            TransformError::DataFusion(_) => false,
            TransformError::Busy(_) => true,
            // The same query will take as long again.
            TransformError::TimedOut(_) => false,
        }
    }
}
