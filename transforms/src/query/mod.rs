//! `ingot query`: read-only SQL over every lake table, with Trino's
//! `FOR TIMESTAMP AS OF` / `FOR VERSION AS OF` resolved to snapshots as Trino resolves them.

mod format;
mod session;
mod time_travel;

pub use format::{OutputFormat, write_batches};
pub use session::{QueryOptions, QueryResult, run_query, run_query_with};
pub use time_travel::{TimeTravelRef, parse_timestamp, rewrite_time_travel};
