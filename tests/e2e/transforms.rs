//! Silver and gold on a real broker and catalog: dedup, late rows, rule quarantine, gold
//! sums against a brute-force recomputation, idempotent re-runs, crashes mid-run, and
//! independent readers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use ingot_lake::{Lake, parse_ident, read_table};
use ingot_transforms::query::run_query;
use serde_json::Value;

use crate::harness::*;
use crate::readers::{At, Engine, read_rows};

pub fn transforms_toml() -> String {
    let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
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

fn workspace(broker: &Broker) -> Workspace {
    Workspace::new(broker, &demo_contracts(), 500, &format!("{ORDERS_TOPIC}\n{}", transforms_toml()))
}

async fn query(lake: &Lake, sql: &str) -> Vec<RecordBatch> {
    run_query(lake, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).batches
}

fn int(batch: &RecordBatch, i: usize, row: usize) -> i64 {
    let column = arrow_cast::cast(batch.column(i), &arrow_schema::DataType::Int64).unwrap();
    column.as_primitive::<Int64Type>().value(row)
}

fn text(batch: &RecordBatch, i: usize, row: usize) -> String {
    let column = arrow_cast::cast(batch.column(i), &arrow_schema::DataType::Utf8).unwrap();
    let column = column.as_string::<i32>();
    if column.is_null(row) { String::new() } else { column.value(row).to_string() }
}

/// One bronze order as the brute force needs it.
struct Order {
    key: String,
    currency: String,
    customer: String,
    hour: i64,
    cents: i64,
}

/// Silver and gold agree with a brute-force recomputation from bronze and the quarantine.
/// Returns (late rows, rows rejected by silver rules) quarantined by silver.
async fn assert_consistent(ws: &Workspace) -> (usize, usize) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let bronze = query(
        &lake,
        "SELECT idempotency_key, currency, customer_id, occurred_at, total.units, total.nanos, _kafka_partition, _kafka_offset FROM bronze.orders",
    )
    .await;
    let rejected_rows = query(
        &lake,
        "SELECT _kafka_partition, _kafka_offset, reason FROM ingot.quarantine WHERE message_type = 'silver.orders'",
    )
    .await;
    let mut rejected: HashMap<(i64, i64), String> = HashMap::new();
    for b in &rejected_rows {
        for r in 0..b.num_rows() {
            let previous = rejected.insert((int(b, 0, r), int(b, 1, r)), text(b, 2, r));
            assert!(previous.is_none(), "a bronze row quarantined twice by silver");
        }
    }
    let late = rejected.values().filter(|r| *r == "late").count();
    let rules = rejected.len() - late;

    // Every key with a bronze row silver did not reject is in silver, once.
    let mut expected: BTreeMap<String, Order> = BTreeMap::new();
    for b in &bronze {
        let at = b.column(3).as_primitive::<TimestampMicrosecondType>();
        for r in 0..b.num_rows() {
            if rejected.contains_key(&(int(b, 6, r), int(b, 7, r))) {
                continue;
            }
            let order = Order {
                key: text(b, 0, r),
                currency: text(b, 1, r),
                customer: text(b, 2, r),
                hour: at.value(r).div_euclid(3_600_000_000),
                cents: int(b, 4, r) * 100 + int(b, 5, r) / 10_000_000,
            };
            expected.entry(order.key.clone()).or_insert(order);
        }
    }
    let silver = query(&lake, "SELECT idempotency_key FROM silver.orders").await;
    let mut silver_keys: Vec<String> =
        silver.iter().flat_map(|b| (0..b.num_rows()).map(move |r| text(b, 0, r))).collect();
    silver_keys.sort();
    let unique: BTreeSet<&String> = silver_keys.iter().collect();
    assert_eq!(unique.len(), silver_keys.len(), "a key twice in silver");
    assert_eq!(silver_keys, expected.keys().cloned().collect::<Vec<_>>(), "silver keys");

    // Gold sums equal the brute force over the same orders.
    let mut hourly: BTreeMap<(i64, String), (i64, i64, BTreeSet<String>)> = BTreeMap::new();
    for order in expected.values() {
        let cell = hourly.entry((order.hour, order.currency.clone())).or_default();
        cell.0 += 1;
        cell.1 += order.cents;
        cell.2.insert(order.customer.clone());
    }
    let gold = query(
        &lake,
        "SELECT CAST(to_unixtime(window_start) AS BIGINT) / 3600, currency, orders, CAST(revenue * 100 AS BIGINT), customers FROM gold.revenue_hourly",
    )
    .await;
    let mut seen = BTreeMap::new();
    for b in &gold {
        for r in 0..b.num_rows() {
            let previous =
                seen.insert((int(b, 0, r), text(b, 1, r)), (int(b, 2, r), int(b, 3, r), int(b, 4, r)));
            assert!(previous.is_none(), "a window twice in gold");
        }
    }
    let brute: BTreeMap<(i64, String), (i64, i64, i64)> =
        hourly.into_iter().map(|(k, (n, cents, c))| (k, (n, cents, c.len() as i64))).collect();
    assert_eq!(seen, brute, "gold.revenue_hourly vs brute force");
    let daily =
        query(&lake, "SELECT sum(orders), CAST(sum(spent) * 100 AS BIGINT) FROM gold.customer_daily").await;
    let total_cents: i64 = expected.values().map(|o| o.cents).sum();
    assert_eq!((int(&daily[0], 0, 0), int(&daily[0], 1, 0)), (expected.len() as i64, total_cents));
    (late, rules)
}

