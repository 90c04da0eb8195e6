//! Scale-out on a real broker: several `ingot run` processes in one consumer group, one
//! killed, one added, one restarted, over a 200k-event stream. A binary of its own so it runs
//! alone: four consumers and a producer already load the broker on a small machine, and a
//! Kafka-protocol broker whose group coordinator answers late times members' sessions out.

use std::time::Duration;

#[path = "../e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn three_members_with_one_killed_and_one_added_store_each_offset_once() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 5_000, ORDERS_TOPIC);
    let total: usize = 200_000;
    // Most of the stream is in the topic before the members start (the broker, not ingot, is
    // the bottleneck on a small machine when four consumers and a producer share it); the
    // rest arrives while members die, join and restart.
    let backlog = 150_000;
    ws.ingot(&["produce", "--topic", "orders", "--count", &backlog.to_string(), "--partitions", "6"]);
    let rest = (total - backlog).to_string();
    let stream =
        ws.produce_in_background(&["--count", &rest, "--bad-ratio", "0.02", "--rate", "2000", "--seed", "3"]);
    let mut members: Vec<_> = (0..3).map(|_| ws.spawn_with_env(&["run"], &[])).collect();
    wait_until(Duration::from_secs(120), "a first commit", || async { orders_landed(&ws).await > 0 }).await;
    // Mid-stream: one member dies without a word, another joins, one is restarted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    members[1].kill().unwrap();
    members[1].wait().unwrap();
    members.push(ws.spawn_with_env(&["run"], &[]));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(terminate(&mut members[2]), "a restarted member drains first\n{}", ws.spawned_logs());
    members[2] = ws.spawn_with_env(&["run"], &[]);
    stream.join().unwrap();
    wait_for_orders(&ws, total, Duration::from_secs(240)).await;
    for (i, member) in members.iter_mut().enumerate() {
        if i != 1 {
            assert!(terminate(member), "member {i} drains cleanly\n{}", ws.spawned_logs());
        }
    }
    assert_orders_hold_each_offset_once(&ws, total).await;
}
