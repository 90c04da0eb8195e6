//! `GET /metrics`: Prometheus text exposition of what the process recorded (ingest commits,
//! quarantines, transform runs; see the events of each crate) and every table's size and
//! freshness, set as gauges when scraped.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics::gauge;

use ingot_lake::Lake;

use super::ApiError;
use super::tables::describe;

pub async fn metrics(State(lake): State<Lake>) -> Response {
    let idents = match lake.list_tables().await {
        Ok(idents) => idents,
        Err(e) => return ApiError::from(e).into_response(),
    };
    for ident in idents {
        let table = match lake.load(&ident).await {
            Ok(table) => describe(&table),
            Err(e) => return ApiError::from(e).into_response(),
        };
        let name = table["name"].as_str().unwrap_or_default().to_string();
        let number = |field: &str| table[field].as_f64().unwrap_or(0.0);
        gauge!("ingot_table_rows", "table" => name.clone()).set(number("rows"));
        gauge!("ingot_table_files", "table" => name.clone()).set(number("files"));
        gauge!("ingot_table_snapshots", "table" => name.clone()).set(number("snapshots"));
        gauge!("ingot_table_last_commit_seconds", "table" => name.clone())
            .set(number("last_commit_ms") / 1e3);
        // Event time up to which the table is complete (its watermark), where it has one, and
        // how far behind now that is: the end-to-end freshness an alert watches.
        if let Some(us) = table["valid_through_us"].as_f64() {
            gauge!("ingot_table_valid_through_seconds", "table" => name.clone()).set(us / 1e6);
            let now = chrono::Utc::now().timestamp_micros() as f64;
            gauge!("ingot_table_freshness_seconds", "table" => name).set(((now - us) / 1e6).max(0.0));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::render()).into_response()
}
