//! The listings that grow with users and groups, with RBAC on (issue 16): a role's holders
//! (`/v1/authz/roles/{id}/user-assignments`, `/users`, `/group-assignments`) and the users
//! list with each user's roles are streamed a page at a time (1,000 names), so that a role
//! held by a million users is never copied whole. Here each listing spans several pages, and
//! must read exactly as the whole list serialized at once would: every holder once, in order,
//! with the right types and roles, across the page boundaries.

use std::collections::BTreeSet;

use futures_util::stream::{self, StreamExt};
use portcullis_config::vars;
use portcullis_testkit::{FaultIssuer, TestKey, CLIENT_ID, GROUPS_CLAIM, USERNAME_CLAIM};
use portcullis_tests::{Server, ServerBuilder};
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN_KEY: &str = "rbac-lists-admin-key-0123456789";
/// More than two pages of OIDC holders, one of database holders and one of groups.
const OIDC_USERS: usize = 2_100;
const DB_USERS: usize = 1_100;
const GROUPS: usize = 1_050;
/// The first `SHARED` database users' names are also OIDC holders' names.
const SHARED: usize = 500;

fn oidc_name(i: usize) -> String {
    format!("user-{i:05}")
}

fn db_name(i: usize) -> String {
    // The first SHARED are named as OIDC holders; the rest sort after every OIDC name.
    if i < SHARED {
        oidc_name(i)
    } else {
        format!("z-db-{i:05}")
    }
}

/// `method path` as the admin; panics unless the status is `want`. The body as JSON, and
/// whether it came without a `Content-Length` (streamed).
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> (Value, bool) {
    let mut request = server.request(method, path).bearer(ADMIN_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await;
    assert_eq!(reply.status.as_u16(), want, "{path}: {:?}", reply.text());
    let streamed = reply.header("content-length").is_none();
    (reply.json(), streamed)
}

/// Runs `calls` 16 at a time.
async fn all<F: std::future::Future<Output = ()>>(calls: impl Iterator<Item = F>) {
    stream::iter(calls)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test]
async fn role_holder_lists_and_the_user_list_stream_every_page_in_order() {
    let issuer = FaultIssuer::start(&[&TestKey::rsa_a()]).await;
    let server = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ADMIN_KEY)
        .env(vars::APIKEY_USERS, "admin")
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::OIDC_ENABLED, "true")
        .env(vars::OIDC_ISSUER, issuer.url())
        .env(vars::OIDC_CLIENT_ID, CLIENT_ID)
        .env(vars::OIDC_USERNAME_CLAIM, USERNAME_CLAIM)
        .env(vars::OIDC_GROUPS_CLAIM, GROUPS_CLAIM)
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "admin")
        .start()
        .await;
    let role = json!([{"action": "read_data", "data": {"collection": "Movie"}}]);
    call(
        &server,
        Method::POST,
        "/v1/authz/roles",
        Some(json!({"name": "reader", "permissions": role})),
        201,
    )
    .await;

    let server = &server;
    all((0..DB_USERS).map(|i| async move {
        call(
            server,
            Method::POST,
            &format!("/v1/users/db/{}", db_name(i)),
            None,
            201,
        )
        .await;
    }))
    .await;
    let assign = |path: String, body: Value| async move {
        call(server, Method::POST, &path, Some(body), 200).await;
    };
    all((0..DB_USERS).map(|i| {
        assign(
            format!("/v1/authz/users/{}/assign", db_name(i)),
            json!({"roles": ["reader"], "userType": "db"}),
        )
    }))
    .await;
    all((0..OIDC_USERS).map(|i| {
        assign(
            format!("/v1/authz/users/{}/assign", oidc_name(i)),
            json!({"roles": ["reader"], "userType": "oidc"}),
        )
    }))
    .await;
    all((0..GROUPS).map(|i| {
        assign(
            format!("/v1/authz/groups/group-{i:05}/assign"),
            json!({"roles": ["reader"], "groupType": "oidc"}),
        )
    }))
    .await;

    // OIDC holders first, then database users, each sorted.
    let (body, streamed) = call(
        server,
        Method::GET,
        "/v1/authz/roles/reader/user-assignments",
        None,
        200,
    )
    .await;
    assert!(streamed, "the holders' list is streamed");
    let mut want: Vec<Value> = (0..OIDC_USERS)
        .map(|i| json!({"userId": oidc_name(i), "userType": "oidc"}))
        .collect();
    let mut db: Vec<String> = (0..DB_USERS).map(db_name).collect();
    db.sort();
    want.extend(
        db.iter()
            .map(|name| json!({"userId": name, "userType": "db_user"})),
    );
    assert_eq!(body, Value::Array(want));

    // The deprecated listing: both namespaces merged, sorted, each name once.
    let (body, streamed) = call(
        server,
        Method::GET,
        "/v1/authz/roles/reader/users",
        None,
        200,
    )
    .await;
    assert!(streamed);
    let merged: BTreeSet<String> = (0..OIDC_USERS)
        .map(oidc_name)
        .chain(db.iter().cloned())
        .collect();
    assert_eq!(merged.len(), OIDC_USERS + DB_USERS - SHARED);
    assert_eq!(body, json!(merged.into_iter().collect::<Vec<_>>()));

    let (body, streamed) = call(
        server,
        Method::GET,
        "/v1/authz/roles/reader/group-assignments",
        None,
        200,
    )
    .await;
    assert!(streamed);
    let want: Vec<Value> = (0..GROUPS)
        .map(|i| json!({"groupId": format!("group-{i:05}"), "groupType": "oidc"}))
        .collect();
    assert_eq!(body, Value::Array(want));

    // A role nobody holds: an empty list.
    call(
        server,
        Method::POST,
        "/v1/authz/roles",
        Some(json!({"name": "unheld", "permissions": role})),
        201,
    )
    .await;
    let (body, _) = call(
        server,
        Method::GET,
        "/v1/authz/roles/unheld/user-assignments",
        None,
        200,
    )
    .await;
    assert_eq!(body, json!([]));

    // The users list, two pages of database users: each with its roles, across the boundary.
    let (body, streamed) = call(server, Method::GET, "/v1/users/db", None, 200).await;
    assert!(streamed);
    let users = body.as_array().expect("a list of users");
    let listed: Vec<&str> = users
        .iter()
        .map(|u| u["userId"].as_str().expect("userId"))
        .collect();
    // Database users in name order, then the static users (shown to a root caller, as in
    // Weaviate), on the last page.
    let mut want: Vec<&str> = db.iter().map(String::as_str).collect();
    want.push("admin");
    assert_eq!(listed, want);
    for user in users {
        let roles = if user["userId"] == "admin" {
            json!(["root"])
        } else {
            json!(["reader"])
        };
        assert_eq!(user["roles"], roles, "{user}");
    }
}
