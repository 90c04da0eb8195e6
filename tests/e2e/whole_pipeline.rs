//! The whole pipeline as one scenario, run on each catalog and storage ingot supports.

use std::collections::BTreeMap;
use std::time::Duration;

use ingot_lake::Lake;

use crate::audit::{changed, now_text};
use crate::harness::*;
use crate::ingest::only_ingest_rows;
use crate::transforms::{assert_consistent, assert_readers_agree, int, query};

/// Runs `ingot run` and kills it (SIGKILL) right after its first bronze commit.
async fn kill_after_first_commit(ws: &Workspace) {
    let mut child = ws.spawn_with_env(&["run"], &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while ws.snapshot_count("bronze.orders").await == 0 {
        assert!(std::time::Instant::now() < deadline, "no commit within 120 s:\n{}", ws.spawned_logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Every produced message of `orders` is in bronze or the ingest quarantine exactly once.
async fn assert_each_message_once(ws: &Workspace, produced: usize) {
    let mut seen = BTreeMap::new();
    offsets_seen(&ws.rows("bronze.orders").await, &mut seen);
    offsets_seen(&only_ingest_rows(&ws.rows("ingot.quarantine").await), &mut seen);
    assert_each_offset_once(&seen, produced);
}

async fn count(lake: &Lake, sql: &str) -> i64 {
    int(&query(lake, sql).await[0], 0, 0)
}

/// On whatever catalog and storage `ws` uses: ingest killed with SIGKILL and resumed, two
/// rounds of silver and gold (late events, duplicates), compaction, expiry and orphan cleanup,
/// time travel, replay and backfill — checked against a brute-force recomputation and against
/// PyIceberg and DuckDB reading the same tables.
pub(crate) async fn run_whole_pipeline(ws: &Workspace) {
    // Ingest, killed with SIGKILL after its first commit, then resumed: each message once.
    ws.ingot(&[
        "produce",
        "--topic",
        "orders",
        "--count",
        "1500",
        "--duplicate-ratio",
        "0.1",
        "--bad-ratio",
        "0.03",
    ]);
    kill_after_first_commit(ws).await;
    ws.ingot(&["run", "--until-caught-up"]);
    assert_each_message_once(ws, 1500).await;
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let silver_then = count(&lake, "SELECT count(*) FROM silver.orders").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between_rounds = now_text();

    // Late events and duplicates; silver and gold equal a brute-force recomputation.
    let late = ["--count", "800", "--duplicate-ratio", "0.2", "--late-ratio", "0.15", "--seed", "9"];
    ws.ingot(&[&["produce", "--topic", "orders"][..], &late[..]].concat());
    ws.ingot(&["run", "--until-caught-up"]);
    let (late, _) = assert_consistent(ws).await;
    assert!(late > 50, "late events were quarantined: {late}");

    // Maintenance on the bucket changes no answer.
    let out = ws.ingot(&["maintain", "compact", "bronze.orders", "--min-files", "2"]);
    assert!(out.contains("bronze.orders"), "{out}");
    for table in ["bronze.orders", "silver.orders", "gold.revenue_hourly"] {
        ws.ingot(&["maintain", "expire", table, "--older-than", "0s", "--retain-last", "2"]);
        ws.ingot(&["maintain", "clean-orphans", table, "--older-than", "0s"]);
    }
    assert_each_message_once(ws, 2300).await;
    assert_consistent(ws).await;

    // Time travel to before the second round, replay and backfill, all read from the bucket.
    let sql =
        format!("SELECT count(*) AS n FROM silver.orders FOR TIMESTAMP AS OF TIMESTAMP '{between_rounds}'");
    let out = ws.ingot(&["query", &sql, "--format", "json"]);
    let then: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(then["n"].as_i64(), Some(silver_then), "silver as of {between_rounds}");
    let (ok, out, err) = ws.try_ingot(&["replay", "gold.revenue_hourly", "--as-of", &now_text()]);
    assert!(ok && out.contains("MATCH"), "{out}\n{err}");
    // The days the generator writes events on (around now; late events up to a day back).
    let day = |days: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%d 00:00:00 UTC").to_string()
    };
    let (ok, out, err) =
        ws.try_ingot(&["backfill", "gold.revenue_hourly", "--from", &day(-3), "--to", &day(1)]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(changed(&out), 0, "gold already follows from silver: {out}");

    // PyIceberg and DuckDB read the same rows.
    assert_readers_agree(ws).await;
}
