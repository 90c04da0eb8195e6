//! AWS Glue's JSON API, signed with SigV4: one `call` per action (`AWSGlue.GetTable`, …)
//! and the few error classes the catalog needs to tell apart (not found, already there,
//! someone else's update won, outcome unknown).

use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::HttpRequest;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How long one Glue request may take before its outcome counts as unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct GlueClient {
    http: reqwest::Client,
    /// `https://glue.<region>.amazonaws.com` or a compatible endpoint.
    pub(super) endpoint: String,
    region: String,
    credentials: AwsCredentialProvider,
    /// The AWS account whose catalog is used (default: the caller's).
    catalog_id: Option<String>,
}

impl std::fmt::Debug for GlueClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlueClient").field("endpoint", &self.endpoint).field("region", &self.region).finish()
    }
}

/// Why a Glue call failed, in the classes the catalog acts on.
#[derive(Debug)]
pub(super) enum GlueError {
    /// `EntityNotFoundException`.
    NotFound(String),
    /// `AlreadyExistsException`.
    AlreadyExists(String),
    /// `ConcurrentModificationException`: the version id moved on.
    Conflict(String),
    /// No answer, a 5xx or throttling: the request may or may not have been applied.
    Unknown(String),
    /// Any other refusal (bad input, access denied): nothing was applied.
    Refused(String),
}

impl std::fmt::Display for GlueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GlueError::NotFound(m)
            | GlueError::AlreadyExists(m)
            | GlueError::Conflict(m)
            | GlueError::Unknown(m)
            | GlueError::Refused(m) => f.write_str(m),
        }
    }
}

impl GlueError {
    /// As iceberg's error about a table (`table` true) or a namespace: the kind says what a
    /// caller can do about it.
    pub(super) fn into_iceberg(self, context: &str, table: bool) -> iceberg::Error {
        use iceberg::ErrorKind;
        let (kind, retryable) = match &self {
            GlueError::NotFound(_) if table => (ErrorKind::TableNotFound, false),
            GlueError::NotFound(_) => (ErrorKind::NamespaceNotFound, false),
            GlueError::AlreadyExists(_) if table => (ErrorKind::TableAlreadyExists, false),
            GlueError::AlreadyExists(_) => (ErrorKind::NamespaceAlreadyExists, false),
            GlueError::Conflict(_) => (ErrorKind::CatalogCommitConflicts, true),
            GlueError::Unknown(_) => (ErrorKind::Unexpected, true),
            GlueError::Refused(_) => (ErrorKind::Unexpected, false),
        };
        iceberg::Error::new(kind, format!("{context}: {self}")).with_retryable(retryable)
    }
}

impl GlueClient {
    pub(super) fn new(
        endpoint: String,
        region: String,
        credentials: AwsCredentialProvider,
        catalog_id: Option<String>,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { http, endpoint, region, credentials, catalog_id })
    }

    /// Calls `action` with `body` (plus the configured catalog id) and decodes the answer.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        action: &str,
        mut body: Value,
    ) -> Result<T, GlueError> {
        if let (Some(id), Value::Object(map)) = (&self.catalog_id, &mut body) {
            map.insert("CatalogId".into(), Value::String(id.clone()));
        }
        let body = Bytes::from(serde_json::to_vec(&body).expect("a JSON value serializes"));
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| GlueError::Refused(format!("AWS credentials: {e}")))?;
        let mut request: HttpRequest = http::Request::post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("AWSGlue.{action}"))
            .body(body.clone().into())
            .map_err(|e| GlueError::Refused(format!("{action}: {e}")))?;
        AwsAuthorizer::new(&credential, "glue", &self.region).authorize(&mut request, None);
        let answer = self
            .http
            .post(format!("{}/", self.endpoint))
            .headers(request.headers().clone())
            .body(body)
            .send()
            .await
            .map_err(|e| GlueError::Unknown(format!("{action}: {}", e.without_url())))?;
        let status = answer.status();
        let text =
            answer.text().await.map_err(|e| GlueError::Unknown(format!("{action}: {}", e.without_url())))?;
        if status.is_success() {
            let text = if text.is_empty() { "{}" } else { &text };
            return serde_json::from_str(text)
                .map_err(|e| GlueError::Refused(format!("{action}: unexpected answer ({e}): {text}")));
        }
        Err(classify(action, status.as_u16(), &text))
    }
}

/// Glue names the error in `__type` (sometimes as `namespace#Name`) with a `Message`.
fn classify(action: &str, status: u16, text: &str) -> GlueError {
    let answer: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let kind = answer["__type"].as_str().unwrap_or_default();
    let kind = kind.rsplit('#').next().unwrap_or(kind);
    let message = answer["Message"].as_str().or(answer["message"].as_str()).unwrap_or(text);
    let described = format!("{action}: {kind} ({status}): {message}");
    match kind {
        "EntityNotFoundException" => GlueError::NotFound(described),
        "AlreadyExistsException" => GlueError::AlreadyExists(described),
        "ConcurrentModificationException" => GlueError::Conflict(described),
        "ThrottlingException" | "InternalServiceException" | "OperationTimeoutException" => {
            GlueError::Unknown(described)
        }
        _ if status >= 500 => GlueError::Unknown(described),
        _ => GlueError::Refused(described),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_error_names_are_classified_with_or_without_their_namespace() {
        let not_found = r#"{"__type":"com.amazonaws.glue#EntityNotFoundException","Message":"no t"}"#;
        assert!(matches!(classify("GetTable", 400, not_found), GlueError::NotFound(_)));
        let conflict = r#"{"__type":"ConcurrentModificationException","Message":"moved"}"#;
        assert!(matches!(classify("UpdateTable", 400, conflict), GlueError::Conflict(_)));
        assert!(matches!(classify("UpdateTable", 503, ""), GlueError::Unknown(_)));
        let denied = r#"{"__type":"AccessDeniedException","Message":"no"}"#;
        let refused = classify("GetTable", 400, denied);
        assert!(matches!(refused, GlueError::Refused(_)));
        assert!(refused.to_string().contains("AccessDeniedException"), "{refused}");
    }
}
