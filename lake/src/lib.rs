//! The lake: Iceberg catalogs, table lifecycle and schema evolution, appends that carry
//! their source offsets, and reads back.
//!
//! Every commit goes through the catalog's own compare-and-swap, and every append says in its
//! snapshot summary which source offsets it holds, so a writer can always tell what the table
//! already contains.

mod catalog;
mod error;
mod offsets;
mod pinned;
mod read;
mod schema;
mod write;

pub use catalog::{CatalogConfig, Lake, parse_ident};
pub use error::LakeError;
pub use offsets::{COMMIT_ID_PROPERTY, OFFSETS_PROPERTY, SourceOffsets, find_commit};
pub use read::{SnapshotInfo, list_snapshots, read_table, table_arrow_schema};
pub use schema::{TableSpec, TableStatus};
pub use write::{DataFiles, write_data_files};

pub use iceberg::ErrorKind as IcebergErrorKind;
pub use iceberg::TableIdent;
pub use iceberg::table::Table;
