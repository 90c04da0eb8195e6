//! Shared tables: another engine (PyIceberg) appends to, corrects and compacts each layer, and
//! ingot's own maintenance compacts and expires it, between rounds of ingest and transforms.
//! After each: no row lost or doubled, no late row admitted, nothing quarantined twice, gold
//! equals a recomputation from silver, and replay answers (a match, or the foreign window).

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::RecordBatch;
use ingot_lake::Lake;

use crate::audit::{assert_consistent_gold_only, changed, now_text};
use crate::harness::*;
use crate::ingest::only_ingest_rows;
use crate::readers::{At, Engine, interop_script, read_rows};
use crate::transforms::{int, query, snapshot_ids, text, workspace};

/// Runs `tests/interop/foreign.py`: PyIceberg edits `table`.
fn foreign(ws: &Workspace, table: &str, action: &str, extra: &[&str]) -> serde_json::Value {
    let output = interop_script(ws, "foreign.py", &[])
        .args([table, action])
        .args(extra)
        .output()
        .expect("run python (scripts/test.sh makes the venv; or set INGOT_TEST_PYTHON)");
    assert!(
        output.status.success(),
        "PyIceberg {action} on {table}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A broker, and a workspace whose pipeline ingested and transformed `count` orders made with
/// `options` (as `ingot produce` takes them).
fn pipeline_after(count: &str, options: &[&str]) -> (Broker, Workspace) {
    let broker = Broker::start();
    let ws = workspace(&broker);
    ws.ingot(&[&["produce", "--topic", "orders", "--count", count][..], options].concat());
    ws.ingot(&["run", "--until-caught-up"]);
    (broker, ws)
}

/// More orders (duplicates, late events) ingested and transformed.
fn round(ws: &Workspace, seed: &str) {
    let args = ["--count", "400", "--duplicate-ratio", "0.1", "--late-ratio", "0.05", "--seed", seed];
    ws.ingot(&[&["produce", "--topic", "orders"][..], &args[..]].concat());
    let out = ws.ingot(&["run", "--until-caught-up"]);
    assert!(out.contains("silver.orders"), "{out}");
}

fn flat(batches: &[RecordBatch], columns: usize) -> Vec<Vec<String>> {
    batches
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |r| (0..columns).map(|c| text(b, c, r)).collect()))
        .collect()
}

/// What every layer must hold, whoever edited it: silver has each key once, exactly the keys
/// of the bronze rows silver did not reject (plus keys another engine put into silver), no
/// bronze row is quarantined twice by silver, and gold follows from silver.
async fn assert_sound(ws: &Workspace, foreign_silver_keys: &BTreeSet<String>) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let rejected_rows = query(
        &lake,
        "SELECT _kafka_partition, _kafka_offset FROM ingot.quarantine WHERE message_type = 'silver.orders'",
    )
    .await;
    let mut rejected = BTreeSet::new();
    for b in &rejected_rows {
        for r in 0..b.num_rows() {
            assert!(
                rejected.insert((int(b, 0, r), int(b, 1, r))),
                "a bronze row quarantined twice by silver"
            );
        }
    }
    let bronze =
        query(&lake, "SELECT idempotency_key, _kafka_partition, _kafka_offset FROM bronze.orders").await;
    let mut expected: BTreeSet<String> = foreign_silver_keys.clone();
    let mut coordinates = BTreeMap::new();
    for b in &bronze {
        for r in 0..b.num_rows() {
            let at = (int(b, 1, r), int(b, 2, r));
            *coordinates.entry(at).or_insert(0) += 1;
            if !rejected.contains(&at) {
                expected.insert(text(b, 0, r));
            }
        }
    }
    assert!(coordinates.values().all(|n| *n == 1), "a Kafka message twice in bronze");
    let silver = flat(&query(&lake, "SELECT idempotency_key FROM silver.orders").await, 1);
    let keys: BTreeSet<String> = silver.iter().map(|r| r[0].clone()).collect();
    assert_eq!(keys.len(), silver.len(), "a key twice in silver");
    assert_eq!(keys, expected, "silver holds exactly the accepted keys");
    assert_consistent_gold_only(ws).await;
    let daily =
        query(&lake, "SELECT sum(orders), CAST(sum(spent) * 100 AS BIGINT) FROM gold.customer_daily").await;
    let silver_totals =
        query(&lake, "SELECT count(*), CAST(sum(total_amount) * 100 AS BIGINT) FROM silver.orders").await;
    assert_eq!(flat(&daily, 2), flat(&silver_totals, 2), "gold.customer_daily vs silver");
}

