//! One query must not take the service down: hostile and runaway queries against `ingot run`
//! with the API enabled, while orders keep landing in bronze.

use std::net::TcpListener;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

const TOKEN: &str = "planted-token-7f3a9c";

/// `ingot run` with the API on a free port, ingesting orders.
struct Service {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    async fn start(ws: &Workspace, query_limits: &str) -> Service {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = std::fs::read_to_string(&ws.config).unwrap();
        config.push_str(&format!(
            "\n[api]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n\n[query]\n{query_limits}\n"
        ));
        std::fs::write(&ws.config, config).unwrap();
        let child = ws.spawn_with_env(&["run"], &[("INGOT_API_TOKEN", TOKEN)]);
        let service =
            Service { child, base: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };
        wait_until(Duration::from_secs(60), "the API answers", || async {
            service.client.get(service.url("/healthz")).send().await.is_ok()
        })
        .await;
        service
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts `sql` and returns the status and the body.
    async fn query(&self, sql: &str) -> (u16, String) {
        let response = self
            .client
            .post(self.url("/v1/query"))
            .bearer_auth(TOKEN)
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// CPU seconds the process has used so far (user + system), from /proc.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / clock_ticks_per_second()
    }

    fn assert_alive(&mut self, ws: &Workspace) {
        assert!(self.child.try_wait().unwrap().is_none(), "ingot run died\n{}", ws.spawned_logs());
    }
}

/// Resident memory of process `pid` now, in bytes (`None` once it is gone).
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Probes /healthz every 50 ms until stopped; returns the slowest answer and the failures.
fn probe_health(base: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(Duration, usize, usize)> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        let (mut slowest, mut failed, mut probes) = (Duration::ZERO, 0, 0);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let ok = client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200);
            slowest = slowest.max(started.elapsed());
            failed += usize::from(!ok);
            probes += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (slowest, failed, probes)
    })
}

/// A three-way cross join of 300 bronze rows with every row computed (a bare `count(*)` is
/// answered without building the rows): 300³ rows, ~40 s of a debug build's CPU, while its
/// memory stays small (the product streams out of a 300² buffer).
const CROSS_JOIN: &str = "WITH o AS (SELECT order_id FROM bronze.orders LIMIT 300) \
     SELECT sum(length(concat(a.order_id, b.order_id, c.order_id))) FROM o a, o b, o c";

fn nested(depth: usize, wrap: impl Fn(String) -> String) -> String {
    (0..depth).fold("1".to_string(), |inner, _| wrap(inner))
}

