//! The crash points of a flush (see `ingot_lake::failpoint`).

/// Names of the points, in the order a flush passes them.
pub const POINTS: [&str; 3] = ["after-dlq-send", "after-quarantine-commit", "after-bronze-commit"];

pub(crate) fn hit(name: &str) {
    ingot_lake::failpoint(name);
}
