//! What the RBAC tests share: a JSON call as a key's holder, and Weaviate's 403 body.

use reqwest::Method;
use serde_json::{json, Value};

use crate::Server;

/// `method path` with `key` and an optional JSON body: the status and the body as JSON.
pub async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.request(method, path).bearer(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await;
    (reply.status.as_u16(), reply.json())
}

/// Weaviate's RBAC 403 body for `user` lacking `action` on `resource` (as Weaviate writes it,
/// `[Domain: ..., ...]`).
pub fn forbidden(user: &str, action: &str, resource: &str) -> Value {
    json!({ "error": [{ "message": format!(
        "rbac: authorization, forbidden action: user '{user}' has insufficient permissions to {action} [{resource}]"
    ) }] })
}
