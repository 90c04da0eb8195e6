//! PII at the edge: fields a topic marks are tokenized, dropped or masked before anything is
//! written. After real runs (ingest, quarantine, DLQ, silver, gold, re-drive, lineage) no raw
//! value — and not the key — is anywhere: every file of the workspace is searched byte for
//! byte, every Parquet value decoded, every DLQ message read back, every line ingot printed.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::DataType;
use hmac::{Hmac, Mac};
use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value};

use crate::harness::*;
use crate::redrive::{add_field_99_to_the_contract, copy_dir, order_message, with_field_99};
use crate::transforms::query;

const KEY: &str = "pii-test-key-0ne-must-never-print";
const OTHER_KEY: &str = "pii-test-key-tw0-must-never-print";

/// Substrings of every raw PII value the test produces.
const RAW: [&str; 4] = ["-cust-secret", "L4SECRET", "trace-SECRET", "UNDECODABLE-SECRET"];

fn topics(quarantine_payload: &str) -> String {
    format!(
        r#"
[ingest.pii]
quarantine_payload = "{quarantine_payload}"

[[topics]]
topic = "orders"
message = "ingot.demo.v1.OrderEvent"
event_time = "occurred_at"
pii = [
  {{ field = "customer_id", action = "tokenize" }},
  {{ field = "card.last4", action = "drop" }},
  {{ field = "trace_id", action = "mask", keep = 6 }},
]

[[topics.rules]]
name = "order_id_present"
field = "order_id"
required = true

[[topics.rules]]
name = "customer_known"
field = "customer_id"
pattern = "^pii-cust-"

[lineage]
transport = "file"
path = "lineage.jsonl"

{}"#,
        transforms_toml()
    )
}

/// A broker, a copy of the demo contracts (the tests change it) and a workspace whose topic
/// has PII fields, its quarantined payloads kept as `quarantine_payload` says.
fn workspace(quarantine_payload: &str) -> (Broker, tempfile::TempDir, Workspace) {
    let broker = Broker::start();
    let contracts = tempfile::tempdir().unwrap();
    copy_dir(&demo_contracts(), contracts.path());
    let ws = Workspace::new(&broker, contracts.path(), 100_000, &topics(quarantine_payload));
    (broker, contracts, ws)
}

/// The raw customer id of order `i`: 5 customers, and 3 orders (35..38) whose id breaks the
/// `customer_known` rule.
fn customer(i: u32) -> String {
    match i {
        35..38 => format!("BAD-cust-secret-{i}"),
        _ => format!("pii-cust-secret-{}", i % 5),
    }
}

/// The order number `i` of an order id (`redrive-<i>`).
fn number(order_id: &str) -> u32 {
    order_id.trim_start_matches("redrive-").parse().unwrap()
}

/// An order carrying PII: a customer id (5 distinct ones), a card's last digits, a trace id.
fn order(i: u32, customer: &str) -> DynamicMessage {
    let mut order = order_message(i, chrono::Utc::now().timestamp());
    let mut card = match order.descriptor().get_field_by_name("card").unwrap().kind() {
        Kind::Message(m) => DynamicMessage::new(m),
        _ => unreachable!("card is a message"),
    };
    card.set_field_by_name("brand", Value::String("visa".into()));
    card.set_field_by_name("last4", Value::String(format!("L4SECRET{i}")));
    order.set_field_by_name("customer_id", Value::String(customer.into()));
    order.set_field_by_name("trace_id", Value::String(format!("trace-SECRET-{i}")));
    order.set_field_by_name("card", Value::Message(card));
    order
}

/// 30 good orders, 5 with a field the contract lacks, 3 breaking the rule on the customer id
/// (its error would quote the value), 2 undecodable ones with a raw value in their bytes.
async fn produce(broker: &Broker) {
    use prost::Message;
    let kafka = ingot_ingest::KafkaConfig { brokers: broker.addr.clone(), ..Default::default() };
    ingot_ingest::ensure_topics(&kafka, &["orders".to_string()], 3).await.unwrap();
    let mut raw: Vec<(Vec<u8>, Option<i64>)> = Vec::new();
    raw.extend((0..30).map(|i| (order(i, &customer(i)).encode_to_vec(), None)));
    raw.extend((30..35).map(|i| (with_field_99(&order(i, &customer(i)), i), None)));
    raw.extend((35..38).map(|i| (order(i, &customer(i)).encode_to_vec(), None)));
    raw.extend((38..40).map(|i| (format!("\u{7f}\u{7f} UNDECODABLE-SECRET-{i}").into_bytes(), None)));
    produce_raw(broker, "orders", &raw).await;
}

