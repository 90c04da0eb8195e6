//! The lake on object storage: a warehouse in an S3 bucket (moto's server) behind the SQL
//! catalog. The whole pipeline, crashes and maintenance included, must give the answers it
//! gives on a local disk; independent readers read the same tables from the bucket; a second
//! writer never overwrites a metadata file; credentials never show.

use std::time::Duration;

use ingot_lake::Lake;

use crate::harness::*;
use crate::lake::{expire_and_clean, expire_and_clean_locally, race_two_writers};
use crate::s3_server::{S3Server, SECRET_ACCESS_KEY};
use crate::transforms::workspace;
use crate::whole_pipeline::run_whole_pipeline;

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_pipeline_on_s3_matches_a_recomputation_and_the_readers() {
    let s3 = S3Server::start();
    let broker = Broker::start();
    let ws = workspace(&broker).on_s3(&s3);
    run_whole_pipeline(&ws).await;
    assert!(!ws.dir.path().join("warehouse").exists(), "a local warehouse appeared");
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    let table = lake.load(&ingot_lake::parse_ident("gold.revenue_hourly").unwrap()).await.unwrap();
    assert!(table.metadata().location().starts_with("s3://"), "{}", table.metadata().location());
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_failures_are_clear_and_never_show_the_secret() {
    let s3 = S3Server::start();
    let broker = Broker::start();
    let ws = workspace(&broker).on_s3(&s3);
    ws.ingot(&["produce", "--topic", "orders", "--count", "300"]);
    let env = [("INGOT_LOG", "debug")];
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &env);
    assert!(ok, "{out}\n{err}");
    let (ok, tables, err_tables) = ws.try_ingot_with_env(&["tables"], &env);
    assert!(ok && tables.contains("bronze.orders"), "{tables}\n{err_tables}");
    for text in [&out, &err, &tables, &err_tables] {
        assert!(!text.contains(SECRET_ACCESS_KEY), "the secret key was printed:\n{text}");
    }

    // A bucket that does not exist: one clear start-up error naming the warehouse.
    let missing = [("INGOT_CATALOG__WAREHOUSE", "s3://no-such-bucket/wh")];
    let (ok, out, err) = ws.try_ingot_with_env(&["tables"], &missing);
    assert!(!ok, "{out}");
    assert!(err.contains("s3://no-such-bucket/wh"), "{err}");
    assert!(!err.contains(SECRET_ACCESS_KEY) && !out.contains(SECRET_ACCESS_KEY), "{err}");

    // A server that is down: the same, within the probe's few seconds, not a retry loop.
    drop(s3);
    let started = std::time::Instant::now();
    let (ok, _, err) = ws.try_ingot(&["tables"]);
    assert!(!ok);
    assert!(err.contains("warehouse") && err.contains("s3://"), "{err}");
    assert!(!err.contains(SECRET_ACCESS_KEY), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "gave up after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_and_orphan_cleanup_on_s3_delete_what_they_delete_locally() {
    let s3 = S3Server::start();
    let ws = Workspace::lake(None).on_s3(&s3);
    let on_s3 =
        expire_and_clean(&ws, |location, body| s3.put(location, body), |location| s3.exists(location)).await;
    assert_eq!(on_s3, expire_and_clean_locally().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_racing_on_s3_both_land() {
    let s3 = S3Server::start();
    race_two_writers(&Workspace::lake(None).on_s3(&s3)).await;
}
