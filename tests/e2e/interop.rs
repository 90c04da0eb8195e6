//! Independent readers see what ingot wrote.

use std::path::PathBuf;
use std::process::Command;

use arrow_array::Array;
use arrow_array::cast::AsArray;

use crate::harness::*;
use crate::readers::python;

fn pyiceberg_read(ws: &Workspace, table: &str, column: &str) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pyiceberg_read.py");
    let output = Command::new(python())
        .arg(script)
        .arg(ws.catalog_uri())
        .arg(ws.dir.path().join("warehouse"))
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
