//! The HTTP API (`ingot serve`) on a real catalog: queries as of a time or snapshot answer
//! like `ingot query`; writes, DDL and file access are refused; the token is enforced; an
//! oversized result gets a clear error.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use ingot_lake::Lake;
use serde_json::{Value, json};

use crate::harness::*;
use crate::lake::{append, create, rows};

struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(ws: &Workspace, token: &str) -> Server {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let child = ws.spawn_with_env(&["serve", "--listen", &listen], &[("INGOT_API_TOKEN", token)]);
    let base = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "ingot serve did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server { child, base }
}

fn ids(body: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = body
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn http_api_answers_like_ingot_query_and_refuses_everything_else() {
    let ws = Workspace::lake(None);
    let mut config = std::fs::read_to_string(&ws.config).unwrap();
    config.push_str("\n[query]\nmax_rows = 50\n");
    std::fs::write(&ws.config, config).unwrap();
    let lake = Lake::open(&ws.catalog()).await.unwrap();
    create(&lake, "lake.events").await;
    let first = append(&lake, "lake.events", &rows(0..10, 0, 1)).await;
    let first = first.metadata().current_snapshot().unwrap().clone();
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(&lake, "lake.events", &rows(10..30, 1, 1)).await;
    let server = serve(&ws, "s3cret").await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);

    // Health needs no token; everything else does.
    assert_eq!(client.get(url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(url("/readyz")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(url("/v1/tables")).send().await.unwrap().status(), 401);
    assert_eq!(client.get(url("/v1/tables")).bearer_auth("wrong").send().await.unwrap().status(), 401);
    let query = |body: Value| client.post(url("/v1/query")).bearer_auth("s3cret").json(&body).send();
    assert_eq!(
        client.post(url("/v1/query")).json(&json!({"sql": "SELECT 1"})).send().await.unwrap().status(),
        401
    );

    let tables: Value =
        client.get(url("/v1/tables")).bearer_auth("s3cret").send().await.unwrap().json().await.unwrap();
    let events = tables["tables"].as_array().unwrap().iter().find(|t| t["name"] == "lake.events").unwrap();
    assert_eq!(events["rows"], 30);
    let snapshots: Value = client
        .get(url("/v1/tables/lake.events/snapshots"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snapshots["snapshots"].as_array().unwrap().len(), 2);
    let metrics =
        client.get(url("/metrics")).bearer_auth("s3cret").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ingot_table_rows{table=\"lake.events\"} 30"), "{metrics}");

    // As of the first snapshot's time: the same rows as `ingot query … FOR TIMESTAMP AS OF`.
    let at = chrono::DateTime::from_timestamp_millis(first.timestamp_ms())
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S%.3f UTC");
    let cli = ws.ingot(&[
        "query",
        &format!("SELECT id FROM lake.events FOR TIMESTAMP AS OF TIMESTAMP '{at}'"),
        "--format",
        "json",
    ]);
    let response =
        query(json!({"sql": "SELECT id FROM lake.events", "as_of": at.to_string()})).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert_eq!(ids(&body), ids(&cli));
    assert_eq!(ids(&body), (0..10).collect::<Vec<_>>());
    let trino = format!("SELECT id FROM lake.events FOR VERSION AS OF {}", first.snapshot_id());
    assert_eq!(
        ids(&query(json!({"sql": trino})).await.unwrap().text().await.unwrap()),
        (0..10).collect::<Vec<_>>()
    );
    let by_snapshot =
        query(json!({"sql": "SELECT id FROM lake.events", "snapshot": first.snapshot_id()})).await.unwrap();
    assert_eq!(ids(&by_snapshot.text().await.unwrap()), (0..10).collect::<Vec<_>>());

    // Arrow IPC when asked for.
    let arrow = client
        .post(url("/v1/query"))
        .bearer_auth("s3cret")
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&json!({"sql": "SELECT id, value FROM lake.events"}))
        .send()
        .await
        .unwrap();
    assert_eq!(arrow.headers()["content-type"], "application/vnd.apache.arrow.stream");
    let bytes = arrow.bytes().await.unwrap();
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let count: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(count, 30);

    // Read-only: DDL, DML, COPY, external tables and file access are refused with 400.
    for sql in [
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO lake.events SELECT * FROM lake.events",
        "DROP TABLE lake.events",
        "COPY (SELECT 1) TO '/tmp/ingot-api-copy.csv'",
        "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let response = query(json!({ "sql": sql })).await.unwrap();
        assert_eq!(response.status(), 400, "{sql}");
        let error: Value = response.json().await.unwrap();
        assert!(!error["error"].as_str().unwrap().is_empty(), "{sql}");
    }
    let ddl: Value = query(json!({"sql": "CREATE TABLE x AS SELECT 1"})).await.unwrap().json().await.unwrap();
    assert!(ddl["error"].as_str().unwrap().contains("only queries"), "{ddl}");
    assert!(!std::path::Path::new("/tmp/ingot-api-copy.csv").exists());

    // Over the row limit: a clear error, and the server keeps answering.
    let response = query(json!({"sql": "SELECT * FROM range(1000)"})).await.unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("more than 50 rows"), "{error}");
    assert_eq!(client.get(url("/healthz")).send().await.unwrap().status(), 200);
}
