//! The lake commit layer on a real catalog: overwrite, compaction, racing writers, expiry and
//! orphan cleanup, time travel — each checked by ingot and by PyIceberg and DuckDB.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use ingot_lake::{
    COMMIT_ID_PROPERTY, CompactOptions, ExpireOptions, Lake, OFFSETS_PROPERTY, OnConflict, OrphanOptions,
    Overwrite, Replaced, SourceOffsets, Table, TableSpec, parse_ident, read_table, table_arrow_schema,
    write_data_files,
};

use crate::catalog_proxy::CatalogProxy;
use crate::harness::*;
use crate::postgres::Postgres;
use crate::readers::{At, Engine, read_rows};

const DAY_US: i64 = 86_400_000_000;
/// 2026-11-20 00:00 UTC.
const DAY0_US: i64 = 1_795_132_800_000_000;

/// (id, day index, value) — one row of the test table.
pub(crate) type Row = (i64, i64, i64);

pub(crate) async fn create(lake: &Lake, name: &str) -> Table {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), false),
        Field::new("value", DataType::Int64, true),
        Field::new("label", DataType::Utf8, true),
    ]);
    let spec = TableSpec { ident: parse_ident(name).unwrap(), schema, partition_day: Some("ts".into()) };
    lake.ensure_table(&spec).await.unwrap().0
}

fn batch(table: &Table, rows: &[Row]) -> RecordBatch {
    let schema = Arc::new(table_arrow_schema(table).unwrap());
    let ts = TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| DAY0_US + r.1 * DAY_US + r.0))
        .with_timezone("+00:00");
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(ts),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("row-{}", r.0)))),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// An append through ingot's ingest path (iceberg-rust's fast append, pinned).
/// Each append records source offsets as ingest does: partition 0 up to its last id + 1.
pub(crate) async fn append(lake: &Lake, name: &str, rows: &[Row]) -> Table {
    let table = lake.load(&parse_ident(name).unwrap()).await.unwrap();
    let files = write_data_files(&table, &[batch(&table, rows)]).await.unwrap();
    let mut offsets = SourceOffsets::of_table(&table).unwrap();
    offsets.advance("events", 0, rows.iter().map(|r| r.0).max().unwrap_or(0) + 1);
    let summary = [
        (COMMIT_ID_PROPERTY.to_string(), format!("append-{}", uuid_like())),
        (OFFSETS_PROPERTY.to_string(), offsets.to_json()),
    ]
    .into();
    lake.commit_append(&table, files, summary).await.unwrap()
}

fn uuid_like() -> String {
    format!("{:x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    h.finish()
}

fn rows_of(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let id = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        let ts = b.column_by_name("ts").unwrap().as_primitive::<TimestampMicrosecondType>();
        let value = b.column_by_name("value").unwrap().as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((id.value(i), (ts.value(i) - DAY0_US).div_euclid(DAY_US), value.value(i)));
        }
    }
    out.sort();
    out
}

pub(crate) async fn ours(lake: &Lake, name: &str, snapshot: Option<i64>) -> Vec<Row> {
    let table = lake.load(&parse_ident(name).unwrap()).await.unwrap();
    rows_of(&read_table(&table, snapshot).await.unwrap())
}

/// Both independent readers return exactly `expected` for the table at `at`.
fn assert_readers_see(ws: &Workspace, name: &str, at: At, expected: &[Row]) {
    let expected: Vec<Vec<i64>> =
        expected.iter().map(|r| vec![r.0, DAY0_US + r.1 * DAY_US + r.0, r.2]).collect();
    for engine in [Engine::PyIceberg, Engine::DuckDb] {
        let (_, rows) = read_rows(ws, engine, name, "id,ts,value", at);
        assert_eq!(rows.as_deref(), Some(&expected[..]), "{engine:?} reading {name} at {at:?}");
    }
}

pub(crate) fn rows(ids: std::ops::Range<i64>, day: i64, factor: i64) -> Vec<Row> {
    ids.map(|id| (id, day, id * factor)).collect()
}

/// Overwrite of the partitions the new rows fall in.
fn overwrite_written(commit_id: impl Into<String>, on_conflict: OnConflict) -> Overwrite {
    Overwrite {
        replaced: Replaced::PartitionsWritten { also: HashSet::new() },
        commit_id: commit_id.into(),
        properties: Default::default(),
        on_conflict,
    }
}

