//! What auth's OIDC unit tests share on top of `portcullis-testkit` (the keys, token minting
//! and the fault-injecting issuer): the claims and settings these tests run with.

use portcullis_config::{vars, OidcSettings, Settings};
use serde_json::{json, Value};

pub(crate) use portcullis_testkit::{
    b64, eventually, hmac, jws, now, FaultIssuer, JwksBody, Mode, TestKey,
};

/// The client id test tokens carry in `aud`.
pub(crate) const CLIENT_ID: &str = "portcullis-test";

/// Every algorithm the issuer advertises in these tests (more than the testkit's default, so
/// that PS256 and ES512 keys load).
pub(crate) const ADVERTISED: &[&str] = &["RS256", "PS256", "ES256", "ES512", "EdDSA", "HS256"];

/// Valid claims for `issuer`: audience, five minutes of life, `email` and `groups`.
pub(crate) fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": CLIENT_ID,
        "sub": "user-1",
        "email": "alice@example.com",
        "groups": ["readers", "writers"],
        "iat": now,
        "nbf": now - 1,
        "exp": now + 300,
    })
}

/// A JWKS document holding `keys`.
pub(crate) fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// An issuer publishing exactly these JWKs and advertising [`ADVERTISED`].
pub(crate) async fn start_issuer(jwks: Vec<Value>) -> FaultIssuer {
    let issuer = FaultIssuer::start_with_jwks(jwks).await;
    issuer.set_algs(ADVERTISED);
    issuer
}

/// OIDC settings for `issuer` through the real parser, with `extra` variables.
pub(crate) fn settings(issuer: &str, extra: &[(&str, &str)]) -> OidcSettings {
    let mut env = vec![
        (vars::OIDC_ENABLED, "true"),
        (vars::OIDC_ISSUER, issuer),
        (vars::OIDC_CLIENT_ID, CLIENT_ID),
        (vars::OIDC_USERNAME_CLAIM, "email"),
        (vars::OIDC_GROUPS_CLAIM, "groups"),
    ];
    env.extend_from_slice(extra);
    match Settings::from_vars(env) {
        Ok(settings) => settings.authentication.oidc.expect("OIDC on"),
        Err(err) => panic!("test settings: {err}"),
    }
}
