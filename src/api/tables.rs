//! `GET /v1/tables`, `GET /v1/tables/{name}/snapshots`, `GET /readyz`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ingot_lake::TableState;
use ingot_lake::{Table, list_snapshots, parse_ident, table_size};
use serde_json::{Value, json};

use super::{ApiError, ApiState};

/// One table as `/v1/tables` and `/metrics` show it.
pub(super) fn describe(table: &Table) -> Value {
    let size = table_size(table);
    let watermark = TableState::of_table(table).ok().and_then(|s| s.watermark_us);
    json!({
        "name": table.identifier().to_string(),
        "rows": size.rows,
        "files": size.files,
        "snapshots": size.snapshots,
        "current_snapshot": size.current_snapshot,
        "last_commit_ms": size.last_commit_ms,
        // Event time up to which the table is complete: windows ending before it are final.
        "valid_through_us": watermark,
    })
}

pub async fn list(State(state): State<ApiState>) -> Response {
    let result = async {
        let mut tables = Vec::new();
        for ident in state.lake.list_tables().await? {
            tables.push(describe(&state.lake.load(&ident).await?));
        }
        Ok::<_, ingot_lake::LakeError>(tables)
    }
    .await;
    match result {
        Ok(tables) => Json(json!({ "tables": tables })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn snapshots(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let ident = match parse_ident(&name) {
        Ok(ident) => ident,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    match state.lake.exists(&ident).await {
        Ok(true) => {}
        Ok(false) => return ApiError(StatusCode::NOT_FOUND, format!("no table {name}")).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    }
    match state.lake.load(&ident).await {
        Ok(table) => {
            let snapshots: Vec<Value> = list_snapshots(&table)
                .into_iter()
                .map(|s| {
                    json!({
                        "snapshot_id": s.snapshot_id,
                        "parent_id": s.parent_id,
                        "timestamp_ms": s.timestamp_ms,
                        "operation": s.operation,
                        "summary": s.summary,
                    })
                })
                .collect();
            Json(json!({ "table": name, "snapshots": snapshots })).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Ready when the catalog answers.
pub async fn ready(State(state): State<ApiState>) -> Response {
    match state.lake.list_tables().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("catalog unavailable: {e}")).into_response()
        }
    }
}
