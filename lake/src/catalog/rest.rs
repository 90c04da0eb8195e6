//! An Iceberg REST catalog (Polaris, Lakekeeper, Nessie, Unity, Gravitino, rustberg…).
//! iceberg's `RestCatalog` loads, creates and lists, reading and writing files through ingot's
//! storage; ingot's own commits (overwrite, replace, expiry, appends) are POSTed to the
//! table's endpoint as `updates` with `requirements` (`assert-table-uuid`,
//! `assert-ref-snapshot-id` on `main`): a 409 is a lost race, a 5xx or a lost answer is an
//! unknown outcome the caller settles from the table's history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, TableIdent};
use iceberg_catalog_rest::{
    REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE, RestCatalog, RestCatalogBuilder,
};
use ingot_secret::Secret;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{CatalogBackend, CatalogConfig, metadata_diff};
use crate::LakeError;
use crate::storage::{ObjectStorageFactory, Warehouse};

/// How long one catalog request may take before its outcome counts as unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `[catalog.rest]`: how to authenticate to a REST catalog. Secrets are read from the
/// environment variables named here, never from the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// Variable holding a bearer token.
    pub token_env: Option<String>,
    /// Variable holding OAuth2 client credentials as `client_id:client_secret`.
    pub credential_env: Option<String>,
    /// Token endpoint for client credentials (default: the catalog's `v1/oauth/tokens`).
    pub oauth2_server_uri: Option<String>,
    /// OAuth2 scope (default `catalog`).
    pub scope: Option<String>,
}

#[derive(Debug)]
pub(crate) struct RestBackend {
    catalog: RestCatalog,
    client: Client,
    /// `<uri>/v1/<prefix>/` — every table endpoint starts here.
    base: String,
}

/// ingot's own HTTP client to the catalog, with its authentication.
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    auth: Auth,
}

#[derive(Debug)]
enum Auth {
    None,
    Token(Secret),
    /// Client credentials; the token is fetched on first use and again after a 401.
    Client {
        credential: Secret,
        token_uri: String,
        scope: String,
        token: Mutex<Option<Secret>>,
    },
}

impl RestBackend {
    pub(crate) async fn open(config: &CatalogConfig, warehouse: &Warehouse) -> Result<Self, LakeError> {
        let uri = config.uri.expose().trim_end_matches('/').to_string();
        if !uri.starts_with("http://") && !uri.starts_with("https://") {
            return Err(LakeError::Config(format!(
                "catalog.uri must be an http(s):// URL for catalog.type = \"rest\", got `{}`",
                config.uri
            )));
        }
        let rest = &config.rest;
        let from_env = |key: &str, name: &Option<String>| -> Result<Option<Secret>, LakeError> {
            name.as_deref()
                .map(|name| Secret::from_env(&format!("catalog.rest.{key}"), name).map_err(LakeError::Config))
                .transpose()
        };
        let mut props = HashMap::from([
            (REST_CATALOG_PROP_URI.to_string(), uri.clone()),
            (REST_CATALOG_PROP_WAREHOUSE.to_string(), warehouse.uri().to_string()),
        ]);
        let auth = match (
            from_env("token_env", &rest.token_env)?,
            from_env("credential_env", &rest.credential_env)?,
        ) {
            (Some(token), _) => {
                props.insert("token".into(), token.expose().into());
                Auth::Token(token)
            }
            (None, Some(credential)) => {
                props.insert("credential".into(), credential.expose().into());
                let token_uri = rest.oauth2_server_uri.clone().unwrap_or(format!("{uri}/v1/oauth/tokens"));
                props.insert("oauth2-server-uri".into(), token_uri.clone());
                let scope = rest.scope.clone().unwrap_or("catalog".into());
                props.insert("scope".into(), scope.clone());
                Auth::Client { credential, token_uri, scope, token: Mutex::new(None) }
            }
            (None, None) => Auth::None,
        };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| LakeError::Config(format!("HTTP client: {e}")))?;
        let client = Client { http, auth };
        // The catalog's config names the path prefix of every endpoint (and answers at all).
        let config_url = format!("{uri}/v1/config?warehouse={}", encode(warehouse.uri()));
        let answer = client.send(|http| http.get(&config_url)).await.map_err(|e| unavailable(&uri, e))?;
        let status = answer.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            // Not transient: waiting will not make the catalog accept these credentials.
            return Err(LakeError::Config(format!(
                "REST catalog {uri} refused the credentials (GET /v1/config answered {status}); \
                 check catalog.rest.token_env / credential_env"
            )));
        }
        if !status.is_success() {
            return Err(unavailable(&uri, format!("GET /v1/config answered {status}")));
        }
        let answer: ConfigAnswer =
            answer.json().await.map_err(|e| unavailable(&uri, e.without_url().to_string()))?;
        let prefix = answer.overrides.get("prefix").or(answer.defaults.get("prefix")).cloned();
        let base = match prefix {
            Some(prefix) => format!("{uri}/v1/{}/", prefix.trim_matches('/')),
            None => format!("{uri}/v1/"),
        };
        let catalog = RestCatalogBuilder::default()
            .with_storage_factory(Arc::new(ObjectStorageFactory::new(warehouse.clone())))
            .load(&config.name, props)
            .await
            .map_err(|e| LakeError::iceberg(format!("open REST catalog {uri}"))(e))?;
        Ok(Self { catalog, client, base })
    }

    fn table_url(&self, ident: &TableIdent) -> String {
        format!(
            "{}namespaces/{}/tables/{}",
            self.base,
            encode(&ident.namespace().join("\u{1f}")),
            encode(ident.name())
        )
    }
}

