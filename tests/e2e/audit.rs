//! Audits and corrections on top of silver and gold: replay of gold as of a past time,
//! backfills, and schedules that run while the service is up.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use ingot_lake::{Lake, parse_ident};
use serde_json::Value;

use crate::harness::*;
use crate::transforms::{first_round_then_late_events, int, query, snapshot_ids, text, workspace};

/// Appends to `table` a copy of the first row of `select` with `column` set to `value`,
/// keeping the table's recorded progress — as someone editing the table by hand would.
async fn append_edited_row(
    ws: &Workspace,
    table: &str,
    select: &str,
    column: &str,
    value: arrow_array::ArrayRef,
) -> RecordBatch {
    use std::sync::Arc;
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let loaded = lake.load(&parse_ident(table).unwrap()).await.unwrap();
    let row = query(&lake, select).await;
    let schema = Arc::new(ingot_lake::table_arrow_schema(&loaded).unwrap());
    let mut columns = row[0].slice(0, 1).columns().to_vec();
    columns[schema.index_of(column).unwrap()] = value;
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    let files = ingot_lake::write_data_files(&loaded, std::slice::from_ref(&batch)).await.unwrap();
    let mut summary: HashMap<String, String> =
        loaded.metadata().current_snapshot().unwrap().summary().additional_properties.clone();
    summary.retain(|k, _| k.starts_with("ingot."));
    summary.insert(ingot_lake::COMMIT_ID_PROPERTY.into(), format!("edited-{column}"));
    lake.commit_append(&loaded, files, summary).await.unwrap();
    batch
}

/// Appends one extra order to silver (a copy of an existing row under a new key), as a late
/// correction would; gold is not told. Returns its event time.
async fn add_silver_order(ws: &Workspace) -> i64 {
    let key = std::sync::Arc::new(arrow_array::StringArray::from(vec!["backfill-correction"]));
    let select = "SELECT * FROM silver.orders ORDER BY idempotency_key LIMIT 1";
    let batch = append_edited_row(ws, "silver.orders", select, "idempotency_key", key).await;
    batch.column_by_name("occurred_at").unwrap().as_primitive::<TimestampMicrosecondType>().value(0)
}