/// `ingot replay gold.revenue_hourly --as-of at`: (matched, windows different, output).
fn replay(ws: &Workspace, at: &str) -> (bool, usize, String) {
    let (ok, out, err) = ws.try_ingot(&["replay", "gold.revenue_hourly", "--as-of", at]);
    assert!(ok || out.contains("MISMATCH"), "replay failed: {out}\n{err}");
    let count = |label: &str| -> usize {
        let line = out.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{out}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (ok, count("windows different:") + count("only in gold:") + count("only in replay:"), out)
}

/// The key of some silver row (one PyIceberg can find in every layer holding keys).
async fn some_key(ws: &Workspace) -> String {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let rows =
        query(&lake, "SELECT idempotency_key FROM silver.orders ORDER BY idempotency_key LIMIT 1").await;
    text(&rows[0], 0, 0)
}

/// The currency of gold.revenue_hourly's first window.
async fn first_window_currency(ws: &Workspace) -> String {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let rows =
        query(&lake, "SELECT currency FROM gold.revenue_hourly ORDER BY window_start, currency LIMIT 1")
            .await;
    text(&rows[0], 0, 0)
}

/// Backfills every UTC day gold has windows in, repairing what another engine did to gold.
async fn backfill_all(ws: &Workspace) -> String {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let range = query(
        &lake,
        "SELECT CAST(to_unixtime(min(window_start)) AS BIGINT), CAST(to_unixtime(max(window_start)) AS BIGINT) FROM gold.revenue_hourly",
    )
    .await;
    let day = |s: i64| {
        let start = s.div_euclid(86_400) * 86_400;
        chrono::DateTime::from_timestamp(start, 0).unwrap().format("%Y-%m-%d %H:%M:%S UTC").to_string()
    };
    let (from, to) = (day(int(&range[0], 0, 0)), day(int(&range[0], 1, 0) + 86_400));
    ws.ingot(&["backfill", "gold.revenue_hourly", "--from", &from, "--to", &to])
}

/// Edits `layer` the way `step` says, then runs a round, then checks everything.
async fn shared_layer(layer: &str) {
    let (_broker, ws) = pipeline_after("1200", &["--duplicate-ratio", "0.1"]);
    let mut foreign_silver_keys = BTreeSet::new();
    let mut replay_may_differ = 0;
    for (i, step) in ["append", "correct", "rewrite", "maintain"].into_iter().enumerate() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let before = now_text();
        let (ok_before, _, out) = replay(&ws, &before);
        assert!(ok_before || replay_may_differ > 0, "{layer}, before {step}: {out}");
        match step {
            "append" => {
                foreign(&ws, layer, "append", &[]);
                if layer == "silver.orders" {
                    foreign_silver_keys.insert("foreign-silver.orders".to_string());
                    replay_may_differ += 1;
                }
            }
            "correct" => {
                let key = some_key(&ws).await;
                match layer {
                    "bronze.orders" => foreign(&ws, layer, "correct", &["idempotency_key", &key, "order_id"]),
                    "silver.orders" => {
                        replay_may_differ += 1;
                        foreign(&ws, layer, "correct", &["idempotency_key", &key, "total_amount"])
                    }
                    "gold.revenue_hourly" => {
                        let currency = first_window_currency(&ws).await;
                        foreign(&ws, layer, "correct", &["currency", &currency, "orders"])
                    }
                    _ => foreign(&ws, layer, "correct", &["message_type", "silver.orders", "error"]),
                };
            }
            "rewrite" => {
                foreign(&ws, layer, "rewrite", &[]);
            }
            _ => {
                ws.ingot(&["maintain", "compact", layer, "--min-files", "2"]);
                ws.ingot(&["maintain", "expire", layer, "--older-than", "0s", "--retain-last", "1"]);
            }
        }
        if layer == "gold.revenue_hourly" && step != "maintain" {
            let (ok, differ, out) = replay(&ws, &now_text());
            if step != "rewrite" {
                assert!(!ok && differ >= 1, "replay names the window another engine changed: {out}");
            } else {
                assert!(ok, "a rewrite of the same rows changes no window: {out}");
            }
        }
        round(&ws, &format!("{}", 20 + i));
        if layer == "gold.revenue_hourly" {
            // Runs since touched only the days new rows fell in; a backfill repairs the rest.
            backfill_all(&ws).await;
        }
        assert_sound(&ws, &foreign_silver_keys).await;
        let (ok, differ, out) = replay(&ws, &now_text());
        assert!(ok || differ <= replay_may_differ, "{layer} after {step}: {out}");
        let (ok_before, _, out) = replay(&ws, &before);
        assert!(ok_before || replay_may_differ > 0, "{layer} as of before {step}: {out}");
    }
    // Nothing left to do: a transform run commits nothing.
    let ids = snapshot_ids(&ws).await;
    let out = ws.ingot(&["transform"]);
    assert!(out.contains("silver.orders: up to date"), "{out}");
    assert_eq!(snapshot_ids(&ws).await, ids, "{out}");
    assert_orders_hold_each_offset_once_with_foreign(&ws).await;
}

