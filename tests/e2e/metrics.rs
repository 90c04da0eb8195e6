//! `/metrics` during a run (served by `[metrics] listen`, the query API off) parses with
//! Prometheus's reference parser, and its counters equal what the tables say the run did.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use arrow_array::cast::AsArray;
use serde_json::Value;

use crate::harness::*;

/// Samples of the exposition at `url`, parsed by prometheus_client: `(name, labels) → value`.
async fn scrape(url: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let mut parser = std::process::Command::new(crate::readers::python())
        .arg(std::path::PathBuf::from(manifest_dir()).join("tests/interop/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    parser.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = parser.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let sample: Value = serde_json::from_str(line).unwrap();
            let labels: BTreeMap<String, String> = sample["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            ((sample["name"].as_str().unwrap().to_string(), labels), sample["value"].as_f64().unwrap())
        })
        .collect()
}

fn value(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let labels: BTreeMap<String, String> =
        labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.get(&(name.to_string(), labels)).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_as_prometheus_and_equal_what_the_run_did() {
    let broker = Broker::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let topics = format!("{ORDERS_TOPIC}\n{}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n", transforms_toml());
    let ws = Workspace::new(&broker, &demo_contracts(), 200, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "1000", "--bad-ratio", "0.1"]);
    let mut service =
        ws.spawn_with_env(&["run"], &[("INGOT_KAFKA__PROPERTIES__STATISTICS.INTERVAL.MS", "500")]);
    wait_for_orders(&ws, 1000, Duration::from_secs(60)).await;
    let url = format!("http://127.0.0.1:{port}/metrics");

    // Once silver has caught up with bronze, the counters stand still: compare them then.
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let samples = loop {
        let samples = scrape(&url).await;
        let silver = match lake.exists(&ingot_lake::parse_ident("silver.orders").unwrap()).await.unwrap() {
            true => {
                let rows = crate::transforms::query(&lake, "SELECT count(*) AS n FROM silver.orders").await;
                crate::transforms::int(&rows[0], 0, 0) as f64
            }
            false => 0.0,
        };
        if silver > 0.0
            && value(&samples, "ingot_transform_rows_written_total", &[("table", "silver.orders")]) == silver
        {
            break samples;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "silver never caught up in the metrics\n{}",
            ws.spawned_logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let bronze = row_count(&ws.rows("bronze.orders").await) as f64;
    assert_eq!(value(&samples, "ingot_rows_committed_total", &[("table", "bronze.orders")]), bronze);
    assert_eq!(value(&samples, "ingot_table_rows", &[("table", "bronze.orders")]), bronze);
    let snapshots = ws.snapshot_count("bronze.orders").await as f64;
    assert_eq!(value(&samples, "ingot_commits_total", &[("table", "bronze.orders")]), snapshots);
    // Quarantined by reason, as the quarantine table holds them (ingest's rows; silver's own
    // go there through the transforms).
    let (mut by_reason, mut by_rule): (BTreeMap<String, f64>, BTreeMap<String, f64>) = Default::default();
    for batch in crate::ingest::only_ingest_rows(&ws.rows("ingot.quarantine").await) {
        let reasons = batch.column_by_name("reason").unwrap().as_string::<i32>();
        let rules = batch.column_by_name("rule").unwrap().as_string::<i32>();
        for i in 0..batch.num_rows() {
            *by_reason.entry(reasons.value(i).to_string()).or_default() += 1.0;
            if arrow_array::Array::is_valid(rules, i) {
                *by_rule.entry(rules.value(i).to_string()).or_default() += 1.0;
            }
        }
    }
    assert!(!by_reason.is_empty());
    for (reason, n) in &by_reason {
        let labels = [("topic", "orders"), ("reason", reason.as_str())];
        assert_eq!(value(&samples, "ingot_quarantined_messages_total", &labels), *n, "{reason}");
    }
    for (rule, n) in &by_rule {
        let labels = [("topic", "orders"), ("rule", rule.as_str())];
        assert_eq!(value(&samples, "ingot_rule_violations_total", &labels), *n, "{rule}");
    }
    assert!(
        value(
            &samples,
            "ingot_transform_runs_total",
            &[("table", "silver.orders"), ("outcome", "completed")]
        ) >= 1.0
    );
    assert!(value(&samples, "ingot_commit_duration_seconds_count", &[("table", "bronze.orders")]) >= 1.0);
    // Every bronze row is one produce → visible observation.
    assert_eq!(
        value(&samples, "ingot_produce_to_visible_seconds_count", &[("table", "bronze.orders")]),
        bronze
    );
    // Consumer lag per partition, from librdkafka's statistics: all consumed and committed.
    wait_until(Duration::from_secs(30), "consumer lag 0 on every partition", || async {
        let samples = scrape(&url).await;
        (0..3).all(|p| {
            let labels = [("topic", "orders"), ("partition", &*p.to_string())];
            samples.contains_key(&(
                "ingot_consumer_lag_messages".to_string(),
                labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            )) && value(&samples, "ingot_consumer_lag_messages", &labels) == 0.0
        })
    })
    .await;
    assert!(value(&samples, "ingot_rebalances_total", &[("kind", "assigned")]) >= 1.0);
    assert!(terminate(&mut service));
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_lineage_delivery_and_freshness_are_measured() {
    let broker = Broker::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let topics = format!(
        "{ORDERS_TOPIC}\n{}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[maintenance]\ninterval = \"1s\"\n\n\
         [lineage]\ntransport = \"file\"\npath = \"lineage.jsonl\"\n",
        transforms_toml()
    );
    let ws = Workspace::new(&broker, &demo_contracts(), 200, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "600"]);
    let mut service = ws.spawn_with_env(&["run"], &[]);
    wait_for_orders(&ws, 600, Duration::from_secs(60)).await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let bronze = [("table", "bronze.orders")];
    wait_until(Duration::from_secs(90), "a maintenance round of bronze and a freshness gauge", || async {
        let samples = scrape(&url).await;
        value(&samples, "ingot_maintenance_runs_total", &[bronze[0], ("outcome", "completed")]) >= 1.0
            && samples.keys().any(|(name, labels)| {
                name == "ingot_table_freshness_seconds"
                    && labels.get("table").is_some_and(|t| t == "silver.orders")
            })
    })
    .await;
    let samples = scrape(&url).await;
    assert!(value(&samples, "ingot_maintenance_duration_seconds_count", &bronze) >= 1.0);
    // The watermark trails the newest event by the allowed lateness; it is never in the future.
    let freshness = value(&samples, "ingot_table_freshness_seconds", &[("table", "silver.orders")]);
    assert!(freshness >= 0.0, "{freshness}");
    // Each event counted as delivered was written to the file before it was counted.
    let delivered = value(&samples, "ingot_lineage_events_total", &[("outcome", "delivered")]);
    let written =
        std::fs::read_to_string(ws.dir.path().join("lineage.jsonl")).unwrap().lines().count() as f64;
    assert!(delivered >= 1.0 && written >= delivered, "delivered {delivered}, written {written}");
    assert_eq!(value(&samples, "ingot_lineage_events_total", &[("outcome", "dropped")]), 0.0);
    assert!(terminate(&mut service));
}

/// Every metric the shipped Grafana dashboard queries is one ingot records (its name is a
/// literal in ingot's sources), so the dashboard cannot silently chart nothing.
#[test]
fn the_grafana_dashboard_charts_only_metrics_ingot_records() {
    let root = std::path::PathBuf::from(manifest_dir());
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("deploy/grafana/ingot.json")).unwrap())
            .unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut sources = String::new();
    for dir in ["src", "ingest/src", "lake/src", "lineage/src", "transforms/src"] {
        collect_rust(&root.join(dir), &mut sources);
    }
    let mut names: Vec<&str> = exprs
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| word.starts_with("ingot_"))
        .map(|name| {
            ["_bucket", "_count", "_sum"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n))
        })
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "the dashboard queries {name}, which ingot never records"
        );
    }
}

fn collect_rust(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}