pub(crate) fn changed(out: &str) -> usize {
    let before = out.split(" changed").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_changes_exactly_the_windows_whose_silver_changed() {
    let broker = Broker::start();
    let ws = workspace(&broker);
    ws.ingot(&["produce", "--topic", "orders", "--count", "1500"]);
    ws.ingot(&["run", "--until-caught-up"]);
    let at = add_silver_order(&ws).await;
    let day = at.div_euclid(86_400_000_000) * 86_400;
    let fmt =
        |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let (from, to) = (fmt(day), fmt(day + 86_400));
    let log = ws.dir.path().join("lineage.jsonl");
    let env = [("INGOT_LINEAGE__TRANSPORT", "file"), ("INGOT_LINEAGE__PATH", log.to_str().unwrap())];
    let args = ["backfill", "gold.revenue_hourly", "--from", &from, "--to", &to];
    let (ok, out, err) = ws.try_ingot_with_env(&args, &env);
    assert!(ok, "{out}\n{err}");
    assert_eq!(changed(&out), 1, "exactly the corrected hour × currency: {out}");
    // Gold now agrees with silver again, and a second backfill changes nothing.
    assert_consistent_gold_only(&ws).await;
    let before = snapshot_ids(&ws).await;
    let (ok, out, err) = ws.try_ingot_with_env(&args, &env);
    assert!(ok, "{err}");
    assert_eq!(changed(&out), 0, "{out}");
    assert!(out.contains("nothing to commit"), "{out}");
    assert_eq!(snapshot_ids(&ws).await, before);
    // Both runs reported valid lineage.
    let events: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    crate::lineage::assert_valid(&events);
    let runs = crate::lineage::assert_run_cycles(&events);
    assert_eq!(runs["pipeline.backfill_revenue_hourly"].len(), 2);
}

/// gold.revenue_hourly equals an aggregation of silver as it is now.
pub(crate) async fn assert_consistent_gold_only(ws: &Workspace) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let expected = query(
        &lake,
        "SELECT CAST(to_unixtime(date_trunc('hour', occurred_at)) AS BIGINT), currency, count(*), CAST(sum(total_amount) * 100 AS BIGINT) FROM silver.orders GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    let actual = query(
        &lake,
        "SELECT CAST(to_unixtime(window_start) AS BIGINT), currency, orders, CAST(revenue * 100 AS BIGINT) FROM gold.revenue_hourly ORDER BY 1, 2",
    )
    .await;
    let flat = |batches: &[RecordBatch]| -> Vec<(i64, String, i64, i64)> {
        batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).map(move |r| (int(b, 0, r), text(b, 1, r), int(b, 2, r), int(b, 3, r)))
            })
            .collect()
    };
    assert_eq!(flat(&actual), flat(&expected));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_missed_while_down_runs_once_on_start() {
    let broker = Broker::start();
    let schedule = "[scheduler]\nstate_file = \"state.json\"\n\n[[schedule]]\nname = \"hourly-maintain\"\ncron = \"0 * * * *\"\naction = \"maintain\"\ntable = \"bronze.orders\"\n";
    let ws = Workspace::new(
        &broker,
        &demo_contracts(),
        500,
        &format!("{ORDERS_TOPIC}\n{}\n{schedule}", transforms_toml()),
    );
    ws.ingot(&["produce", "--topic", "orders", "--count", "300"]);
    ws.ingot(&["run", "--until-caught-up"]);
    // The service was last up three hours ago: three hourly runs were missed.
    let state = ws.dir.path().join("state.json");
    let last = chrono::Utc::now() - chrono::Duration::hours(3);
    std::fs::write(&state, serde_json::json!({ "hourly-maintain": last.to_rfc3339() }).to_string()).unwrap();
    let log = ws.dir.path().join("lineage.jsonl");
    let env = [("INGOT_LINEAGE__TRANSPORT", "file"), ("INGOT_LINEAGE__PATH", log.to_str().unwrap())];
    let mut service = ws.spawn_with_env(&["run"], &env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recorded = loop {
        let now: Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap_or_default()).unwrap_or_default();
        if let Some(at) = now["hourly-maintain"].as_str()
            && at != last.to_rfc3339()
        {
            break chrono::DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&chrono::Utc);
        }
        assert!(std::time::Instant::now() < deadline, "the missed schedule did not run");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    service.kill().unwrap();
    service.wait().unwrap();
    // It ran for the latest missed hour, once.
    let now = chrono::Utc::now();
    let hour = |t: chrono::DateTime<chrono::Utc>| t.timestamp().div_euclid(3600) * 3600;
    assert!(recorded.timestamp() == hour(now) || recorded.timestamp() == hour(now) - 3600, "{recorded}");
    let events: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e["job"]["name"] == "pipeline.maintain_bronze_orders" && e["eventType"] == "START")
        .collect();
    assert_eq!(starts.len(), 1, "one run for three missed times");
    let nominal = starts[0]["run"]["facets"]["nominalTime"]["nominalStartTime"].as_str().unwrap();
    assert_eq!(chrono::DateTime::parse_from_rfc3339(nominal).unwrap().timestamp(), recorded.timestamp());
    crate::lineage::assert_valid(&events);

    // What ran is on the lease table too: the next coordinator — an instance whose own
    // state file is three hours stale, from when it last coordinated — does not run it again.
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let shared =
        lake.read_shared(&ingot_lake::parse_ident("ingot.leases").unwrap(), "schedule.").await.unwrap();
    assert_eq!(shared, [("schedule.hourly-maintain".to_string(), recorded.to_rfc3339())]);
    std::fs::write(&state, serde_json::json!({ "hourly-maintain": last.to_rfc3339() }).to_string()).unwrap();
    // The killed service's lease runs out first (5 s in tests), so the next one coordinates
    // from its first look at the schedule.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let mut next = ws.spawn_with_env(&["run"], &env);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(terminate(&mut next), "{}", ws.spawned_logs());
    let maintained = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("pipeline.maintain_bronze_orders") && l.contains("\"START\""))
        .count();
    if hour(chrono::Utc::now()) == recorded.timestamp() {
        assert_eq!(maintained, 1, "the next coordinator ran the schedule again");
    }
}

