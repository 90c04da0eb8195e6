//! One type for every config value that holds a credential, so that none is ever printed.
//!
//! A [`Secret`] is either wholly secret (a token, a password) or a URI whose user-info password
//! and credential-like query parameters are (`postgres://ingot:pw@db/lake`,
//! `…?sslpassword=…`). It shows as its redacted form in `Debug` and `Display`; the value itself
//! is reached only through [`Secret::expose`], at the one place that hands it to a client.
//! Errors from libraries that echo what they were given are passed through [`Secret::scrub`].

use std::fmt;

use serde::Deserialize;

/// What replaces a credential in anything shown.
pub const REDACTED: &str = "***";

/// Query parameters and property names whose values are credentials.
const SENSITIVE_NAMES: [&str; 6] = ["password", "secret", "token", "credential", "jaas", "key.pem"];

/// A config value holding a credential; see the crate docs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret in the environment variable `variable`, which config key `key` names
    /// (`catalog.rest.token_env`, `kafka.sasl_password_env`, …). A variable that is unset or
    /// empty is an error naming both, never a silent empty credential.
    pub fn from_env(key: &str, variable: &str) -> Result<Self, String> {
        match std::env::var(variable) {
            Ok(value) if !value.is_empty() => Ok(Self(value)),
            _ => Err(format!("{key} names `{variable}`, which is not set in the environment")),
        }
    }

    /// The value itself, for the client that needs it; never for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value with every credential in it replaced by `***`: safe to show.
    pub fn redacted(&self) -> String {
        match self.0.contains("://") {
            true => self.scrub(&self.0),
            false if self.0.is_empty() => String::new(),
            false => REDACTED.into(),
        }
    }

    /// `text` with every credential of this value replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for credential in self.credentials() {
            out = out.replace(&credential, REDACTED);
        }
        out
    }

    /// The parts of the value that are credentials, longest first (so a shorter one inside a
    /// longer one cannot leave a piece of it behind).
    fn credentials(&self) -> Vec<String> {
        let Some((_, rest)) = self.0.split_once("://") else {
            return match self.0.is_empty() {
                true => Vec::new(),
                false => vec![self.0.clone()],
            };
        };
        let mut found = Vec::new();
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((user_info, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = user_info.split_once(':')
            && !password.is_empty()
        {
            found.push(password.to_string());
            found.push(percent_decode(password));
        }
        if let Some((_, query)) = rest.split_once('?') {
            for pair in query.split('&') {
                if let Some((name, value)) = pair.split_once('=')
                    && is_sensitive_name(name)
                    && !value.is_empty()
                {
                    found.push(value.to_string());
                    found.push(percent_decode(value));
                }
            }
        }
        found.sort_by_key(|c| std::cmp::Reverse(c.len()));
        found.dedup();
        found
    }
}

/// Whether a setting or parameter of this name holds a credential (`sasl.password`,
/// `ssl.key.password`, `sasl.oauthbearer.client.secret`, `sslpassword`, …).
pub fn is_sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_NAMES.iter().any(|s| name.contains(s))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_shows_everything_but_its_password() {
        let uri =
            Secret::new("postgres://ingot:s3cr%40t@db.example:5432/lake?sslmode=require&sslpassword=k3y");
        assert_eq!(
            uri.redacted(),
            "postgres://ingot:***@db.example:5432/lake?sslmode=require&sslpassword=***"
        );
        assert_eq!(format!("{uri:?}"), format!("{:?}", uri.redacted()));
        assert_eq!(uri.to_string(), uri.redacted());
    }

    #[test]
    fn errors_echoing_the_password_in_either_spelling_are_scrubbed() {
        let uri = Secret::new("postgres://ingot:s3cr%40t@db/lake");
        let error = "password authentication failed (s3cr@t) for postgres://ingot:s3cr%40t@db/lake";
        let scrubbed = uri.scrub(error);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
    }

    #[test]
    fn a_plain_secret_shows_as_stars_and_a_uri_without_one_unchanged() {
        assert_eq!(Secret::new("tok-123").redacted(), REDACTED);
        assert_eq!(
            Secret::new("sqlite:///var/lib/ingot/catalog.db").redacted(),
            "sqlite:///var/lib/ingot/catalog.db"
        );
        assert_eq!(Secret::new("http://user@marquez:5000").redacted(), "http://user@marquez:5000");
    }

    #[test]
    fn reads_from_config_as_a_plain_string() {
        #[derive(Deserialize)]
        struct Config {
            uri: Secret,
        }
        let config: Config = toml::from_str("uri = \"postgres://u:pw@h/d\"").unwrap();
        assert_eq!(config.uri.expose(), "postgres://u:pw@h/d");
    }

    #[test]
    fn credential_names_are_recognised() {
        for name in
            ["sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret", "sasl.jaas.config"]
        {
            assert!(is_sensitive_name(name), "{name}");
        }
        assert!(!is_sensitive_name("fetch.min.bytes"));
    }
}
