//! `POST /v1/query`: `{"sql": "...", "as_of": "2026-11-20 18:00:00 UTC" | "snapshot": 123}`.
//! Results as JSON lines, or an Arrow IPC stream with `Accept: application/vnd.apache.arrow.stream`,
//! sent as they are produced.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use ingot_lake::AsOf;
use ingot_transforms::TransformError;
use ingot_transforms::query::{OutputFormat, QueryStream, ResultEncoder, parse_timestamp};
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
    let bad = |m: String| ApiError::bad_request(m);
    let as_of = match (&request.as_of, request.snapshot) {
        (Some(_), Some(_)) => return Err(bad("give as_of or snapshot, not both".into())),
        (Some(t), None) => Some(AsOf::Timestamp(parse_timestamp(t).map_err(|e| bad(e.to_string()))?)),
        (None, Some(id)) => Some(AsOf::Version(id)),
        (None, None) => None,
    };
    let wants_arrow =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(ARROW_STREAM));
    let (format, content_type) = match wants_arrow {
        true => (OutputFormat::Arrow, ARROW_STREAM),
        false => (OutputFormat::Json, "application/x-ndjson"),
    };
    let mut stream = state.queries.start(&state.lake, &request.sql, as_of).await?;
    let mut encoder = ResultEncoder::new(&stream.schema, format, state.queries.limits().max_result_bytes)?;
    // The status is decided by the first rows: most failures (memory, time, an unreadable
    // file) come before any, and get their own status; a later one cuts the body.
    let head = match stream.next().await {
        Some(Ok(batch)) => encoder.encode(&batch)?,
        Some(Err(e)) => return Err(e.into()),
        None => return Ok(([(header::CONTENT_TYPE, content_type)], encoder.finish()?).into_response()),
    };
    let body = Body::from_stream(rest(head, Rest::Running(stream, encoder), format));
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Where a streamed answer is.
enum Rest {
    Running(QueryStream, ResultEncoder),
    /// The query failed after rows were sent: the body ends without its last chunk, so every
    /// HTTP client sees it incomplete.
    Failed(String),
    Done,
}

/// `head`, then the rest of the result as it comes. A failure after rows were sent is logged,
/// written as a last `{"error": …}` line in JSON, and then cuts the body.
fn rest(
    head: Vec<u8>,
    state: Rest,
    format: OutputFormat,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let first = futures::stream::once(async move { Ok(Bytes::from(head)) });
    let more = futures::stream::unfold(state, move |state| async move {
        match state {
            Rest::Running(mut stream, mut encoder) => match stream.next().await {
                Some(Ok(batch)) => match encoder.encode(&batch) {
                    Ok(bytes) => Some((Ok(Bytes::from(bytes)), Rest::Running(stream, encoder))),
                    Err(e) => Some(failure(e, format)),
                },
                Some(Err(e)) => Some(failure(e, format)),
                None => match encoder.finish() {
                    Ok(bytes) => Some((Ok(Bytes::from(bytes)), Rest::Done)),
                    Err(e) => Some(failure(e, format)),
                },
            },
            Rest::Failed(reason) => Some((Err(std::io::Error::other(reason)), Rest::Done)),
            Rest::Done => None,
        }
    });
    first.chain(more)
}

/// The chunk that reports `error` (JSON only) and what follows it: the cut.
fn failure(error: TransformError, format: OutputFormat) -> (Result<Bytes, std::io::Error>, Rest) {
    let reason = error.to_string();
    tracing::warn!(error = %reason, "query failed after its first rows were sent; the answer is cut short");
    match format {
        OutputFormat::Json => {
            let line = format!("{}\n", serde_json::json!({ "error": reason }));
            (Ok(Bytes::from(line)), Rest::Failed(reason))
        }
        _ => (Err(std::io::Error::other(reason)), Rest::Done),
    }
}
