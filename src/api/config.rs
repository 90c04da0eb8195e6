//! `[api]`: where the HTTP API listens and how it bounds queries.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `ingot run` serves the API when set; `ingot serve` defaults to 127.0.0.1:8080.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Serve the API inside `ingot run`.
    #[serde(default)]
    pub enabled: bool,
    /// Environment variable holding the bearer token; when it is set and not empty, every
    /// route but /healthz and /readyz requires `Authorization: Bearer <token>`.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// A query whose result has more rows is refused with a clear error.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// A query running longer is cancelled.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub query_timeout: Duration,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_token_env() -> String {
    "INGOT_API_TOKEN".into()
}
fn default_max_rows() -> usize {
    100_000
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            enabled: false,
            token_env: default_token_env(),
            max_rows: default_max_rows(),
            query_timeout: default_timeout(),
        }
    }
}