/// Every Kafka message is in bronze or the quarantine at most once (foreign rows, offset -1,
/// aside).
async fn assert_orders_hold_each_offset_once_with_foreign(ws: &Workspace) {
    let mut seen: BTreeMap<(i32, i64), u32> = BTreeMap::new();
    offsets_seen(&ws.rows("bronze.orders").await, &mut seen);
    offsets_seen(&only_ingest_rows(&ws.rows("ingot.quarantine").await), &mut seen);
    seen.retain(|(_, offset), _| *offset >= 0);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "offsets held twice: {twice:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bronze_shared_with_another_engine_and_maintenance() {
    shared_layer("bronze.orders").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn silver_shared_with_another_engine_and_maintenance() {
    shared_layer("silver.orders").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gold_shared_with_another_engine_and_maintenance() {
    shared_layer("gold.revenue_hourly").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_shared_with_another_engine_and_maintenance() {
    shared_layer("ingot.quarantine").await;
}

/// Orders with late events, produced but not ingested yet.
fn produce_late(ws: &Workspace, seed: &str) {
    let args = ["--count", "300", "--duplicate-ratio", "0.1", "--late-ratio", "0.2", "--seed", seed];
    ws.ingot(&[&["produce", "--topic", "orders"][..], &args[..]].concat());
}

/// Ingests what the topic holds without running the transforms (the config without them).
fn ingest_only(ws: &Workspace) {
    let full = std::fs::read_to_string(&ws.config).unwrap();
    let without = &full[..full.find("\n[transform]\n").expect("the transforms follow the topics")];
    std::fs::write(&ws.config, without).unwrap();
    ws.ingot(&["run", "--until-caught-up"]);
    std::fs::write(&ws.config, full).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_each_transform_failpoint_then_compaction_and_more_input_quarantines_each_row_once() {
    let (_broker, ws) = pipeline_after("600", &[]);
    round(&ws, "39");
    for (i, point) in
        ["after-silver-quarantine-commit", "after-silver-commit", "after-gold-commit"].iter().enumerate()
    {
        produce_late(&ws, &format!("{}", 40 + i));
        let status =
            ws.spawn_with_env(&["run", "--until-caught-up"], &[("INGOT_FAILPOINT", point)]).wait().unwrap();
        assert!(!status.success(), "{point} crashed the run");
        // Maintenance compacts silver and bronze moves on before the re-run.
        let out = ws.ingot(&["maintain", "compact", "silver.orders", "--min-files", "2"]);
        assert!(i > 0 || out.contains("silver.orders"), "{out}");
        produce_late(&ws, &format!("{}", 50 + i));
        ingest_only(&ws);
        let out = ws.ingot(&["transform"]);
        assert!(out.contains("silver.orders"), "{out}");
        assert_sound(&ws, &BTreeSet::new()).await;
    }
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let late = query(&lake, "SELECT count(*) FROM ingot.quarantine WHERE reason = 'late'").await;
    assert!(int(&late[0], 0, 0) > 20, "late rows were quarantined (once each)");
}

/// PyIceberg adds one to every `orders` of one currency's gold windows.
async fn hand_edit_gold(ws: &Workspace) {
    let currency = first_window_currency(ws).await;
    foreign(ws, "gold.revenue_hourly", "correct", &["currency", &currency, "orders"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_repeated_after_each_hand_edit_repairs_each_and_then_commits_nothing() {
    let (_broker, ws) = pipeline_after("800", &[]);
    for edit in 1..=2 {
        hand_edit_gold(&ws).await;
        let out = backfill_all(&ws).await;
        assert!(changed(&out) > 0 && !out.contains("nothing to commit"), "edit {edit}: {out}");
        assert_consistent_gold_only(&ws).await;
    }
    let before = snapshot_ids(&ws).await;
    let out = backfill_all(&ws).await;
    assert!(changed(&out) == 0 && out.contains("nothing to commit"), "{out}");
    assert_eq!(snapshot_ids(&ws).await, before);
    // The backfills kept gold's progress: a transform with no new input commits nothing.
    let out = ws.ingot(&["transform"]);
    assert!(out.contains("gold.revenue_hourly: up to date"), "{out}");
    assert_eq!(snapshot_ids(&ws).await, before);
}

/// Replace snapshots (compactions) in a table's history.
async fn compactions(ws: &Workspace, table: &str) -> usize {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let loaded = lake.load(&ingot_lake::parse_ident(table).unwrap()).await.unwrap();
    loaded.metadata().snapshots().filter(|s| s.summary().operation == ingot_lake::Operation::Replace).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_compacting_every_second_under_steady_input_ends_equal_to_a_recomputation() {
    let broker = Broker::start();
    let maintenance = "[maintenance]\ninterval = \"1s\"\ncompact_min_files = 2\n";
    let topics = format!("{ORDERS_TOPIC}\n{}\n{maintenance}", transforms_toml());
    let ws = Workspace::new(&broker, &demo_contracts(), 100, &topics);
    let mut service = ws.spawn_with_env(&["run"], &[]);
    let args = [
        "--count",
        "4000",
        "--rate",
        "80",
        "--duplicate-ratio",
        "0.1",
        "--late-ratio",
        "0.05",
        "--bad-ratio",
        "0.03",
    ];
    ws.produce_in_background(&args).join().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert!(terminate(&mut service), "the service stops cleanly:\n{}", ws.spawned_logs());
    ws.ingot(&["run", "--until-caught-up"]);
    ws.ingot(&["transform"]);
    assert_sound(&ws, &BTreeSet::new()).await;
    assert_orders_hold_each_offset_once_with_foreign(&ws).await;
    // Gold partitions hold one file per day (each run rewrites the day): nothing to compact.
    for table in ["bronze.orders", "silver.orders", "ingot.quarantine"] {
        let n = compactions(&ws, table).await;
        assert!(n >= 2, "{table} was compacted {n} times while the service ran");
    }
    let (ok, _, out) = replay(&ws, &now_text());
    assert!(ok, "{out}");
}

/// PyIceberg registers a Parquet file written outside Iceberg (no field ids) in bronze.orders:
/// copies of `rows` rows, without `left_out` columns. Returns the script's JSON.
fn add_files(ws: &Workspace, rows: &str, left_out: &[&str]) -> serde_json::Value {
    let output = interop_script(ws, "add_files.py", &[])
        .args(["bronze.orders", rows])
        .args(left_out)
        .output()
        .unwrap();
    assert!(output.status.success(), "add_files: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_added_without_field_ids_never_crashes_a_read_and_rewriting_it_heals() {
    let (_broker, ws) = pipeline_after("300", &[]);
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let all_items = "SELECT sum(cardinality(items)) FROM bronze.orders";
    let before = int(&query(&lake, all_items).await[0], 0, 0);
    let added = add_files(&ws, "5", &[]);
    let (path, items) = (added["path"].as_str().unwrap(), added["items"].as_i64().unwrap());
    let (_, rows) = read_rows(&ws, Engine::PyIceberg, "bronze.orders", "_kafka_offset", At::Current);
    assert_eq!(rows.unwrap().iter().filter(|r| r[0] <= -1000).count(), 5, "PyIceberg reads the file");

    // A whole-column read of the file's nested column (which used to abort the process: the
    // file's nested types carry no ids, and DataFusion asserts on types) reads it.
    assert_eq!(int(&query(&lake, all_items).await[0], 0, 0), before + items);
    // Where the reader maps nested columns by id (a filter, every column), the failure names
    // the file.
    let filtered = "SELECT sum(cardinality(items)) FROM bronze.orders WHERE _kafka_offset <= -1000";
    for args in [
        &["query", filtered][..],
        &["maintain", "compact", "bronze.orders", "--min-files", "2"][..],
        &["transform"][..],
    ] {
        let (ok, out, err) = ws.try_ingot(args);
        assert!(!ok && names_the_file(&err, path), "{args:?}:\n{out}\n{err}");
    }
    // Rewriting the rows with an Iceberg writer gives the file ids: every read works again.
    foreign(&ws, "bronze.orders", "rewrite", &[]);
    let bronze = lake.load(&ingot_lake::parse_ident("bronze.orders").unwrap()).await.unwrap();
    assert_eq!(ingot_lake::files_without_field_ids(&bronze, None).await.unwrap(), Vec::<String>::new());
    assert_eq!(int(&query(&lake, filtered).await[0], 0, 0), items);
    ws.ingot(&["transform"]);
    assert_sound(&ws, &BTreeSet::new()).await;
    let silver = query(&lake, "SELECT count(*) FROM silver.orders WHERE _kafka_offset <= -1000").await;
    let rejected = query(
        &lake,
        "SELECT count(*) FROM ingot.quarantine WHERE message_type = 'silver.orders' AND _kafka_offset <= -1000",
    )
    .await;
    assert_eq!(
        int(&silver[0], 0, 0) + int(&rejected[0], 0, 0),
        5,
        "each migrated row reached silver or its quarantine"
    );
}

/// The message ingot gives when a read meets a file without field ids, naming `path`.
fn names_the_file(stderr: &str, path: &str) -> bool {
    stderr.contains(path) && stderr.contains("no Iceberg field ids")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_without_field_ids_the_reader_cannot_map_is_named_and_rewriting_it_heals() {
    let (_broker, ws) = pipeline_after("300", &[]);
    // A file without the nested `items` column: PyIceberg reads it (nulls); the reader ingot is
    // built on cannot make a null list, so every read of `items` names the file.
    let added = add_files(&ws, "5", &["items"]);
    let path = added["path"].as_str().unwrap();
    let (_, rows) = read_rows(&ws, Engine::PyIceberg, "bronze.orders", "_kafka_offset", At::Current);
    assert_eq!(rows.unwrap().iter().filter(|r| r[0] <= -1000).count(), 5);
    for args in [
        &["query", "SELECT sum(cardinality(items)) FROM bronze.orders"][..],
        &["maintain", "compact", "bronze.orders", "--min-files", "2"][..],
        &["transform"][..],
    ] {
        let (ok, out, err) = ws.try_ingot(args);
        assert!(!ok && names_the_file(&err, path), "{args:?}:\n{out}\n{err}");
    }
    // Rewriting the rows with an Iceberg writer (field ids, the column as nulls) heals it.
    foreign(&ws, "bronze.orders", "rewrite", &[]);
    ws.ingot(&["query", "SELECT sum(cardinality(items)) FROM bronze.orders"]);
    ws.ingot(&["transform"]);
    assert_sound(&ws, &BTreeSet::new()).await;
}
