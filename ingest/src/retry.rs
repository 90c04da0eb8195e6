//! How ingest waits out trouble: lost commit races are counted, an unavailable catalog or
//! warehouse is timed. Only configuration errors stop the service at once.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::IngestError;

/// How long and how often a commit is tried again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Lost races in a row before giving up.
    pub conflicts: u32,
    /// How long an unavailable catalog or storage is waited for.
    pub transient_for: Duration,
}

/// 100 ms doubling to 5 s: a lost race is retried at once, an outage is not hammered.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(7)).min(5_000))
}

/// Runs `attempt` until it succeeds, fails for good, or the catalog or warehouse has been
/// unavailable for `limit` (each failure logged with `what`).
pub async fn until_available<T, F, Fut>(what: &str, limit: Duration, mut attempt: F) -> Result<T, IngestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, IngestError>>,
{
    let since = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(IngestError::Lake(e)) if e.transient() && since.elapsed() < limit => {
                tracing::warn!(what, attempt = tries, error = %e, "catalog or storage unavailable; retrying");
                tokio::time::sleep(backoff(tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
