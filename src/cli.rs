//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ingot",
    version,
    about = "Kafka topics of Protobuf events into an auditable Iceberg lakehouse"
)]
pub struct Cli {
    /// Config file; a missing `ingot.toml` means all defaults.
    #[arg(long, global = true, default_value = "ingot.toml", env = "INGOT_CONFIG")]
    pub config: PathBuf,
    /// Log lines as `text` for people or `json` (one object per line) for log shippers.
    #[arg(long, global = true, default_value = "text", env = "INGOT_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines (on stderr) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ingest service.
    Run {
        /// Process what the topics hold now, commit, print a summary and exit: exits 0 only
        /// when the tables hold every message the topics held at start.
        #[arg(long)]
        until_caught_up: bool,
        /// With --until-caught-up: fail (naming the partitions) when some partition makes
        /// no progress for this long, e.g. because a crashed member still holds it.
        #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
        caught_up_timeout: std::time::Duration,
    },
    /// Produce sample events (good, malformed, duplicated, late) to a configured topic.
    Produce(ProduceArgs),
    /// Check the config without connecting to anything: every key, every topic's contract
    /// message, every transform's SQL file. Exit code 0 when all are usable.
    Check,
    /// List the lake's tables with row, file and snapshot counts.
    Tables,
    /// List a table's snapshots, oldest first.
    Snapshots {
        /// `<namespace>.<table>`, e.g. `bronze.orders`.
        table: String,
    },
    /// Run read-only SQL over the lake's tables. Accepts Trino's time travel:
    /// `FROM t FOR TIMESTAMP AS OF TIMESTAMP '2026-11-20 18:00:00 UTC'` and
    /// `FROM t FOR VERSION AS OF <snapshot id>`.
    Query {
        sql: String,
        /// table, csv or json (one object per line).
        #[arg(long, default_value = "table")]
        format: ingot_transforms::query::OutputFormat,
    },
    /// Run the silver and gold transforms once (all, or the one writing <table>).
    Transform { table: Option<String> },
    /// Recompute a gold table's windows in a time range from silver as it is now and replace
    /// them atomically. Running it again changes nothing.
    Backfill {
        /// The gold table, e.g. `gold.revenue_hourly`.
        table: String,
        /// Start of the range (event time), e.g. `2026-11-16 00:00:00 UTC`.
        #[arg(long)]
        from: String,
        /// End of the range, exclusive.
        #[arg(long)]
        to: String,
    },
    /// Recompute a gold table as of a past time from the bronze its inputs had read by then,
    /// through the same silver and gold SQL, and compare with what gold said then. Exit code
    /// 0 only when every window matches.
    Replay {
        /// The gold table, e.g. `gold.revenue_hourly`.
        table: String,
        /// The instant to audit, e.g. `2026-11-20 18:00:00 UTC`.
        #[arg(long)]
        as_of: String,
        /// Also keep the recomputed rows as this Iceberg table, for inspection.
        #[arg(long)]
        write_to: Option<String>,
    },
    /// Serve the HTTP API (query, tables, snapshots, health, metrics) without ingesting.
    Serve {
        /// Address to listen on (default: api.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Compact small files, expire old snapshots, delete orphan files.
    Maintain(MaintainArgs),
    /// What the quarantine holds: counts by topic, reason and rule, or the messages.
    Quarantine(QuarantineArgs),
    /// Check the `.proto` contracts for changes that would break ingest, or show what a
    /// restart would change in the bronze tables.
    Contract(ContractArgs),
    /// Measure throughput: the pipeline alone, or end to end against the broker.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// A topic from the config's `[[topics]]`.
    #[arg(long)]
    pub topic: String,
    /// How many messages.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Messages per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Share of malformed messages (undecodable bytes, wrong type, broken rules).
    #[arg(long, default_value_t = 0.0)]
    pub bad_ratio: f64,
    /// Share of messages that repeat an earlier event's idempotency key.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_ratio: f64,
    /// Share of events whose event time lies hours in the past.
    #[arg(long, default_value_t = 0.0)]
    pub late_ratio: f64,
    /// Seed for reproducible samples.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Partitions to create the topic with, if it does not exist.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchKind,
}

#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// Decode → Arrow → Parquet (ZSTD) → Iceberg commit, messages served from memory.
    Pipeline {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Rows per commit.
        #[arg(long, default_value_t = 500_000)]
        flush_rows: usize,
        /// Write to a fresh prefix under this warehouse URI (`s3://bucket/prefix`; reached
        /// with `[catalog.storage]` and the AWS environment) instead of a local temp dir.
        #[arg(long)]
        warehouse: Option<String>,
        /// Protect PII as a topic with `pii` fields would: tokenize `customer_id`, mask
        /// `trace_id`, drop `card.last4` (the key from `ingest.pii.key_env`, INGOT_PII_KEY).
        #[arg(long)]
        pii: bool,
    },
    /// A no-op consumer vs ingot draining the same topic on the configured broker.
    EndToEnd {
        #[arg(long, default_value_t = 500_000)]
        events: u64,
    },
    /// One incremental silver + gold run over new bronze rows (a scratch lake, filled from memory).
    Transforms {
        /// Rows silver and gold already hold before the measured run.
        #[arg(long, default_value_t = 200_000)]
        base: usize,
        /// New bronze rows the measured run reads.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
    },
    /// Produce → visible in bronze: events at a steady rate while ingot runs as a service.
    Latency {
        /// Events per second.
        #[arg(long, default_value_t = 5_000.0)]
        rate: f64,
        /// How long to produce.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// The flush interval ingot runs with (the latency target is this + 300 ms).
        #[arg(long, default_value = "1s")]
        flush_interval: humantime::Duration,
    },
}

