//! ingot in company: several members of one consumer group, members joining and dying
//! mid-stream, and `--until-caught-up` after crashed runs. Every message lands exactly once.

use std::time::{Duration, Instant};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn member_joining_while_another_holds_a_full_buffer_keeps_exactly_once() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 100_000, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "1500", "--bad-ratio", "0.05"]);
    // A long flush interval: the first member reads everything into its buffer and holds it.
    let slow = [("INGOT_INGEST__FLUSH__INTERVAL", "25s")];
    let mut first = ws.spawn_with_env(&["run"], &slow);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(orders_landed(&ws).await, 0, "nothing committed yet: the rows are buffered");
    // The join revokes and re-assigns every partition: each is read again from the offsets
    // the (still empty) tables record, while the first member's buffer still holds them.
    let mut second = ws.spawn_with_env(&["run"], &slow);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(terminate(&mut first), "first member drains cleanly\n{}", ws.spawned_logs());
    assert!(terminate(&mut second), "second member drains cleanly\n{}", ws.spawned_logs());
    assert_orders_hold_each_offset_once(&ws, 1500).await;
}

/// Issue: after four runs killed early, `--until-caught-up` on the same group exited 0 with
/// a third of the topic unread. Now it exits 0 only with everything in the tables, and
/// otherwise names what it could not read.
#[tokio::test(flavor = "multi_thread")]
async fn until_caught_up_after_crashed_runs_exits_0_only_with_every_message() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 100_000, ORDERS_TOPIC);
    let out = ws.ingot(&["produce", "--topic", "orders", "--count", "20300", "--bad-ratio", "0.015"]);
    assert!(out.contains("20300"), "{out}");
    // As in the report: each run is killed before its first commit (the default 10 s flush
    // interval), so every one leaves a member in the group that never commits.
    for delay in [2, 4, 6, 8] {
        let mut crashed = ws.spawn_with_env(&["run"], &[("INGOT_INGEST__FLUSH__INTERVAL", "10s")]);
        tokio::time::sleep(Duration::from_secs(delay)).await;
        crashed.kill().unwrap();
        crashed.wait().unwrap();
    }
    assert_eq!(orders_landed(&ws).await, 0, "the killed runs committed nothing");
    let started = Instant::now();
    let (ok, stdout, stderr) = ws.try_ingot(&["run", "--until-caught-up", "--caught-up-timeout", "60s"]);
    let landed = orders_landed(&ws).await;
    if ok {
        assert_orders_hold_each_offset_once(&ws, 20_300).await;
        assert!(stdout.contains("orders: 20300 new at start; this run: "), "{stdout}");
    } else {
        assert!(landed < 20_300, "a failed run means something is missing: {landed}");
        assert!(stderr.contains("not caught up") && stderr.contains("orders/"), "{stderr}");
        assert!(stderr.contains("ingot-test-"), "names the group: {stderr}");
    }
    eprintln!("caught up: {ok} in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_catch_up_runs_in_one_group_cover_every_partition_between_them() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 1_000, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "6000", "--bad-ratio", "0.05"]);
    let runs: Vec<_> = (0..2).map(|_| ws.spawn_with_env(&["run", "--until-caught-up"], &[])).collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success(), "{}", ws.spawned_logs());
    }
    assert_orders_hold_each_offset_once(&ws, 6_000).await;
}
