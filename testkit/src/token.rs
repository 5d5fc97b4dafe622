//! Token assembly byte for byte: the header and payload are exactly the bytes a test gives,
//! so hostile tokens (duplicate keys, invalid UTF-8, padded base64, forged signatures) are
//! easy to build.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;

use crate::key::install_crypto;

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `b64(header).b64(payload).b64(sign(b64(header).b64(payload)))`: the header and payload are
/// exactly these bytes.
pub fn jws(header: &[u8], payload: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    signed_segments(&b64(header), &b64(payload), sign)
}

/// `h.p.b64(sign("h.p"))` for segments given as text (for non-canonical base64).
pub fn signed_segments(header: &str, payload: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let message = format!("{header}.{payload}");
    let signature = sign(message.as_bytes());
    format!("{message}.{}", b64(&signature))
}

/// An HMAC (`HS256`/`HS384`/`HS512`) of `message` under `secret`: for key-confusion tokens
/// that use a public key as the secret.
pub fn hmac(alg: &str, secret: &[u8], message: &[u8]) -> Vec<u8> {
    install_crypto();
    let algorithm: Algorithm = alg.parse().expect("HS algorithm");
    let key = EncodingKey::from_secret(secret).expect("HMAC secret");
    let signature = jsonwebtoken::crypto::sign(message, &key, algorithm).expect("HMAC");
    URL_SAFE_NO_PAD.decode(signature).expect("signature base64")
}

/// The decoded header and payload of a compact JWS (no verification), for tests that inspect
/// tokens minted elsewhere.
pub fn decode_unverified(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let part = parts.next().expect("token segment");
        let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url segment");
        serde_json::from_slice::<Value>(&bytes).expect("JSON segment")
    };
    let header = next();
    let payload = next();
    (header, payload)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A random 16-hex-digit identifier (for `jti` and `kid` values).
pub fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
