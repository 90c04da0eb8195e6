//! Several `ingot run` instances on one lake: every instance ingests, exactly one (the holder
//! of the coordinator lease) runs the transforms, and when it dies another takes over within
//! the lease time. Which instance ran what is read from each one's own lineage file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ingot_lake::Lake;

use crate::harness::*;
use crate::transforms::{assert_consistent, transforms_toml};

/// The lease time the harness gives every ingot it starts.
const LEASE_TTL: Duration = Duration::from_secs(5);

/// One transform run as its lineage tells it: when it started and when it ended (`None`
/// while it has not, or never will because its process was killed).
#[derive(Debug, Clone)]
pub struct RunSpan {
    pub job: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

/// The transform runs (silver and gold jobs) a lineage file records, by start.
pub fn transform_runs(path: &Path) -> Vec<RunSpan> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut runs: BTreeMap<String, RunSpan> = BTreeMap::new();
    for event in text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        let job = event["job"]["name"].as_str().unwrap_or_default();
        if !(job.starts_with("pipeline.silver_") || job.starts_with("pipeline.gold_")) {
            continue;
        }
        let at: DateTime<Utc> = event["eventTime"].as_str().unwrap().parse().unwrap();
        let id = event["run"]["runId"].as_str().unwrap().to_string();
        let span = runs.entry(id).or_insert(RunSpan { job: job.to_string(), start: at, end: None });
        match event["eventType"].as_str().unwrap() {
            "START" => span.start = at,
            "COMPLETE" | "FAIL" | "ABORT" => span.end = Some(at),
            _ => {}
        }
    }
    let mut runs: Vec<RunSpan> = runs.into_values().collect();
    runs.sort_by_key(|r| r.start);
    runs
}

/// Fails if a run of one instance overlaps a run of another. A run without an end lasted
/// until its process was killed (`killed_at`), or is still going.
pub fn assert_never_two_at_once(instances: &[(String, Vec<RunSpan>, Option<DateTime<Utc>>)]) {
    let far = Utc::now() + chrono::Duration::days(1);
    for (i, (name_a, runs_a, killed_a)) in instances.iter().enumerate() {
        for (name_b, runs_b, killed_b) in &instances[i + 1..] {
            for a in runs_a {
                for b in runs_b {
                    let end_a = a.end.or(*killed_a).unwrap_or(far);
                    let end_b = b.end.or(*killed_b).unwrap_or(far);
                    assert!(
                        end_a <= b.start || end_b <= a.start,
                        "{name_a}'s {} ({} – {end_a}) overlaps {name_b}'s {} ({} – {end_b})",
                        a.job,
                        a.start,
                        b.job,
                        b.start
                    );
                }
            }
        }
    }
}

async fn silver_rows(ws: &Workspace) -> usize {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    match ingot_lake::parse_ident("silver.orders") {
        Ok(ident) if lake.exists(&ident).await.unwrap_or(false) => row_count(&ws.rows("silver.orders").await),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_instance_transforms_and_a_survivor_takes_over_within_the_lease_time() {
    let broker = Broker::start();
    let lineage = "[lineage]\ntransport = \"file\"\npath = \"lineage.jsonl\"\n";
    let topics = format!("{ORDERS_TOPIC}\n{}\n{lineage}", transforms_toml());
    let ws = Workspace::new(&broker, &demo_contracts(), 200, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "2000", "--partitions", "4", "--seed", "1"]);
    let lineage_of = |name: &str| ws.dir.path().join(format!("lineage-{name}.jsonl"));
    let start = |name: &str| {
        let path = lineage_of(name).display().to_string();
        let env = [
            ("INGOT_LINEAGE__PATH", path.as_str()),
            ("INGOT_SERVICE__INSTANCE", name),
            ("INGOT_LOG", "info"),
        ];
        ws.spawn_with_env(&["run"], &env)
    };
    let mut members = BTreeMap::from([("a", start("a")), ("b", start("b"))]);
    wait_until(Duration::from_secs(120), "silver rows", || async { silver_rows(&ws).await > 0 }).await;
    // Several rounds, so the follower has had its chances to (wrongly) run too.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ran: Vec<&str> =
        ["a", "b"].into_iter().filter(|n| !transform_runs(&lineage_of(n)).is_empty()).collect();
    assert_eq!(ran.len(), 1, "exactly one instance transforms: {ran:?}\n{}", ws.spawned_logs());
    let (leader, survivor) = if ran[0] == "a" { ("a", "b") } else { ("b", "a") };

    // A one-shot transform waits for the lease, then names who holds it.
    let (ok, _, err) = ws.try_ingot_with_env(&["transform"], &[("INGOT_SERVICE__LEASE_WAIT", "1s")]);
    assert!(!ok, "a one-shot transform does not run beside the coordinator");
    assert!(err.contains(&format!("instance `{leader}` holds the coordinator lease")), "{err}");

    let mut dead = members.remove(leader).unwrap();
    dead.kill().unwrap();
    dead.wait().unwrap();
    let killed_at = Utc::now();
    ws.ingot(&["produce", "--topic", "orders", "--count", "1000", "--seed", "2"]);
    wait_until(Duration::from_secs(60), "the survivor's first transform run", || async {
        transform_runs(&lineage_of(survivor)).iter().any(|r| r.start > killed_at)
    })
    .await;
    let took_over = transform_runs(&lineage_of(survivor))[0].start;
    // The dead holder's lease runs out within LEASE_TTL of its last renewal; the survivor
    // claims every quarter of it and transforms at its next 1 s tick.
    let limit = LEASE_TTL + LEASE_TTL / 4 + Duration::from_secs(3);
    assert!(
        took_over - killed_at <= chrono::Duration::from_std(limit).unwrap(),
        "took over {} after the kill (limit {limit:?})",
        took_over - killed_at
    );
    // The survivor's own partitions bring it new rows (the dead member's stay with the
    // broker's group until it notices; the scale test covers ingest across members).
    wait_until(Duration::from_secs(60), "a whole transform run after the takeover", || async {
        let runs = transform_runs(&lineage_of(survivor));
        runs.iter().any(|r| r.end.is_some() && r.job == "pipeline.gold_customer_daily")
    })
    .await;
    let mut survivor_process = members.remove(survivor).unwrap();
    assert!(terminate(&mut survivor_process), "the survivor drains\n{}", ws.spawned_logs());

    assert_never_two_at_once(&[
        (leader.to_string(), transform_runs(&lineage_of(leader)), Some(killed_at)),
        (survivor.to_string(), transform_runs(&lineage_of(survivor)), None),
    ]);
    // The survivor gave the lease up on its way out: a one-shot transform runs at once.
    let out = ws.ingot(&["transform"]);
    assert!(out.contains("silver.orders"), "{out}");
    assert_consistent(&ws).await;
}
