//! The HTTP API: read-only SQL over the lake (with time travel), the tables and their
//! snapshots, health and Prometheus metrics. Served by `ingot run` and `ingot serve`.

mod auth;
mod config;
mod error;
mod metrics;
mod query;
mod tables;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
pub use config::ApiConfig;
use ingot_lake::Lake;
use ingot_transforms::query::{QueryLimits, QueryPool};

use crate::commands::CliError;
pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub lake: Lake,
    /// Where `/v1/query` runs its queries, apart from the server's own threads.
    pub queries: Arc<QueryPool>,
    /// The bearer token every route but health needs, when one is set.
    pub token: Option<Arc<str>>,
}

impl axum::extract::FromRef<ApiState> for Lake {
    fn from_ref(state: &ApiState) -> Lake {
        state.lake.clone()
    }
}

/// `/metrics` and `/healthz` alone, for `ingot run` with `[metrics] listen` (the query API
/// need not be on for the service to be scraped).
pub async fn serve_metrics(
    lake: Lake,
    listen: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    let routes = Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(healthz))
        .with_state(lake);
    listen_and_serve("metrics.listen", &listen, routes, shutdown).await
}

/// All routes.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/v1/query", post(query::query))
        .route("/v1/tables", get(tables::list))
        .route("/v1/tables/{name}/snapshots", get(tables::snapshots))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(tables::ready))
        .merge(protected)
        .with_state(state)
}

/// Serves the API on the configured address until `shutdown` resolves; queries run within
/// `limits`.
pub async fn serve(
    lake: Lake,
    config: ApiConfig,
    limits: QueryLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    let token = std::env::var(&config.token_env).ok().filter(|t| !t.is_empty()).map(Arc::from);
    tracing::info!(token = token.is_some(), "HTTP API starting");
    let queries = Arc::new(QueryPool::new(limits)?);
    let state = ApiState { lake, queries, token };
    listen_and_serve("api.listen", &config.listen, router(state), shutdown).await
}

/// Liveness: answered from the server's own threads, whatever the query pool is doing.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Binds `listen` (the value of the config key `key`) and serves `routes` until `shutdown`.
async fn listen_and_serve(
    key: &str,
    listen: &str,
    routes: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Usage(format!("{key} {listen}: {e}")))?;
    tracing::info!(%listen, "{key}: listening");
    axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| CliError::Usage(format!("{key} {listen}: {e}")))
}
