//! Kafka over TLS (stunnel with a CA made for the test in front of the broker) and with SASL
//! (the broker requiring SCRAM logins): ingest exactly once through each, a wrong CA or a
//! wrong password stops start-up in one line naming the cause, and no secret is printed.

use std::time::{Duration, Instant};

use crate::harness::broker::tansu;
use crate::harness::*;
use crate::tls_proxy::{Stunnel, TestCa};

/// Points the workspace at `brokers` with these `[kafka]` lines added.
fn reconfigure(ws: &Workspace, brokers: &str, kafka_lines: &str) {
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let start = text.find("brokers = \"").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let text = format!("{}brokers = \"{brokers}\"\n{kafka_lines}{}", &text[..start], &text[end + 1..]);
    std::fs::write(&ws.config, text).unwrap();
}

/// Runs ingot expecting a failure, and returns its stderr and how long it took.
fn failing(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> (String, Duration) {
    let started = Instant::now();
    let (ok, out, err) = ws.try_ingot_with_env(args, env);
    assert!(!ok, "{args:?} should fail:\n{out}\n{err}");
    (err, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_over_tls_is_exactly_once_and_a_wrong_ca_stops_start_up() {
    let (ca, other_ca) = (TestCa::new("ingot-test-ca"), TestCa::new("someone-else"));
    let tls_addr = Stunnel::free_addr();
    let broker = Broker::start_with(Some(&tls_addr), &[]);
    let _tls = Stunnel::start(&tls_addr, &broker.addr, &ca);
    let ws = Workspace::new(&broker, &demo_contracts(), 500, ORDERS_TOPIC);
    let lines = format!("security_protocol = \"ssl\"\nssl_ca_location = \"{}\"\n", ca.ca.display());
    reconfigure(&ws, &tls_addr, &lines);
    ws.ingot(&["produce", "--topic", "orders", "--count", "2000", "--bad-ratio", "0.05"]);
    ws.ingot(&["run", "--until-caught-up"]);
    assert_orders_hold_each_offset_once(&ws, 2000).await;

    // A CA that did not sign the broker's certificate: one line, before any work, not a
    // client retrying forever.
    let wrong = [("INGOT_KAFKA__SSL_CA_LOCATION", other_ca.ca.to_str().unwrap())];
    for args in [&["run", "--until-caught-up"][..], &["produce", "--topic", "orders", "--count", "10"]] {
        let (err, took) = failing(&ws, args, &wrong);
        assert!(err.contains(&format!("cannot connect to Kafka at {tls_addr}")), "{err}");
        assert!(err.contains("certificate verify failed"), "the cause is named: {err}");
        assert!(took < Duration::from_secs(60), "{args:?} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_with_a_scram_login_is_exactly_once_and_a_wrong_password_stops_start_up() {
    let mut broker = Broker::start();
    let password = "scram-password-ingot-must-never-print";
    let created = std::process::Command::new(tansu())
        .args(["user", "create", "ingot", password, "--mechanism", "scram512"])
        .args(["--broker", &format!("tcp://{}", broker.addr)])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    broker.restart_with(&["--authentication"]);
    let ws = Workspace::new(&broker, &demo_contracts(), 500, ORDERS_TOPIC);
    let lines = "security_protocol = \"sasl_plaintext\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
                 sasl_username = \"ingot\"\nsasl_password_env = \"INGOT_TEST_KAFKA_PASSWORD\"\n";
    reconfigure(&ws, &broker.addr, lines);
    let env = [("INGOT_TEST_KAFKA_PASSWORD", password), ("INGOT_LOG", "debug")];
    let (ok, produced, produce_err) =
        ws.try_ingot_with_env(&["produce", "--topic", "orders", "--count", "1500"], &env);
    assert!(ok, "{produced}\n{produce_err}");
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &env);
    assert!(ok, "{out}\n{err}");
    assert_orders_hold_each_offset_once(&ws, 1500).await;

    let wrong = [("INGOT_TEST_KAFKA_PASSWORD", "not-the-password"), ("INGOT_LOG", "debug")];
    let (wrong_err, took) = failing(&ws, &["run", "--until-caught-up"], &wrong);
    assert!(
        wrong_err.contains("cannot connect to Kafka at") && wrong_err.contains("uthentication"),
        "{wrong_err}"
    );
    assert!(took < Duration::from_secs(60), "{took:?}: {wrong_err}");
    // A password variable that is not set is named.
    let (unset, _) = failing(&ws, &["run", "--until-caught-up"], &[]);
    assert!(
        unset.contains("kafka.sasl_password_env") && unset.contains("INGOT_TEST_KAFKA_PASSWORD"),
        "{unset}"
    );
    for text in [&produced, &produce_err, &out, &err, &wrong_err, &unset] {
        assert!(!text.contains(password), "the password was printed:\n{text}");
    }
}
