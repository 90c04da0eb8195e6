//! Crash points for tests: `INGOT_FAILPOINT=<name>` aborts the process when it reaches that
//! point, so tests can crash ingot exactly between two commits instead of hoping a timed
//! `kill -9` lands there. Unset (always, in production) it costs one cached lookup.

use std::sync::OnceLock;

/// Aborts the process if `INGOT_FAILPOINT` names this point.
pub fn failpoint(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("INGOT_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
