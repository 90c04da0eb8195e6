//! The lake on object storage: a warehouse in an S3 bucket (moto's server) behind the SQL
//! catalog. The whole pipeline, crashes and maintenance included, must give the answers it
//! gives on a local disk; independent readers read the same tables from the bucket; a second
//! writer never overwrites a metadata file; credentials never show.

use std::collections::BTreeMap;
use std::time::Duration;

use ingot_lake::Lake;

use crate::audit::{changed, now_text};
use crate::harness::*;
use crate::ingest::only_ingest_rows;
use crate::lake::{expire_and_clean, expire_and_clean_locally, race_two_writers};
use crate::s3_server::{S3Server, SECRET_ACCESS_KEY};
use crate::transforms::{assert_consistent, assert_readers_agree, int, query, workspace};

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

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_pipeline_on_s3_matches_a_recomputation_and_the_readers() {
    let s3 = S3Server::start();
    let broker = Broker::start();
    let ws = workspace(&broker).on_s3(&s3);

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
    kill_after_first_commit(&ws).await;
    ws.ingot(&["run", "--until-caught-up"]);
    assert_each_message_once(&ws, 1500).await;
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let silver_then = count(&lake, "SELECT count(*) FROM silver.orders").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between_rounds = now_text();

    // Late events and duplicates; silver and gold equal a brute-force recomputation.
    let late = ["--count", "800", "--duplicate-ratio", "0.2", "--late-ratio", "0.15", "--seed", "9"];
    ws.ingot(&[&["produce", "--topic", "orders"][..], &late[..]].concat());
    ws.ingot(&["run", "--until-caught-up"]);
    let (late, _) = assert_consistent(&ws).await;
    assert!(late > 50, "late events were quarantined: {late}");

    // Maintenance on the bucket changes no answer.
    let out = ws.ingot(&["maintain", "compact", "bronze.orders", "--min-files", "2"]);
    assert!(out.contains("bronze.orders"), "{out}");
    for table in ["bronze.orders", "silver.orders", "gold.revenue_hourly"] {
        ws.ingot(&["maintain", "expire", table, "--older-than", "0s", "--retain-last", "2"]);
        ws.ingot(&["maintain", "clean-orphans", table, "--older-than", "0s"]);
    }
    assert_each_message_once(&ws, 2300).await;
    assert_consistent(&ws).await;

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

    // PyIceberg and DuckDB read the same rows from the bucket; nothing went to local disk.
    assert_readers_agree(&ws).await;
    assert!(!ws.dir.path().join("warehouse").exists(), "a local warehouse appeared");
    let location = lake.load(&ingot_lake::parse_ident("gold.revenue_hourly").unwrap()).await.unwrap();
    assert!(location.metadata().location().starts_with("s3://"), "{}", location.metadata().location());
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_failures_are_clear_and_never_show_the_secret() {
    let s3 = S3Server::start();
    let broker = Broker::start();
    let ws = workspace(&broker).on_s3(&s3);
    ws.ingot(&["produce", "--topic", "orders", "--count", "300"]);
    let env = [("INGOT_LOG", "debug")];
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &env);
    assert!(ok, "{out}\n{err}");
    let (ok, tables, err_tables) = ws.try_ingot_with_env(&["tables"], &env);
    assert!(ok && tables.contains("bronze.orders"), "{tables}\n{err_tables}");
    for text in [&out, &err, &tables, &err_tables] {
        assert!(!text.contains(SECRET_ACCESS_KEY), "the secret key was printed:\n{text}");
    }

    // A bucket that does not exist: one clear start-up error naming the warehouse.
    let missing = [("INGOT_CATALOG__WAREHOUSE", "s3://no-such-bucket/wh")];
    let (ok, out, err) = ws.try_ingot_with_env(&["tables"], &missing);
    assert!(!ok, "{out}");
    assert!(err.contains("s3://no-such-bucket/wh"), "{err}");
    assert!(!err.contains(SECRET_ACCESS_KEY) && !out.contains(SECRET_ACCESS_KEY), "{err}");

    // A server that is down: the same, within the probe's few seconds, not a retry loop.
    drop(s3);
    let started = std::time::Instant::now();
    let (ok, _, err) = ws.try_ingot(&["tables"]);
    assert!(!ok);
    assert!(err.contains("warehouse") && err.contains("s3://"), "{err}");
    assert!(!err.contains(SECRET_ACCESS_KEY), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "gave up after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_and_orphan_cleanup_on_s3_delete_what_they_delete_locally() {
    let s3 = S3Server::start();
    let ws = Workspace::lake(None).on_s3(&s3);
    let on_s3 =
        expire_and_clean(&ws, |location, body| s3.put(location, body), |location| s3.exists(location)).await;
    assert_eq!(on_s3, expire_and_clean_locally().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_on_s3_both_land() {
    let s3 = S3Server::start();
    race_two_writers(&Workspace::lake(None).on_s3(&s3)).await;
}
