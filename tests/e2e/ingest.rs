//! Kafka → bronze/quarantine, exactly once, on a real broker and catalog.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::Array;
use arrow_array::cast::AsArray;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn good_and_malformed_messages_reconcile_exactly() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 100_000, ORDERS_TOPIC);
    let out = ws.ingot(&[
        "produce",
        "--topic",
        "orders",
        "--count",
        "3000",
        "--bad-ratio",
        "0.1",
        "--duplicate-ratio",
        "0.05",
    ]);
    let malformed = produced_count(&out, "malformed");
    assert!(malformed > 200, "{out}");

    let summary = ws.ingot(&["run", "--until-caught-up"]);
    assert!(summary.contains("consumed 3000 messages"), "{summary}");

    let bronze = ws.rows("bronze.orders").await;
    let quarantine = ws.rows("ingot.quarantine").await;
    assert_eq!(row_count(&quarantine) as u64, malformed);
    assert_eq!(row_count(&bronze) + row_count(&quarantine), 3000);
    let mut seen = BTreeMap::new();
    offsets_seen(&bronze, &mut seen);
    offsets_seen(&quarantine, &mut seen);
    assert_each_offset_once(&seen, 3000);

    // Each quarantined row keeps its bytes and says why.
    let mut reasons = BTreeMap::new();
    for batch in &quarantine {
        let reason = batch.column_by_name("reason").unwrap().as_string::<i32>();
        let rule = batch.column_by_name("rule").unwrap().as_string::<i32>();
        let payload = batch.column_by_name("payload").unwrap().as_binary::<i64>();
        for i in 0..batch.num_rows() {
            let key = format!("{}/{}", reason.value(i), if rule.is_null(i) { "-" } else { rule.value(i) });
            *reasons.entry(key).or_insert(0) += 1;
            if reason.value(i) != "empty_payload" {
                assert!(!payload.value(i).is_empty(), "payload kept");
            }
        }
    }
    for expected in ["undecodable/-", "empty_payload/-", "rule_violation/order_id_present"] {
        assert!(reasons.contains_key(expected), "no {expected} in {reasons:?}");
    }

    // The DLQ topic carries the same messages, with the reason in headers.
    let dlq = read_topic(&broker, "orders.dlq", malformed as usize).await;
    assert_eq!(dlq.len() as u64, malformed);
    let distinct: std::collections::BTreeSet<(String, String)> =
        dlq.iter().map(|h| (h["ingot.source.partition"].clone(), h["ingot.source.offset"].clone())).collect();
    assert_eq!(distinct.len() as u64, malformed, "one DLQ message per quarantined message");
    assert!(dlq.iter().all(|h| !h["ingot.reason"].is_empty() && h["ingot.source.topic"] == "orders"));
}

