//! Real components for end-to-end tests: a tansu broker per test on a free 127.0.0.1 port
//! (`broker.rs`), a temp workspace with its own SQLite catalog and warehouse, and the `ingot`
//! binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use ingot_lake::{CatalogConfig, CatalogKind, GlueConfig, Lake, StorageConfig, parse_ident, read_table};

// A path of its own so the scale tests, which include this file, find it too.
#[path = "broker.rs"]
pub mod broker;
pub use broker::Broker;
#[path = "topics.rs"]
pub mod topics;
// The scale tests include this file and use none of them.
#[allow(unused_imports)]
pub use topics::*;

/// The AWS credentials ingot is given for the test servers (moto, MiniStack accept any); the secret is
/// distinctive so tests can prove it never appears in output.
pub const ACCESS_KEY_ID: &str = "AKIAINGOTTESTKEY";
pub const SECRET_ACCESS_KEY: &str = "s3-secret-ingot-must-never-print";

/// How a workspace names a Glue catalog for the harness and the readers (ingot's own config
/// says `type = "glue"` and `[catalog.glue] endpoint`).
pub const GLUE_URI_PREFIX: &str = "glue+";

/// A temp directory with an `ingot.toml` pointing at a broker and its own catalog.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// `sqlite://…` (relative to the workspace), `postgres://…`, a REST catalog's URL, or
    /// `glue+<endpoint>` for a Glue API.
    pub catalog_uri: String,
    /// Set when the warehouse is in an S3 bucket instead of the workspace's directory.
    pub s3: Option<S3Settings>,
    /// Processes `spawn_with_env` started: killed when the workspace goes, so a failed
    /// assertion does not leave them running against a broker that is gone.
    pub spawned: std::sync::Mutex<Vec<u32>>,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let config = self.config.display().to_string();
        for pid in self.spawned.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default() {
            // Only if that pid is still one of ours (pids are reused once a process is reaped).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&config) {
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            }
        }
    }
}

/// Where an S3 warehouse is and how the server is reached (the usual AWS environment).
pub struct S3Settings {
    pub warehouse: String,
    pub reader_env: Vec<(String, String)>,
}

impl S3Settings {
    /// One variable of the AWS environment that reaches the server.
    pub fn env(&self, key: &str) -> String {
        self.reader_env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

/// The demo contracts, as shipped.
pub fn demo_contracts() -> PathBuf {
    Path::new(&manifest_dir()).join("proto/contracts")
}

impl Workspace {
    /// `topics` is the TOML of the `[[topics]]` entries; flush settings keep commits small
    /// so tests exercise many of them. The catalog is a SQLite file in the workspace.
    pub fn new(broker: &Broker, contracts: &Path, flush_rows: usize, topics: &str) -> Workspace {
        Self::with_catalog(broker, contracts, flush_rows, topics, None)
    }

    /// Like `new`, with the catalog at `catalog_uri` (e.g. a Postgres database) instead.
    pub fn with_catalog(
        broker: &Broker,
        contracts: &Path,
        flush_rows: usize,
        topics: &str,
        catalog_uri: Option<&str>,
    ) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let catalog_uri = catalog_uri.unwrap_or("sqlite://catalog.db").to_string();
        let config = dir.path().join("ingot.toml");
        let group = format!("ingot-test-{}", std::process::id());
        std::fs::write(
            &config,
            format!(
                r#"
[catalog]
uri = "{catalog_uri}"
warehouse = "warehouse"

[kafka]
brokers = "{addr}"
group_id = "{group}"

[contracts]
dir = "{contracts}"

[ingest.flush]
rows = {flush_rows}
interval = "500ms"

{topics}
"#,
                addr = broker.addr,
                contracts = contracts.display(),
            ),
        )
        .unwrap();
        Workspace { dir, config, catalog_uri, s3: None, spawned: Default::default() }
    }

    /// A workspace with only a catalog and warehouse, for lake tests that need no broker.
    pub fn lake(catalog_uri: Option<&str>) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let catalog_uri = catalog_uri.unwrap_or("sqlite://catalog.db").to_string();
        let config = dir.path().join("ingot.toml");
        let text = format!("[catalog]\nuri = \"{catalog_uri}\"\nwarehouse = \"warehouse\"\n");
        std::fs::write(&config, text).unwrap();
        Workspace { dir, config, catalog_uri, s3: None, spawned: Default::default() }
    }

    /// Runs ingot to completion and returns (success, stdout, stderr).
    pub fn try_ingot(&self, args: &[&str]) -> (bool, String, String) {
        self.try_ingot_with_env(args, &[])
    }

