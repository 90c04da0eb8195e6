//! The long-running tasks `ingot run` hosts beside ingest (transforms, maintenance, schedules,
//! the HTTP API), and stopping them together: each finishes the unit of work it is in (a
//! transform run, one table's maintenance, a scheduled action, the requests in flight), emits
//! its lineage, and returns; a task still busy at the deadline is abandoned and named.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// `[service]`: how `ingot run` stops, and how several instances share the work only one may
/// do at a time (see `coordinator`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// How long, after ingest has drained, the other tasks may take to finish the unit of work
    /// they are in before they are abandoned (their commits are idempotent: the next run
    /// redoes or finds what an abandoned one did).
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The table whose properties hold the coordinator lease (created on first use).
    #[serde(default = "default_lease_table")]
    pub lease_table: String,
    /// How long the coordinator lease lasts unless renewed (it is renewed every quarter of
    /// this): after its holder dies, another instance takes the coordinated work over within
    /// about this time. Instances' clocks must agree to well within it.
    #[serde(default = "default_lease_ttl", with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How long `ingot transform`, `ingot maintain` and `ingot run --until-caught-up` wait for
    /// the lease while another instance holds it, before giving up naming the holder.
    #[serde(default = "default_lease_wait", with = "humantime_serde")]
    pub lease_wait: Duration,
    /// This instance's name in the lease and the logs; default `<hostname>-<pid>-<random>`.
    #[serde(default)]
    pub instance: Option<String>,
}

fn default_lease_table() -> String {
    "ingot.leases".into()
}
fn default_lease_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_lease_wait() -> Duration {
    Duration::from_secs(120)
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            shutdown_timeout: default_shutdown_timeout(),
            lease_table: default_lease_table(),
            lease_ttl: default_lease_ttl(),
            lease_wait: default_lease_wait(),
            instance: None,
        }
    }
}

/// A task's view of the stop request: checked between units of work, awaited while idle.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Resolves once a stop is requested (at once if it already was).
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether a stop has been requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// Owns the service's tasks and stops them.
pub struct Supervisor {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self { stop: watch::Sender::new(false), tasks: Vec::new() }
    }

    /// What a task waits on to know it should stop.
    pub fn stop_signal(&self) -> Stop {
        Stop(self.stop.subscribe())
    }

    /// Runs `task` (which should return soon after its [`Stop`] is requested) until shutdown.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push((name, tokio::spawn(task)));
    }

    /// Requests a stop and waits up to `deadline` for every task; the names of the tasks
    /// abandoned at the deadline (none after a clean drain).
    pub async fn shutdown(self, deadline: Duration) -> Vec<&'static str> {
        self.stop.send_replace(true);
        let until = tokio::time::Instant::now() + deadline;
        let mut abandoned = Vec::new();
        for (name, mut task) in self.tasks {
            match tokio::time::timeout_at(until, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = name, error = %e, "task ended abnormally"),
                Err(_) => {
                    tracing::warn!(task = name, ?deadline, "still busy at the shutdown deadline: abandoned");
                    task.abort();
                    abandoned.push(name);
                }
            }
        }
        abandoned
    }
}