/// PyIceberg and DuckDB read silver and gold as ingot does.
async fn assert_readers_agree(ws: &Workspace) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    for (table, columns) in [
        ("silver.orders", ["_kafka_partition", "_kafka_offset", "line_items"]),
        ("gold.revenue_hourly", ["window_start", "orders", "customers"]),
    ] {
        let loaded = lake.load(&parse_ident(table).unwrap()).await.unwrap();
        let mut ours: Vec<Vec<i64>> = Vec::new();
        for b in read_table(&loaded, None).await.unwrap() {
            let cols: Vec<_> = columns
                .iter()
                // Timestamps as µs, like the readers print them.
                .map(|c| {
                    arrow_cast::cast(b.column_by_name(c).unwrap(), &arrow_schema::DataType::Int64).unwrap()
                })
                .collect();
            for r in 0..b.num_rows() {
                ours.push(cols.iter().map(|c| c.as_primitive::<Int64Type>().value(r)).collect());
            }
        }
        ours.sort();
        for engine in [Engine::PyIceberg, Engine::DuckDb] {
            let (_, theirs) = read_rows(ws, engine, table, &columns.join(","), At::Current);
            assert_eq!(theirs.as_deref(), Some(&ours[..]), "{engine:?} reading {table}");
        }
    }
}

