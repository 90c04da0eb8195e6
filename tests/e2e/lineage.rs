//! OpenLineage events of real runs, received over HTTP by a local endpoint and validated
//! against the vendored spec (tests/spec/openlineage) and Marquez's rules.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ingot_lake::{Lake, parse_ident};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::harness::*;
use crate::readers::python;

/// A local lineage endpoint: answers `POST /api/v1/lineage` with 201 and keeps the bodies in
/// arrival order, or answers 503 while `down`.
struct Receiver {
    url: String,
    events: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let events = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (events2, down2) = (events.clone(), down.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let (events, down) = (events2.clone(), down2.clone());
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut read = BufReader::new(read);
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        let mut first = true;
                        loop {
                            line.clear();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if first {
                                assert!(
                                    line.starts_with("POST /api/v1/lineage "),
                                    "unexpected request {line}"
                                );
                                first = false;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap();
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        read.read_exact(&mut body).await.unwrap();
                        let reply = if down.load(Ordering::SeqCst) {
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                        } else {
                            events.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                            "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"
                        };
                        if write.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { url, events, down }
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}

const SOURCE: &str = "source_url = \"https://example.org/acme/pipelines\"";

fn workspace(broker: &Broker, receiver: &Receiver) -> Workspace {
    let lineage = format!(
        "[lineage]\ntransport = \"http\"\nurl = \"{}\"\nnamespace = \"ingot-test\"\n{SOURCE}\n",
        receiver.url
    );
    let topics = format!("{ORDERS_TOPIC}\n{lineage}\n{}", transforms_toml());
    Workspace::new(broker, &demo_contracts(), 500, &topics)
}

/// Every event passes the spec's schemas (format checking on) and Marquez's rules.
pub(crate) fn assert_valid(events: &[Value]) {
    let script = PathBuf::from(manifest_dir()).join("tests/interop/validate_lineage.py");
    let mut child =
        Command::new(python()).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        use std::io::Write;
        for event in events {
            writeln!(stdin, "{event}").unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).expect("validator output");
    assert_eq!(report["events"].as_u64().unwrap() as usize, events.len());
    assert_eq!(report["errors"], serde_json::json!([]), "invalid events");
}

/// Per run: START first, exactly one terminal event last, the same inputs and outputs on
/// every event. Returns the runs by job name.
pub(crate) fn assert_run_cycles(events: &[Value]) -> BTreeMap<String, Vec<Vec<Value>>> {
    let mut runs: BTreeMap<String, (String, Vec<Value>)> = BTreeMap::new();
    for event in events {
        let id = event["run"]["runId"].as_str().unwrap().to_string();
        let job = event["job"]["name"].as_str().unwrap().to_string();
        runs.entry(id).or_insert_with(|| (job, Vec::new())).1.push(event.clone());
    }
    let mut by_job: BTreeMap<String, Vec<Vec<Value>>> = BTreeMap::new();
    for (id, (job, events)) in runs {
        let types: Vec<&str> = events.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
        assert_eq!(types[0], "START", "run {id} of {job}: {types:?}");
        let terminal = types.iter().filter(|t| ["COMPLETE", "FAIL", "ABORT"].contains(t)).count();
        assert_eq!(terminal, 1, "run {id} of {job}: {types:?}");
        assert!(["COMPLETE", "FAIL", "ABORT"].contains(types.last().unwrap()), "run {id}: {types:?}");
        let names = |e: &Value, side: &str| -> Vec<String> {
            e[side].as_array().unwrap().iter().map(|d| format!("{}:{}", d["namespace"], d["name"])).collect()
        };
        for e in &events {
            assert_eq!(
                names(e, "inputs"),
                names(&events[0], "inputs"),
                "{job}: inputs repeated on every event"
            );
            assert_eq!(
                names(e, "outputs"),
                names(&events[0], "outputs"),
                "{job}: outputs repeated on every event"
            );
        }
        by_job.entry(job).or_default().push(events);
    }
    by_job
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_runs_emit_valid_ordered_events_pinned_to_snapshots() {
    let receiver = Receiver::start().await;
    let broker = Broker::start();
    let ws = workspace(&broker, &receiver);
    ws.ingot(&[
        "produce",
        "--topic",
        "orders",
        "--count",
        "1500",
        "--duplicate-ratio",
        "0.1",
        "--bad-ratio",
        "0.05",
    ]);
    ws.ingot(&["run", "--until-caught-up"]);
    let events = receiver.events();
    assert_valid(&events);
    let runs = assert_run_cycles(&events);
    for job in
        ["pipeline", "pipeline.silver_orders", "pipeline.gold_revenue_hourly", "pipeline.gold_customer_daily"]
    {
        assert!(runs.contains_key(job), "no run of {job} in {:?}", runs.keys());
    }
    // Children point at the pipeline run; snapshot ids in the events exist in the tables.
    let pipeline_run = runs["pipeline"][0][0]["run"]["runId"].clone();
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    // Bronze: a streaming run with RUNNING events naming the snapshots and offsets it wrote.
    let bronze = &runs["pipeline.bronze_orders"][0];
    let running: Vec<&Value> = bronze.iter().filter(|e| e["eventType"] == "RUNNING").collect();
    assert!(!running.is_empty(), "RUNNING per bronze commit");
    assert_eq!(bronze[0]["job"]["facets"]["jobType"]["processingType"], "STREAMING");
    let last = running.last().unwrap();
    let written: i64 =
        last["outputs"][0]["facets"]["version"]["datasetVersion"].as_str().unwrap().parse().unwrap();
    let table = lake.load(&parse_ident("bronze.orders").unwrap()).await.unwrap();
    assert!(table.metadata().snapshot_by_id(written).is_some());
    assert_eq!(last["inputs"][0]["namespace"], format!("kafka://{}", broker.addr));
    let consumed: i64 = last["inputs"][0]["inputFacets"]["ingot_kafkaOffsets"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["toOffset"].as_i64().unwrap() - p["fromOffset"].as_i64().unwrap())
        .sum();
    assert_eq!(consumed, 1500, "the offsets facet covers every consumed message");
    // Contract rules as data quality assertions, with the messages each one quarantined.
    let assertions =
        last["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"].as_array().unwrap();
    let names: Vec<&str> = assertions.iter().map(|a| a["assertion"].as_str().unwrap()).collect();
    assert!(names.contains(&"order_id_present") && names.contains(&"known_currency"), "{names:?}");
    assert!(assertions.iter().any(|a| a["success"] == false), "some rules were broken: {assertions:?}");
    for (job, table) in
        [("pipeline.silver_orders", "silver.orders"), ("pipeline.gold_revenue_hourly", "gold.revenue_hourly")]
    {
        let complete = runs[job][0].last().unwrap();
        assert_eq!(complete["eventType"], "COMPLETE");
        assert_eq!(complete["run"]["facets"]["parent"]["run"]["runId"], pipeline_run);
        let written: i64 =
            complete["outputs"][0]["facets"]["version"]["datasetVersion"].as_str().unwrap().parse().unwrap();
        let loaded = lake.load(&parse_ident(table).unwrap()).await.unwrap();
        assert!(loaded.metadata().snapshot_by_id(written).is_some(), "{table} has snapshot {written}");
        let input = &complete["inputs"][0];
        let read: i64 = input["facets"]["version"]["datasetVersion"].as_str().unwrap().parse().unwrap();
        let input_table = input["facets"]["symlinks"]["identifiers"][0]["name"].as_str().unwrap();
        let loaded = lake.load(&parse_ident(input_table).unwrap()).await.unwrap();
        assert!(loaded.metadata().snapshot_by_id(read).is_some(), "{input_table} has snapshot {read}");
        assert!(complete["job"]["facets"]["sql"]["query"].as_str().unwrap().contains("FROM"));
        assert!(complete["job"]["facets"]["sourceCodeLocation"]["path"].as_str().unwrap().ends_with(".sql"));
    }
    // Before silver exists, its START already names the columns the SQL will write.
    let silver_start = &runs["pipeline.silver_orders"][0][0];
    let columns =
        silver_start["outputs"][0]["facets"]["schema"]["fields"].as_array().expect("schema at START");
    assert!(columns.iter().any(|c| c["name"] == "total_amount"));
    assert!(!columns.iter().any(|c| c["name"] == "_rule_violation"));
    // Column lineage of a gold aggregate names the silver columns it came from, by the very
    // identifiers of the silver input dataset.
    let gold = runs["pipeline.gold_revenue_hourly"][0].last().unwrap();
    let silver = &gold["inputs"][0];
    let fields = &gold["outputs"][0]["facets"]["columnLineage"]["fields"];
    let revenue = &fields["revenue"]["inputFields"][0];
    assert_eq!((&revenue["namespace"], &revenue["name"]), (&silver["namespace"], &silver["name"]));
    assert_eq!(revenue["field"], "total_amount");
    assert_eq!(revenue["transformations"][0]["subtype"], "AGGREGATION");
    assert_eq!(fields["customers"]["inputFields"][0]["field"], "customer_id");
    assert_eq!(fields["window_start"]["inputFields"][0]["field"], "occurred_at");
    assert_eq!(fields["currency"]["inputFields"][0]["transformations"][0]["subtype"], "IDENTITY");
    let grouped: Vec<&str> = gold["outputs"][0]["facets"]["columnLineage"]["dataset"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["transformations"][0]["subtype"] == "GROUP_BY")
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(grouped.contains(&"currency") && grouped.contains(&"occurred_at"), "{grouped:?}");

    // Maintenance is a run too: START with the table as it was, COMPLETE at the new snapshot.
    let out = ws.ingot(&["maintain", "compact", "bronze.orders", "--min-files", "2"]);
    assert!(out.contains("compacted"), "{out}");
    let events = receiver.events();
    assert_valid(&events);
    let runs = assert_run_cycles(&events);
    let maintain = runs["pipeline.maintain_bronze_orders"][0].last().unwrap();
    let after: i64 =
        maintain["outputs"][0]["facets"]["version"]["datasetVersion"].as_str().unwrap().parse().unwrap();
    let bronze = lake.load(&parse_ident("bronze.orders").unwrap()).await.unwrap();
    assert_eq!(Some(after), bronze.metadata().current_snapshot_id());
    assert_eq!(bronze.metadata().current_snapshot().unwrap().summary().operation.as_str(), "replace");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_wait_in_the_spool_while_the_endpoint_is_down() {
    let receiver = Receiver::start().await;
    let broker = Broker::start();
    let ws = workspace(&broker, &receiver);
    ws.ingot(&["produce", "--topic", "orders", "--count", "800"]);
    receiver.down.store(true, Ordering::SeqCst);
    // The pipeline does its work while lineage cannot be delivered.
    let out = ws.ingot(&["run", "--until-caught-up"]);
    assert!(out.contains("silver.orders: read"), "{out}");
    assert!(receiver.events().is_empty());
    let spool = ws.dir.path().join("ingot-data/lineage-spool/events.jsonl");
    let spooled = std::fs::read_to_string(&spool).expect("events spooled").lines().count();
    assert!(spooled >= 8, "{spooled} events spooled");

    // Back up: the next process delivers the spool first, in order, then its own events.
    receiver.down.store(false, Ordering::SeqCst);
    ws.ingot(&["produce", "--topic", "orders", "--count", "300", "--seed", "8"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let events = receiver.events();
    assert!(events.len() > spooled, "{} events", events.len());
    assert_valid(&events);
    let runs = assert_run_cycles(&events);
    assert_eq!(runs["pipeline"].len(), 2, "both pipeline runs arrived");
    let first_run =
        runs["pipeline"].iter().map(|r| r[0]["eventTime"].as_str().unwrap().to_string()).min().unwrap();
    assert_eq!(events[0]["eventTime"].as_str().unwrap(), first_run, "the spooled run arrives first");
    assert!(!spool.exists() || std::fs::read_to_string(&spool).unwrap().trim().is_empty(), "spool drained");
}

#[tokio::test(flavor = "multi_thread")]
async fn lineage_over_https_reaches_a_receiver_trusting_the_given_ca_and_spools_on_a_wrong_one() {
    use crate::tls_proxy::{Stunnel, TestCa};
    let receiver = Receiver::start().await;
    let (ca, other_ca) = (TestCa::new("lineage-test-ca"), TestCa::new("someone-else"));
    let https = Stunnel::free_addr();
    let _tls = Stunnel::start(&https, receiver.url.trim_start_matches("http://"), &ca);
    let broker = Broker::start();
    let ws = workspace(&broker, &receiver);
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let text = text.replace(&format!("url = \"{}\"", receiver.url), &format!("url = \"https://{https}\""));
    std::fs::write(&ws.config, text).unwrap();
    ws.ingot(&["produce", "--topic", "orders", "--count", "300"]);
    let spool = ws.dir.path().join("ingot-data/lineage-spool/events.jsonl");
    let spooled = || std::fs::read_to_string(&spool).map(|t| t.lines().count()).unwrap_or(0);

    // A CA that did not sign the receiver's certificate: nothing is delivered, everything waits.
    let wrong = [("INGOT_LINEAGE__CA_FILE", other_ca.ca.to_str().unwrap())];
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &wrong);
    assert!(ok, "lineage never fails the pipeline:\n{out}\n{err}");
    assert!(receiver.events().is_empty());
    assert!(spooled() >= 4, "{} events spooled", spooled());

    // The right CA: the spool and the new run's events arrive over HTTPS, valid and in order.
    let right = [("INGOT_LINEAGE__CA_FILE", ca.ca.to_str().unwrap())];
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &right);
    assert!(ok, "{out}\n{err}");
    let events = receiver.events();
    assert!(!events.is_empty());
    assert_valid(&events);
    assert_eq!(assert_run_cycles(&events)["pipeline"].len(), 2, "both runs arrived");
    assert_eq!(spooled(), 0, "spool drained");
}
