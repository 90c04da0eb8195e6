//! `ingot contract check [--against tables|<git revision>]` and `ingot contract diff`: what a
//! change to the `.proto` contracts (and the config's rules) would do to ingest, before a
//! restart finds out. Meant for CI: `check` exits non-zero on a breaking change.

use std::path::{Path, PathBuf};
use std::process::Command;

use ingot_ingest::{TopicConfig, bronze_ident, bronze_table_spec};
use ingot_lake::{Lake, LakeError, SchemaPlan};
use ingot_proto::{
    ContractChange, ContractRegistry, MessageDescriptor, SourceLocation, compare_messages, has_field_path,
    message_location,
};

use super::CliError;
use crate::cli::ContractKind;
use crate::config::Config;
use crate::output::outln;

pub async fn contract(config: &Config, config_file: &Path, which: &ContractKind) -> Result<(), CliError> {
    let registry = ContractRegistry::load(&config.contracts.dir)?;
    match which {
        ContractKind::Diff => diff(config, &registry).await,
        ContractKind::Check { against } => {
            let changes = match against.as_str() {
                "tables" => against_tables(config, &registry).await?,
                revision => against_revision(config, config_file, &registry, revision)?,
            };
            for change in &changes {
                outln!("{change}");
            }
            let breaking = changes.iter().filter(|c| c.breaking).count();
            outln!("{breaking} breaking, {} additive change(s) against {against}", changes.len() - breaking);
            match breaking {
                0 => Ok(()),
                n => Err(CliError::Usage(format!("{n} breaking contract change(s) against {against}"))),
            }
        }
    }
}

/// Each topic's bronze table as the contract wants it, and what a restart would do to it.
async fn plans(
    config: &Config,
    registry: &ContractRegistry,
) -> Result<Vec<(TopicPlan, MessageDescriptor)>, CliError> {
    let lake = Lake::open(&config.catalog).await?;
    let mut plans = Vec::new();
    for topic in &config.topics {
        let message = registry.message(&topic.message)?;
        let ident = bronze_ident(&config.ingest, topic)?;
        let spec = bronze_table_spec(ident.clone(), &message, topic.event_time.as_deref())?;
        let plan = match lake.plan_table(&spec).await {
            Ok(plan) => Ok(plan),
            Err(LakeError::Schema { problem, .. }) => Err(problem),
            Err(e) => return Err(e.into()),
        };
        plans.push((TopicPlan { table: ident.to_string(), topic: topic.clone(), plan }, message));
    }
    Ok(plans)
}

struct TopicPlan {
    table: String,
    topic: TopicConfig,
    /// What `ensure_table` would do, or why it would refuse.
    plan: Result<SchemaPlan, String>,
}

async fn diff(config: &Config, registry: &ContractRegistry) -> Result<(), CliError> {
    for (TopicPlan { table, topic, plan }, _) in plans(config, registry).await? {
        match plan {
            Err(problem) => outln!("{table} ({}): a restart would stop: {problem}", topic.topic),
            Ok(plan) if plan.create => outln!("{table} ({}): would be created", topic.topic),
            Ok(plan) if plan.added.is_empty() && plan.no_longer_in_spec.is_empty() => {
                outln!("{table} ({}): unchanged", topic.topic)
            }
            Ok(plan) => {
                outln!("{table} ({}):", topic.topic);
                for column in &plan.added {
                    outln!("  + {column}");
                }
                for column in &plan.no_longer_in_spec {
                    outln!("  = {column} (no longer in the contract: kept, null in new rows)");
                }
            }
        }
    }
    Ok(())
}

/// The contracts against the bronze tables as they are.
async fn against_tables(
    config: &Config,
    registry: &ContractRegistry,
) -> Result<Vec<ContractChange>, CliError> {
    let mut changes = Vec::new();
    for (TopicPlan { table, plan, .. }, message) in plans(config, registry).await? {
        let at = message_location(&message);
        let change = |breaking: bool, what: String| ContractChange { breaking, at: at.clone(), what };
        match plan {
            Err(problem) => changes.push(change(true, format!("{table}: {problem}"))),
            Ok(plan) => {
                changes.extend(
                    plan.added.iter().map(|c| change(false, format!("{table}: a restart adds column {c}"))),
                );
                changes.extend(plan.no_longer_in_spec.iter().map(|c| {
                    change(
                        true,
                        format!(
                            "{table}: column {c} is no longer in {} (removed or renamed): producers still sending it are quarantined as unknown_fields",
                            message.full_name()
                        ),
                    )
                }));
            }
        }
    }
    Ok(changes)
}

