//! What the RBAC tests share: a JSON call as a key's holder, Weaviate's 403 body, and a
//! database user holding a role of its own.

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

/// A database user holding a new role with `permissions` (no role when empty); its key.
pub async fn user_with(server: &Server, admin: &str, user: &str, permissions: Value) -> String {
    let (status, body) = call(
        server,
        Method::POST,
        &format!("/v1/users/db/{user}"),
        admin,
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = body["apikey"].as_str().expect("apikey").to_owned();
    if permissions.as_array().is_some_and(|p| !p.is_empty()) {
        let role = format!("{user}-role");
        let (status, body) = call(
            server,
            Method::POST,
            "/v1/authz/roles",
            admin,
            Some(json!({"name": role, "permissions": permissions})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assign(server, admin, user, &role).await;
    }
    key
}

/// Assigns `role` to the database user `user`, as `admin`.
pub async fn assign(server: &Server, admin: &str, user: &str, role: &str) {
    let (status, body) = call(
        server,
        Method::POST,
        &format!("/v1/authz/users/{user}/assign"),
        admin,
        Some(json!({"roles": [role], "userType": "db"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
