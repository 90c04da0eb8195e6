use std::path::PathBuf;

/// Everything that can go wrong while loading contracts or preparing a decoder.
///
/// None of these are helped by retrying: they are problems in the `.proto` files, in the
/// config that names them, or in a table schema the contract cannot be mapped onto.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("cannot read contract directory {dir}: {source}")]
    ReadDir { dir: PathBuf, source: std::io::Error },
    #[error("no .proto files under {0}")]
    NoContracts(PathBuf),
    #[error("cannot compile contracts under {dir}: {message}")]
    Compile { dir: PathBuf, message: String },
    #[error("message type `{0}` is not defined by any contract")]
    UnknownMessage(String),
    #[error("field `{field}` of `{message}`: {problem}")]
    Mapping { message: String, field: String, problem: String },
    #[error("rule `{rule}`: {problem}")]
    Rule { rule: String, problem: String },
}

impl ProtoError {
    /// Contract problems are fixed by editing files, never by trying again.
    pub fn retryable(&self) -> bool {
        matches!(self, ProtoError::ReadDir { .. })
    }
}
