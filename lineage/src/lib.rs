//! OpenLineage 2-0-2 run events for every ingot run, and the transports that deliver them.
//!
//! Every job reports one [`LineageRun`] (START, RUNNING, one terminal event; ABORT if it is
//! dropped unended). Events are plain JSON built by the helpers in [`facets`]; [`Emitter`] queues them and
//! delivers them in order on its own task, spooling to disk while the endpoint is down, so
//! emitting never blocks or fails the pipeline.

pub mod datasets;
mod emitter;
pub mod facets;
mod model;
pub mod naming;
mod run;
mod transport;

pub use emitter::{Emitter, EmitterStats};
pub use model::{Dataset, EventType, Job, RunEvent, SCHEMA_URL, format_time, now};
pub use run::{JobKind, LineageRun, ParentRun, insert};
pub use transport::{LineageConfig, TransportKind};

/// The `producer` and `_producer` URI of everything ingot emits.
pub const PRODUCER: &str =
    concat!("https://github.com/ingot-lakehouse/ingot/tree/v", env!("CARGO_PKG_VERSION"));