/// Someone slips a file into gold: one more row for an existing window, other numbers.
/// Returns the window's currency.
async fn tamper_gold(ws: &Workspace) -> String {
    let orders = std::sync::Arc::new(arrow_array::Int64Array::from(vec![999_999]));
    let select = "SELECT * FROM gold.revenue_hourly ORDER BY window_start, currency LIMIT 1";
    let batch = append_edited_row(ws, "gold.revenue_hourly", select, "orders", orders).await;
    text(&batch, 1, 0)
}

pub(crate) fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_matches_untouched_gold_and_finds_a_tampered_window() {
    let broker = Broker::start();
    let ws = workspace(&broker);
    first_round_then_late_events(&ws, "9");
    ws.ingot(&["run", "--until-caught-up"]);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let untouched = now_text();
    let log = ws.dir.path().join("lineage.jsonl");
    let env = [("INGOT_LINEAGE__TRANSPORT", "file"), ("INGOT_LINEAGE__PATH", log.to_str().unwrap())];
    let (ok, out, err) = ws.try_ingot_with_env(
        &["replay", "gold.revenue_hourly", "--as-of", &untouched, "--write-to", "audit.revenue_hourly"],
        &env,
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("2 silver runs replayed")
            && out.contains("windows different: 0")
            && out.contains("MATCH"),
        "{out}"
    );
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let kept = query(&lake, "SELECT count(*) FROM audit.revenue_hourly").await;
    let gold = query(&lake, "SELECT count(*) FROM gold.revenue_hourly").await;
    assert_eq!(int(&kept[0], 0, 0), int(&gold[0], 0, 0), "--write-to keeps the recomputed windows");

    let currency = tamper_gold(&ws).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (ok, out, _) =
        ws.try_ingot_with_env(&["replay", "gold.revenue_hourly", "--as-of", &now_text()], &env);
    assert!(!ok, "a tampered gold table must fail the audit:\n{out}");
    assert!(out.contains("windows different: 1") && out.contains("only in gold:      0"), "{out}");
    assert!(out.contains("999999") && out.contains(&currency), "the tampered window is named:\n{out}");
    // As of before the tampering, gold still follows from its inputs.
    let (ok, out, _) = ws.try_ingot(&["replay", "gold.revenue_hourly", "--as-of", &untouched]);
    assert!(ok, "{out}");

    // Each replay is a lineage run under its pipeline run: the verdict rides on the gold input
    // as a data-quality assertion, the kept table is its output, and the events are valid.
    let events: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    crate::lineage::assert_valid(&events);
    let runs = crate::lineage::assert_run_cycles(&events);
    let replays = &runs["pipeline.replay_revenue_hourly"];
    assert_eq!(replays.len(), 2, "{replays:?}");
    let verdict = |run: &Vec<Value>| {
        let end = run.last().unwrap();
        assert_eq!(end["eventType"], "COMPLETE", "{end}");
        let assertions = &end["inputs"][1]["inputFacets"]["dataQualityAssertions"]["assertions"];
        (assertions[0]["assertion"].clone(), assertions[0]["success"].clone(), end["outputs"].clone())
    };
    let (name, success, outputs) = verdict(&replays[0]);
    assert_eq!((name.as_str(), success.as_bool()), (Some("replay_matches"), Some(true)));
    assert_eq!(
        outputs[0]["name"].as_str().map(|n| n.ends_with("audit/revenue_hourly")),
        Some(true),
        "{outputs}"
    );
    let (_, success, _) = verdict(&replays[1]);
    assert_eq!(success.as_bool(), Some(false), "the tampered gold failed the assertion");
}
