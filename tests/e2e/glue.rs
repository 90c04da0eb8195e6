//! The lake behind AWS Glue's API (MiniStack, which enforces the `VersionId` check): the
//! whole pipeline on S3, racing writers (the version-conflict path), a commit Glue applied but
//! answered 503 to, schema evolution — with PyIceberg's `GlueCatalog` and DuckDB reading the
//! same tables.

use crate::catalog_proxy::CatalogProxy;
use crate::harness::*;
use crate::ingest::{contract_evolves_mid_stream, two_ingot_processes_race};
use crate::lake::{
    append, assert_a_lost_commit_answer_is_settled, assert_a_stale_commit_is_refused_and_rebased, create,
    ours, overwrite_rows, race_two_writers, rows,
};
use crate::s3_server::{S3Server, SECRET_ACCESS_KEY};
use crate::transforms::workspace;
use crate::whole_pipeline::run_whole_pipeline;

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_pipeline_on_s3_behind_glue_matches_a_recomputation_and_the_readers() {
    let s3 = S3Server::start();
    let broker = Broker::start();
    let (ws, _glue) = workspace(&broker).on_s3(&s3).on_glue();
    run_whole_pipeline(&ws).await;
    assert!(!ws.dir.path().join("catalog.db").exists(), "the SQL catalog was used");
    assert!(!ws.dir.path().join("warehouse").exists(), "a local warehouse appeared");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_through_glue_both_land() {
    let (ws, _glue) = Workspace::lake(None).on_glue();
    race_two_writers(&ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_commit_loses_on_the_glue_version_and_is_rebased() {
    let (ws, _glue) = Workspace::lake(None).on_glue();
    assert_a_stale_commit_is_refused_and_rebased(&ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ingot_processes_ingesting_through_glue_store_each_offset_once() {
    let broker = Broker::start();
    let (ws, _glue) = Workspace::new(&broker, &demo_contracts(), 500, ORDERS_TOPIC).on_glue();
    two_ingot_processes_race(&ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_glue_applied_but_answered_503_is_found_not_repeated() {
    let (mut ws, glue) = Workspace::lake(None).on_glue();
    let proxy = CatalogProxy::start(&glue.endpoint, CatalogProxy::glue_commit);
    ws.catalog_uri = format!("{GLUE_URI_PREFIX}{}", proxy.url);
    assert_a_lost_commit_answer_is_settled(&ws, &proxy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_cutting_in_after_ingots_check_wins_the_version_and_keeps_its_keys() {
    let (mut ws, glue) = Workspace::lake(None).on_glue();
    let proxy = CatalogProxy::start(&glue.endpoint, CatalogProxy::glue_commit);
    ws.catalog_uri = format!("{GLUE_URI_PREFIX}{}", proxy.url);
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let name = "lake.cut_in";
    create(&lake, name).await;
    let table = append(&lake, name, &rows(0..10, 0, 1)).await;
    proxy.cut_in_before_next_commit(another_engine_tags_the_entry);
    let committed = overwrite_rows(&lake, &table, "after-cut-in", &rows(0..4, 0, 5)).await;
    assert!(proxy.cut_in_done(), "the other writer's update went first");
    assert_eq!(committed.attempts, 2, "Glue refused the stale VersionId once; the second attempt landed");
    assert_eq!(ours(&lake, name, None).await, rows(0..4, 0, 5));
    let entry = glue.call("GetTable", &serde_json::json!({ "DatabaseName": "lake", "Name": "cut_in" }));
    let parameters = &entry["Table"]["Parameters"];
    assert_eq!(
        parameters["tagged_by"], "another-engine",
        "ingot's update dropped another engine's key: {entry}"
    );
    let current = lake.load(table.identifier()).await.unwrap();
    assert_eq!(parameters["metadata_location"], current.metadata_location().unwrap());
}

/// Another engine's update of the same entry, made from ingot's pending one: the metadata
/// pointer left where it was, one key of its own added, same `VersionId`.
fn another_engine_tags_the_entry(ingots: &[u8]) -> Vec<u8> {
    let mut request: serde_json::Value = serde_json::from_slice(ingots).unwrap();
    let parameters = &mut request["TableInput"]["Parameters"];
    parameters["metadata_location"] = parameters["previous_metadata_location"].clone();
    parameters["tagged_by"] = "another-engine".into();
    serde_json::to_vec(&request).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_added_to_the_contract_evolves_the_schema_through_glue() {
    let broker = Broker::start();
    contract_evolves_mid_stream(&broker, Workspace::on_glue).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_secret_never_shows_and_a_dead_glue_is_one_line() {
    let broker = Broker::start();
    let (ws, glue) = workspace(&broker).on_glue();
    ws.ingot(&["produce", "--topic", "orders", "--count", "200"]);
    let debug = [("INGOT_LOG", "debug")];
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &debug);
    assert!(ok, "{out}\n{err}");
    let (ok, tables, tables_err) = ws.try_ingot_with_env(&["tables"], &debug);
    assert!(ok && tables.contains("bronze.orders"), "{tables}\n{tables_err}");
    drop(glue);
    let (ok, dead_out, dead_err) = ws.try_ingot_with_env(&["tables"], &debug);
    assert!(!ok && dead_err.contains("reach Glue at"), "{dead_out}\n{dead_err}");
    for text in [&out, &err, &tables, &tables_err, &dead_out, &dead_err] {
        assert!(!text.contains(SECRET_ACCESS_KEY), "the secret was printed:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_athena_cannot_read_is_refused_on_glue_by_name() {
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use ingot_lake::{Lake, TableSpec, parse_ident};
    let spec = |name: &str, time_column: Option<&str>| {
        let mut fields = vec![Field::new("id", DataType::Int64, false)];
        fields.extend(time_column.map(|c| Field::new(c, DataType::Time64(TimeUnit::Microsecond), true)));
        TableSpec { ident: parse_ident(name).unwrap(), schema: Schema::new(fields), partition_day: None }
    };
    let (ws, _glue) = Workspace::lake(None).on_glue();
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let err = lake.ensure_table(&spec("gold.hours", Some("opens_at"))).await.unwrap_err().to_string();
    assert!(err.contains("gold.hours") && err.contains("`opens_at`") && err.contains("Athena"), "{err}");
    assert!(!lake.exists(&parse_ident("gold.hours").unwrap()).await.unwrap(), "nothing was created");
    // Nor can a table that exists gain such a column.
    lake.ensure_table(&spec("gold.shops", None)).await.unwrap();
    let err = lake.ensure_table(&spec("gold.shops", Some("closes_at"))).await.unwrap_err().to_string();
    assert!(err.contains("gold.shops") && err.contains("`closes_at`"), "{err}");
    // The same table on the SQL catalog (read by Trino, Spark, DuckDB) is created.
    let on_sql = Workspace::lake(None);
    let sql = Lake::open(&on_sql.catalog()).await.unwrap();
    sql.ensure_table(&spec("gold.hours", Some("opens_at"))).await.unwrap();
}
