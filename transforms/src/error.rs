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
    DataFusion(#[from] datafusion::error::DataFusionError),
}

impl TransformError {
    /// Prefixes SQL errors with the transform's table, so the message says which file failed.
    pub(crate) fn context(self, table: &str) -> Self {
        match self {
            TransformError::Sql(m) if !m.contains(table) => {
                TransformError::Sql(format!("transform {table}: {m}"))
            }
            TransformError::DataFusion(e) => TransformError::Sql(format!("transform {table}: {e}")),
            other => other,
        }
    }

    pub fn retryable(&self) -> bool {
        match self {
            TransformError::Lake(e) => e.retryable(),
            TransformError::Sql(_) => false,
            // Planning errors repeat; an execution error reading files may be transient, but
            // DataFusion does not say which, so the caller decides.
            TransformError::DataFusion(_) => false,
        }
    }
}