#[derive(Debug, clap::Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub which: QuarantineKind,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineKind {
    /// Messages per topic, reason and contract rule, with when they were first and last seen.
    Stats {
        #[command(flatten)]
        filter: QuarantineFilter,
        /// table, csv or json (one object per line).
        #[arg(long, default_value = "table")]
        format: ingot_transforms::query::OutputFormat,
    },
    /// The quarantined messages themselves, newest first (Kafka coordinates, reason, error).
    List {
        #[command(flatten)]
        filter: QuarantineFilter,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[arg(long, default_value = "table")]
        format: ingot_transforms::query::OutputFormat,
    },
    /// Decode quarantined messages again with the current contract and rules and append the
    /// ones that now pass to bronze, with their original Kafka coordinates, exactly once.
    Redrive {
        #[command(flatten)]
        filter: QuarantineFilter,
        /// Decode and count; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ContractArgs {
    #[command(subcommand)]
    pub which: ContractKind,
}

#[derive(Debug, Subcommand)]
pub enum ContractKind {
    /// Print every change with file and line; exit non-zero if one would break ingest.
    Check {
        /// `tables` (the bronze tables as they are) or a git revision of the contract files
        /// and the config (e.g. `origin/main`, `HEAD~1`, a tag).
        #[arg(long, default_value = "tables")]
        against: String,
    },
    /// What a restart would change in each bronze table's schema.
    Diff,
}

/// Which quarantined messages: every filter given must match.
#[derive(Debug, Clone, clap::Args)]
pub struct QuarantineFilter {
    #[arg(long)]
    pub topic: Option<String>,
    /// e.g. `undecodable`, `rule_violation`, `empty_payload`.
    #[arg(long)]
    pub reason: Option<String>,
    /// A contract rule's name.
    #[arg(long)]
    pub rule: Option<String>,
    /// Quarantined at or after this instant, e.g. `2026-11-20 18:00:00 UTC`.
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct MaintainArgs {
    #[command(subcommand)]
    pub which: MaintainKind,
}

/// Defaults for every flag come from the config's `[maintenance]` section. Without a table,
/// the configured tables (or all tables) are maintained.
#[derive(Debug, Subcommand)]
pub enum MaintainKind {
    /// Rewrite a partition's small files into files of the target size (same rows).
    Compact {
        table: Option<String>,
        /// Report what would be rewritten; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Compact a partition once it has this many small files.
        #[arg(long)]
        min_files: Option<usize>,
        /// Target file size in bytes.
        #[arg(long)]
        target_bytes: Option<u64>,
    },
    /// Expire snapshots older than an age (keeping the newest few) and delete their files.
    Expire {
        table: Option<String>,
        #[arg(long)]
        dry_run: bool,
        /// e.g. `7d`, `12h`.
        #[arg(long)]
        older_than: Option<humantime::Duration>,
        #[arg(long)]
        retain_last: Option<usize>,
    },
    /// Delete files no snapshot references, once older than a safety age.
    CleanOrphans {
        table: Option<String>,
        #[arg(long)]
        dry_run: bool,
        /// e.g. `3d`; younger unreferenced files may belong to a commit in flight.
        #[arg(long)]
        older_than: Option<humantime::Duration>,
    },
}
