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

    /// Whether the query itself is at fault: it does not plan (syntax, a missing table or
    /// column, a type mismatch, a feature not supported) — as opposed to a failure while it
    /// runs (an unreadable file, a broken store, a bug), which is not the caller's to fix.
    pub fn blames_the_query(&self) -> bool {
        match self {
            TransformError::Sql(_) | TransformError::Refused(_) => true,
            TransformError::DataFusion(e) => matches!(
                e.find_root(),
                DataFusionError::SQL(..)
                    | DataFusionError::Plan(_)
                    | DataFusionError::SchemaError(..)
                    | DataFusionError::NotImplemented(_)
                    | DataFusionError::Configuration(_)
            ),
            _ => false,
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

#[cfg(test)]
mod blame_tests {
    use super::*;

    #[test]
    fn planning_errors_blame_the_query_and_failures_while_running_do_not() {
        let blames = |e: DataFusionError| TransformError::DataFusion(e).blames_the_query();
        assert!(blames(DataFusionError::Plan("no column x".into())));
        assert!(blames(DataFusionError::NotImplemented("LATERAL".into())));
        // Wrapped in context, the root decides.
        assert!(blames(DataFusionError::Context(
            "planning".into(),
            Box::new(DataFusionError::Plan("x".into()))
        )));
        assert!(!blames(DataFusionError::IoError(std::io::Error::other("disk gone"))));
        assert!(!blames(DataFusionError::Internal("bug".into())));
        assert!(!blames(DataFusionError::Execution("reading a file".into())));
    }
}