fn hmac(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The token ingot must write for `value` under `key`: keyed HMAC-SHA256, computed here
/// independently.
fn token(key: &str, value: &str) -> String {
    hex::encode(hmac(key, &[b"ingot.pii.token\0", value.as_bytes()]))
}

fn key_id(key: &str) -> String {
    hex::encode(&hmac(key, &[b"ingot.pii.key-id"])[..8])
}

/// ingot with the PII key in its environment; its output is searched for leaks as well.
fn ingot(ws: &Workspace, args: &[&str], key: &str, printed: &mut String) -> String {
    let (ok, out, err) = ws.try_ingot_with_env(args, &[("INGOT_PII_KEY", key), ("INGOT_LOG", "info")]);
    printed.push_str(&out);
    printed.push_str(&err);
    assert!(ok, "ingot {args:?} failed:\n{out}\n{err}");
    out
}

fn binaries(batches: &[RecordBatch], column: usize) -> Vec<Option<Vec<u8>>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(column).as_binary::<i64>().iter().map(|v| v.map(<[u8]>::to_vec)).collect::<Vec<_>>()
        })
        .collect()
}

fn strings(batches: &[RecordBatch], column: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(column).as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_raw_pii_value_is_written_anywhere_and_tokens_are_keyed_hmacs() {
    let (broker, contracts, ws) = workspace("encrypt");
    let mut printed = String::new();
    produce(&broker).await;
    ingot(&ws, &["run", "--until-caught-up"], KEY, &mut printed);
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();

    // Bronze: tokens are the keyed HMAC of the raw value (equal customers, equal tokens);
    // the card's digits are null; the trace id keeps its prefix.
    let rows = query(
        &lake,
        "SELECT order_id, customer_id, card.last4, card.brand, trace_id FROM bronze.orders ORDER BY order_id",
    )
    .await;
    assert_eq!(row_count(&rows), 30);
    let (orders, customers) = (strings(&rows, 0), strings(&rows, 1));
    for (order, token_seen) in orders.iter().zip(&customers) {
        let i = number(order.as_ref().unwrap());
        assert_eq!(token_seen.as_deref(), Some(token(KEY, &customer(i)).as_str()), "order {i}");
    }
    let distinct: std::collections::BTreeSet<_> = customers.iter().collect();
    assert_eq!(distinct.len(), 5, "5 customers, 5 tokens");
    assert!(strings(&rows, 2).iter().all(Option::is_none), "card.last4 dropped");
    assert!(strings(&rows, 3).iter().all(|b| b.as_deref() == Some("visa")), "other card fields kept");
    assert!(strings(&rows, 4).iter().all(|t| t.as_deref() == Some("trace-****")));

    // The key's id (not the key) is in bronze's and the quarantine's snapshot summaries.
    for table in ["bronze.orders", "ingot.quarantine"] {
        let loaded = lake.load(&ingot_lake::parse_ident(table).unwrap()).await.unwrap();
        let summary = loaded.metadata().current_snapshot().unwrap().summary().additional_properties.clone();
        assert_eq!(summary.get("ingot.pii.key-id"), Some(&key_id(KEY)), "{table}: {summary:?}");
    }

    // The quarantine holds the 10 failed messages sealed; a rule on a PII field does not
    // quote the value it rejected.
    let quarantined = query(
        &lake,
        "SELECT reason, payload_protection, error, payload FROM ingot.quarantine ORDER BY _kafka_offset",
    )
    .await;
    assert_eq!(row_count(&quarantined), 10);
    let sealed = format!("encrypted:{}", key_id(KEY));
    assert!(strings(&quarantined, 1).iter().all(|p| p.as_deref() == Some(sealed.as_str())));
    let errors = strings(&quarantined, 2);
    assert_eq!(errors.iter().filter(|e| e.as_ref().unwrap().contains("value withheld: PII")).count(), 3);
    let payloads = binaries(&quarantined, 3);
    assert!(payloads.iter().all(|p| p.as_ref().unwrap().starts_with(b"IGP1")), "sealed payloads");

    // The DLQ gets the sealed payloads, marked as such.
    let dlq = read_records(&broker, "orders.dlq", 10).await;
    assert!(dlq.iter().all(|r| r.headers.get("ingot.payload-protection") == Some(&sealed)));
    let mut on_the_wire = Vec::new();
    for record in &dlq {
        on_the_wire.extend(record.payload.clone().unwrap_or_default());
        on_the_wire.extend(record.key.clone().unwrap_or_default());
        on_the_wire.extend(format!("{:?}", record.headers).into_bytes());
    }

    // Lineage marks the PII columns.
    let lineage = std::fs::read_to_string(ws.dir.path().join("lineage.jsonl")).unwrap();
    let start = lineage
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["job"]["name"] == "pipeline.bronze_orders" && e["eventType"] == "START")
        .expect("bronze START");
    let tags = &start["outputs"][0]["facets"]["tags"]["tags"];
    assert!(
        tags.as_array().unwrap().iter().any(|t| t["field"] == "customer_id" && t["value"] == "tokenized"),
        "{tags}"
    );

    // Re-drive after the contract learns field 99: the sealed payloads are opened, and the
    // rows appended carry tokens too.
    add_field_99_to_the_contract(contracts.path());
    let out = ingot(&ws, &["quarantine", "redrive", "--reason", "unknown_fields"], KEY, &mut printed);
    assert!(out.contains("5 pass now; appended 5"), "{out}");
    let redriven =
        query(&lake, "SELECT order_id, customer_id FROM bronze.orders WHERE loyalty_points IS NOT NULL")
            .await;
    assert_eq!(row_count(&redriven), 5);
    for (order, seen) in strings(&redriven, 0).iter().zip(strings(&redriven, 1)) {
        assert_eq!(seen, Some(token(KEY, &customer(number(order.as_ref().unwrap())))));
    }
    ingot(&ws, &["transform"], KEY, &mut printed);
    ingot(&ws, &["maintain", "compact", "--min-files", "2"], KEY, &mut printed);

    // Nothing raw anywhere: files, decoded Parquet values, the DLQ, what ingot printed. (The
    // search does see inside compressed Parquet: a value that is kept is found.)
    assert!(leaks(ws.dir.path(), &["visa"]).iter().any(|found| found.ends_with(".parquet")));
    let mut needles: Vec<&str> = RAW.to_vec();
    needles.push(KEY);
    assert_eq!(leaks(ws.dir.path(), &needles), Vec::<String>::new());
    for needle in &needles {
        assert!(!contains(&on_the_wire, needle), "{needle} in the DLQ");
        assert!(!printed.contains(needle), "{needle} printed:\n{printed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rewritten_payloads_and_another_key_give_other_tokens_never_tokenized_twice() {
    let (broker, contracts, ws) = workspace("rewrite");
    produce(&broker).await;

    // Without the key, ingest refuses to start, naming the variable and the key that names it.
    let (ok, _, err) = ws.try_ingot(&["run", "--until-caught-up"]);
    assert!(!ok && err.contains("INGOT_PII_KEY") && err.contains("ingest.pii.key_env"), "{err}");

    let mut printed = String::new();
    ingot(&ws, &["run", "--until-caught-up"], OTHER_KEY, &mut printed);
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let rows =
        query(&lake, "SELECT order_id, customer_id FROM bronze.orders WHERE order_id = 'redrive-0'").await;
    assert_eq!(strings(&rows, 1), vec![Some(token(OTHER_KEY, &customer(0)))]);
    assert_ne!(token(OTHER_KEY, &customer(0)), token(KEY, &customer(0)), "another key, other tokens");

    // Rewritten payloads decode as orders whose PII is protected; undecodable ones are withheld.
    let quarantined = query(
        &lake,
        "SELECT reason, payload_protection, payload FROM ingot.quarantine ORDER BY _kafka_offset",
    )
    .await;
    let protection = strings(&quarantined, 1);
    let rewritten = format!("rewritten:{}", key_id(OTHER_KEY));
    assert_eq!(protection.iter().filter(|p| p.as_deref() == Some(rewritten.as_str())).count(), 8);
    assert_eq!(protection.iter().filter(|p| p.as_deref() == Some("withheld")).count(), 2);
    let registry = ingot_proto::ContractRegistry::load(contracts.path()).unwrap();
    let descriptor = registry.message("ingot.demo.v1.OrderEvent").unwrap();
    for payload in binaries(&quarantined, 2).into_iter().flatten() {
        let message = DynamicMessage::decode(descriptor.clone(), payload.as_slice()).unwrap();
        let field = |name: &str| message.get_field_by_name(name).unwrap().as_str().unwrap().to_string();
        assert_eq!(field("customer_id"), token(OTHER_KEY, &customer(number(&field("order_id")))));
        assert_eq!(field("trace_id"), "trace-****");
        assert_eq!(message.unknown_fields().count(), 0, "unknown fields are left out of a rewrite");
    }

    // Re-driven rewritten payloads keep their tokens: not tokenized a second time.
    add_field_99_to_the_contract(contracts.path());
    let out = ingot(&ws, &["quarantine", "redrive"], OTHER_KEY, &mut printed);
    assert!(out.contains("5 pass now; appended 5"), "{out}");
    assert!(out.contains("still failing (payload_withheld): 2"), "{out}");
    assert!(
        out.contains("still failing (rule_violation): 3"),
        "the rule on the customer id still fails: {out}"
    );
    let redriven = query(&lake, "SELECT order_id, customer_id FROM bronze.orders ORDER BY order_id").await;
    assert_eq!(row_count(&redriven), 35);
    for (order, seen) in strings(&redriven, 0).iter().zip(strings(&redriven, 1)) {
        let i = number(order.as_ref().unwrap());
        assert_eq!(seen, Some(token(OTHER_KEY, &customer(i))), "order {i}");
    }

    // Another instance (or a restart) with another key is refused: its tokens would not join.
    let env = [("INGOT_PII_KEY", KEY)];
    let (ok, _, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &env);
    let ids = [key_id(OTHER_KEY), key_id(KEY)];
    assert!(!ok && ids.iter().all(|id| err.contains(id.as_str())) && err.contains("rotated_from"), "{err}");
    assert!(!err.contains(KEY) && !err.contains(OTHER_KEY), "{err}");
    // A rotation on purpose names the key it replaces.
    let rotated = [("INGOT_PII_KEY", KEY), ("INGOT_INGEST__PII__ROTATED_FROM", ids[0].as_str())];
    let (ok, _, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &rotated);
    assert!(ok, "{err}");

    let needles = [RAW[0], RAW[1], RAW[2], RAW[3], OTHER_KEY];
    assert_eq!(leaks(ws.dir.path(), &needles), Vec::<String>::new());
    for needle in needles {
        assert!(!printed.contains(needle), "{needle} printed:\n{printed}");
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Where a needle is found under `dir`: in any file's bytes, or among the decoded values of
/// any Parquet file. Manifests must be uncompressed Avro, or bytes would hide values.
fn leaks(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut files = 0;
    for file in walk(dir) {
        files += 1;
        let bytes = std::fs::read(&file).unwrap();
        let name = file.display().to_string();
        if name.ends_with(".avro") && contains(&bytes, "avro.codec") {
            assert!(
                contains(&bytes, "avro.codec\u{8}null"),
                "{name} is compressed: searching its bytes proves nothing"
            );
        }
        let mut values = Vec::new();
        if name.ends_with(".parquet") {
            parquet_values(&file, &mut values);
        }
        for needle in needles {
            if contains(&bytes, needle) || values.iter().any(|v| contains(v, needle)) {
                found.push(format!("{needle} in {name}"));
            }
        }
    }
    assert!(files > 20, "only {files} files searched");
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        match entry.file_type().unwrap().is_dir() {
            true => out.extend(walk(&entry.path())),
            false => out.push(entry.path()),
        }
    }
    out
}

/// Every string and binary value of a Parquet file, nested ones included.
fn parquet_values(file: &Path, out: &mut Vec<Vec<u8>>) {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(file).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    for batch in reader {
        for column in batch.unwrap().columns() {
            array_values(column, out);
        }
    }
}

fn array_values(array: &ArrayRef, out: &mut Vec<Vec<u8>>) {
    match array.data_type() {
        DataType::Utf8 => {
            out.extend(array.as_string::<i32>().iter().flatten().map(|s| s.as_bytes().to_vec()))
        }
        DataType::LargeUtf8 => {
            out.extend(array.as_string::<i64>().iter().flatten().map(|s| s.as_bytes().to_vec()))
        }
        DataType::Binary => out.extend(array.as_binary::<i32>().iter().flatten().map(<[u8]>::to_vec)),
        DataType::LargeBinary => out.extend(array.as_binary::<i64>().iter().flatten().map(<[u8]>::to_vec)),
        DataType::Struct(_) => array.as_struct().columns().iter().for_each(|c| array_values(c, out)),
        DataType::List(_) => array_values(array.as_list::<i32>().values(), out),
        DataType::LargeList(_) => array_values(array.as_list::<i64>().values(), out),
        DataType::Map(_, _) => {
            let entries: ArrayRef = std::sync::Arc::new(array.as_map().entries().clone());
            array_values(&entries, out)
        }
        _ => {}
    }
}
