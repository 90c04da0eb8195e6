//! Which ingot instance coordinates: runs the transforms, the maintenance and the schedules.
//! Any number of instances may ingest in one consumer group; the work that must happen in one
//! place at a time follows one lease in the catalog (`ingot_lake`'s `claim_lease`), held by
//! one instance and renewed every quarter of `service.lease_ttl`. When the holder dies its
//! lease runs out and another instance takes over; a holder that cannot renew stops its
//! coordinated work before the lease can pass on (a fifth of the lease time early, room for
//! clock skew), so two instances never run it at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ingot_lake::{Lake, LakeError, LeaseClaim, LeaseOutcome, TableIdent, parse_ident};
use metrics::gauge;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::commands::CliError;
use crate::service::ServiceConfig;

/// The one lease coordinated work follows.
pub const COORDINATOR_LEASE: &str = "coordinator";

/// What this instance knows about its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Nobody asked for coordinated work yet, so the lease was never claimed.
    Idle,
    Follower,
    /// Holds the lease in this term (a new term after any gap).
    Leader {
        term: u64,
    },
}

/// This instance's view of the lease, shared by the tasks that do coordinated work. The lease
/// is first claimed when some work asks for it (a service without transforms claims it at its
/// first maintenance round), and then kept claimed until [`Resign::resign`].
#[derive(Clone)]
pub struct Coordinator {
    role: watch::Receiver<Role>,
    wanted: Arc<watch::Sender<bool>>,
    ttl: Duration,
    lake: Lake,
    table: TableIdent,
}

