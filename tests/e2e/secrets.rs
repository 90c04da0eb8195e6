//! No credential ever shows: a catalog password, a lineage endpoint's password, the API token
//! and the lineage API key stay out of every line ingot prints, every answer of its API,
//! `/metrics` and lineage, on success and on failure.

use crate::harness::*;
use crate::postgres::Postgres;

const CATALOG_PASSWORD: &str = "planted-pw-41d8";
const LINEAGE_PASSWORD: &str = "planted-ol-92ce";
const LINEAGE_KEY: &str = "planted-key-5b07";

fn assert_clean(what: &str, output: &str) {
    for planted in [CATALOG_PASSWORD, LINEAGE_PASSWORD, LINEAGE_KEY] {
        assert!(!output.contains(planted), "{what} shows {planted}:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_never_show_in_output_or_errors() {
    let broker = Broker::start();
    let lineage = format!(
        "{ORDERS_TOPIC}\n[lineage]\ntransport = \"http\"\nurl = \"http://ingot:{LINEAGE_PASSWORD}@127.0.0.1:1\"\ntimeout = \"200ms\"\n"
    );
    let ws = Workspace::new(&broker, &demo_contracts(), 100, &lineage);
    ws.ingot(&["produce", "--topic", "orders", "--count", "50"]);

    // Lineage cannot be delivered (nothing listens): every failure is logged, without the
    // endpoint's password or the API key.
    let key = [("INGOT_LINEAGE_API_KEY", LINEAGE_KEY)];
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &key);
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("lineage"), "the undeliverable lineage is reported:\n{err}");
    assert_clean("ingot run", &format!("{out}{err}"));

    // A catalog that cannot be reached: the error names it with its password starred, in the
    // retried warnings and in the final error, for the service and for a query alike.
    let catalog = format!("postgres://ingot:{CATALOG_PASSWORD}@127.0.0.1:1/lake");
    let env = [
        ("INGOT_CATALOG__URI", catalog.as_str()),
        ("INGOT_INGEST__RETRY_UNAVAILABLE_FOR", "1s"),
        ("INGOT_LINEAGE_API_KEY", LINEAGE_KEY),
    ];
    for args in [&["run", "--until-caught-up"][..], &["query", "SELECT 1"], &["tables"]] {
        let started = std::time::Instant::now();
        let (ok, out, err) = ws.try_ingot_with_env(args, &env);
        // Reported within the connect timeout (5 s) plus the retry window, not iceberg's 30 s.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(!ok, "{args:?} cannot work without its catalog");
        assert!(err.contains("postgres://ingot:***@127.0.0.1:1/lake"), "{args:?}:\n{err}");
        assert_clean(&format!("{args:?}"), &format!("{out}{err}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_password_stays_out_of_answers_metrics_lineage_and_logs() {
    let broker = Broker::start();
    let postgres = Postgres::start_with_password(CATALOG_PASSWORD);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let topics = format!(
        "{ORDERS_TOPIC}\n{}\n[lineage]\ntransport = \"file\"\npath = \"lineage.jsonl\"\n\n[api]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n",
        transforms_toml()
    );
    let ws = Workspace::with_catalog(&broker, &demo_contracts(), 200, &topics, Some(&postgres.uri));
    ws.ingot(&["produce", "--topic", "orders", "--count", "600", "--bad-ratio", "0.1"]);
    let mut service = ws.spawn_with_env(&["run"], &[("INGOT_API_TOKEN", LINEAGE_KEY)]);
    wait_for_orders(&ws, 600, std::time::Duration::from_secs(60)).await;

    // Every route, answering and refusing.
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let mut seen = String::new();
    for sql in
        ["SELECT count(*) FROM bronze.orders", "SELECT * FROM no.such_table", "DROP TABLE bronze.orders"]
    {
        let response =
            client.post(url("/v1/query")).bearer_auth(LINEAGE_KEY).json(&serde_json::json!({ "sql": sql }));
        seen.push_str(&response.send().await.unwrap().text().await.unwrap());
    }
    for path in ["/v1/tables", "/v1/tables/bronze.orders/snapshots", "/metrics", "/readyz"] {
        seen.push_str(
            &client.get(url(path)).bearer_auth(LINEAGE_KEY).send().await.unwrap().text().await.unwrap(),
        );
    }
    seen.push_str(&client.get(url("/metrics")).send().await.unwrap().text().await.unwrap());
    assert!(seen.contains("ingot_table_rows"), "{seen}");
    assert!(terminate(&mut service), "ingot run stops cleanly\n{}", ws.spawned_logs());

    // The commands, a failing one included.
    for args in [
        &["tables"][..],
        &["transform"],
        &["query", "SELECT count(*) FROM silver.orders"],
        &["query", "SELEC"],
    ] {
        let (_, out, err) = ws.try_ingot(args);
        seen.push_str(&out);
        seen.push_str(&err);
    }
    seen.push_str(&ws.spawned_logs());
    seen.push_str(
        &std::fs::read_to_string(ws.dir.path().join("lineage.jsonl")).expect("lineage was written"),
    );
    assert!(seen.contains("silver.orders"), "{seen}");
    assert_clean("the service, its API, its lineage and the commands", &seen);
}
