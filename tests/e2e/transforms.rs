//! Silver and gold on a real broker and catalog: dedup, late rows, rule quarantine, gold
//! sums against a brute-force recomputation, idempotent re-runs, crashes mid-run, and
//! independent readers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use ingot_lake::{Lake, parse_ident, read_table};
use ingot_transforms::query::run_query;

use crate::harness::*;
use crate::readers::{At, Engine, read_rows};

pub(crate) fn workspace(broker: &Broker) -> Workspace {
    Workspace::new(broker, &demo_contracts(), 500, &format!("{ORDERS_TOPIC}\n{}", transforms_toml()))
}

pub(crate) async fn query(lake: &Lake, sql: &str) -> Vec<RecordBatch> {
    run_query(lake, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).batches
}

pub(crate) fn int(batch: &RecordBatch, i: usize, row: usize) -> i64 {
    let column = arrow_cast::cast(batch.column(i), &arrow_schema::DataType::Int64).unwrap();
    column.as_primitive::<Int64Type>().value(row)
}

pub(crate) fn text(batch: &RecordBatch, i: usize, row: usize) -> String {
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
pub(crate) async fn assert_consistent(ws: &Workspace) -> (usize, usize) {
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
pub(crate) async fn assert_readers_agree(ws: &Workspace) {
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

pub(crate) async fn snapshot_ids(ws: &Workspace) -> Vec<Option<i64>> {
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
    recompute_and_compare(&workspace(&broker)).await;
}

/// The same with silver working through its input a few rows at a time: every run reads many
/// parts (one bronze file or batch each), and the result is the same.
#[tokio::test(flavor = "multi_thread")]
async fn silver_in_parts_of_a_few_rows_matches_the_brute_force_recomputation() {
    let broker = Broker::start();
    let transforms =
        transforms_toml().replacen("lateness = \"1h\"\n", "lateness = \"1h\"\nchunk_rows = 64\n", 1);
    assert!(transforms.contains("chunk_rows = 64"));
    let ws = Workspace::new(&broker, &demo_contracts(), 200, &format!("{ORDERS_TOPIC}\n{transforms}"));
    let out = recompute_and_compare(&ws).await;
    assert!(out.contains(" parts → snapshot"), "silver read its input in parts: {out}");
}

/// Orders with duplicates and bad messages through silver and gold, then duplicates of held
/// keys and late events: both times silver and gold equal a recomputation from bronze.
/// Returns what the last `run` printed.
async fn recompute_and_compare(ws: &Workspace) -> String {
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
    assert_consistent(ws).await;

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
    let last_run = ws.ingot(&["run", "--until-caught-up"]);
    let (late, _) = assert_consistent(ws).await;
    assert!(late > 50, "late events were quarantined: {late}");

    // A second run changes nothing.
    let before = snapshot_ids(ws).await;
    let out = ws.ingot(&["transform"]);
    assert!(out.contains("silver.orders: up to date"), "{out}");
    assert_eq!(snapshot_ids(ws).await, before);
    assert_readers_agree(ws).await;
    last_run
}

/// 1500 orders with duplicates, ingested and transformed; then 800 more (duplicates and late
/// events) produced but not yet ingested.
pub(crate) fn first_round_then_late_events(ws: &Workspace, seed: &str) {
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