fn summary(table: &Table, key: &str) -> String {
    let snapshot = table.metadata().current_snapshot().unwrap();
    snapshot
        .summary()
        .additional_properties
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("summary lacks {key}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_replaces_only_the_chosen_partitions() {
    let ws = Workspace::lake(None);
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.events";
    create(&lake, name).await;
    let old: Vec<Row> = [rows(1..101, 0, 1), rows(101..201, 1, 1), rows(201..301, 2, 1)].concat();
    let before = append(&lake, name, &old).await;
    let before_id = before.metadata().current_snapshot_id().unwrap();

    let new_day1 = rows(101..151, 1, 10);
    let request = Overwrite {
        replaced: Replaced::PartitionsWritten { also: HashSet::new() },
        commit_id: "overwrite-day1".into(),
        properties: [("ingot.source-snapshots".to_string(), "test".to_string())].into(),
        on_conflict: OnConflict::Fail,
    };
    let committed = lake.overwrite(&before, &[batch(&before, &new_day1)], &request).await.unwrap();
    let after = committed.table;
    let snapshot = after.metadata().current_snapshot().unwrap();
    assert_eq!(snapshot.summary().operation.as_str(), "overwrite");
    assert_eq!(snapshot.parent_snapshot_id(), Some(before_id));
    assert_eq!(summary(&after, "deleted-records"), "100");
    assert_eq!(summary(&after, "added-records"), "50");
    assert_eq!(summary(&after, "deleted-data-files"), "1");
    assert_eq!(summary(&after, "added-data-files"), "1");
    assert_eq!(summary(&after, "total-records"), "250");
    assert_eq!(summary(&after, "total-data-files"), "3");
    assert_eq!(summary(&after, "ingot.source-snapshots"), "test");
    let total_size: u64 = summary(&after, "total-files-size").parse().unwrap();
    assert!(total_size > 0);

    let expected: Vec<Row> = {
        let mut r = [rows(1..101, 0, 1), new_day1.clone(), rows(201..301, 2, 1)].concat();
        r.sort();
        r
    };
    assert_eq!(ours(&lake, name, None).await, expected);
    assert_eq!(ours(&lake, name, Some(before_id)).await, old, "time travel to the previous snapshot");
    assert_readers_see(&ws, name, At::Current, &expected);
    assert_readers_see(&ws, name, At::Snapshot(before_id), &old);

    // The same through `ingot query`, with Trino's syntax.
    let sql =
        format!("SELECT id, value FROM {name} FOR VERSION AS OF {before_id} WHERE id > 100 AND id <= 200");
    let out = ws.ingot(&["query", &sql, "--format", "json"]);
    let mut seen: Vec<(i64, i64)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_i64().unwrap(), v["value"].as_i64().unwrap())
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (101..201).map(|i| (i, i)).collect::<Vec<_>>());

    // A second overwrite from the stale table state is refused, not silently applied.
    let late = Overwrite { commit_id: "late".into(), ..request };
    let err = lake.overwrite(&before, &[batch(&before, &rows(1..5, 0, 7))], &late).await.unwrap_err();
    assert!(matches!(err, ingot_lake::LakeError::CommitConflict { .. }), "{err}");
    assert_eq!(ours(&lake, name, None).await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_keeps_every_row_and_an_append_that_raced_it() {
    let ws = Workspace::lake(None);
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.small_files";
    create(&lake, name).await;
    let mut all = Vec::new();
    for i in 0..200 {
        let chunk = rows(i * 10..i * 10 + 10, i % 2, 3);
        append(&lake, name, &chunk).await;
        all.extend(chunk);
    }
    all.sort();
    let before = lake.load(&parse_ident(name).unwrap()).await.unwrap();
    let before_id = before.metadata().current_snapshot_id().unwrap();
    assert_eq!(summary(&before, "total-data-files"), "200");

    let dry = lake.compact(&before, &CompactOptions { dry_run: true, ..Default::default() }).await.unwrap();
    assert_eq!(dry.groups.len(), 2);
    assert_eq!(dry.groups.iter().map(|g| g.input_files).sum::<usize>(), 200);
    assert_eq!(
        lake.load(before.identifier()).await.unwrap().metadata().current_snapshot_id(),
        Some(before_id)
    );

    // An append lands after compaction read the table and before it commits.
    let raced = rows(5000..5010, 1, 3);
    append(&lake, name, &raced).await;
    let report = lake.compact(&before, &CompactOptions::default()).await.unwrap();
    assert!(report.manifests_merged, "200 manifests are merged");
    assert_eq!(report.attempts, 2, "the first swap lost to the append and was rebased");
    let after = lake.load(before.identifier()).await.unwrap();
    let snapshot = after.metadata().current_snapshot().unwrap();
    assert_eq!(snapshot.summary().operation.as_str(), "replace");
    assert_eq!(Some(snapshot.snapshot_id()), report.snapshot_id);
    let files: usize = summary(&after, "total-data-files").parse().unwrap();
    assert!(files <= 3, "200 small files + 1 raced → {files}");
    assert_eq!(summary(&after, "total-records"), "2010");
    assert_eq!(
        SourceOffsets::of_table(&after).unwrap().next("events", 0),
        Some(5010),
        "a replace carries the source offsets of the append it was rebased onto"
    );

    let mut expected = all.clone();
    expected.extend(raced);
    expected.sort();
    assert_eq!(ours(&lake, name, None).await, expected, "same rows, raced append kept");
    assert_eq!(ours(&lake, name, Some(before_id)).await, all);
    assert_readers_see(&ws, name, At::Current, &expected);
    assert_readers_see(&ws, name, At::Snapshot(before_id), &all);
    let manifests = after.manifest_list_reader(snapshot).load().await.unwrap().entries().len();
    assert!(manifests <= 3, "manifests after merge: {manifests}");
}

pub(crate) async fn race_two_writers(ws: &Workspace) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.raced";
    create(&lake, name).await;
    append(&lake, name, &rows(0..10, 9, 1)).await;
    let writer = |first_day: i64| {
        let lake = lake.clone();
        async move {
            let mut attempts = 0;
            for round in 0..8 {
                let day = first_day + round * 2;
                let table = lake.load(&parse_ident(name).unwrap()).await.unwrap();
                let request =
                    overwrite_written(format!("writer-{first_day}-{round}"), OnConflict::RebaseIfUntouched);
                let rows = rows(day * 1000..day * 1000 + 20, day, 1);
                attempts += lake.overwrite(&table, &[batch(&table, &rows)], &request).await.unwrap().attempts;
            }
            attempts
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(writer(20)), tokio::spawn(writer(21)));
    let attempts = a.unwrap() + b.unwrap();
    let table = lake.load(&parse_ident(name).unwrap()).await.unwrap();
    let ids: BTreeMap<String, usize> = table
        .metadata()
        .snapshots()
        .filter_map(|s| s.summary().additional_properties.get(COMMIT_ID_PROPERTY).cloned())
        .map(|id| (id, 1))
        .collect();
    for first_day in [20, 21] {
        for round in 0..8 {
            assert!(
                ids.contains_key(&format!("writer-{first_day}-{round}")),
                "commit {first_day}/{round} missing from {:?}",
                ids.keys()
            );
        }
    }
    let got = ours(&lake, name, None).await;
    assert_eq!(got.len(), 10 + 16 * 20, "every row of both writers ({attempts} attempts for 16 commits)");
    let expected: Vec<Vec<i64>> = got.iter().map(|r| vec![r.0, DAY0_US + r.1 * DAY_US + r.0, r.2]).collect();
    let (_, theirs) = read_rows(ws, Engine::PyIceberg, name, "id,ts,value", At::Current);
    assert_eq!(theirs.unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_on_sqlite_both_land() {
    race_two_writers(&Workspace::lake(None)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_on_postgres_both_land() {
    let postgres = Postgres::start();
    race_two_writers(&Workspace::lake(Some(&postgres.uri))).await;
}

/// What maintenance removed, in terms that do not depend on where the warehouse is: snapshots
/// expired, files deleted per folder (`data`, `metadata`), orphans by file name.
#[derive(Debug, PartialEq)]
pub(crate) struct Removed {
    expired: usize,
    deleted: BTreeMap<String, usize>,
    orphans: Vec<String>,
}

/// Six appends and an overwrite, two stray files; expiry keeps the newest two snapshots and
/// orphan cleanup removes only the strays, once they are older than the safety age. `put`
/// writes a file at a location and `exists` looks for one, on whatever storage `ws` uses.
pub(crate) async fn expire_and_clean(
    ws: &Workspace,
    put: impl Fn(&str, &[u8]),
    exists: impl Fn(&str) -> bool,
) -> Removed {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.retained";
    create(&lake, name).await;
    for i in 0..6 {
        append(&lake, name, &rows(i * 10..i * 10 + 10, i % 3, 1)).await;
    }
    let table = lake.load(&parse_ident(name).unwrap()).await.unwrap();
    let request = overwrite_written("rewrite-day0", OnConflict::Fail);
    lake.overwrite(&table, &[batch(&table, &rows(0..5, 0, 2))], &request).await.unwrap();
    let table = lake.load(&parse_ident(name).unwrap()).await.unwrap();
    let expected = ours(&lake, name, None).await;
    let strays = [
        format!("{}/data/stray.parquet", table.metadata().location()),
        format!("{}/metadata/stray.avro", table.metadata().location()),
    ];
    strays.iter().for_each(|stray| put(stray, b"not referenced"));

    // Dry runs change nothing.
    let out =
        ws.ingot(&["maintain", "expire", name, "--older-than", "0s", "--retain-last", "2", "--dry-run"]);
    assert!(out.contains("would expire 5 snapshots"), "{out}");
    assert_eq!(lake.load(table.identifier()).await.unwrap().metadata().snapshots().len(), 7);

    let expired = lake
        .expire_snapshots(
            &table,
            &ExpireOptions { older_than: Duration::ZERO, retain_last: 2, dry_run: false },
        )
        .await
        .unwrap();
    assert_eq!(expired.expired_snapshots.len(), 5);
    assert!(!expired.deleted_files.is_empty(), "the overwritten day-0 files go");
    let table = lake.load(table.identifier()).await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), 2);
    let mut deleted = BTreeMap::new();
    for path in &expired.deleted_files {
        assert!(!exists(path), "{path} still there");
        let folder = path.strip_prefix(table.metadata().location()).unwrap().split('/').nth(1).unwrap();
        *deleted.entry(folder.to_string()).or_insert(0) += 1;
    }

    // Younger than the safety age: kept.
    let out = ws.ingot(&["maintain", "clean-orphans", name, "--older-than", "1h"]);
    assert!(out.contains("did delete 0 orphan files") && out.contains("(2 unreferenced"), "{out}");
    assert!(strays.iter().all(|s| exists(s)), "a file younger than the safety age is kept");
    let listed = ws.ingot(&["maintain", "clean-orphans", name, "--older-than", "0s", "--dry-run"]);
    let orphans = listed
        .lines()
        .filter_map(|l| l.trim().strip_prefix(table.metadata().location()))
        .map(|rest| rest.to_string())
        .collect::<Vec<_>>();
    let out = ws.ingot(&["maintain", "clean-orphans", name, "--older-than", "0s"]);
    assert!(out.contains("did delete 2 orphan files"), "{out}");
    assert!(strays.iter().all(|s| !exists(s)), "unreferenced files deleted");

    // Every live snapshot still reads completely, by ingot and both readers.
    for snapshot in table.metadata().snapshots() {
        let rows = ours(&lake, name, Some(snapshot.snapshot_id())).await;
        assert_readers_see(ws, name, At::Snapshot(snapshot.snapshot_id()), &rows);
    }
    assert_eq!(ours(&lake, name, None).await, expected);
    // Nothing unreferenced is left.
    let report = lake
        .clean_orphans(&table, &OrphanOptions { older_than: Duration::ZERO, dry_run: true })
        .await
        .unwrap();
    assert_eq!(report.orphans, Vec::<String>::new());
    Removed { expired: expired.expired_snapshots.len(), deleted, orphans }
}

pub(crate) fn local_file(location: &str) -> std::path::PathBuf {
    location.trim_start_matches("file://").into()
}

pub(crate) async fn expire_and_clean_locally() -> Removed {
    let ws = Workspace::lake(None);
    let put = |location: &str, body: &[u8]| std::fs::write(local_file(location), body).unwrap();
    expire_and_clean(&ws, put, |location| local_file(location).exists()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn expire_and_clean_keep_live_files_and_drop_the_rest() {
    let removed = expire_and_clean_locally().await;
    assert_eq!(removed.orphans, vec!["/data/stray.parquet", "/metadata/stray.avro"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamp_as_of_matches_pyiceberg() {
    let ws = Workspace::lake(None);
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.history";
    create(&lake, name).await;
    let mut stamps = Vec::new();
    for i in 0..3 {
        let table = append(&lake, name, &rows(i * 10..i * 10 + 10, 0, 1)).await;
        stamps.push(table.metadata().current_snapshot().unwrap().timestamp_ms());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let instants = [stamps[0] + 10, stamps[1], stamps[1] + 5, stamps[2] + 60_000];
    for ms in instants {
        let at = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%d %H:%M:%S%.3f UTC");
        let sql = format!("SELECT id, value FROM {name} FOR TIMESTAMP AS OF TIMESTAMP '{at}'");
        let out = ws.ingot(&["query", &sql, "--format", "json"]);
        let mut ingot_ids: Vec<i64> = out
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_i64().unwrap())
            .collect();
        ingot_ids.sort();
        let (_, theirs) = read_rows(&ws, Engine::PyIceberg, name, "id", At::Millis(ms));
        let theirs: Vec<i64> =
            theirs.expect("pyiceberg finds a snapshot").into_iter().map(|r| r[0]).collect();
        assert_eq!(ingot_ids, theirs, "as of {at}");
    }
    // Before the first snapshot: an error naming the first snapshot's time; PyIceberg finds none.
    let ms = stamps[0] - 1000;
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%d %H:%M:%S%.3f UTC");
    let (ok, _, err) =
        ws.try_ingot(&["query", &format!("SELECT * FROM {name} FOR TIMESTAMP AS OF TIMESTAMP '{at}'")]);
    assert!(!ok);
    assert!(err.contains("first snapshot is at"), "{err}");
    assert_eq!(read_rows(&ws, Engine::PyIceberg, name, "id", At::Millis(ms)).1, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_whose_answer_was_lost_is_found_not_repeated() {
    assert_lost_answer_is_found(&Workspace::lake(None)).await;
}

/// A commit that landed but whose answer was lost is settled from the table's history: one
/// attempt, one new snapshot.
async fn assert_lost_answer_is_found(ws: &Workspace) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.lost_answer";
    create(&lake, name).await;
    let table = append(&lake, name, &rows(0..10, 0, 1)).await;
    let snapshots_before = table.metadata().snapshots().len();
    lake.lose_next_commit_answers(1);
    let committed = overwrite_rows(&lake, &table, "answer-lost", &rows(0..4, 0, 5)).await;
    assert_eq!(committed.attempts, 1, "settled from the history, not retried");
    let table = lake.load(table.identifier()).await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), snapshots_before + 1, "exactly one new snapshot");
    assert_eq!(ours(&lake, name, None).await, rows(0..4, 0, 5));
}

/// An overwrite based on a table another commit has moved since: the catalog refuses it (a
/// 409 from a REST catalog, no row updated in a SQL one) and ingot rebases it once.
pub(crate) async fn assert_a_stale_commit_is_refused_and_rebased(ws: &Workspace) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.stale";
    create(&lake, name).await;
    let stale = append(&lake, name, &rows(0..10, 0, 1)).await;
    let first = overwrite_written("first", OnConflict::RebaseIfUntouched);
    let landed = lake.overwrite(&stale, &[batch(&stale, &rows(100..110, 1, 1))], &first).await.unwrap();
    assert_eq!(landed.attempts, 1);
    let second = overwrite_written("second", OnConflict::RebaseIfUntouched);
    let landed = lake.overwrite(&stale, &[batch(&stale, &rows(200..210, 2, 1))], &second).await.unwrap();
    assert_eq!(landed.attempts, 2, "refused once as stale, then rebased");
    let mut expected = rows(0..10, 0, 1);
    expected.extend(rows(100..110, 1, 1));
    expected.extend(rows(200..210, 2, 1));
    assert_eq!(ours(&lake, name, None).await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_commit_on_sqlite_is_refused_and_rebased() {
    assert_a_stale_commit_is_refused_and_rebased(&Workspace::lake(None)).await;
}

/// Overwrites the partitions `rows` fall in with `rows`, rebasing over commits that left them
/// alone.
pub(crate) async fn overwrite_rows(
    lake: &Lake,
    table: &Table,
    commit_id: &str,
    rows: &[Row],
) -> ingot_lake::Committed {
    let request = overwrite_written(commit_id, OnConflict::RebaseIfUntouched);
    lake.overwrite(table, &[batch(table, rows)], &request).await.unwrap()
}

/// A commit the catalog applied but whose answer `proxy` replaced with a 503 is found in the
/// table's history, not repeated: one new snapshot, the rows as written. `ws` reaches the
/// catalog through the proxy.
pub(crate) async fn assert_a_lost_commit_answer_is_settled(ws: &Workspace, proxy: &CatalogProxy) {
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.lost_answer";
    create(&lake, name).await;
    let table = append(&lake, name, &rows(0..10, 0, 1)).await;
    let snapshots_before = table.metadata().snapshots().len();
    proxy.lose_next_commit_answers(1);
    let committed = overwrite_rows(&lake, &table, "answer-lost", &rows(0..4, 0, 5)).await;
    assert_eq!(proxy.answers_still_to_lose(), 0, "the catalog's answer was replaced by a 503");
    assert_eq!(committed.attempts, 1, "settled from the history, not retried");
    let table = lake.load(table.identifier()).await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), snapshots_before + 1, "exactly one new snapshot");
    assert_eq!(ours(&lake, name, None).await, rows(0..4, 0, 5));
}
