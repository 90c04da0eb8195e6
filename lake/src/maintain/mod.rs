//! Table maintenance: compaction, snapshot expiry and orphan-file cleanup.
//!
//! Every action can run as a dry run that reports what it would do and changes nothing.

mod compact;
mod expire;
mod orphans;
mod reachable;

pub use compact::{
    CompactOptions, CompactReport, DEFAULT_COMPACT_TARGET_BYTES, read_files, read_files_at, stream_files_at,
};
pub use expire::{ExpireOptions, ExpireReport};
pub use orphans::{OrphanOptions, OrphanReport};
