//! Scale-out on a real broker: several `ingot run` processes in one consumer group, one
//! killed, one added, one restarted, over a 200k-event stream, with the transforms running
//! on whichever holds the coordinator lease. A binary of its own so it runs alone: four
//! consumers and a producer already load the broker on a small machine, and a Kafka-protocol
//! broker whose group coordinator answers late times members' sessions out.

use std::time::Duration;

use chrono::Utc;

#[path = "../e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../e2e/run_spans.rs"]
#[allow(dead_code)]
mod run_spans;

use harness::*;
use run_spans::{Instance, assert_never_two_at_once, transform_runs};

#[tokio::test(flavor = "multi_thread")]
async fn members_killed_added_restarted_store_each_offset_once_and_transform_one_at_a_time() {
    let broker = Broker::start();
    let lineage = "[lineage]\ntransport = \"file\"\npath = \"lineage.jsonl\"\n";
    let topics = format!("{ORDERS_TOPIC}\n{}\n{lineage}", transforms_toml());
    let ws = Workspace::new(&broker, &demo_contracts(), 5_000, &topics);
    // Each member writes its own lineage file: which one transformed when.
    let lineage_of = |n: usize| ws.dir.path().join(format!("lineage-{n}.jsonl"));
    let member = |n: usize| {
        let path = lineage_of(n).display().to_string();
        let name = format!("member-{n}");
        ws.spawn_with_env(
            &["run"],
            &[("INGOT_LINEAGE__PATH", path.as_str()), ("INGOT_SERVICE__INSTANCE", &name)],
        )
    };
    let total: usize = 200_000;
    // Most of the stream is in the topic before the members start (the broker, not ingot, is
    // the bottleneck on a small machine when four consumers and a producer share it); the
    // rest arrives while members die, join and restart.
    let backlog = 150_000;
    ws.ingot(&["produce", "--topic", "orders", "--count", &backlog.to_string(), "--partitions", "6"]);
    let rest = (total - backlog).to_string();
    let stream =
        ws.produce_in_background(&["--count", &rest, "--bad-ratio", "0.02", "--rate", "2000", "--seed", "3"]);
    let mut members: Vec<_> = (0..3).map(member).collect();
    wait_until(Duration::from_secs(120), "a first transform run", || async {
        (0..3).any(|n| !transform_runs(&lineage_of(n)).is_empty())
    })
    .await;
    // Mid-stream: the member running the transforms dies without a word, another joins, one
    // is restarted (its lineage file goes on: same number, new process).
    let leader = (0..3).find(|&n| !transform_runs(&lineage_of(n)).is_empty()).unwrap();
    members[leader].kill().unwrap();
    members[leader].wait().unwrap();
    let killed_at = Utc::now();
    members.push(member(3));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restarted = (leader + 1) % 3;
    assert!(terminate(&mut members[restarted]), "a restarted member drains first\n{}", ws.spawned_logs());
    members[restarted] = member(restarted);
    stream.join().unwrap();
    wait_for_orders(&ws, total, Duration::from_secs(240)).await;
    let took_over = (0..4)
        .flat_map(|n| transform_runs(&lineage_of(n)))
        .map(|run| run.start)
        .filter(|start| *start > killed_at)
        .min()
        .expect("a survivor took the transforms over");
    // Under this load claims are slower than in the e2e test: the lease time (5 s), the
    // claim period, a transform tick and slack.
    assert!(
        took_over - killed_at <= chrono::Duration::seconds(15),
        "took over after {}",
        took_over - killed_at
    );
    for (i, member) in members.iter_mut().enumerate() {
        if i != leader {
            assert!(terminate(member), "member {i} drains cleanly\n{}", ws.spawned_logs());
        }
    }
    assert_orders_hold_each_offset_once(&ws, total).await;
    // Never two transform runs at once. The restarted member's file holds two processes'
    // runs; the first one's runs all ended when it drained.
    let instances: Vec<Instance> = (0..4)
        .map(|n| Instance {
            name: format!("member-{n}"),
            runs: transform_runs(&lineage_of(n)),
            killed_at: (n == leader).then_some(killed_at),
        })
        .collect();
    assert_never_two_at_once(&instances);
}
