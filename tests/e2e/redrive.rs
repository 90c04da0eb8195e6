//! Quarantine re-drive: messages quarantined because the contract did not know one of their
//! fields are appended to bronze once the field is added — exactly once across crashes and
//! re-runs — and silver picks them up; what still fails stays where it is.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};

use crate::harness::*;
use crate::transforms::query;

/// A valid order (one line item, EUR 7), occurred at `seconds`.
pub(crate) fn order_message(i: u32, seconds: i64) -> prost_reflect::DynamicMessage {
    use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value};
    let registry = ingot_proto::ContractRegistry::load(demo_contracts()).unwrap();
    let mut order = DynamicMessage::new(registry.message("ingot.demo.v1.OrderEvent").unwrap());
    let nested = |field: &str| match order.descriptor().get_field_by_name(field).unwrap().kind() {
        Kind::Message(m) => DynamicMessage::new(m),
        _ => unreachable!("{field} is a message"),
    };
    let (mut total, mut at, mut item) = (nested("total"), nested("occurred_at"), nested("items"));
    item.set_field_by_name("sku", Value::String("sku-1".into()));
    item.set_field_by_name("quantity", Value::I32(1));
    total.set_field_by_name("units", Value::I64(7));
    at.set_field_by_name("seconds", Value::I64(seconds));
    order.set_field_by_name("idempotency_key", Value::String(format!("redrive-{i}:placed")));
    order.set_field_by_name("order_id", Value::String(format!("redrive-{i}")));
    order.set_field_by_name("customer_id", Value::String("c-redrive".into()));
    order.set_field_by_name("currency", Value::String("EUR".into()));
    order.set_field_by_name("status", Value::EnumNumber(1));
    order.set_field_by_name("items", Value::List(vec![Value::Message(item)]));
    order.set_field_by_name("total", Value::Message(total));
    order.set_field_by_name("occurred_at", Value::Message(at));
    order
}

/// `message` encoded, with field 99 (a varint the demo contract does not define) after it.
pub(crate) fn with_field_99(message: &prost_reflect::DynamicMessage, i: u32) -> Vec<u8> {
    use prost::Message;
    let mut bytes = message.encode_to_vec();
    // Tag of field 99, wire type varint: (99 << 3) | 0 = 792 = 0x98 0x06; then the value.
    bytes.extend([0x98, 0x06, (i % 100) as u8 + 1]);
    bytes
}

/// A valid order carrying field 99.
fn order_with_field_99(i: u32, seconds: i64) -> Vec<u8> {
    with_field_99(&order_message(i, seconds), i)
}

/// The contract catches up with the producer: `OrderEvent` gains field 99.
pub(crate) fn add_field_99_to_the_contract(contracts: &Path) {
    let proto = contracts.join("ingot/demo/v1/orders.proto");
    let text = std::fs::read_to_string(&proto).unwrap();
    let field = "  string trace_id = 10;\n";
    assert!(text.contains(field));
    std::fs::write(&proto, text.replacen(field, &format!("{field}  int64 loyalty_points = 99;\n"), 1))
        .unwrap();
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_dir(&entry.path(), &target),
            false => drop(std::fs::copy(entry.path(), &target).unwrap()),
        }
    }
}

