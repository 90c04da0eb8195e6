//! `[api]`: where the HTTP API listens and who may use it (queries are bounded by `[query]`).

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
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_token_env() -> String {
    "INGOT_API_TOKEN".into()
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { listen: default_listen(), enabled: false, token_env: default_token_env() }
    }
}
