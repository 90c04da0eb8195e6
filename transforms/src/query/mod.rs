//! `ingot query` and the HTTP API's `/v1/query`: read-only SQL over every lake table, with
//! Trino's `FOR TIMESTAMP AS OF` / `FOR VERSION AS OF` resolved to snapshots as Trino resolves
//! them, run within [`QueryLimits`] on a [`QueryPool`] of its own.

mod bounded_functions;
mod budget;
mod format;
mod limits;
mod pool;
mod session;
mod time_travel;

pub use format::{OutputFormat, ResultEncoder};
pub use limits::{QueryLimits, byte_size};
pub use pool::{QueryPool, QueryStream};
pub use session::{QueryResult, run_query};
pub use time_travel::{TimeTravelRef, parse_timestamp, rewrite_time_travel};
