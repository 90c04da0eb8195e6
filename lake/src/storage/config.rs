//! `[catalog.storage]`: how to reach an object-store warehouse. Every key is optional: unset
//! keys come from the usual AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, web identity,
//! ECS/EC2 instance credentials). A local warehouse ignores the section.

use ingot_secret::Secret;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The S3 endpoint of a non-AWS store (`http://127.0.0.1:9000` for MinIO or moto).
    pub endpoint: Option<String>,
    /// The bucket's region (`us-east-1` when neither this nor `AWS_REGION` is set).
    pub region: Option<String>,
    pub access_key_id: Option<Secret>,
    /// Never shown in logs or errors.
    pub secret_access_key: Option<Secret>,
    /// For temporary credentials; never shown.
    pub session_token: Option<Secret>,
    /// Allow a plain-HTTP endpoint (local stores); AWS itself is always HTTPS.
    pub allow_http: Option<bool>,
    /// `bucket.host/key` addressing instead of `host/bucket/key` (path style, the default,
    /// which S3-compatible stores expect).
    pub virtual_hosted_style: Option<bool>,
}

impl StorageConfig {
    /// Applies the keys that are set over what the environment gave `builder`.
    pub(crate) fn s3_builder(&self, mut builder: AmazonS3Builder) -> AmazonS3Builder {
        let mut set = |key: AmazonS3ConfigKey, value: Option<&str>| {
            if let Some(value) = value {
                builder = std::mem::take(&mut builder).with_config(key, value);
            }
        };
        set(AmazonS3ConfigKey::Endpoint, self.endpoint.as_deref());
        set(AmazonS3ConfigKey::Region, self.region.as_deref());
        set(AmazonS3ConfigKey::AccessKeyId, self.access_key_id.as_ref().map(Secret::expose));
        set(AmazonS3ConfigKey::SecretAccessKey, self.secret_access_key.as_ref().map(Secret::expose));
        set(AmazonS3ConfigKey::Token, self.session_token.as_ref().map(Secret::expose));
        set(
            AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp),
            self.allow_http.map(bool_str),
        );
        set(AmazonS3ConfigKey::VirtualHostedStyleRequest, self.virtual_hosted_style.map(bool_str));
        if builder.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
            builder = builder.with_region("us-east-1");
        }
        builder
    }

    /// `text` with every configured credential replaced by a redaction mark.
    pub(crate) fn scrub(&self, text: &str) -> String {
        [&self.access_key_id, &self.secret_access_key, &self.session_token]
            .into_iter()
            .flatten()
            .fold(text.to_string(), |text, secret| secret.scrub(&text))
    }
}

fn bool_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}
