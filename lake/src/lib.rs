//! The lake: Iceberg catalogs, table lifecycle and schema evolution, appends that carry
//! their source offsets, and reads back.
//!
//! Every commit goes through the catalog's own compare-and-swap, and every append says in its
//! snapshot summary which source offsets it holds, so a writer can always tell what the table
//! already contains.

mod catalog;
mod commit;
mod describe;
mod error;
mod events;
mod failpoint;
mod field_ids;
mod incremental;
mod lease;
mod maintain;
mod offsets;
mod overwrite;
mod pinned;
mod read;
mod schema;
mod state;
mod storage;
mod travel;
mod write;

pub use catalog::{CatalogConfig, CatalogKind, GlueConfig, Lake, RestConfig, parse_ident};
pub use commit::{COMMIT_ATTEMPTS, Committed, FileSelection, OnConflict, SnapshotChange};
pub use error::LakeError;
pub use failpoint::failpoint;
pub use field_ids::{explain_read_failure, files_without_field_ids};
pub use incremental::{AddedFiles, FilePlacement, Rewritten, RowChanges, files_added_between, read_changes};
pub use lease::{LeaseClaim, LeaseOutcome, is_lease_table};
pub use maintain::{
    CompactOptions, CompactReport, DEFAULT_COMPACT_TARGET_BYTES, ExpireOptions, ExpireReport, OrphanOptions,
    OrphanReport, read_files, read_files_at, stream_files_at,
};
pub use offsets::{COMMIT_ID_PROPERTY, OFFSETS_PROPERTY, SourceOffsets, find_commit};
pub use overwrite::{Overwrite, Replaced, partition_paths};
pub use read::{
    SnapshotInfo, TableSize, column_for, list_snapshots, read_columns_in_range, read_table,
    table_arrow_schema, table_size, to_schema,
};
pub use schema::{SchemaPlan, TableSpec, TableStatus};
pub use state::{
    CARRIED_KEYS, SOURCE_SNAPSHOTS_PROPERTY, TableState, WATERMARK_PROPERTY, ancestors, ancestry_complete,
    source_history,
};
pub use storage::{StorageConfig, StoredFile, Warehouse};
pub use travel::{AsOf, snapshot_as_of};
pub use write::{DataFiles, target_file_size, write_data_files, write_data_files_sized};

pub use iceberg::ErrorKind as IcebergErrorKind;
pub use iceberg::TableIdent;
pub use iceberg::spec::Operation;
pub use iceberg::table::Table;