    /// Like `try_ingot`, with extra environment (config overrides, failpoints).
    pub fn try_ingot_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let Output { status, stdout, stderr } =
            self.command(args).envs(env.iter().copied()).output().unwrap();
        (status.success(), String::from_utf8_lossy(&stdout).into(), String::from_utf8_lossy(&stderr).into())
    }

    /// The ingot command for this workspace, not started (for tests that handle its pipes).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingot"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env("INGOT_LOG", "warn");
        // Tests crash runs on purpose: the coordinator lease of a crashed run runs out in
        // seconds, not the default half minute.
        cmd.env("INGOT_SERVICE__LEASE_TTL", "5s");
        if self.uses_aws() {
            cmd.env("INGOT_CATALOG__STORAGE__SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        }
        cmd
    }

    /// Runs ingot to completion and returns its stdout; panics with its stderr on failure.
    pub fn ingot(&self, args: &[&str]) -> String {
        let Output { status, stdout, stderr } = self.command(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&stdout).to_string();
        assert!(status.success(), "ingot {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&stderr));
        stdout
    }

    /// Whether ingot needs the AWS secret in its environment (S3 warehouse or Glue catalog).
    pub fn uses_aws(&self) -> bool {
        self.s3.is_some() || self.catalog_uri.starts_with(GLUE_URI_PREFIX)
    }

    /// The catalog URI as an outside reader needs it (SQLite paths made absolute).
    pub fn catalog_uri(&self) -> String {
        match self.catalog_uri.strip_prefix("sqlite://") {
            Some(file) => format!("sqlite://{}", self.dir.path().join(file).display()),
            None => self.catalog_uri.clone(),
        }
    }

    pub fn catalog(&self) -> CatalogConfig {
        let storage = match &self.s3 {
            None if self.uses_aws() => StorageConfig {
                access_key_id: Some(ACCESS_KEY_ID.into()),
                secret_access_key: Some(SECRET_ACCESS_KEY.into()),
                ..Default::default()
            },
            None => StorageConfig::default(),
            Some(s3) => StorageConfig {
                endpoint: Some(s3.env("AWS_ENDPOINT_URL")),
                region: Some(s3.env("AWS_REGION")),
                access_key_id: Some(s3.env("AWS_ACCESS_KEY_ID").into()),
                secret_access_key: Some(s3.env("AWS_SECRET_ACCESS_KEY").into()),
                allow_http: Some(true),
                ..Default::default()
            },
        };
        let glue_endpoint = self.catalog_uri.strip_prefix(GLUE_URI_PREFIX);
        let kind = match (glue_endpoint, self.catalog_uri.starts_with("http")) {
            (Some(_), _) => CatalogKind::Glue,
            (None, true) => CatalogKind::Rest,
            (None, false) => CatalogKind::Sql,
        };
        CatalogConfig {
            kind,
            uri: self.catalog_uri().into(),
            warehouse: self.warehouse_uri(),
            name: "ingot".into(),
            storage,
            glue: GlueConfig {
                endpoint: glue_endpoint.map(str::to_string),
                region: Some("us-east-1".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The warehouse as readers are given it: a directory, or `s3://bucket/prefix`.
    pub fn warehouse_uri(&self) -> String {
        match &self.s3 {
            Some(s3) => s3.warehouse.clone(),
            None => self.dir.path().join("warehouse").display().to_string(),
        }
    }

    /// The environment an outside reader needs (empty for a local warehouse).
    pub fn reader_env(&self) -> Vec<(String, String)> {
        self.s3.as_ref().map(|s3| s3.reader_env.clone()).unwrap_or_default()
    }

    /// How many snapshots a table has (0 before it exists).
    pub async fn snapshot_count(&self, table: &str) -> usize {
        let lake = Lake::open(&self.catalog()).await.unwrap();
        let ident = parse_ident(table).unwrap();
        if !lake.exists(&ident).await.unwrap() {
            return 0;
        }
        lake.load(&ident).await.unwrap().metadata().snapshots().len()
    }

    /// All rows of a table at its current snapshot.
    pub async fn rows(&self, table: &str) -> Vec<RecordBatch> {
        let lake = Lake::open(&self.catalog()).await.unwrap();
        let table = lake.load(&parse_ident(table).unwrap()).await.unwrap();
        read_table(&table, None).await.unwrap()
    }
}

/// How many times each (partition, offset) occurs in the batches.
pub fn offsets_seen(batches: &[RecordBatch], into: &mut BTreeMap<(i32, i64), u32>) {
    for batch in batches {
        let partitions = batch.column_by_name("_kafka_partition").unwrap().as_primitive::<Int32Type>();
        let offsets = batch.column_by_name("_kafka_offset").unwrap().as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            *into.entry((partitions.value(i), offsets.value(i))).or_default() += 1;
        }
    }
}

pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// Number in a line like "produced 3000 messages ...: good 2600, late 0, duplicates 100, malformed 300".
pub fn produced_count(stdout: &str, label: &str) -> u64 {
    let after = stdout.split(label).nth(1).unwrap_or_else(|| panic!("no `{label}` in {stdout}"));
    after.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

pub const ORDERS_TOPIC: &str = r#"
[[topics]]
topic = "orders"
message = "ingot.demo.v1.OrderEvent"
event_time = "occurred_at"

[[topics.rules]]
name = "order_id_present"
field = "order_id"
required = true

[[topics.rules]]
name = "known_currency"
field = "currency"
allowed = ["EUR", "USD", "GBP"]
"#;

impl Workspace {
    /// Starts ingot in the background with extra environment (config overrides).
    /// Its stderr goes to `ingot-<pid>.log` in the workspace, for a failing test to show.
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let log =
            tempfile::Builder::new().prefix("ingot-").suffix(".log").tempfile_in(self.dir.path()).unwrap();
        let (file, _) = log.keep().unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(file).spawn().unwrap();
        self.spawned.lock().unwrap().push(child.id());
        child
    }

    /// The stderr of every process `spawn_with_env` started, for failure messages.
    pub fn spawned_logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("ingot-") && name.ends_with(".log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                out.push_str(&format!("--- {name}\n"));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Workspace {
    /// `ingot produce --topic orders <args>` on a thread of its own (a stream while the test
    /// does other things); join the handle to wait for it, and fail if it failed.
    pub fn produce_in_background(&self, args: &[&str]) -> std::thread::JoinHandle<()> {
        let mut command = self.command(&["produce", "--topic", "orders"]);
        command.args(args);
        std::thread::spawn(move || {
            let out = command.output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        })
    }
}

/// Asks a running ingot to stop (SIGTERM, as service managers do) and waits for it; returns
/// whether it exited cleanly.
pub fn terminate(child: &mut Child) -> bool {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    child.wait().unwrap().success()
}

/// Waits until `done` holds, polling; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until bronze.orders and the quarantine hold `total` rows; fails when nothing new
/// lands for `stall` (a slow machine only makes this slower, a stuck group fails it).
pub async fn wait_for_orders(ws: &Workspace, total: usize, stall: Duration) {
    let mut last = (0, Instant::now());
    loop {
        let landed = orders_landed(ws).await;
        if landed >= total {
            return;
        }
        if landed > last.0 {
            last = (landed, Instant::now());
        }
        assert!(
            last.1.elapsed() < stall,
            "nothing landed for {stall:?}: {landed} of {total}\n{}",
            ws.spawned_logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many rows bronze.orders and the quarantine hold together, from their snapshot
/// summaries (cheap enough to poll; the exactly-once checks read the rows themselves).
pub async fn orders_landed(ws: &Workspace) -> usize {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let mut total = 0;
    for name in ["bronze.orders", "ingot.quarantine"] {
        let ident = parse_ident(name).unwrap();
        if !lake.exists(&ident).await.unwrap() {
            continue;
        }
        let table = lake.load(&ident).await.unwrap();
        let records = table.metadata().current_snapshot().and_then(|s| {
            s.summary().additional_properties.get("total-records").and_then(|n| n.parse::<usize>().ok())
        });
        total += records.unwrap_or(0);
    }
    total
}

pub fn assert_each_offset_once(seen: &BTreeMap<(i32, i64), u32>, produced: usize) {
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(repeated.is_empty(), "offsets stored more than once: {repeated:?}");
    assert_eq!(seen.len(), produced, "every produced message is in bronze or quarantine");
    // Offsets of each partition are 0..n with no gap.
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in seen.keys() {
        per_partition.entry(*p).or_default().push(*o);
    }
    for (p, offsets) in per_partition {
        assert_eq!(*offsets.last().unwrap() + 1, offsets.len() as i64, "gap in partition {p}");
    }
}

/// Bronze and quarantine together hold every produced message of `orders` exactly once.
pub async fn assert_orders_hold_each_offset_once(ws: &Workspace, produced: usize) {
    let mut seen = BTreeMap::new();
    offsets_seen(&ws.rows("bronze.orders").await, &mut seen);
    offsets_seen(&ws.rows("ingot.quarantine").await, &mut seen);
    assert_each_offset_once(&seen, produced);
}

/// The package directory, read when the test runs: a test binary another checkout built into
/// a shared target directory must read this checkout's files, not that one's.
pub fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
}

/// The demo's silver and two gold tables (`sql/`), run every second by `ingot run`.
pub fn transforms_toml() -> String {
    let sql = Path::new(&manifest_dir()).join("sql");
    format!(
        r#"
[transform]
min_interval = "1s"

[[transforms]]
table = "silver.orders"
kind = "silver"
sql = "{silver}"
input = "bronze.orders"
event_time = "occurred_at"
key = "idempotency_key"
lateness = "1h"

[[transforms]]
table = "gold.revenue_hourly"
kind = "gold"
sql = "{hourly}"
input = "silver.orders"
event_time = "occurred_at"
window = "1h"

[[transforms]]
table = "gold.customer_daily"
kind = "gold"
sql = "{daily}"
input = "silver.orders"
event_time = "occurred_at"
window = "1d"
"#,
        silver = sql.join("silver/orders.sql").display(),
        hourly = sql.join("gold/revenue_hourly.sql").display(),
        daily = sql.join("gold/customer_daily.sql").display(),
    )
}
