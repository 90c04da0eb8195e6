//! `ingot run` stopped by SIGTERM at any moment of a busy service: ingest drains, the
//! transforms, maintenance and the API finish the unit of work they are in, every lineage run
//! ends, the process exits 0, exactly-once holds, and what an interrupted compaction left
//! behind is only ever unreferenced files that orphan cleanup removes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_at_any_moment_drains_every_task_and_ends_every_lineage_run() {
    let broker = Broker::start();
    let topics = format!(
        "{ORDERS_TOPIC}\n{}\n[maintenance]\ninterval = \"1s\"\ncompact_min_files = 2\n\n\
         [lineage]\ntransport = \"file\"\npath = \"lineage.jsonl\"\n\n[service]\nshutdown_timeout = \"20s\"\n",
        transforms_toml()
    );
    let ws = Workspace::new(&broker, &demo_contracts(), 150, &topics);
    let producer =
        ws.produce_in_background(&["--count", "5000", "--rate", "400", "--seed", "3", "--bad-ratio", "0.05"]);
    // Ten moments spread over ingest, transforms and maintenance rounds (every second each).
    for (i, after) in [1.2, 3.1, 0.7, 2.4, 4.0, 1.8, 0.3, 2.9, 1.5, 3.6].into_iter().enumerate() {
        let mut service = ws.spawn_with_env(&["run"], &[]);
        tokio::time::sleep(Duration::from_secs_f64(after)).await;
        let asked = Instant::now();
        let _ = std::process::Command::new("kill").arg("-TERM").arg(service.id().to_string()).status();
        let status = loop {
            if let Some(status) = service.try_wait().unwrap() {
                break status;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(30),
                "stop {i} took longer than 30 s\n{}",
                ws.spawned_logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "stop {i} after {after} s exited {status}\n{}", ws.spawned_logs());
    }
    producer.join().unwrap();
    ws.ingot(&["run", "--until-caught-up"]);
    assert_orders_hold_each_offset_once(&ws, 5000).await;

    // Every run that started ended: COMPLETE, FAIL or ABORT, never START alone.
    let lineage = std::fs::read_to_string(ws.dir.path().join("lineage.jsonl")).unwrap();
    let mut runs: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in lineage.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let run = runs.entry(event["run"]["runId"].as_str().unwrap().to_string()).or_default();
        run.0 = event["job"]["name"].as_str().unwrap().to_string();
        run.1.push(event["eventType"].as_str().unwrap().to_string());
    }
    let transforms = runs.values().filter(|(job, _)| job.contains("silver") || job.contains("gold")).count();
    assert!(transforms > 0, "the transforms ran during the test");
    let unfinished: Vec<_> = runs
        .iter()
        .filter(|(_, (_, events))| {
            !events.iter().any(|e| ["COMPLETE", "FAIL", "ABORT"].contains(&e.as_str()))
        })
        .collect();
    assert!(unfinished.is_empty(), "runs without an end: {unfinished:?}");

    // Whatever the stops left unreferenced, orphan cleanup removes; nothing it removes was
    // still needed: every table reads completely afterwards.
    ws.ingot(&["maintain", "clean-orphans", "--older-than", "0s"]);
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let no_age = ingot_lake::OrphanOptions { older_than: Duration::ZERO, dry_run: true };
    for ident in lake.list_tables().await.unwrap() {
        let table = lake.load(&ident).await.unwrap();
        let left = lake.clean_orphans(&table, &no_age).await.unwrap().orphans;
        assert!(left.is_empty(), "{ident} keeps unreferenced files after cleanup: {left:?}");
        ws.rows(&ident.to_string()).await;
    }
    assert_orders_hold_each_offset_once(&ws, 5000).await;
}
