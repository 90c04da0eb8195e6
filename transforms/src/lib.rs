//! DataFusion over the lake's tables: SQL queries (with Trino's time-travel syntax) pinned to
//! exact snapshots, and the incremental silver and gold transforms built from `sql/`.

mod backfill;
mod changes;
mod column_lineage;
mod config;
mod conforming;
mod dedup;
mod error;
mod events;
mod gold;
mod lake_session;
mod lineage;
mod progress;
pub mod query;
mod replay;
mod rows;
mod run;
mod silver;
mod stream_exec;

pub use backfill::{BackfillReport, backfill};
pub use column_lineage::{Direct, PlanLineage, plan_lineage};
pub use config::{Kind, ScheduleConfig, TransformConfig};
pub use error::TransformError;
pub use lake_session::{collect, lake_session, memory_table, replace_table};
pub use lineage::{ParentRun, RunLineage, job_name};
pub use progress::QUARANTINED_FOR_PROPERTY;
pub use replay::{ReplayReport, WindowDiff, replay};
pub use run::{RunContext, TransformReport, column_lineage_of, run_transforms};
pub use silver::RULE_COLUMN;