/// Bronze's rows per (partition, offset), and how many carry `loyalty_points`.
async fn bronze_offsets(ws: &Workspace) -> (BTreeMap<(i32, i64), u32>, usize) {
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let table = lake.load(&ingot_lake::parse_ident("bronze.orders").unwrap()).await.unwrap();
    let has_points = ingot_lake::table_arrow_schema(&table).unwrap().index_of("loyalty_points").is_ok();
    let points = if has_points { "loyalty_points" } else { "CAST(NULL AS BIGINT)" };
    let sql = format!("SELECT _kafka_partition, _kafka_offset, {points} FROM bronze.orders");
    let mut seen = BTreeMap::new();
    let mut with_points = 0;
    for batch in query(&lake, &sql).await {
        let (p, o) =
            (batch.column(0).as_primitive::<Int32Type>(), batch.column(1).as_primitive::<Int64Type>());
        with_points += batch.num_rows() - batch.column(2).null_count();
        for row in 0..batch.num_rows() {
            *seen.entry((p.value(row), o.value(row))).or_insert(0) += 1;
        }
    }
    (seen, with_points)
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_with_a_field_the_contract_lacked_are_redriven_once_across_crashes() {
    let broker = Broker::start();
    let contracts = tempfile::tempdir().unwrap();
    copy_dir(&demo_contracts(), contracts.path());
    let lineage = "[lineage]\ntransport = \"file\"\npath = \"lineage.jsonl\"\n";
    let topics = format!("{ORDERS_TOPIC}\n{}\n{lineage}", transforms_toml());
    let ws = Workspace::new(&broker, contracts.path(), 100_000, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "300", "--seed", "1"]);
    let now = chrono::Utc::now().timestamp();
    let mut raw: Vec<(Vec<u8>, Option<i64>)> = (0..20).map(|i| (order_with_field_99(i, now), None)).collect();
    raw.extend((0..5).map(|_| (vec![0xff; 40], None)));
    produce_raw(&broker, "orders", &raw).await;
    // Good messages after them on every partition: bronze's progress passes the quarantined.
    ws.ingot(&["produce", "--topic", "orders", "--count", "300", "--seed", "2"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let stats = ws.ingot(&["quarantine", "stats", "--format", "csv"]);
    assert!(stats.contains("orders,unknown_fields,,20"), "{stats}");
    let (before, _) = bronze_offsets(&ws).await;
    assert_eq!(before.len(), 600);

    // With the contract as it is, nothing passes.
    let dry = ws.ingot(&["quarantine", "redrive", "--dry-run"]);
    assert!(dry.contains("25 quarantined considered, 0 pass now"), "{dry}");
    assert!(
        dry.contains("still failing (unknown_fields): 20") && dry.contains("still failing (undecodable): 5"),
        "{dry}"
    );

    // The producer was ahead of the contract: the field is added.
    add_field_99_to_the_contract(contracts.path());
    let dry = ws.ingot(&["quarantine", "redrive", "--reason", "unknown_fields", "--dry-run"]);
    assert!(dry.contains("(dry run) orders: 20 quarantined considered, 20 pass now; appended 0"), "{dry}");
    assert_eq!(bronze_offsets(&ws).await.0.len(), 600, "a dry run changes nothing");

    // Crashed before its commit: nothing appended; crashed after it: appended, not reported.
    for point in ["redrive-before-commit", "redrive-after-commit"] {
        let (ok, _, err) = ws.try_ingot_with_env(&["quarantine", "redrive"], &[("INGOT_FAILPOINT", point)]);
        assert!(!ok && err.contains(point), "{point}: {err}");
    }
    let again = ws.ingot(&["quarantine", "redrive"]);
    assert!(again.contains("20 pass now; appended 0 to bronze.orders, 20 already there"), "{again}");
    let twice = ws.ingot(&["quarantine", "redrive", "--topic", "orders"]);
    assert!(twice.contains("appended 0"), "{twice}");
    let (after, with_points) = bronze_offsets(&ws).await;
    assert_eq!(after.len(), 620, "the 20 re-driven messages are in bronze");
    assert!(after.values().all(|n| *n == 1), "each offset once in bronze");
    assert_eq!(with_points, 20, "the re-driven rows carry the new field");
    assert!(before.keys().all(|k| after.contains_key(k)));

    // Each re-drive is a lineage run from the quarantine to bronze; the one that appended
    // names the snapshot it made.
    let events: Vec<serde_json::Value> = std::fs::read_to_string(ws.dir.path().join("lineage.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["job"]["name"] == "pipeline.redrive_bronze_orders")
        .collect();
    let completed: Vec<_> = events.iter().filter(|e| e["eventType"] == "COMPLETE").collect();
    assert_eq!(completed.len(), 2, "the two re-runs complete (the crashed ones never do)");
    let start = events.iter().find(|e| e["eventType"] == "START").unwrap();
    assert!(start["inputs"][0]["name"].as_str().unwrap().ends_with("ingot/quarantine"), "{start}");
    assert!(
        completed[0]["outputs"][0]["name"].as_str().unwrap().ends_with("bronze/orders"),
        "{}",
        completed[0]
    );

    // The quarantine is unchanged; silver picks the re-driven rows up.
    let stats_after = ws.ingot(&["quarantine", "stats", "--format", "csv"]);
    assert!(stats_after.contains("orders,unknown_fields,,20"), "{stats_after}");
    let out = ws.ingot(&["transform"]);
    assert!(out.contains("silver.orders: read 20 new rows, wrote 20"), "{out}");
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let silver = query(&lake, "SELECT count(*) FROM silver.orders WHERE order_id LIKE 'redrive-%'").await;
    assert_eq!(silver[0].column(0).as_primitive::<Int64Type>().value(0), 20);

    // A topic that is not configured is refused by name.
    let (ok, _, err) = ws.try_ingot(&["quarantine", "redrive", "--topic", "nope"]);
    assert!(!ok && err.contains("--topic nope"), "{err}");
}

/// Quarantined messages at the end of a partition are past bronze's recorded progress: the
/// re-drive leaves them, and the service reads them again with the fixed contract — once.
#[tokio::test(flavor = "multi_thread")]
async fn messages_past_bronzes_progress_are_left_to_ingest_which_reads_them_again() {
    let broker = Broker::start();
    let contracts = tempfile::tempdir().unwrap();
    copy_dir(&demo_contracts(), contracts.path());
    let ws = Workspace::new(&broker, contracts.path(), 100_000, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "100", "--partitions", "1"]);
    ws.ingot(&["run", "--until-caught-up"]);
    // A flush of nothing but quarantined messages commits no bronze rows, so bronze's
    // recorded progress stays before them (the quarantine's moves past).
    let now = chrono::Utc::now().timestamp();
    let tail: Vec<(Vec<u8>, Option<i64>)> = (0..10).map(|i| (order_with_field_99(i, now), None)).collect();
    produce_raw(&broker, "orders", &tail).await;
    ws.ingot(&["run", "--until-caught-up"]);
    assert_eq!(bronze_offsets(&ws).await.0.len(), 100);

    add_field_99_to_the_contract(contracts.path());
    let out = ws.ingot(&["quarantine", "redrive"]);
    assert!(
        out.contains("10 pass now; appended 0 to bronze.orders, 0 already there, 10 left to ingest"),
        "{out}"
    );

    // `--until-caught-up` sees nothing new (the quarantine holds the tail); the service
    // resumes from bronze's progress and reads the tail again.
    let mut service = ws.spawn_with_env(&["run"], &[]);
    let bronze_rows = || async {
        let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
        let table = lake.load(&ingot_lake::parse_ident("bronze.orders").unwrap()).await.unwrap();
        ingot_lake::table_size(&table).rows
    };
    wait_until(std::time::Duration::from_secs(60), "the tail in bronze", || async {
        bronze_rows().await >= 110
    })
    .await;
    assert!(terminate(&mut service), "{}", ws.spawned_logs());
    let (offsets, with_points) = bronze_offsets(&ws).await;
    assert_eq!((offsets.len(), with_points), (110, 10), "ingest read the tail again with the new field");
    assert!(offsets.values().all(|n| *n == 1));
    let out = ws.ingot(&["quarantine", "redrive"]);
    assert!(out.contains("appended 0 to bronze.orders, 10 already there, 0 left to ingest"), "{out}");
}
