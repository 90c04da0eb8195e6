use std::path::{Path, PathBuf};

use prost_reflect::{DescriptorPool, MessageDescriptor};

use crate::ProtoError;

/// All message types of the `.proto` files under one directory, compiled at run time so a
/// new topic needs a config entry and a contract file, not a rebuild of ingot.
#[derive(Debug, Clone)]
pub struct ContractRegistry {
    dir: PathBuf,
    pool: DescriptorPool,
}

impl ContractRegistry {
    /// Compiles every `.proto` file under `dir` (recursively); imports resolve against `dir`
    /// and the well-known Google types.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, ProtoError> {
        let dir = dir.as_ref().to_path_buf();
        let mut files = Vec::new();
        collect_proto_files(&dir, &dir, &mut files)?;
        if files.is_empty() {
            return Err(ProtoError::NoContracts(dir));
        }
        files.sort();
        let compile_error =
            |e: protox::Error| ProtoError::Compile { dir: dir.clone(), message: e.to_string() };
        let mut compiler = protox::Compiler::new([&dir]).map_err(compile_error)?;
        compiler.include_imports(true);
        // Line numbers for `ingot contract check`.
        compiler.include_source_info(true);
        compiler.open_files(&files).map_err(compile_error)?;
        Ok(Self { pool: compiler.descriptor_pool(), dir })
    }

    /// The directory the contracts were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks up a message type by its full name, e.g. `ingot.demo.v1.OrderEvent`.
    pub fn message(&self, full_name: &str) -> Result<MessageDescriptor, ProtoError> {
        self.pool
            .get_message_by_name(full_name)
            .ok_or_else(|| ProtoError::UnknownMessage(full_name.to_string()))
    }
}

/// Paths relative to `root`, which is how protox wants files named inside an include dir.
fn collect_proto_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ProtoError> {
    let read_error = |source| ProtoError::ReadDir { dir: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_dir() {
            collect_proto_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            out.push(relative);
        }
    }
    Ok(())
}
