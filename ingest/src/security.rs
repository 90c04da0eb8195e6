//! How every Kafka client encrypts and authenticates: the typed `[kafka]` security keys,
//! checked together and turned into librdkafka properties in one place. Secrets (the SASL
//! password, a key's passphrase) come from environment variables named in the config, never
//! from the file, and never show in errors.

use crate::{IngestError, KafkaConfig};

const PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
const MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// The librdkafka properties `[kafka]`'s security keys stand for; an inconsistent
/// combination or a variable that is not set is an error naming the key.
pub(crate) fn security_properties(kafka: &KafkaConfig) -> Result<Vec<(&'static str, String)>, IngestError> {
    let bad = |message: String| Err(IngestError::Config(message));
    let protocol = kafka.security_protocol.as_deref().unwrap_or("plaintext").to_ascii_lowercase();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return bad(format!("kafka.security_protocol = `{protocol}`: use one of {}", PROTOCOLS.join(", ")));
    }
    let (tls, sasl) = (protocol.ends_with("ssl"), protocol.starts_with("sasl"));
    let mut out = vec![("security.protocol", protocol.clone())];
    match (&kafka.sasl_mechanism, sasl) {
        (Some(mechanism), true) => {
            let mechanism = mechanism.to_ascii_uppercase();
            if !MECHANISMS.contains(&mechanism.as_str()) {
                return bad(format!(
                    "kafka.sasl_mechanism = `{mechanism}`: use one of {}",
                    MECHANISMS.join(", ")
                ));
            }
            out.push(("sasl.mechanisms", mechanism));
        }
        (None, true) => {
            return bad(format!("kafka.security_protocol = `{protocol}` needs kafka.sasl_mechanism"));
        }
        (Some(_), false) => {
            return bad(format!(
                "kafka.sasl_mechanism is set but kafka.security_protocol = `{protocol}` does not use SASL \
                     (sasl_plaintext or sasl_ssl)"
            ));
        }
        (None, false) => {}
    }
    if let Some(user) = &kafka.sasl_username {
        out.push(("sasl.username", user.clone()));
    }
    if let Some(password) = from_env("sasl_password_env", &kafka.sasl_password_env)? {
        out.push(("sasl.password", password));
    }
    let files = [
        ("ssl_ca_location", "ssl.ca.location", &kafka.ssl_ca_location),
        ("ssl_certificate_location", "ssl.certificate.location", &kafka.ssl_certificate_location),
        ("ssl_key_location", "ssl.key.location", &kafka.ssl_key_location),
    ];
    for (key, property, path) in files {
        let Some(path) = path else { continue };
        if !tls {
            return bad(format!(
                "kafka.{key} is set but kafka.security_protocol = `{protocol}` does not use TLS (ssl or sasl_ssl)"
            ));
        }
        if !path.is_file() {
            return bad(format!("kafka.{key}: {} is not a readable file", path.display()));
        }
        out.push((property, path.display().to_string()));
    }
    if let Some(passphrase) = from_env("ssl_key_password_env", &kafka.ssl_key_password_env)? {
        out.push(("ssl.key.password", passphrase));
    }
    Ok(out)
}

fn from_env(key: &str, name: &Option<String>) -> Result<Option<String>, IngestError> {
    let Some(name) = name else { return Ok(None) };
    let secret =
        ingot_secret::Secret::from_env(&format!("kafka.{key}"), name).map_err(IngestError::Config)?;
    Ok(Some(secret.expose().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_keys_are_refused_by_name() {
        let with = |protocol: &str, mechanism: Option<&str>| KafkaConfig {
            security_protocol: Some(protocol.into()),
            sasl_mechanism: mechanism.map(Into::into),
            ..Default::default()
        };
        let err = |k: KafkaConfig| security_properties(&k).unwrap_err().to_string();
        assert!(err(with("sasl_ssl", None)).contains("kafka.sasl_mechanism"));
        assert!(err(with("ssl", Some("PLAIN"))).contains("does not use SASL"));
        assert!(err(with("tls", None)).contains("kafka.security_protocol = `tls`"));
        assert!(err(with("sasl_plaintext", Some("GSSAPI"))).contains("kafka.sasl_mechanism = `GSSAPI`"));
        let ca_without_tls =
            KafkaConfig { ssl_ca_location: Some("/etc/hostname".into()), ..Default::default() };
        assert!(err(ca_without_tls).contains("kafka.ssl_ca_location"));
        let unset = KafkaConfig {
            sasl_password_env: Some("INGOT_TEST_SURELY_UNSET_VARIABLE".into()),
            ..with("sasl_ssl", Some("scram-sha-512"))
        };
        let text = err(unset);
        assert!(
            text.contains("kafka.sasl_password_env") && text.contains("INGOT_TEST_SURELY_UNSET_VARIABLE")
        );
        let fine = security_properties(&with("sasl_ssl", Some("scram-sha-512"))).unwrap();
        assert!(fine.contains(&("sasl.mechanisms", "SCRAM-SHA-512".to_string())), "{fine:?}");
    }
}
