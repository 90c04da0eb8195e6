//! Several `ingot run` instances on one lake: every instance ingests, exactly one (the holder
//! of the coordinator lease) runs the transforms, and when it dies another takes over within
//! the lease time. Which instance ran what is read from each one's own lineage file.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use ingot_lake::Lake;

use crate::harness::*;
use crate::run_spans::{Instance, assert_never_two_at_once, transform_runs};
use crate::transforms::assert_consistent;

/// The lease time the harness gives every ingot it starts.
const LEASE_TTL: Duration = Duration::from_secs(5);

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
        Instance {
            name: leader.into(),
            runs: transform_runs(&lineage_of(leader)),
            killed_at: Some(killed_at),
        },
        Instance { name: survivor.into(), runs: transform_runs(&lineage_of(survivor)), killed_at: None },
    ]);
    // The survivor gave the lease up on its way out: a one-shot transform runs at once.
    let out = ws.ingot(&["transform"]);
    assert!(out.contains("silver.orders"), "{out}");
    assert_consistent(&ws).await;
}
