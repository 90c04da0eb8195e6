//! The lake behind an Iceberg REST catalog (rustberg): the whole pipeline, racing writers
//! (the 409 path), a commit the server applied but answered 503 to, and maintenance — with PyIceberg's
//! `RestCatalog` and DuckDB reading the same tables.

use crate::catalog_proxy::CatalogProxy;
use crate::harness::*;
use crate::ingest::{contract_evolves_mid_stream, two_ingot_processes_race};
use crate::lake::{
    assert_a_lost_commit_answer_is_settled, assert_a_stale_commit_is_refused_and_rebased, expire_and_clean,
    expire_and_clean_locally, local_file, race_two_writers,
};
use crate::s3_server::S3Server;
use crate::transforms::workspace;
use crate::whole_pipeline::run_whole_pipeline;

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_pipeline_on_a_rest_catalog_matches_a_recomputation_and_the_readers() {
    let broker = Broker::start();
    let (ws, _server) = workspace(&broker).on_rest();
    run_whole_pipeline(&ws).await;
    assert!(!ws.dir.path().join("catalog.db").exists(), "the SQL catalog was used");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_pipeline_on_s3_behind_a_rest_catalog_matches_a_recomputation_and_the_readers() {
    let s3 = S3Server::start();
    let broker = Broker::start();
    let (ws, _server) = workspace(&broker).on_s3(&s3).on_rest();
    run_whole_pipeline(&ws).await;
    assert!(!ws.dir.path().join("warehouse").exists(), "a local warehouse appeared");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_through_rest_both_land() {
    let (ws, _server) = Workspace::lake(None).on_rest();
    race_two_writers(&ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_commit_gets_a_409_and_is_rebased() {
    let (ws, _server) = Workspace::lake(None).on_rest();
    assert_a_stale_commit_is_refused_and_rebased(&ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ingot_processes_ingesting_through_rest_store_each_offset_once() {
    let broker = Broker::start();
    let (ws, _server) = Workspace::new(&broker, &demo_contracts(), 500, ORDERS_TOPIC).on_rest();
    two_ingot_processes_race(&ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_and_orphan_cleanup_through_rest_delete_what_they_delete_on_sql() {
    let (ws, _server) = Workspace::lake(None).on_rest();
    let put = |location: &str, body: &[u8]| std::fs::write(local_file(location), body).unwrap();
    let through_rest = expire_and_clean(&ws, put, |location| local_file(location).exists()).await;
    assert_eq!(through_rest, expire_and_clean_locally().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_that_requires_a_token_gets_it_and_it_never_shows() {
    let broker = Broker::start();
    let token = "rb_ingottesttoken-must-never-print";
    let (ws, _server) = workspace(&broker).on_rest_requiring(token);
    ws.ingot(&["produce", "--topic", "orders", "--count", "200"]);
    let with = |value: &'static str| {
        [
            ("INGOT_CATALOG__REST__TOKEN_ENV", "INGOT_TEST_REST_TOKEN"),
            ("INGOT_TEST_REST_TOKEN", value),
            ("INGOT_LOG", "debug"),
        ]
    };
    // Without the token, and with a wrong one, the catalog refuses: one line, no retrying.
    let (ok, _, no_token) = ws.try_ingot(&["tables"]);
    assert!(!ok && no_token.contains("refused the credentials") && no_token.contains("401"), "{no_token}");
    let (ok, _, wrong) = ws.try_ingot_with_env(&["tables"], &with("rb_notthetoken-at-all"));
    assert!(!ok && wrong.contains("refused the credentials"), "{wrong}");
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &with(token));
    assert!(ok, "{out}\n{err}");
    let (ok, tables, tables_err) = ws.try_ingot_with_env(&["tables"], &with(token));
    assert!(ok && tables.contains("bronze.orders"), "{tables}\n{tables_err}");
    for text in [&out, &err, &tables, &tables_err, &no_token, &wrong] {
        assert!(!text.contains(token), "the token was printed:\n{text}");
    }
    // A variable that is not set is named, not silently ignored.
    let (ok, _, err) =
        ws.try_ingot_with_env(&["tables"], &[("INGOT_CATALOG__REST__TOKEN_ENV", "INGOT_TEST_UNSET")]);
    assert!(!ok && err.contains("catalog.rest.token_env") && err.contains("INGOT_TEST_UNSET"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_the_server_applied_but_answered_503_is_found_not_repeated() {
    let (mut ws, server) = Workspace::lake(None).on_rest();
    let proxy = CatalogProxy::start(&server.url, CatalogProxy::rest_commit);
    ws.catalog_uri = proxy.url.clone();
    assert_a_lost_commit_answer_is_settled(&ws, &proxy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_added_to_the_contract_evolves_the_schema_through_rest() {
    let broker = Broker::start();
    contract_evolves_mid_stream(&broker, Workspace::on_rest).await;
}
