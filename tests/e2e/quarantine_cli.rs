//! `ingot quarantine stats|list`: the counts equal what the quarantine table holds, the
//! filters narrow, and a filter value cannot change the SQL.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use serde_json::Value;

use crate::harness::*;

fn json_lines(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_stats_and_list_show_what_the_table_holds() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 500, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "2000", "--bad-ratio", "0.1"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let mut expected: BTreeMap<(String, Option<String>), i64> = BTreeMap::new();
    for batch in ws.rows("ingot.quarantine").await {
        let (reasons, rules) = (
            batch.column_by_name("reason").unwrap().as_string::<i32>(),
            batch.column_by_name("rule").unwrap().as_string::<i32>(),
        );
        for i in 0..batch.num_rows() {
            let rule = arrow_array::Array::is_valid(rules, i).then(|| rules.value(i).to_string());
            *expected.entry((reasons.value(i).to_string(), rule)).or_default() += 1;
        }
    }
    assert!(expected.len() >= 2, "{expected:?}");

    let stats = json_lines(&ws.ingot(&["quarantine", "stats", "--format", "json"]));
    let got: BTreeMap<(String, Option<String>), i64> = stats
        .iter()
        .map(|row| {
            assert_eq!(row["topic"], "orders");
            let rule = row["rule"].as_str().map(str::to_string);
            ((row["reason"].as_str().unwrap().to_string(), rule), row["messages"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(got, expected);

    let (reason, _) = expected.keys().next().unwrap().clone();
    let listed = json_lines(&ws.ingot(&[
        "quarantine",
        "list",
        "--reason",
        &reason,
        "--limit",
        "5",
        "--format",
        "json",
    ]));
    assert_eq!(
        listed.len(),
        5.min(expected.iter().filter(|((r, _), _)| *r == reason).map(|(_, n)| *n).sum::<i64>() as usize)
    );
    assert!(
        listed.iter().all(|row| row["reason"] == reason.as_str() && row["offset"].is_i64()),
        "{listed:?}"
    );

    // A filter value is a literal, never SQL.
    let hostile = ws.ingot(&["quarantine", "stats", "--topic", "x' OR '1'='1", "--format", "json"]);
    assert!(json_lines(&hostile).is_empty(), "{hostile}");
    let future = ws.ingot(&["quarantine", "stats", "--since", "2999-01-01 00:00:00 UTC", "--format", "json"]);
    assert!(json_lines(&future).is_empty(), "{future}");
}
