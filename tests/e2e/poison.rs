//! Hostile input and a hostile environment: poison pills, an unavailable catalog or
//! warehouse, a lake newer than its consumer group, a topic that does not exist. Ingest
//! keeps going, and every message lands exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;

use crate::harness::*;
use crate::ingest::only_ingest_rows;

/// An order that is valid but for its `occurred_at` seconds.
fn order_at(seconds: i64) -> Vec<u8> {
    use prost::Message;
    use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value};
    let registry = ingot_proto::ContractRegistry::load(demo_contracts()).unwrap();
    let mut order = DynamicMessage::new(registry.message("ingot.demo.v1.OrderEvent").unwrap());
    let nested = |order: &DynamicMessage, field: &str| match order
        .descriptor()
        .get_field_by_name(field)
        .unwrap()
        .kind()
    {
        Kind::Message(m) => DynamicMessage::new(m),
        _ => unreachable!("{field} is a message"),
    };
    let (mut total, mut at) = (nested(&order, "total"), nested(&order, "occurred_at"));
    total.set_field_by_name("units", Value::I64(5));
    at.set_field_by_name("seconds", Value::I64(seconds));
    order.set_field_by_name("idempotency_key", Value::String("pill-key-01".into()));
    order.set_field_by_name("order_id", Value::String("pill-01".into()));
    order.set_field_by_name("currency", Value::String("EUR".into()));
    order.set_field_by_name("total", Value::Message(total));
    order.set_field_by_name("occurred_at", Value::Message(at));
    order.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_pills_are_quarantined_and_ingest_goes_on() {
    let broker = Broker::start();
    let topics = format!("{ORDERS_TOPIC}\n{}", transforms_toml());
    let ws = Workspace::new(&broker, &demo_contracts(), 100_000, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "500", "--seed", "1"]);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let pills: Vec<(Vec<u8>, Option<i64>)> = vec![
        // Just under ingest's 1 MiB limit and undecodable: its DLQ copy is larger than
        // librdkafka's default 1,000,000-byte producer limit.
        (vec![0xff; (1 << 20) - 64], None),
        (order_at(8_300_000_000_000), None),
        (order_at(i64::MIN / 2), None),
        (order_at(-(1 << 40)), None),
        // A producer-set Kafka timestamp in year ~287,000.
        (order_at(1_790_000_000), Some(9_000_000_000_000_000)),
        // And one valid order between them.
        (order_at(now_ms / 1000), Some(now_ms)),
    ];
    produce_raw(&broker, "orders", &pills).await;
    ws.ingot(&["produce", "--topic", "orders", "--count", "500", "--seed", "2"]);
    let total = 1_000 + pills.len();

    let (ok, stdout, stderr) = ws.try_ingot(&["run", "--until-caught-up"]);
    assert!(ok, "ingest and the transforms after it survive the pills:\n{stdout}\n{stderr}");
    // Silver writes its own quarantine rows (pointing at bronze rows): count ingest's only.
    let quarantine = only_ingest_rows(&ws.rows("ingot.quarantine").await);
    let mut seen = BTreeMap::new();
    offsets_seen(&ws.rows("bronze.orders").await, &mut seen);
    offsets_seen(&quarantine, &mut seen);
    assert_each_offset_once(&seen, total);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for batch in &quarantine {
        let reason = batch.column_by_name("reason").unwrap().as_string::<i32>();
        for i in 0..batch.num_rows() {
            *reasons.entry(reason.value(i).to_string()).or_default() += 1;
        }
    }
    assert_eq!(reasons.get("out_of_range"), Some(&4), "{reasons:?}");
    assert!(reasons.get("undecodable").is_some_and(|n| *n >= 1), "{reasons:?}");
    // The DLQ took the near-limit message too.
    let quarantined: usize =
        reasons.iter().filter(|(r, _)| !r.starts_with("silver") && *r != "late").map(|(_, n)| n).sum();
    let dlq = read_topic(&broker, "orders.dlq", quarantined).await;
    assert!(dlq.iter().any(|h| h["ingot.reason"] == "undecodable"), "{dlq:?}");
    assert!(!stdout.contains("not produced to the DLQ"), "{stdout}");
    assert!(
        ws.snapshot_count("silver.orders").await > 0 && ws.snapshot_count("gold.revenue_hourly").await > 0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn service_survives_a_locked_catalog_and_an_unavailable_warehouse() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 300, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "200"]);
    let mut service = ws.spawn_with_env(&["run"], &[]);
    wait_until(Duration::from_secs(60), "the first 200 messages", || async {
        orders_landed(&ws).await == 200
    })
    .await;
    let stream =
        ws.produce_in_background(&["--count", "3000", "--rate", "60", "--seed", "5", "--bad-ratio", "0.05"]);

    // 20 s with the SQLite catalog locked by another process.
    let out = lock_catalog(&ws, 20).wait_with_output().unwrap();
    assert!(out.status.success(), "lock the catalog: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        service.try_wait().unwrap().is_none(),
        "the service stays up through a locked catalog\n{}",
        ws.spawned_logs()
    );

    // 20 s with the warehouse gone: a file where the directory was, so nothing can be
    // read or written there (root ignores permission bits, so chmod would prove nothing).
    let warehouse = ws.dir.path().join("warehouse");
    let away = ws.dir.path().join("warehouse.away");
    std::fs::rename(&warehouse, &away).unwrap();
    std::fs::write(&warehouse, b"not a directory").unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    std::fs::remove_file(&warehouse).unwrap();
    std::fs::rename(&away, &warehouse).unwrap();
    assert!(
        service.try_wait().unwrap().is_none(),
        "the service stays up through a missing warehouse\n{}",
        ws.spawned_logs()
    );

    stream.join().unwrap();
    wait_for_orders(&ws, 3200, Duration::from_secs(90)).await;
    assert!(terminate(&mut service), "{}", ws.spawned_logs());
    assert_orders_hold_each_offset_once(&ws, 3200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_lake_on_an_old_consumer_group_reads_the_whole_topic() {
    let broker = Broker::start();
    let old = Workspace::new(&broker, &demo_contracts(), 100_000, ORDERS_TOPIC);
    old.ingot(&["produce", "--topic", "orders", "--count", "800"]);
    old.ingot(&["run", "--until-caught-up"]);
    assert_eq!(orders_landed(&old).await, 800);
    assert!(group_has_committed_offsets(&broker, &old).await, "the old lake's run committed Kafka offsets");

    // Same broker, same consumer group (the harness names it after this test process), new lake.
    let fresh = Workspace::new(&broker, &demo_contracts(), 100_000, ORDERS_TOPIC);
    let (ok, out, err) = fresh.try_ingot(&["run", "--until-caught-up"]);
    assert!(ok, "{out}\n{err}");
    assert_orders_hold_each_offset_once(&fresh, 800).await;
}

async fn group_has_committed_offsets(broker: &Broker, ws: &Workspace) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let group = std::fs::read_to_string(&ws.config)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("group_id = ").map(|g| g.trim_matches('"').to_string()))
        .unwrap();
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition("orders", p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    committed.elements().iter().any(|e| matches!(e.offset(), rdkafka::Offset::Offset(o) if o > 0))
}

