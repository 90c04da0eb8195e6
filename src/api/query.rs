//! `POST /v1/query`: `{"sql": "...", "as_of": "2026-11-20 18:00:00 UTC" | "snapshot": 123}`.
//! Results as JSON lines, or an Arrow IPC stream with `Accept: application/vnd.apache.arrow.stream`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ingot_lake::AsOf;
use ingot_transforms::TransformError;
use ingot_transforms::query::{OutputFormat, QueryOptions, parse_timestamp, run_query_with, write_batches};
use serde::Deserialize;

use super::{ApiError, ApiState};

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    sql: String,
    /// Read every table as of this instant (Trino's rule).
    #[serde(default)]
    as_of: Option<String>,
    /// Read the table holding this snapshot id at that snapshot.
    #[serde(default)]
    snapshot: Option<i64>,
}

pub async fn query(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(request): Json<QueryRequest>,
) -> Response {
    match answer(&state, &headers, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn answer(state: &ApiState, headers: &HeaderMap, request: QueryRequest) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    let as_of = match (&request.as_of, request.snapshot) {
        (Some(_), Some(_)) => return Err(bad("give as_of or snapshot, not both".into())),
        (Some(t), None) => Some(AsOf::Timestamp(parse_timestamp(t).map_err(|e| bad(e.to_string()))?)),
        (None, Some(id)) => Some(AsOf::Version(id)),
        (None, None) => None,
    };
    let options = QueryOptions { as_of, max_rows: Some(state.config.max_rows) };
    let run = run_query_with(&state.lake, &request.sql, &options);
    let result = match tokio::time::timeout(state.config.query_timeout, run).await {
        Err(_) => {
            return Err(ApiError(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the query ran longer than {:?} (api.query_timeout) and was cancelled",
                    state.config.query_timeout
                ),
            ));
        }
        Ok(Err(e @ TransformError::Sql(_))) | Ok(Err(e @ TransformError::DataFusion(_))) => {
            return Err(bad(e.to_string()));
        }
        Ok(Err(e)) => return Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Ok(Ok(result)) => result,
    };
    let wants_arrow =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(ARROW_STREAM));
    let (format, content_type) = if wants_arrow {
        (OutputFormat::Arrow, ARROW_STREAM)
    } else {
        (OutputFormat::Json, "application/x-ndjson")
    };
    let mut body = Vec::new();
    write_batches(&mut body, &result.schema, &result.batches, format).map_err(|e| bad(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
