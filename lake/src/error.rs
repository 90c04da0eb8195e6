/// What can go wrong in the lake, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// Another writer changed the table between our read and our commit. Reload and retry.
    #[error("commit to {table} lost a race with another writer")]
    CommitConflict { table: String },
    /// The catalog's answer to a commit was lost: it may or may not have landed. Settled by
    /// looking for the commit id in the table's history, never by blind retry.
    #[error("commit to {table}: outcome unknown ({error})")]
    CommitUnknown { table: String, error: String },
    /// A bounded retry loop gave up.
    #[error("{what}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { what: String, attempts: u32, last: String },
    /// An "as of" that names no snapshot of the table.
    #[error("time travel on {table}: {problem}")]
    TimeTravel { table: String, problem: String },
    /// The table uses something ingot does not write (another format version, delete files).
    #[error("{0}")]
    Unsupported(String),
    /// An error from the Iceberg library or the catalog (storage, database, metadata).
    #[error("{context}: {source}")]
    Iceberg {
        context: String,
        // Boxed: iceberg's error is large and every `Result` in the lake carries it.
        #[source]
        source: Box<iceberg::Error>,
    },
    /// The catalog or the warehouse could not be reached; the same request may work later.
    #[error("{context}: storage unavailable: {source}")]
    Unavailable {
        context: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    /// The catalog configuration cannot work (bad URI, unreachable warehouse).
    #[error("catalog config: {0}")]
    Config(String),
    /// A schema cannot be evolved into what the contract now says.
    #[error("schema of {table}: {problem}")]
    Schema { table: String, problem: String },
    /// A read failed and the table holds data files without Iceberg field ids (Parquet another
    /// engine registered with `add_files`), which this reader maps by name for top-level
    /// columns only. Rewriting those files with an Iceberg writer fixes it.
    #[error(
        "reading {table} failed ({cause}); {} data file(s) have no Iceberg field ids, and this reader (iceberg-rust 0.10) maps only top-level columns of such files by name: {}. Rewrite their rows with an Iceberg writer (PyIceberg `overwrite`, Spark `rewrite_data_files`) or remove the files",
        files.len(),
        files.join(", ")
    )]
    FieldIdsMissing { table: String, files: Vec<String>, cause: String },
    /// A snapshot summary ingot wrote cannot be read back.
    #[error("snapshot summary of {table}: {problem}")]
    Summary { table: String, problem: String },
}

impl LakeError {
    /// Whether repeating the same operation (after reloading the table) may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            LakeError::CommitConflict { .. } | LakeError::CommitUnknown { .. } => true,
            LakeError::RetriesExhausted { .. } | LakeError::Unsupported(_) | LakeError::TimeTravel { .. } => {
                false
            }
            LakeError::Iceberg { source, .. } => source.retryable(),
            LakeError::Unavailable { .. } => true,
            LakeError::Config(_)
            | LakeError::Schema { .. }
            | LakeError::Summary { .. }
            | LakeError::FieldIdsMissing { .. } => false,
        }
    }

    /// Whether the storage or the catalog failed in a way that may clear up with time (a
    /// locked or unreachable catalog database, an unavailable or read-only warehouse): a
    /// service waits and tries again rather than stopping. Iceberg reports all of these as
    /// `Unexpected`; its other kinds describe the data or the request and never clear up.
    pub fn transient(&self) -> bool {
        match self {
            LakeError::Iceberg { source, .. } => {
                source.retryable() || source.kind() == iceberg::ErrorKind::Unexpected
            }
            LakeError::CommitUnknown { .. } | LakeError::Unavailable { .. } => true,
            _ => false,
        }
    }

    /// Maps a failed catalog commit: a lost compare-and-swap becomes `CommitConflict`,
    /// anything else keeps iceberg's error with `context`.
    pub(crate) fn commit(table: &iceberg::TableIdent, context: &str) -> impl FnOnce(iceberg::Error) -> Self {
        let table = table.to_string();
        let context = format!("{context} {table}");
        move |source| match source.kind() {
            iceberg::ErrorKind::CatalogCommitConflicts => LakeError::CommitConflict { table },
            _ => LakeError::iceberg(context)(source),
        }
    }

    /// Something could not be reached (`context` says what), for a `cause` given as text: the
    /// same request may work later.
    pub(crate) fn unavailable(context: impl Into<String>, cause: impl ToString) -> Self {
        LakeError::Unavailable {
            context: context.into(),
            source: Box::new(iceberg::Error::new(iceberg::ErrorKind::Unexpected, cause.to_string())),
        }
    }

    pub(crate) fn iceberg(context: impl Into<String>) -> impl FnOnce(iceberg::Error) -> Self {
        let context = context.into();
        move |source| LakeError::Iceberg { context, source: Box::new(source) }
    }
}