/// The contracts and rules against their versions at a git revision.
fn against_revision(
    config: &Config,
    config_file: &Path,
    registry: &ContractRegistry,
    revision: &str,
) -> Result<Vec<ContractChange>, CliError> {
    let dir = std::path::absolute(&config.contracts.dir)
        .map_err(|e| CliError::Usage(format!("contracts.dir: {e}")))?;
    let root = PathBuf::from(git(&dir, &["rev-parse", "--show-toplevel"])?.trim());
    let relative = |path: &Path| -> Result<String, CliError> {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let root = root.canonicalize().unwrap_or_else(|_| root.clone());
        path.strip_prefix(&root).map(|p| p.display().to_string()).map_err(|_| {
            CliError::Usage(format!(
                "{} is not inside the git repository at {}",
                path.display(),
                root.display()
            ))
        })
    };
    let contracts = relative(&dir)?;
    let old_dir = OldContracts::checkout(&root, revision, &contracts)?;
    let old = ContractRegistry::load(&old_dir.0)?;
    let old_config = relative(config_file)
        .ok()
        .and_then(|file| git(&root, &["show", &format!("{revision}:{file}")]).ok())
        .and_then(|text| Config::from_toml(&text, config_file, std::iter::empty()).ok());
    let config_text = std::fs::read_to_string(config_file).unwrap_or_default();
    let mut changes = Vec::new();
    for topic in &config.topics {
        let new = registry.message(&topic.message)?;
        let Ok(was) = old.message(&topic.message) else {
            changes.push(ContractChange {
                breaking: false,
                at: message_location(&new),
                what: format!("{} is new at {revision}", topic.message),
            });
            continue;
        };
        changes.extend(compare_messages(&was, &new));
        let old_topic = old_config.as_ref().and_then(|c| c.topics.iter().find(|t| t.topic == topic.topic));
        changes.extend(new_required_rules(topic, old_topic, &was, config_file, &config_text));
    }
    Ok(changes)
}

/// A `required` rule on a field the old contract already had, which the old config did not
/// require: producers that leave it unset (which was fine) are now quarantined.
fn new_required_rules(
    topic: &TopicConfig,
    old_topic: Option<&TopicConfig>,
    old_message: &MessageDescriptor,
    config_file: &Path,
    config_text: &str,
) -> Vec<ContractChange> {
    let required_before =
        |field: &str| old_topic.is_some_and(|t| t.rules.iter().any(|r| r.required && r.field == field));
    topic
        .rules
        .iter()
        .filter(|rule| rule.required && has_field_path(old_message, &rule.field) && !required_before(&rule.field))
        .map(|rule| {
            let needle = format!("\"{}\"", rule.name);
            let line = config_text.lines().position(|l| l.contains("name") && l.contains(&needle));
            ContractChange {
                breaking: true,
                at: SourceLocation {
                    file: config_file.display().to_string(),
                    line: line.map(|l| l as u32 + 1),
                },
                what: format!(
                    "rule `{}` makes the existing field {}.{} required: producers leaving it unset are now quarantined",
                    rule.name,
                    topic.message,
                    rule.field
                ),
            }
        })
        .collect()
}

/// The contract files as they were at a revision, in a directory removed on drop.
struct OldContracts(PathBuf);

impl OldContracts {
    fn checkout(root: &Path, revision: &str, contracts: &str) -> Result<Self, CliError> {
        let listed = git(root, &["ls-tree", "-r", "--name-only", revision, "--", contracts])?;
        let dir = std::env::temp_dir().join(format!(
            "ingot-contracts-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let this = OldContracts(dir.clone());
        for file in listed.lines().filter(|f| f.ends_with(".proto")) {
            let text = git(root, &["show", &format!("{revision}:{file}")])?;
            let inside = file.strip_prefix(contracts).unwrap_or(file).trim_start_matches('/');
            let target = dir.join(inside);
            let written = target
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&target, text));
            written.map_err(|e| CliError::Usage(format!("cannot write {}: {e}", target.display())))?;
        }
        if !dir.exists() {
            return Err(CliError::Usage(format!("no .proto files under {contracts} at {revision}")));
        }
        Ok(this)
    }
}

impl Drop for OldContracts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs git in `dir`; its stderr is the error.
fn git(dir: &Path, args: &[&str]) -> Result<String, CliError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| CliError::Usage(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(CliError::Usage(format!("git {}: {}", args.join(" "), stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
