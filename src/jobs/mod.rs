//! The jobs ingot runs, each one lineage run: what `ingot run`'s service and schedules call,
//! and what the CLI commands of the same name wrap (a command adds its own pipeline run and
//! its output, nothing else).

mod backfill;
pub mod maintenance;
mod replay;

pub use backfill::backfill;
pub use replay::replay;
