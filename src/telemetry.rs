//! The process's metrics: every crate records through the `metrics` facade; this installs the
//! Prometheus recorder once, at start, and renders what it holds for `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

/// `[metrics]`: where `ingot run` serves `/metrics` besides the API.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` serving `/metrics` and `/healthz` only, whether or not the API is on
    /// (the API serves `/metrics` too). Unset: no listener of its own.
    #[serde(default)]
    pub listen: Option<String>,
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds from 1 ms to 2 min: commits, transform runs.
const DURATION_BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0];

/// How often the recorder's histograms are drained (the exporter's own default).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the recorder (once; later calls do nothing) and its upkeep: without a task that
/// drains them, histogram samples pile up between scrapes, and a service nobody scrapes grows
/// without end. Call from within the runtime. Without the recorder, metrics are not kept.
pub fn install() {
    let _ = PROMETHEUS.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(&DURATION_BUCKETS).expect("buckets are not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Only if another recorder is already installed (never in this binary): metrics go
            // there, and /metrics renders this one's nothing.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        handle
    });
}

/// The Prometheus text exposition of every metric recorded so far.
pub fn render() -> String {
    PROMETHEUS.get().map(PrometheusHandle::render).unwrap_or_default()
}