#[tokio::test(flavor = "multi_thread")]
async fn until_caught_up_with_a_missing_topic_fails_naming_it() {
    let broker = Broker::start();
    let topics = format!(
        "{ORDERS_TOPIC}\n[[topics]]\ntopic = \"ghost_orders\"\nmessage = \"ingot.demo.v1.OrderEvent\"\n"
    );
    let ws = Workspace::new(&broker, &demo_contracts(), 100_000, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "100"]);
    let started = Instant::now();
    let (ok, out, err) = ws.try_ingot(&["run", "--until-caught-up", "--caught-up-timeout", "20s"]);
    assert!(!ok, "{out}");
    assert!(err.contains("ghost_orders"), "names the topic: {err}");
    assert!(started.elapsed() < Duration::from_secs(90), "fails within the timeout");
}

/// Another process holding the SQLite catalog's write lock for `seconds`.
fn lock_catalog(ws: &Workspace, seconds: u32) -> std::process::Child {
    let python = std::env::var("INGOT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let lock = format!(
        "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
         c.execute('BEGIN EXCLUSIVE')\ntime.sleep({seconds})\nc.execute('ROLLBACK')\n"
    );
    std::process::Command::new(python)
        .args(["-c", &lock])
        .arg(ws.dir.path().join("catalog.db"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_started_while_the_catalog_is_locked_waits_for_it() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 100_000, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "300", "--bad-ratio", "0.05"]);
    ws.ingot(&["run", "--until-caught-up"]);
    ws.ingot(&["produce", "--topic", "orders", "--count", "300", "--seed", "4"]);
    let lock = lock_catalog(&ws, 12);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ok, out, err) = ws.try_ingot(&["run", "--until-caught-up"]);
    assert!(ok, "waits for the catalog instead of exiting:\n{out}\n{err}");
    assert!(lock.wait_with_output().unwrap().status.success());
    assert_orders_hold_each_offset_once(&ws, 600).await;
}
