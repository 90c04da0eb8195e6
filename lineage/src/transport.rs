//! `[lineage]` config: where events go.

use std::path::PathBuf;
use std::time::Duration;

use ingot_secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// POST each event to `<url>/api/v1/lineage` (Marquez).
    Http,
    /// Append JSON lines to `path`.
    File,
    /// Print JSON lines to stderr.
    Console,
    /// Emit nothing.
    #[default]
    None,
}

/// `[lineage]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LineageConfig {
    #[serde(default)]
    pub transport: TransportKind,
    /// HTTP: the Marquez base URL, e.g. `http://marquez:5000` (a password in it is never shown).
    #[serde(default)]
    pub url: Option<Secret>,
    /// File: the JSON-lines file events are appended to.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Job namespace of every ingot job.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Environment variable holding a bearer token for the HTTP endpoint (never the token
    /// itself in the file).
    #[serde(default = "default_api_key_env")]
    pub api_key_env: String,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Where events wait while the endpoint is down (delivered in order once it is back).
    #[serde(default = "default_spool")]
    pub spool_dir: PathBuf,
    /// `http(s)` URL of the repository holding `sql/`: transform jobs link their SQL file
    /// there (`sourceCodeLocation`), which Marquez shows as the job's location.
    #[serde(default)]
    pub source_url: Option<String>,
    /// Extra CA certificate(s), PEM, trusted for an HTTPS `url` besides the system's roots
    /// (a company CA in front of Marquez or an OpenLineage proxy).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_namespace() -> String {
    "ingot".into()
}
fn default_api_key_env() -> String {
    "INGOT_LINEAGE_API_KEY".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_spool() -> PathBuf {
    PathBuf::from("ingot-data/lineage-spool")
}

impl Default for LineageConfig {
    fn default() -> Self {
        Self {
            transport: TransportKind::None,
            url: None,
            path: None,
            namespace: default_namespace(),
            api_key_env: default_api_key_env(),
            timeout: default_timeout(),
            spool_dir: default_spool(),
            source_url: None,
            ca_file: None,
        }
    }
}