async fn snapshot_ids(ws: &Workspace) -> Vec<Option<i64>> {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let mut ids = Vec::new();
    for table in ["silver.orders", "gold.revenue_hourly", "gold.customer_daily", "ingot.quarantine"] {
        ids.push(lake.load(&parse_ident(table).unwrap()).await.unwrap().metadata().current_snapshot_id());
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn silver_and_gold_match_a_brute_force_recomputation() {
    let broker = Broker::start();
    let ws = workspace(&broker);
    ws.ingot(&[
        "produce",
        "--topic",
        "orders",
        "--count",
        "2000",
        "--duplicate-ratio",
        "0.1",
        "--bad-ratio",
        "0.03",
    ]);
    let out = ws.ingot(&["run", "--until-caught-up"]);
    assert!(out.contains("silver.orders: read"), "{out}");
    assert_consistent(&ws).await;

    // Late events now fall behind the watermark; duplicates repeat keys silver holds.
    let args = [
        "produce",
        "--topic",
        "orders",
        "--count",
        "1000",
        "--duplicate-ratio",
        "0.2",
        "--late-ratio",
        "0.1",
    ];
    ws.ingot(&[&args[..], &["--seed", "9"]].concat());
    ws.ingot(&["run", "--until-caught-up"]);
    let (late, _) = assert_consistent(&ws).await;
    assert!(late > 50, "late events were quarantined: {late}");

    // A second run changes nothing.
    let before = snapshot_ids(&ws).await;
    let out = ws.ingot(&["transform"]);
    assert!(out.contains("silver.orders: up to date"), "{out}");
    assert_eq!(snapshot_ids(&ws).await, before);
    assert_readers_agree(&ws).await;
}

/// 1500 orders with duplicates, ingested and transformed; then 800 more (duplicates and late
/// events) produced but not yet ingested.
fn first_round_then_late_events(ws: &Workspace, seed: &str) {
    ws.ingot(&["produce", "--topic", "orders", "--count", "1500", "--duplicate-ratio", "0.1"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let late = ["--count", "800", "--duplicate-ratio", "0.2", "--late-ratio", "0.15", "--seed", seed];
    ws.ingot(&[&["produce", "--topic", "orders"][..], &late[..]].concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transform_killed_mid_run_and_rerun_ends_as_a_clean_run() {
    let broker = Broker::start();
    let ws = workspace(&broker);
    first_round_then_late_events(&ws, "5");
    for (command, point) in [
        (&["run", "--until-caught-up"][..], "after-silver-quarantine-commit"),
        (&["transform"][..], "after-gold-commit"),
    ] {
        let status = ws.spawn_with_env(command, &[("INGOT_FAILPOINT", point)]).wait().unwrap();
        assert!(!status.success(), "{point} crashed the run");
    }
    ws.ingot(&["transform"]);
    let (late, _) = assert_consistent(&ws).await;
    assert!(late > 50, "late events were quarantined once each: {late}");
    let before = snapshot_ids(&ws).await;
    ws.ingot(&["transform"]);
    assert_eq!(snapshot_ids(&ws).await, before, "nothing left to do");
}

/// Appends to `table` a copy of the first row of `select` with `column` set to `value`,
/// keeping the table's recorded progress — as someone editing the table by hand would.
async fn append_edited_row(
    ws: &Workspace,
    table: &str,
    select: &str,
    column: &str,
    value: arrow_array::ArrayRef,
) -> RecordBatch {
    use std::sync::Arc;
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let loaded = lake.load(&parse_ident(table).unwrap()).await.unwrap();
    let row = query(&lake, select).await;
    let schema = Arc::new(ingot_lake::table_arrow_schema(&loaded).unwrap());
    let mut columns = row[0].slice(0, 1).columns().to_vec();
    columns[schema.index_of(column).unwrap()] = value;
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    let files = ingot_lake::write_data_files(&loaded, std::slice::from_ref(&batch)).await.unwrap();
    let mut summary: HashMap<String, String> =
        loaded.metadata().current_snapshot().unwrap().summary().additional_properties.clone();
    summary.retain(|k, _| k.starts_with("ingot."));
    summary.insert(ingot_lake::COMMIT_ID_PROPERTY.into(), format!("edited-{column}"));
    lake.commit_append(&loaded, files, summary).await.unwrap();
    batch
}

/// Appends one extra order to silver (a copy of an existing row under a new key), as a late
/// correction would; gold is not told. Returns its event time.
async fn add_silver_order(ws: &Workspace) -> i64 {
    let key = std::sync::Arc::new(arrow_array::StringArray::from(vec!["backfill-correction"]));
    let select = "SELECT * FROM silver.orders ORDER BY idempotency_key LIMIT 1";
    let batch = append_edited_row(ws, "silver.orders", select, "idempotency_key", key).await;
    batch.column_by_name("occurred_at").unwrap().as_primitive::<TimestampMicrosecondType>().value(0)
}

fn changed(out: &str) -> usize {
    let before = out.split(" changed").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_changes_exactly_the_windows_whose_silver_changed() {
    let broker = Broker::start();
    let ws = workspace(&broker);
    ws.ingot(&["produce", "--topic", "orders", "--count", "1500"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let at = add_silver_order(&ws).await;
    let day = at.div_euclid(86_400_000_000) * 86_400;
    let fmt =
        |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let (from, to) = (fmt(day), fmt(day + 86_400));
    let log = ws.dir.path().join("lineage.jsonl");
    let env = [("INGOT_LINEAGE__TRANSPORT", "file"), ("INGOT_LINEAGE__PATH", log.to_str().unwrap())];
    let args = ["backfill", "gold.revenue_hourly", "--from", &from, "--to", &to];
    let (ok, out, err) = ws.try_ingot_with_env(&args, &env);
    assert!(ok, "{out}\n{err}");
    assert_eq!(changed(&out), 1, "exactly the corrected hour × currency: {out}");
    // Gold now agrees with silver again, and a second backfill changes nothing.
    assert_consistent_gold_only(&ws).await;
    let before = snapshot_ids(&ws).await;
    let (ok, out, err) = ws.try_ingot_with_env(&args, &env);
    assert!(ok, "{err}");
    assert_eq!(changed(&out), 0, "{out}");
    assert!(out.contains("nothing to commit"), "{out}");
    assert_eq!(snapshot_ids(&ws).await, before);
    // Both runs reported valid lineage.
    let events: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    crate::lineage::assert_valid(&events);
    let runs = crate::lineage::assert_run_cycles(&events);
    assert_eq!(runs["pipeline.backfill_revenue_hourly"].len(), 2);
}

/// gold.revenue_hourly equals an aggregation of silver as it is now.
async fn assert_consistent_gold_only(ws: &Workspace) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let expected = query(
        &lake,
        "SELECT CAST(to_unixtime(date_trunc('hour', occurred_at)) AS BIGINT), currency, count(*), CAST(sum(total_amount) * 100 AS BIGINT) FROM silver.orders GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    let actual = query(
        &lake,
        "SELECT CAST(to_unixtime(window_start) AS BIGINT), currency, orders, CAST(revenue * 100 AS BIGINT) FROM gold.revenue_hourly ORDER BY 1, 2",
    )
    .await;
    let flat = |batches: &[RecordBatch]| -> Vec<(i64, String, i64, i64)> {
        batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).map(move |r| (int(b, 0, r), text(b, 1, r), int(b, 2, r), int(b, 3, r)))
            })
            .collect()
    };
    assert_eq!(flat(&actual), flat(&expected));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_missed_while_down_runs_once_on_start() {
    let broker = Broker::start();
    let schedule = "[scheduler]\nstate_file = \"state.json\"\n\n[[schedule]]\nname = \"hourly-maintain\"\ncron = \"0 * * * *\"\naction = \"maintain\"\ntable = \"bronze.orders\"\n";
    let ws = Workspace::new(
        &broker,
        &demo_contracts(),
        500,
        &format!("{ORDERS_TOPIC}\n{}\n{schedule}", transforms_toml()),
    );
    ws.ingot(&["produce", "--topic", "orders", "--count", "300"]);
    ws.ingot(&["run", "--until-caught-up"]);
    // The service was last up three hours ago: three hourly runs were missed.
    let state = ws.dir.path().join("state.json");
    let last = chrono::Utc::now() - chrono::Duration::hours(3);
    std::fs::write(&state, serde_json::json!({ "hourly-maintain": last.to_rfc3339() }).to_string()).unwrap();
    let log = ws.dir.path().join("lineage.jsonl");
    let env = [("INGOT_LINEAGE__TRANSPORT", "file"), ("INGOT_LINEAGE__PATH", log.to_str().unwrap())];
    let mut service = ws.spawn_with_env(&["run"], &env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recorded = loop {
        let now: Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap_or_default()).unwrap_or_default();
        if let Some(at) = now["hourly-maintain"].as_str()
            && at != last.to_rfc3339()
        {
            break chrono::DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&chrono::Utc);
        }
        assert!(std::time::Instant::now() < deadline, "the missed schedule did not run");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    service.kill().unwrap();
    service.wait().unwrap();
    // It ran for the latest missed hour, once.
    let now = chrono::Utc::now();
    let hour = |t: chrono::DateTime<chrono::Utc>| t.timestamp().div_euclid(3600) * 3600;
    assert!(recorded.timestamp() == hour(now) || recorded.timestamp() == hour(now) - 3600, "{recorded}");
    let events: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e["job"]["name"] == "pipeline.maintain_bronze_orders" && e["eventType"] == "START")
        .collect();
    assert_eq!(starts.len(), 1, "one run for three missed times");
    let nominal = starts[0]["run"]["facets"]["nominalTime"]["nominalStartTime"].as_str().unwrap();
    assert_eq!(chrono::DateTime::parse_from_rfc3339(nominal).unwrap().timestamp(), recorded.timestamp());
    crate::lineage::assert_valid(&events);
}

/// Someone slips a file into gold: one more row for an existing window, other numbers.
/// Returns the window's currency.
async fn tamper_gold(ws: &Workspace) -> String {
    let orders = std::sync::Arc::new(arrow_array::Int64Array::from(vec![999_999]));
    let select = "SELECT * FROM gold.revenue_hourly ORDER BY window_start, currency LIMIT 1";
    let batch = append_edited_row(ws, "gold.revenue_hourly", select, "orders", orders).await;
    text(&batch, 1, 0)
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_matches_untouched_gold_and_finds_a_tampered_window() {
    let broker = Broker::start();
    let ws = workspace(&broker);
    first_round_then_late_events(&ws, "9");
    ws.ingot(&["run", "--until-caught-up"]);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let untouched = now_text();
    let (ok, out, err) = ws.try_ingot(&[
        "replay",
        "gold.revenue_hourly",
        "--as-of",
        &untouched,
        "--write-to",
        "audit.revenue_hourly",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("2 silver runs replayed")
            && out.contains("windows different: 0")
            && out.contains("MATCH"),
        "{out}"
    );
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let kept = query(&lake, "SELECT count(*) FROM audit.revenue_hourly").await;
    let gold = query(&lake, "SELECT count(*) FROM gold.revenue_hourly").await;
    assert_eq!(int(&kept[0], 0, 0), int(&gold[0], 0, 0), "--write-to keeps the recomputed windows");

    let currency = tamper_gold(&ws).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (ok, out, _) = ws.try_ingot(&["replay", "gold.revenue_hourly", "--as-of", &now_text()]);
    assert!(!ok, "a tampered gold table must fail the audit:\n{out}");
    assert!(out.contains("windows different: 1") && out.contains("only in gold:      0"), "{out}");
    assert!(out.contains("999999") && out.contains(&currency), "the tampered window is named:\n{out}");
    // As of before the tampering, gold still follows from its inputs.
    let (ok, out, _) = ws.try_ingot(&["replay", "gold.revenue_hourly", "--as-of", &untouched]);
    assert!(ok, "{out}");
}
