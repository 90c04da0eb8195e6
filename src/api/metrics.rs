//! `GET /metrics`: Prometheus text exposition of every table's size and freshness.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::tables::describe;
use super::{ApiError, ApiState};

pub async fn metrics(State(state): State<ApiState>) -> Response {
    let mut tables = Vec::new();
    let listed = state.lake.list_tables().await;
    let idents = match listed {
        Ok(idents) => idents,
        Err(e) => return ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    for ident in idents {
        match state.lake.load(&ident).await {
            Ok(table) => tables.push(describe(&table)),
            Err(e) => return ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        }
    }
    let mut out = String::new();
    let series: [(&str, &str, &str, &str); 4] = [
        ("ingot_table_rows", "gauge", "Rows in the table's current snapshot.", "rows"),
        ("ingot_table_files", "gauge", "Data files in the table's current snapshot.", "files"),
        ("ingot_table_snapshots", "gauge", "Snapshots kept (the time-travel history).", "snapshots"),
        ("ingot_table_last_commit_seconds", "gauge", "Unix time of the current snapshot.", "last_commit_ms"),
    ];
    for (name, kind, help, field) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for t in &tables {
            let value = t[field].as_f64().unwrap_or(0.0);
            let value = if field == "last_commit_ms" { value / 1000.0 } else { value };
            let _ = writeln!(out, "{name}{{table=\"{}\"}} {value}", t["name"].as_str().unwrap_or_default());
        }
    }
    let name = "ingot_table_valid_through_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Event time up to which the table is complete (its watermark).\n# TYPE {name} gauge"
    );
    for t in &tables {
        if let Some(us) = t["valid_through_us"].as_f64() {
            let _ =
                writeln!(out, "{name}{{table=\"{}\"}} {}", t["name"].as_str().unwrap_or_default(), us / 1e6);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