#[tokio::test(flavor = "multi_thread")]
async fn resumes_from_table_offsets_after_kill_9() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 700, ORDERS_TOPIC);
    let produced = 20_000;
    ws.ingot(&["produce", "--topic", "orders", "--count", &produced.to_string(), "--bad-ratio", "0.05"]);

    // Kill -9 at several points of a run: right after a commit, before the group join,
    // mid-batch. Points are tied to progress, not to wall time, so a slow machine still
    // crashes the process where intended.
    enum KillAt {
        AfterNextCommit,
        After(Duration),
    }
    let points = [
        KillAt::AfterNextCommit,
        KillAt::After(Duration::from_millis(300)),
        KillAt::AfterNextCommit,
        KillAt::After(Duration::from_millis(1_500)),
        KillAt::AfterNextCommit,
    ];
    for (i, point) in points.into_iter().enumerate() {
        let commits_before = ws.snapshot_count("bronze.orders").await;
        // A fresh consumer group each time: the tables, not Kafka, say where to resume.
        let mut child = ws.spawn_with_env(&["run"], &[("INGOT_KAFKA__GROUP_ID", &format!("crash-{i}"))]);
        match point {
            KillAt::After(delay) => tokio::time::sleep(delay).await,
            KillAt::AfterNextCommit => {
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                while ws.snapshot_count("bronze.orders").await == commits_before {
                    assert!(std::time::Instant::now() < deadline, "no commit within 120 s");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let before_final = row_count(&ws.rows("bronze.orders").await);
    assert!(before_final > 0, "the killed runs committed something");
    ws.ingot(&["run", "--until-caught-up"]);

    assert_orders_hold_each_offset_once(&ws, produced).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn field_added_to_contract_mid_stream_becomes_a_new_column() {
    let broker = Broker::start();
    contract_evolves_mid_stream(&broker, |ws| (ws, ())).await;
}

/// A field added to the contract between two runs becomes a new column; old rows read null.
/// `place` may move the workspace's catalog (keeping what it must keep alive).
pub(crate) async fn contract_evolves_mid_stream<T>(
    broker: &Broker,
    place: impl FnOnce(Workspace) -> (Workspace, T),
) {
    let contracts = tempfile::tempdir().unwrap();
    let v1 = r#"syntax = "proto3";
package test.v1;
import "google/protobuf/timestamp.proto";
message Reading {
  string sensor_id = 1;
  int64 value = 2;
  google.protobuf.Timestamp measured_at = 3;
}
"#;
    std::fs::write(contracts.path().join("reading.proto"), v1).unwrap();
    let topic =
        "[[topics]]\ntopic = \"readings\"\nmessage = \"test.v1.Reading\"\nevent_time = \"measured_at\"\n";
    let (ws, _kept) = place(Workspace::new(broker, contracts.path(), 10_000, topic));
    ws.ingot(&["produce", "--topic", "readings", "--count", "200"]);
    ws.ingot(&["run", "--until-caught-up"]);

    let v2 = v1.replace(
        "  google.protobuf.Timestamp measured_at = 3;\n",
        "  google.protobuf.Timestamp measured_at = 3;\n  string unit = 4;\n",
    );
    std::fs::write(contracts.path().join("reading.proto"), v2).unwrap();
    ws.ingot(&["produce", "--topic", "readings", "--count", "150", "--seed", "7"]);
    let summary = ws.ingot(&["run", "--until-caught-up"]);
    assert!(summary.contains("evolved bronze.readings: added unit"), "{summary}");

    let rows = ws.rows("bronze.readings").await;
    assert_eq!(row_count(&rows), 350);
    let (mut nulls, mut values) = (0, 0);
    for batch in &rows {
        let unit = batch.column_by_name("unit").expect("new column").as_string::<i32>();
        for i in 0..batch.num_rows() {
            if unit.is_null(i) {
                nulls += 1
            } else {
                values += 1;
                assert!(unit.value(i).starts_with("unit-"))
            }
        }
    }
    assert_eq!((nulls, values), (200, 150), "old rows read null, new rows carry the field");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_on_one_topic_store_each_offset_once() {
    // Two ingot processes in different consumer groups both read every message (as a zombie
    // and its replacement would); the offset check in each commit must keep one copy.
    let broker = Broker::start();
    two_ingot_processes_race(&Workspace::new(&broker, &demo_contracts(), 500, ORDERS_TOPIC)).await;
}

/// Two `ingot run` processes in different groups ingest the same 6000 messages into `ws`'s
/// tables at once: each message lands once.
pub(crate) async fn two_ingot_processes_race(ws: &Workspace) {
    let produced = 6_000;
    ws.ingot(&["produce", "--topic", "orders", "--count", &produced.to_string(), "--bad-ratio", "0.05"]);
    let writers: Vec<_> = ["racer-a", "racer-b"]
        .iter()
        .map(|group| ws.spawn_with_env(&["run", "--until-caught-up"], &[("INGOT_KAFKA__GROUP_ID", group)]))
        .collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    assert_orders_hold_each_offset_once(ws, produced).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_between_quarantine_and_bronze_commits_loses_and_repeats_nothing() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 400, ORDERS_TOPIC);
    let mut produced = 0;
    for (i, point) in ingot_ingest::FAILPOINTS.iter().enumerate() {
        // New messages each round, so every round has a flush that reaches the point.
        ws.ingot(&[
            "produce",
            "--topic",
            "orders",
            "--count",
            "1500",
            "--bad-ratio",
            "0.1",
            "--seed",
            &i.to_string(),
        ]);
        produced += 1500;
        // Batch sizes differ from run to run, so a re-run's commits never match the crashed
        // run's commit ids: only the offsets recorded in the tables can prevent duplicates.
        let flush_rows = (300 + 170 * i).to_string();
        let env = [
            ("INGOT_FAILPOINT", *point),
            ("INGOT_KAFKA__GROUP_ID", &format!("fp-{i}")),
            ("INGOT_INGEST__FLUSH__ROWS", &flush_rows),
        ];
        let status = ws.spawn_with_env(&["run", "--until-caught-up"], &env).wait().unwrap();
        assert!(!status.success(), "ingot should have crashed at {point}");
    }
    ws.ingot(&["run", "--until-caught-up"]);
    assert_orders_hold_each_offset_once(&ws, produced).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_compaction_and_transforms_during_ingest_keep_exactly_once() {
    let broker = Broker::start();
    let topics = format!(
        "{ORDERS_TOPIC}\n[maintenance]\ninterval = \"1s\"\ncompact_min_files = 2\n{}",
        transforms_toml()
    );
    let ws = Workspace::new(&broker, &demo_contracts(), 150, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "200"]);
    let mut service = ws.spawn_with_env(&["run"], &[]);
    let out = ws.ingot(&["produce", "--topic", "orders", "--count", "2800", "--rate", "700", "--seed", "7"]);
    assert!(out.contains("2800"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let ident = ingot_lake::parse_ident("bronze.orders").unwrap();
    loop {
        let table = lake.load(&ident).await.unwrap();
        let compacted = table.metadata().snapshots().any(|s| s.summary().operation.as_str() == "replace");
        let rows = row_count(&ws.rows("bronze.orders").await) + bronze_quarantined(&ws).await;
        let silver = ws.snapshot_count("silver.orders").await > 0
            && ws.snapshot_count("gold.revenue_hourly").await > 0;
        if compacted && rows == 3000 && silver {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no compaction or rows missing: {rows} rows, compacted {compacted}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    service.kill().unwrap();
    service.wait().unwrap();
    // A fresh consumer group has no Kafka offsets: it resumes only from what the table says,
    // which after a compaction is the offsets the replace snapshot carries.
    let (ok, out, err) =
        ws.try_ingot_with_env(&["run", "--until-caught-up"], &[("INGOT_KAFKA__GROUP_ID", "fresh")]);
    assert!(ok, "{out}\n{err}");
    let mut seen = BTreeMap::new();
    offsets_seen(&ws.rows("bronze.orders").await, &mut seen);
    offsets_seen(&only_ingest_rows(&ws.rows("ingot.quarantine").await), &mut seen);
    assert_each_offset_once(&seen, 3000);
}

/// Quarantine rows written by ingest (silver writes its own, with the bronze row's offsets).
pub(crate) fn only_ingest_rows(batches: &[arrow_array::RecordBatch]) -> Vec<arrow_array::RecordBatch> {
    batches
        .iter()
        .map(|b| {
            let types = b.column_by_name("message_type").unwrap().as_string::<i32>();
            let mask: arrow_array::BooleanArray = (0..b.num_rows())
                .map(|i| Some(types.is_null(i) || types.value(i) != "silver.orders"))
                .collect();
            arrow_select::filter::filter_record_batch(b, &mask).unwrap()
        })
        .collect()
}

async fn bronze_quarantined(ws: &Workspace) -> usize {
    row_count(&only_ingest_rows(&ws.rows("ingot.quarantine").await))
}
