//! Independent readers see what ingot wrote.

use arrow_array::Array;
use arrow_array::cast::AsArray;

use crate::harness::*;
use crate::postgres::Postgres;
use crate::readers::interop_script;

fn pyiceberg_read(ws: &Workspace, table: &str, column: &str) -> serde_json::Value {
    let output = interop_script(ws, "pyiceberg_read.py", &[])
        .args([table, column])
        .output()
        .expect("run python (scripts/test.sh makes the venv; or set INGOT_TEST_PYTHON)");
    assert!(output.status.success(), "pyiceberg failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pyiceberg_reads_the_same_bronze_and_quarantine_rows() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 400, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "2000", "--bad-ratio", "0.05"]);
    ws.ingot(&["run", "--until-caught-up"]);
    assert_pyiceberg_sees_what_ingot_sees(&ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_catalog_holds_the_same_tables_for_pyiceberg() {
    let broker = Broker::start();
    let postgres = Postgres::start();
    let ws = Workspace::with_catalog(&broker, &demo_contracts(), 400, ORDERS_TOPIC, Some(&postgres.uri));
    ws.ingot(&["produce", "--topic", "orders", "--count", "1500", "--bad-ratio", "0.05"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let rows = row_count(&ws.rows("bronze.orders").await) + row_count(&ws.rows("ingot.quarantine").await);
    assert_eq!(rows, 1500);
    assert_pyiceberg_sees_what_ingot_sees(&ws).await;
}

/// PyIceberg, reading the same catalog, sees the same rows of bronze and quarantine.
async fn assert_pyiceberg_sees_what_ingot_sees(ws: &Workspace) {
    for (table, column) in [("bronze.orders", "order_id"), ("ingot.quarantine", "reason")] {
        let ours = ws.rows(table).await;
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for batch in &ours {
            let p = batch
                .column_by_name("_kafka_partition")
                .unwrap()
                .as_primitive::<arrow_array::types::Int32Type>();
            let o = batch
                .column_by_name("_kafka_offset")
                .unwrap()
                .as_primitive::<arrow_array::types::Int64Type>();
            let v = batch.column_by_name(column).unwrap().as_string::<i32>();
            for i in 0..batch.num_rows() {
                keys.push(serde_json::json!([p.value(i), o.value(i)]));
                if !v.is_null(i) {
                    values.push(v.value(i).to_string());
                }
            }
        }
        keys.sort_by_key(|k| (k[0].as_i64(), k[1].as_i64()));
        values.sort();
        let theirs = pyiceberg_read(ws, table, column);
        assert_eq!(theirs["rows"].as_u64().unwrap() as usize, row_count(&ours), "{table} row count");
        assert_eq!(theirs["keys"], serde_json::Value::Array(keys), "{table} keys");
        assert_eq!(theirs["values"], serde_json::json!(values), "{table} {column}");
    }
    let theirs = pyiceberg_read(ws, "bronze.orders", "order_id");
    let columns: Vec<&str> =
        theirs["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for expected in ["occurred_at", "items", "attributes", "card", "_kafka_offset", "_ingested_at"] {
        assert!(columns.contains(&expected), "{expected} in {columns:?}");
    }
}

/// The metadata JSON a table's catalog entry points at.
async fn metadata_json(ws: &Workspace, table: &str) -> serde_json::Value {
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let table = lake.load(&ingot_lake::parse_ident(table).unwrap()).await.unwrap();
    let location = table.metadata_location().unwrap().trim_start_matches("file://").to_string();
    serde_json::from_slice(&std::fs::read(location).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_let_other_engines_retry_and_list_snapshots_in_commit_order() {
    let broker = Broker::start();
    let topics = format!("{ORDERS_TOPIC}\n{}", transforms_toml());
    let ws = Workspace::new(&broker, &demo_contracts(), 300, &topics);
    for seed in ["1", "2", "3"] {
        ws.ingot(&["produce", "--topic", "orders", "--count", "700", "--late-ratio", "0.05", "--seed", seed]);
        ws.ingot(&["run", "--until-caught-up"]);
    }
    // Appends, transforms' overwrites, a compaction and an expiry on every table.
    ws.ingot(&["maintain", "compact"]);
    let expire = [("INGOT_MAINTENANCE__EXPIRE_OLDER_THAN", "1ms"), ("INGOT_MAINTENANCE__RETAIN_LAST", "4")];
    let (ok, out, err) = ws.try_ingot_with_env(&["maintain", "expire"], &expire);
    assert!(ok, "{out}\n{err}");
    for table in
        ["bronze.orders", "ingot.quarantine", "silver.orders", "gold.revenue_hourly", "gold.customer_daily"]
    {
        let metadata = metadata_json(&ws, table).await;
        let properties = &metadata["properties"];
        assert_ne!(
            properties["commit.retry.num-retries"], "0",
            "{table} must not disable other engines' retries"
        );
        let sequence: Vec<i64> = metadata["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sequence-number"].as_i64().unwrap())
            .collect();
        assert!(sequence.len() >= 2, "{table}: {sequence:?}");
        assert!(
            sequence.windows(2).all(|w| w[0] < w[1]),
            "{table} snapshots out of commit order: {sequence:?}"
        );
        let operations: Vec<&str> = metadata["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["summary"]["operation"].as_str())
            .collect();
        if table == "bronze.orders" {
            assert!(operations.contains(&"replace"), "bronze was compacted: {operations:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pyiceberg_append_racing_ingot_on_bronze_succeeds_after_a_retry() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 100_000, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "200"]);
    ws.ingot(&["run", "--until-caught-up"]);
    // A commit a second (the default is 10 s): each append below sees at least one ingot
    // commit land after it loaded the table, and wins on a retry. (At 10 commits a second,
    // PyIceberg's default 4 retries lose every race on a loaded machine.)
    let fast = [("INGOT_INGEST__FLUSH__INTERVAL", "1s")];
    let mut service = ws.spawn_with_env(&["run"], &fast);
    let stream = ws.spawn_with_env(
        &["produce", "--topic", "orders", "--count", "20000", "--rate", "400", "--seed", "9"],
        &[],
    );
    let output = race_append(&ws, &[]);
    let mut stream = stream;
    let _ = stream.kill();
    let _ = stream.wait();
    assert!(terminate(&mut service), "{}", ws.spawned_logs());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["failures"], serde_json::json!([]), "no append fails for a concurrent ingot commit");
    assert!(result["retries"].as_u64().unwrap() >= 1, "the race was hit: {result}");
    assert!(result["appends"].as_u64().unwrap() >= 1, "{result}");

    // ingot's progress survives another engine's snapshot on top of its own: a new group
    // resumes from the offsets in ingot's last snapshot, reading nothing twice.
    let once = race_append(&ws, &["once"]);
    assert!(once.status.success(), "{}", String::from_utf8_lossy(&once.stderr));
    let (ok, out, err) =
        ws.try_ingot_with_env(&["run", "--until-caught-up"], &[("INGOT_KAFKA__GROUP_ID", "after-race")]);
    assert!(ok, "{out}\n{err}");
    let mut seen = std::collections::BTreeMap::new();
    offsets_seen(&ws.rows("bronze.orders").await, &mut seen);
    offsets_seen(&ws.rows("ingot.quarantine").await, &mut seen);
    let appended: u32 = seen.iter().filter(|((_, o), _)| *o < 0).map(|(_, n)| *n).sum();
    assert!(appended as u64 > result["appends"].as_u64().unwrap(), "PyIceberg's rows are there");
    let repeated: Vec<_> = seen.iter().filter(|((_, o), n)| *o >= 0 && **n != 1).take(5).collect();
    assert!(repeated.is_empty(), "ingot read nothing twice: {repeated:?}\n{out}");
}

/// Runs `race_append.py` against bronze.orders.
fn race_append(ws: &Workspace, extra: &[&str]) -> std::process::Output {
    interop_script(ws, "race_append.py", &[]).arg("bronze.orders").args(extra).output().unwrap()
}
