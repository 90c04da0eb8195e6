//! The API's one error answer: a status and `{"error": "..."}`. The status says whose fault
//! it is and whether to retry: 4xx the request (bad SQL, an unknown table, over a limit),
//! 503 a catalog or store that may come back, 500 a failure of ingot's own (logged).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ingot_lake::LakeError;
use ingot_transforms::TransformError;

pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.is_server_error() && self.0 != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(status = %self.0, error = %self.1, "API request failed");
        }
        let mut response = (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::TOO_MANY_REQUESTS {
            // A slot frees as soon as a running query ends.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<LakeError> for ApiError {
    fn from(error: LakeError) -> Self {
        ApiError(lake_status(&error), error.to_string())
    }
}

impl From<TransformError> for ApiError {
    fn from(error: TransformError) -> Self {
        let status = match &error {
            _ if error.blames_the_query() => StatusCode::BAD_REQUEST,
            // A failure while the query ran: ingot's, not the caller's.
            TransformError::Sql(_) | TransformError::Refused(_) | TransformError::DataFusion(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            TransformError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            TransformError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
            TransformError::TooBig(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TransformError::Lake(e) => lake_status(e),
        };
        ApiError(status, error.to_string())
    }
}

/// A catalog or store that may come back is 503; anything else the lake failed at is 500.
fn lake_status(error: &LakeError) -> StatusCode {
    match error.retryable() {
        true => StatusCode::SERVICE_UNAVAILABLE,
        false => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_query_is_400_an_outage_503_and_ingots_own_failure_500() {
        let status = |e: TransformError| ApiError::from(e).0;
        assert_eq!(status(TransformError::Sql("SELECT * FROM nowhere".into())), StatusCode::BAD_REQUEST);
        assert_eq!(status(TransformError::Busy(4)), StatusCode::TOO_MANY_REQUESTS);
        let unknown = || LakeError::CommitUnknown { table: "gold.t".into(), error: "timeout".into() };
        assert_eq!(status(TransformError::Lake(unknown())), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::from(unknown()).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::from(LakeError::Config("bad".into())).0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