/// A health check stuck behind the queries would wait out their 2 s timeout; half that
/// tells the two apart even on a loaded 2-core machine (100 ms failed at 110 ms there while
/// the service also transformed and renewed its lease).
const HEALTH_BOUND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn hostile_queries_are_refused_or_answered_and_ingest_goes_on() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 100, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "400"]);
    let mut service =
        Service::start(&ws, "timeout = \"2s\"\nmax_memory = \"64MiB\"\nmax_concurrent = 2").await;
    wait_for_orders(&ws, 400, Duration::from_secs(60)).await;
    let producer = ws.produce_in_background(&["--count", "1500", "--rate", "100", "--seed", "9"]);
    let mut bodies = String::new();

    // The four shapes that overflowed a query thread's stack and aborted the process: the two
    // within query.max_expression_depth are answered, the two beyond it refused with the key.
    let not_30 = format!("SELECT {}true AS x", "NOT ".repeat(30));
    let case_20 =
        format!("SELECT {} AS x", nested(20, |inner| format!("CASE WHEN 1 > 0 THEN {inner} ELSE 0 END")));
    let plus_300 = format!("SELECT {} AS x", vec!["1"; 300].join(" + "));
    let or_1000 = format!("SELECT {} AS x", vec!["1 = 0"; 1000].join(" OR "));
    let (status, body) = service.query(&not_30).await;
    assert_eq!((status, body.trim()), (200, r#"{"x":true}"#));
    let (status, body) = service.query(&case_20).await;
    assert_eq!((status, body.trim()), (200, r#"{"x":1}"#));
    for sql in [&plus_300, &or_1000] {
        let (status, body) = service.query(sql).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("query.max_expression_depth (128)"), "{body}");
        bodies.push_str(&body);
    }
    // Deeper than the SQL parser recurses, and longer than any query should be.
    let (status, body) = service.query(&format!("SELECT {}true", "NOT ".repeat(200))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = service.query(&format!("SELECT '{}'", "x".repeat(100_000))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("query.max_sql_bytes"), "{body}");
    service.assert_alive(&ws);

    // A cross join of bronze with a 2 s timeout: 504 within 3 s, health answers
    // meanwhile, and the CPU is back to idle 2 s later.
    let stop = Arc::new(AtomicBool::new(false));
    let health = probe_health(service.base.clone(), stop.clone());
    let cross = CROSS_JOIN;
    let started = Instant::now();
    let (status, body) = service.query(cross).await;
    let answered = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("query.timeout"), "{body}");
    assert!(answered < Duration::from_secs(3), "the timeout answered after {answered:?}");
    stop.store(true, Ordering::Relaxed);
    let (slowest, failed, probes) = health.await.unwrap();
    eprintln!("cross join: 504 after {answered:?}; slowest of {probes} health checks {slowest:?}");
    assert_eq!(failed, 0, "{failed} of {probes} health checks failed during the cross join");
    assert!(slowest < HEALTH_BOUND, "a health check took {slowest:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = service.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = service.cpu_seconds() - before;
    eprintln!("2 s after the timeout: {used:.2} CPU-seconds in a second");
    assert!(used < 0.5, "still {used:.2} CPU-seconds per second 2 s after the timeout");

    // 16 heavy queries at once: the two slots run (and time out), the rest get 429 at once.
    let stop = Arc::new(AtomicBool::new(false));
    let health = probe_health(service.base.clone(), stop.clone());
    let answers = futures::future::join_all((0..16).map(|_| service.query(cross))).await;
    stop.store(true, Ordering::Relaxed);
    let busy = answers.iter().filter(|(status, _)| *status == 429).count();
    let ran: Vec<u16> = answers.iter().map(|(status, _)| *status).filter(|s| *s != 429).collect();
    assert!(ran.len() <= 2 && !ran.is_empty(), "{answers:?}");
    assert!(ran.iter().all(|s| *s == 504), "{answers:?}");
    assert_eq!(busy + ran.len(), 16);
    assert!(answers.iter().any(|(_, body)| body.contains("query.max_concurrent")), "{answers:?}");
    let (slowest, failed, probes) = health.await.unwrap();
    eprintln!("16 at once: {busy} × 429, {ran:?} ran; slowest of {probes} health checks {slowest:?}");
    assert_eq!(failed, 0, "{failed} of {probes} health checks failed with the pool saturated");
    assert!(slowest < HEALTH_BOUND, "a health check took {slowest:?} with the pool saturated");
    service.assert_alive(&ws);

    // Over the memory limit: a clean 422, and the process grows by no more than the limit
    // plus a margin for the batches in flight (128 MiB).
    let pid = service.child.id();
    let baseline = rss_of(pid).unwrap();
    let sampling = Arc::new(AtomicBool::new(false));
    let peak = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !sampling.load(Ordering::Relaxed) {
                peak = peak.max(rss_of(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let (status, body) = service.query("SELECT value FROM range(50000000) ORDER BY value DESC").await;
    sampling.store(true, Ordering::Relaxed);
    let peak = peak.join().unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("query.max_memory (64 MiB)"), "{body}");
    let grown = peak.saturating_sub(baseline) >> 20;
    eprintln!("over the memory limit: RSS grew by {grown} MiB (baseline {} MiB)", baseline >> 20);
    assert!(grown < 64 + 128, "RSS grew by {grown} MiB over a 64 MiB limit");
    bodies.push_str(&body);
    // A function whose output dwarfs its input is refused before it builds it (16 × 100 MB).
    let (status, body) = service.query("SELECT length(repeat('x', 100000000)) FROM range(16)").await;
    assert!(status == 422 || status == 400, "{status} {body}");
    assert!(body.contains("repeat() would build"), "{body}");
    service.assert_alive(&ws);

    // Ingestion went on through all of it: every produced order lands.
    producer.join().unwrap();
    wait_for_orders(&ws, 1900, Duration::from_secs(60)).await;

    // The token never shows: not in answers, metrics or the service's log.
    let metrics = service.client.get(service.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    bodies.push_str(&metrics.text().await.unwrap());
    assert!(!bodies.contains(TOKEN));
    assert!(!ws.spawned_logs().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_stops_its_query() {
    let broker = Broker::start();
    let ws = Workspace::new(&broker, &demo_contracts(), 100, ORDERS_TOPIC);
    ws.ingot(&["produce", "--topic", "orders", "--count", "300"]);
    let service = Service::start(&ws, "timeout = \"60s\"\nmax_concurrent = 1").await;
    wait_for_orders(&ws, 300, Duration::from_secs(60)).await;
    // The query burns CPU while its client waits; the client then gives up, and the server
    // notices the closed connection.
    let request = tokio::spawn({
        let (client, url) = (service.client.clone(), service.url("/v1/query"));
        async move { client.post(url).bearer_auth(TOKEN).json(&json!({ "sql": CROSS_JOIN })).send().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = service.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let busy = service.cpu_seconds() - before;
    assert!(!request.is_finished(), "the cross join answered within 1.5 s");
    assert!(busy > 0.5, "the cross join used only {busy:.2} CPU-seconds in a second");
    request.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = service.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = service.cpu_seconds() - before;
    assert!(used < 0.5, "still {used:.2} CPU-seconds per second 2 s after the client left");
    // Its slot is free again: the one-slot pool takes the next query.
    let (status, body) = service.query("SELECT count(*) AS n FROM bronze.orders").await;
    assert_eq!((status, body.trim()), (200, r#"{"n":300}"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transform_over_its_memory_budget_fails_naming_the_key_and_resumes_within_it() {
    let broker = Broker::start();
    let topics = format!("{ORDERS_TOPIC}\n{}", transforms_toml());
    let ws = Workspace::new(&broker, &demo_contracts(), 500, &topics);
    ws.ingot(&["produce", "--topic", "orders", "--count", "2000"]);
    // gold.revenue_hourly (the second entry) aggregates in DataFusion: 1 KiB holds no group.
    let tight = [("INGOT_TRANSFORMS__1__MAX_MEMORY", "1KiB")];
    let (ok, out, err) = ws.try_ingot_with_env(&["run", "--until-caught-up"], &tight);
    assert!(!ok, "{out}\n{err}");
    assert!(
        err.contains("needs more memory than max_memory of the [[transforms]] entry for gold.revenue_hourly"),
        "{err}"
    );
    assert_eq!(ws.snapshot_count("gold.revenue_hourly").await, 0);
    // Within the default budget the same work is done.
    ws.ingot(&["transform"]);
    let lake = ingot_lake::Lake::open(&ws.catalog()).await.unwrap();
    let rows = crate::transforms::query(&lake, "SELECT sum(orders) AS n FROM gold.revenue_hourly").await;
    assert_eq!(crate::transforms::int(&rows[0], 0, 0), 2000);
}
