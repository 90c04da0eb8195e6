//! No credential ever shows: a catalog password, a lineage endpoint's password and API key
//! stay out of every line ingot prints, on success and on failure.

use crate::harness::*;

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
