//! DataFusion over the lake's tables: SQL queries (with Trino's time-travel syntax) pinned
//! to exact snapshots. Silver and gold transforms build on the same session.

mod error;
pub mod query;

pub use error::TransformError;