impl Client {
    /// Sends a request with the catalog's authentication, fetching (or refreshing after a
    /// 401) a client-credentials token as needed.
    async fn send(
        &self,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        for attempt in 0..2 {
            let mut builder = request(&self.http);
            match &self.auth {
                Auth::None => {}
                Auth::Token(token) => builder = builder.bearer_auth(token.expose()),
                Auth::Client { token, .. } => {
                    let mut held = token.lock().await;
                    if held.is_none() {
                        *held = Some(self.fetch_token().await?);
                    }
                    builder = builder.bearer_auth(held.as_ref().map(Secret::expose).unwrap_or_default());
                }
            }
            let answer = builder.send().await.map_err(|e| e.without_url().to_string())?;
            if answer.status() == reqwest::StatusCode::UNAUTHORIZED
                && attempt == 0
                && let Auth::Client { token, .. } = &self.auth
            {
                *token.lock().await = None;
                continue;
            }
            return Ok(answer);
        }
        unreachable!("the loop returns on its second pass")
    }

    async fn fetch_token(&self) -> Result<Secret, String> {
        let Auth::Client { credential, token_uri, scope, .. } = &self.auth else {
            return Err("no client credentials configured".into());
        };
        let (id, secret) = credential.expose().split_once(':').unwrap_or(("", credential.expose()));
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", scope),
        ];
        let answer = self
            .http
            .post(token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("OAuth2 token request: {}", e.without_url()))?;
        if !answer.status().is_success() {
            return Err(format!("OAuth2 token request answered {}", answer.status()));
        }
        let token: TokenAnswer =
            answer.json().await.map_err(|e| format!("OAuth2 token answer: {}", e.without_url()))?;
        Ok(Secret::new(token.access_token))
    }
}

#[derive(Deserialize)]
struct ConfigAnswer {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(serde::Serialize)]
struct CommitRequest<'a> {
    identifier: &'a TableIdent,
    requirements: Vec<iceberg::TableRequirement>,
    updates: Vec<iceberg::TableUpdate>,
}

#[async_trait::async_trait]
impl CatalogBackend for RestBackend {
    fn catalog(&self) -> &dyn Catalog {
        &self.catalog
    }

    async fn commit(&self, base: &Table, metadata: &TableMetadata) -> Result<(), LakeError> {
        let ident = base.identifier();
        let (requirements, updates) =
            metadata_diff::commit_request(&ident.to_string(), base.metadata(), metadata)?;
        let body = CommitRequest { identifier: ident, requirements, updates };
        let url = self.table_url(ident);
        let unknown = |error: String| LakeError::CommitUnknown { table: ident.to_string(), error };
        let answer = self.client.send(|http| http.post(&url).json(&body)).await.map_err(unknown)?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let text = answer.text().await.unwrap_or_default();
        match status.as_u16() {
            409 => Err(LakeError::CommitConflict { table: ident.to_string() }),
            // The spec: 500, 502, 504 and other 5xx leave the commit state unknown.
            500..=599 => Err(unknown(format!("catalog answered {status}: {text}"))),
            _ => Err(LakeError::iceberg(format!("commit to {ident}"))(iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                format!("catalog answered {status}: {text}"),
            ))),
        }
    }
}

fn unavailable(uri: &str, cause: impl ToString) -> LakeError {
    LakeError::unavailable(format!("reach REST catalog {uri}"), cause)
}

/// Percent-encodes a path segment or query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