/// Stops the claiming task and gives the lease up; see [`Coordinator::start`].
pub struct Resign {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Resign {
    /// Gives the lease up once the coordinated work has finished, so another instance need
    /// not wait for it to run out.
    pub async fn resign(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Where the lease lives and who claims it.
struct LeaseTerms {
    lake: Lake,
    table: TableIdent,
    holder: String,
    ttl: Duration,
}

impl LeaseTerms {
    async fn claim(&self) -> Result<LeaseOutcome, LakeError> {
        self.lake.claim_lease(&self.table, COORDINATOR_LEASE, &self.holder, self.ttl).await
    }

    async fn release(&self) {
        let release = self.lake.release_lease(&self.table, COORDINATOR_LEASE, &self.holder);
        match tokio::time::timeout(self.ttl / 4, release).await {
            Ok(Ok(())) => tracing::info!(holder = %self.holder, "gave the coordinator lease up"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not give the coordinator lease up; it runs out"),
            Err(_) => tracing::warn!("giving the coordinator lease up timed out; it runs out"),
        }
    }

    /// How long a claim made at `asked` may be relied on: the lease's time less a fifth, so
    /// the holder stops before anyone else can start even with clocks a little apart.
    fn trusted_until(&self, asked: Instant) -> Instant {
        asked + self.ttl - self.ttl / 5
    }
}

impl Coordinator {
    /// Starts the task that claims the lease once work asks for it (every instance does; one
    /// wins). Coordinated work goes through [`Coordinator::lead`]; [`Resign::resign`] ends it.
    pub fn start(lake: Lake, config: &ServiceConfig) -> Result<(Coordinator, Resign), CliError> {
        let table = parse_ident(&config.lease_table)?;
        let terms = LeaseTerms {
            lake: lake.clone(),
            table: table.clone(),
            holder: instance_name(config),
            ttl: config.lease_ttl,
        };
        let (role_tx, role) = watch::channel(Role::Idle);
        let (wanted, wanted_rx) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(keep_claiming(terms, role_tx, wanted_rx, stop_rx));
        let coordinator = Coordinator { role, wanted: Arc::new(wanted), ttl: config.lease_ttl, lake, table };
        Ok((coordinator, Resign { stop, task }))
    }

    /// For a one-shot command: waits up to `service.lease_wait` for the lease, keeps it while
    /// `work` runs (cutting `work` off if it is lost) and gives it up afterwards.
    pub async fn once<T>(
        lake: Lake,
        config: &ServiceConfig,
        what: &str,
        work: impl Future<Output = Result<T, CliError>>,
    ) -> Result<T, CliError> {
        let (coordinator, resign) = Self::start(lake, config)?;
        let result = coordinator.when_leading(config, what, work).await;
        resign.resign().await;
        result
    }

    /// Waits up to `service.lease_wait` to hold the lease, then runs `work` as [`lead`] does;
    /// an error naming the holder if the wait was in vain or the lease was lost midway.
    ///
    /// [`lead`]: Coordinator::lead
    pub async fn when_leading<T>(
        &self,
        config: &ServiceConfig,
        what: &str,
        work: impl Future<Output = Result<T, CliError>>,
    ) -> Result<T, CliError> {
        self.wanted.send_replace(true);
        let mut role = self.role.clone();
        let leading = role.wait_for(|r| matches!(r, Role::Leader { .. }));
        if tokio::time::timeout(config.lease_wait, leading).await.is_err() {
            let holder = self.lake.read_lease(&self.table, COORDINATOR_LEASE).await?;
            return Err(CliError::Usage(held_elsewhere(what, holder.as_ref(), config)));
        }
        match self.lead(what, work).await {
            Some(result) => result,
            None => Err(CliError::Usage(format!(
                "lost the coordinator lease while trying to {what}; run it again"
            ))),
        }
    }

    /// What coordinating instances recorded under keys starting with `prefix` for whichever
    /// coordinates next (kept on the lease table, see `Lake::read_shared`); empty if nothing
    /// was, or the catalog could not say (logged).
    pub async fn shared(&self, prefix: &str) -> Vec<(String, String)> {
        self.lake.read_shared(&self.table, prefix).await.unwrap_or_else(|e| {
            tracing::warn!(prefix, error = %e, "cannot read the coordinator's shared state");
            Vec::new()
        })
    }

    /// Records `value` under `key` for whichever instance coordinates next.
    pub async fn record_shared(&self, key: &str, value: &str) {
        if let Err(e) = self.lake.write_shared(&self.table, key, value).await {
            tracing::warn!(key, error = %e, "cannot record the coordinator's shared state");
        }
    }

    /// Runs `work` if this instance holds the lease, and stops it (drops it: its lineage run
    /// ends ABORT, its commits are idempotent) the moment the lease is lost. `None` when the
    /// work did not run or was stopped.
    pub async fn lead<T>(&self, what: &str, work: impl Future<Output = T>) -> Option<T> {
        self.wanted.send_replace(true);
        let mut role = self.role.clone();
        // The first ask waits for the first claim's answer.
        let answered = role.wait_for(|r| *r != Role::Idle);
        let held = match tokio::time::timeout(self.ttl / 2, answered).await {
            Ok(Ok(role)) => *role,
            _ => return None,
        };
        if !matches!(held, Role::Leader { .. }) {
            tracing::debug!("another instance coordinates; not running {what} here");
            return None;
        }
        tokio::select! {
            result = work => Some(result),
            _ = role.wait_for(|now| *now != held) => {
                tracing::warn!("lost the coordinator lease; stopped {what} (its next run, wherever it runs, carries on from what was committed)");
                None
            }
        }
    }
}

/// Claims the lease every quarter of its time, from the first ask until resigned,
/// publishing the role.
async fn keep_claiming(
    terms: LeaseTerms,
    role: watch::Sender<Role>,
    mut wanted: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = wanted.wait_for(|w| *w) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    tracing::info!(instance = %terms.holder, lease_table = %terms.table, "claiming the coordinator lease");
    let period = terms.ttl / 4;
    let mut trusted_until: Option<Instant> = None;
    loop {
        let asked = Instant::now();
        match tokio::time::timeout(period, terms.claim()).await {
            Ok(Ok(LeaseOutcome::Held(claim))) => {
                trusted_until = Some(terms.trusted_until(asked));
                set_role(&role, Role::Leader { term: claim.term }, &claim);
            }
            Ok(Ok(LeaseOutcome::HeldByOther(claim))) => {
                trusted_until = None;
                set_role(&role, Role::Follower, &claim);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not claim the coordinator lease; trying again"),
            Err(_) => tracing::warn!("claiming the coordinator lease timed out; trying again"),
        }
        let next = asked + period;
        let wake = trusted_until.map_or(next, |until| until.min(next));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if trusted_until.is_some_and(|until| Instant::now() >= until) {
            tracing::warn!("the coordinator lease could not be renewed in time; stopping coordinated work");
            trusted_until = None;
            role.send_replace(Role::Follower);
            gauge!("ingot_coordinator").set(0.0);
        }
    }
    role.send_replace(Role::Follower);
    gauge!("ingot_coordinator").set(0.0);
    if trusted_until.is_some() {
        terms.release().await;
    }
}

/// Publishes a role, logging changes (a renewal in the same term is not one).
fn set_role(role: &watch::Sender<Role>, new: Role, claim: &LeaseClaim) {
    let old = role.send_replace(new);
    gauge!("ingot_coordinator").set(if matches!(new, Role::Leader { .. }) { 1.0 } else { 0.0 });
    if old == new {
        return;
    }
    match new {
        Role::Leader { term } => {
            tracing::info!(
                term,
                "this instance coordinates: it runs the transforms, maintenance and schedules"
            );
        }
        Role::Idle | Role::Follower => tracing::info!(
            holder = %claim.holder,
            term = claim.term,
            "another instance coordinates (runs the transforms, maintenance and schedules)"
        ),
    }
}

fn held_elsewhere(what: &str, claim: Option<&LeaseClaim>, config: &ServiceConfig) -> String {
    let holder = claim.map_or_else(|| "another instance".to_string(), |c| format!("instance `{}`", c.holder));
    format!(
        "cannot {what}: {holder} holds the coordinator lease and runs transforms and maintenance itself; \
         waited service.lease_wait ({:?}). Stop it, or let it do the work",
        config.lease_wait
    )
}

/// `service.instance`, or `<hostname>-<pid>-<4 random hex>` (pids repeat across containers).
fn instance_name(config: &ServiceConfig) -> String {
    if let Some(name) = &config.instance {
        return name.clone();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ingot".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}
