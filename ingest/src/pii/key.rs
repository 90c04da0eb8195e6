//! The PII key: read from the environment, never stored or shown. Everything ingot derives
//! from it (tokens, the quarantine payload cipher, the key id) is an HMAC-SHA256 under it
//! with its own label, so no two uses can be confused.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use ingot_secret::Secret;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Shortest key accepted: a shorter one could be guessed by trying tokens of known values.
pub const MIN_KEY_BYTES: usize = 16;

/// What sealed quarantine payloads start with (format version 1).
const SEALED_MAGIC: &[u8; 4] = b"IGP1";
const NONCE_BYTES: usize = 12;
const KEY_ID_BYTES: usize = 8;
/// What every token's HMAC input starts with (so a token is no other HMAC under the key).
const TOKEN_LABEL: &[u8] = b"ingot.pii.token\0";

/// The PII key and what is derived from it.
#[derive(Clone)]
pub struct PiiKey {
    secret: Secret,
    id: String,
    cipher: Aes256Gcm,
    /// The token HMAC with the key and the label absorbed: cloned per value, so the key's
    /// setup (two hash blocks) is not repeated for every token.
    token_mac: HmacSha256,
}

impl std::fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl PiiKey {
    /// The key in environment variable `variable` (named by config key `key`).
    pub fn from_env(key: &str, variable: &str) -> Result<Self, String> {
        Self::new(Secret::from_env(key, variable)?)
            .map_err(|problem| format!("{key} (`{variable}`): {problem}"))
    }

    pub fn new(secret: Secret) -> Result<Self, String> {
        if secret.expose().len() < MIN_KEY_BYTES {
            return Err(format!("the key must be at least {MIN_KEY_BYTES} bytes"));
        }
        let derive = |label: &str| mac(secret.expose().as_bytes(), &[label.as_bytes()]);
        let id = hex::encode(&derive("ingot.pii.key-id")[..KEY_ID_BYTES]);
        let cipher = Aes256Gcm::new_from_slice(&derive("ingot.pii.quarantine-cipher")).expect("32-byte key");
        let mut token_mac =
            <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
        token_mac.update(TOKEN_LABEL);
        Ok(Self { secret, id, cipher, token_mac })
    }

    /// A short public name of the key (a hash of it): recorded where its tokens are, so that a
    /// rotation shows. It reveals nothing about the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The token of `value`: hex HMAC-SHA256 under the key. Equal values give equal tokens
    /// (joins and dedup on them still work); without the key, a token tells nothing but that.
    pub fn token(&self, value: &[u8]) -> String {
        let mut mac = self.token_mac.clone();
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }

    /// `plaintext` encrypted and authenticated with AES-256-GCM, bound to `context` (the
    /// message's Kafka coordinates, so a sealed payload cannot be passed off as another's).
    /// The nonce is derived from the key, the context and the plaintext: the same message
    /// sealed twice gives the same bytes, and two different messages never share a nonce.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let digest = Sha256::digest(plaintext);
        let derived = mac(self.secret.expose().as_bytes(), &[b"ingot.pii.nonce\0", context, &digest]);
        let nonce = &derived[..NONCE_BYTES];
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(nonce), Payload { msg: plaintext, aad: context })
            .expect("AES-GCM encryption of an in-memory buffer");
        let mut out = Vec::with_capacity(4 + KEY_ID_BYTES + NONCE_BYTES + sealed.len());
        out.extend_from_slice(SEALED_MAGIC);
        out.extend_from_slice(&hex::decode(&self.id).expect("hex id"));
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext of what `seal` made with this key and `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        let header = 4 + KEY_ID_BYTES + NONCE_BYTES;
        if sealed.len() < header || &sealed[..4] != SEALED_MAGIC {
            return Err("not a payload sealed by ingot".into());
        }
        let key_id = hex::encode(&sealed[4..4 + KEY_ID_BYTES]);
        if key_id != self.id {
            return Err(format!("sealed with key {key_id}, but the configured key is {}", self.id));
        }
        let nonce = Nonce::from_slice(&sealed[4 + KEY_ID_BYTES..header]);
        self.cipher.decrypt(nonce, Payload { msg: &sealed[header..], aad: context }).map_err(|_| {
            "the sealed payload does not authenticate (altered, or moved from another message)".into()
        })
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> PiiKey {
        PiiKey::new(Secret::new(text)).unwrap()
    }

    #[test]
    fn equal_values_give_equal_tokens_and_another_key_other_tokens() {
        let (a, b) = (key("first key, long enough"), key("second key, long enough"));
        assert_eq!(a.token(b"alice@example.com"), a.token(b"alice@example.com"));
        assert_ne!(a.token(b"alice@example.com"), a.token(b"bob@example.com"));
        assert_ne!(a.token(b"alice@example.com"), b.token(b"alice@example.com"));
        assert_eq!(a.token(b"x").len(), 64);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
    }

    #[test]
    fn the_expected_token_is_a_keyed_hmac() {
        let k = key("a key of sixteen+");
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"a key of sixteen+").unwrap();
        mac.update(b"ingot.pii.token\0alice");
        assert_eq!(k.token(b"alice"), hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn short_keys_are_refused_and_never_shown() {
        assert!(PiiKey::new(Secret::new("short")).unwrap_err().contains("16 bytes"));
        let k = key("do not print this key");
        assert!(!format!("{k:?}").contains("print this"));
    }

    #[test]
    fn sealed_payloads_open_only_with_their_key_and_context() {
        let k = key("first key, long enough");
        let sealed = k.seal(b"orders/0/7", b"customer alice@example.com");
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        assert_eq!(k.seal(b"orders/0/7", b"customer alice@example.com"), sealed, "deterministic");
        assert_ne!(k.seal(b"orders/0/8", b"customer alice@example.com")[12..24], sealed[12..24]);
        assert_eq!(k.open(b"orders/0/7", &sealed).unwrap(), b"customer alice@example.com");
        assert!(k.open(b"orders/0/8", &sealed).unwrap_err().contains("authenticate"));
        let other = key("second key, long enough");
        assert!(other.open(b"orders/0/7", &sealed).unwrap_err().contains("sealed with key"));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(k.open(b"orders/0/7", &altered).is_err());
        assert!(k.open(b"orders/0/7", b"raw bytes").unwrap_err().contains("not a payload"));
    }
}
