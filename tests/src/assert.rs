//! The answers every suite checks the same way: the `WWW-Authenticate` challenges, the
//! generic 401 body, a 401 for an invalid credential and a 403 from the admin list. They
//! accept a [`Reply`] from the request helper and a [`RawResponse`] from a raw connection.

use serde_json::{json, Value};

use crate::api::Reply;
use crate::RawResponse;

/// `WWW-Authenticate` of a 401 without a credential.
pub const CHALLENGE_MISSING: &str = r#"Bearer realm="portcullis""#;
/// `WWW-Authenticate` of a 401 for a present but invalid credential.
pub const CHALLENGE_INVALID_TOKEN: &str = r#"Bearer realm="portcullis", error="invalid_token""#;
/// `WWW-Authenticate` of a 400 for a malformed `Authorization` header.
pub const CHALLENGE_INVALID_REQUEST: &str = r#"Bearer realm="portcullis", error="invalid_request""#;
/// The message of every 401 for an invalid credential, whatever the reason.
pub const INVALID_MESSAGE: &str = "unauthorized: invalid credential";

/// The body of every 401 for an invalid credential.
pub fn invalid_credential_body() -> Value {
    json!({ "code": 401, "message": INVALID_MESSAGE })
}

/// The body of a 403 from the admin list (Weaviate's handler-error shape). The query is not
/// part of the path the message names.
pub fn forbidden_body(user: &str, verb: &str, path: &str) -> Value {
    let path = path.split('?').next().unwrap_or(path);
    json!({ "error": [{ "message": format!(
        "forbidden: user '{user}' has insufficient permissions to {verb} {path}"
    ) }] })
}

/// What the assertions read from an answer, however it was received.
pub trait Answer {
    /// The status code.
    fn status_code(&self) -> u16;
    /// The only value of a header.
    fn header_value(&self, name: &str) -> Option<&str>;
    /// The body bytes.
    fn body_bytes(&self) -> &[u8];
}

impl Answer for Reply {
    fn status_code(&self) -> u16 {
        self.status.as_u16()
    }
    fn header_value(&self, name: &str) -> Option<&str> {
        self.header(name)
    }
    fn body_bytes(&self) -> &[u8] {
        &self.body
    }
}

impl Answer for RawResponse {
    fn status_code(&self) -> u16 {
        self.status
    }
    fn header_value(&self, name: &str) -> Option<&str> {
        self.header(name)
    }
    fn body_bytes(&self) -> &[u8] {
        &self.body
    }
}

fn text(answer: &impl Answer) -> String {
    String::from_utf8_lossy(answer.body_bytes()).into_owned()
}

fn json_of(answer: &impl Answer, what: &str) -> Value {
    serde_json::from_slice(answer.body_bytes())
        .unwrap_or_else(|err| panic!("{what}: body is not JSON ({err}): {:?}", text(answer)))
}

/// A 401 for an invalid credential: status, challenge and the generic body.
pub fn assert_invalid_token(answer: &impl Answer, what: &str) {
    assert_eq!(
        answer.status_code(),
        401,
        "{what}: expected 401, body {}",
        text(answer)
    );
    assert_eq!(
        answer.header_value("www-authenticate"),
        Some(CHALLENGE_INVALID_TOKEN),
        "{what}: WWW-Authenticate"
    );
    assert_eq!(
        json_of(answer, what),
        invalid_credential_body(),
        "{what}: body"
    );
}

/// A 403 from the admin list for `user` doing `verb` on `path`, without a challenge.
pub fn assert_forbidden(answer: &impl Answer, user: &str, verb: &str, path: &str) {
    let what = format!("{user} {verb} {path}");
    assert_eq!(
        answer.status_code(),
        403,
        "{what}: expected 403, body {}",
        text(answer)
    );
    assert_eq!(
        json_of(answer, &what),
        forbidden_body(user, verb, path),
        "{what}: body"
    );
    assert_eq!(
        answer.header_value("www-authenticate"),
        None,
        "{what}: a 403 carries no challenge"
    );
}
