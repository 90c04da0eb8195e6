//! `[[schedule]]`: actions `ingot run` performs at cron times (UTC) — a backfill of a
//! relative range, or maintenance — on the instance holding the coordinator lease. What ran
//! last is kept in a small state file and on the lease table (so the next coordinator knows),
//! so a time missed while the service was down runs once on start (not once per missed time),
//! with the missed time as its nominal time.

mod cron;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use cron::Cron;
use ingot_transforms::RunContext;
use serde::Deserialize;

use crate::config::Config;
use crate::coordinator::Coordinator;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Recompute a gold table's windows for `range` before the nominal time.
    Backfill,
    /// Compact, expire and clean one table (`table`) or all.
    Maintain,
    /// Audit a gold table (`table`) as of the nominal time; a mismatch is logged as an error.
    Replay,
}

/// One `[[schedule]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    /// Stable name: the state file records what ran under it.
    pub name: String,
    /// `minute hour day month weekday`, UTC, e.g. `0 3 * * *`.
    pub cron: String,
    pub action: Action,
    #[serde(default)]
    pub table: Option<String>,
    /// Backfill: how far back from the nominal time, e.g. `7d`.
    #[serde(default, with = "humantime_serde")]
    pub range: Option<Duration>,
}

/// `[scheduler]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Where the last nominal time of each schedule is kept (relative to the config file).
    #[serde(default = "default_state")]
    pub state_file: PathBuf,
}

fn default_state() -> PathBuf {
    PathBuf::from("ingot-data/schedule-state.json")
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { state_file: default_state() }
    }
}

/// Checks every entry; errors name the entry and the field.
pub fn validate(entries: &[ScheduleEntry]) -> Result<Vec<Cron>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let cron = Cron::parse(&e.cron).map_err(|m| format!("schedule[{i}] ({}): {m}", e.name))?;
            if e.action == Action::Backfill && (e.table.is_none() || e.range.is_none()) {
                return Err(format!("schedule[{i}] ({}): a backfill needs `table` and `range`", e.name));
            }
            if e.action == Action::Replay && e.table.is_none() {
                return Err(format!("schedule[{i}] ({}): a replay needs `table`", e.name));
            }
            Ok(cron)
        })
        .collect()
}

/// Schedule name → the nominal time it last ran for.
type State = BTreeMap<String, DateTime<Utc>>;

fn load_state(path: &Path) -> State {
    let text: BTreeMap<String, String> = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    text.into_iter()
        .filter_map(|(name, at)| Some((name, DateTime::parse_from_rfc3339(&at).ok()?.with_timezone(&Utc))))
        .collect()
}

fn save_state(path: &Path, state: &State) {
    let state: BTreeMap<&String, String> = state.iter().map(|(name, at)| (name, at.to_rfc3339())).collect();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, serde_json::to_vec_pretty(&state).expect("state serializes"))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot save the schedule state");
    }
}

/// Shared values (on the lease table) saying when each schedule last ran, by name.
const SHARED_PREFIX: &str = "schedule.";

/// Runs the schedules until the future is dropped.
pub async fn run_scheduled(
    config: Config,
    context: RunContext,
    coordinator: Coordinator,
    mut stop: crate::service::Stop,
) {
    if config.schedule.is_empty() {
        return;
    }
    let crons = match validate(&config.schedule) {
        Ok(crons) => crons,
        Err(e) => return tracing::error!(error = %e, "schedules disabled"),
    };
    let path = config.scheduler.state_file.clone();
    loop {
        let now = Utc::now();
        let mut state = load_state(&path);
        // What the coordinating instance last ran, wherever it ran: an instance taking the
        // lease over does not run again what its predecessor ran.
        let shared = coordinator.shared(SHARED_PREFIX).await;
        for (entry, cron) in config.schedule.iter().zip(&crons) {
            let shared_key = format!("{SHARED_PREFIX}{}", entry.name);
            let shared = shared
                .iter()
                .find(|(key, _)| *key == shared_key)
                .and_then(|(_, at)| DateTime::parse_from_rfc3339(at).ok());
            if let Some(shared) = shared.map(|at| at.with_timezone(&Utc))
                && state.get(&entry.name).is_none_or(|local| *local < shared)
            {
                state.insert(entry.name.clone(), shared);
            }
            let due = match state.get(&entry.name) {
                // A new schedule starts counting now; it does not run for the past.
                None => {
                    state.insert(entry.name.clone(), now);
                    save_state(&path, &state);
                    None
                }
                Some(last) => cron.last_at_or_before(now).filter(|due| due > last),
            };
            if let Some(nominal) = due {
                let context =
                    RunContext { nominal: Some(ingot_lineage::format_time(nominal)), ..context.clone() };
                // Only the coordinating instance runs it; the others leave it due, so whoever
                // coordinates next runs what was missed.
                let action = async {
                    tracing::info!(schedule = %entry.name, nominal = %nominal, "running schedule");
                    run_action(&config, entry, nominal, &context).await
                };
                match coordinator.lead("the scheduled action", action).await {
                    None => continue,
                    Some(Err(e)) => {
                        tracing::warn!(schedule = %entry.name, error = %e, "scheduled run failed")
                    }
                    Some(Ok(())) => {}
                }
                state.insert(entry.name.clone(), nominal);
                save_state(&path, &state);
                coordinator.record_shared(&shared_key, &nominal.to_rfc3339()).await;
            }
        }
        let next = crons.iter().filter_map(|c| c.next_after(now)).min();
        let wait = next.map_or(Duration::from_secs(60), |n| (n - Utc::now()).to_std().unwrap_or_default());
        let wait = wait.min(Duration::from_secs(60)).max(Duration::from_millis(200));
        // An action in progress is finished (and recorded); waiting for the next is not.
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.requested() => return,
        }
    }
}

async fn run_action(
    config: &Config,
    entry: &ScheduleEntry,
    nominal: DateTime<Utc>,
    context: &RunContext,
) -> Result<(), crate::commands::CliError> {
    let lake = ingot_lake::Lake::open(&config.catalog).await?;
    match entry.action {
        Action::Maintain => {
            let mut settings = config.maintenance.clone();
            if let Some(table) = &entry.table {
                settings.tables = vec![table.clone()];
            }
            let nominal = ingot_lineage::format_time(nominal);
            crate::jobs::maintenance::maintain_all(&lake, &settings, context, &nominal, None).await?;
        }
        Action::Backfill => {
            let (table, range) =
                (entry.table.as_deref().unwrap_or_default(), entry.range.unwrap_or_default());
            let from = nominal - chrono::Duration::from_std(range).unwrap_or_default();
            let report = crate::jobs::backfill(config, &lake, table, from, nominal, context).await?;
            tracing::info!(schedule = %entry.name, "{report}");
        }
        Action::Replay => {
            let table = entry.table.as_deref().unwrap_or_default();
            let report = crate::jobs::replay(config, &lake, table, nominal, None, context).await?;
            if report.matches() {
                tracing::info!(schedule = %entry.name, table, windows = report.equal, "replay matches");
            } else {
                tracing::error!(schedule = %entry.name, table, "replay MISMATCH:\n{report}");
            }
        }
    }
    Ok(())
}
