//! End-to-end tests of static API keys, anonymous access, the Authorization header rules, the
//! admin list, health probes, request ids and route-template metrics, against the real binary.
//!
//! Keys here are test fixtures, but the tests treat them as secrets all the same: no assertion
//! message, panic or log line of a test contains one.

use portcullis_config::vars;
use portcullis_tests::api::Reply;
use portcullis_tests::assert::{
    assert_forbidden, assert_invalid_token, CHALLENGE_INVALID_REQUEST, CHALLENGE_INVALID_TOKEN,
    CHALLENGE_MISSING,
};
use portcullis_tests::{metric_value, Server, ServerBuilder};
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::Method;
use serde_json::json;

const ALICE_KEY: &str = "pk-alice-5b7e0c9d2a14f3e8";
const BOB_KEY: &str = "pk-bob-91c3aa04e6d27f5b";
const CAROL_KEY: &str = "pk-carol-0d4f8e21b9c63a77";
/// `ALICE_KEY` with its last byte changed: the same length, one byte off.
const ALICE_KEY_ONE_OFF: &str = "pk-alice-5b7e0c9d2a14f3e9";
const UNKNOWN_KEY: &str = "pk-nobody-6a2d19f0c4e85b13";

const ADMIN_KEY: &str = "pk-root-3e9a7c15d08b42f6";
const READER_KEY: &str = "pk-reader-c72b0e9f41a6d358";
const STRANGER_KEY: &str = "pk-stranger-8f15d3a0b6e2c947";

/// A path under `/v1` that the route table sends through the verb check but that no backend
/// serves.
const UNSERVED: &str = "/v1/portcullis-e2e-unserved";

const MISSING_MESSAGE: &str = "unauthorized: anonymous access not enabled. Please authenticate through one of the available methods: [API-keys]";
const UNCONFIGURED_MESSAGE: &str = "unauthorized: no authentication scheme is configured (API Key or OIDC), but an 'Authorization' header was provided. Please configure an auth scheme or remove the header for anonymous access";

const AUTH_REQUESTS: &str = "portcullis_auth_requests_total";
const AUTHORIZATIONS: &str = "portcullis_authorization_total";
const HTTP_REQUESTS: &str = "portcullis_http_requests_total";

/// `method path` with an optional `Authorization` header value. A POST carries the JSON body
/// `{}`, which the embedded store refuses with 422 once a request has been let through.
async fn call(server: &Server, method: Method, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = server.request(method.clone(), path);
    if method == Method::POST {
        request = request.json(&json!({}));
    }
    if let Some(value) = authorization {
        request = request.authorization(value);
    }
    request.send().await
}

async fn get(server: &Server, path: &str, authorization: Option<&str>) -> Reply {
    call(server, Method::GET, path, authorization).await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A server with static keys (`keys` and `users` comma-separated) and anonymous access off.
fn keyed(keys: &[&str], users: &str) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, keys.join(","))
        .env(vars::APIKEY_USERS, users)
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "false")
}

/// Keys for alice, bob and carol (key i -> user i).
fn three_users() -> ServerBuilder {
    keyed(&[ALICE_KEY, BOB_KEY, CAROL_KEY], "alice,bob,carol")
}

/// Only anonymous access, no key method.
fn anonymous_only() -> ServerBuilder {
    ServerBuilder::new().env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
}

/// root is an admin, reader is read-only, stranger is on no list.
fn admin_listed() -> ServerBuilder {
    keyed(
        &[ADMIN_KEY, READER_KEY, STRANGER_KEY],
        "root,reader,stranger",
    )
    .env(vars::ADMINLIST_ENABLED, "true")
    .env(vars::ADMINLIST_USERS, "root")
    .env(vars::ADMINLIST_READONLY_USERS, "reader")
}

/// The sum of every series of `portcullis_auth_requests_total`.
async fn auth_total(server: &Server) -> f64 {
    server.metric(AUTH_REQUESTS, &[]).await
}

async fn authorization(server: &Server, result: &str) -> f64 {
    server.metric(AUTHORIZATIONS, &[("result", result)]).await
}

fn assert_error(reply: &Reply, status: u16, message: &str, challenge: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({ "code": status, "message": message }),
        "body"
    );
    assert_eq!(
        reply.header("www-authenticate"),
        Some(challenge),
        "WWW-Authenticate"
    );
}

fn assert_missing(reply: &Reply) {
    assert_error(reply, 401, MISSING_MESSAGE, CHALLENGE_MISSING);
}

fn assert_invalid_request(reply: &Reply, what: &str) {
    assert_error(
        reply,
        400,
        &format!("invalid_request: {what}"),
        CHALLENGE_INVALID_REQUEST,
    );
}

/// The embedded store's answer to `GET /v1/objects` on a fresh data directory: the request
/// passed the gate and was read.
fn assert_store_read(reply: &Reply) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({ "deprecations": null, "objects": [], "totalResults": 0 })
    );
}

/// The embedded store's answer to `POST /v1/objects` with `{}`: the request passed the gate
/// and reached the write handler, which refuses an object without a class.
fn assert_store_write(reply: &Reply) {
    assert_eq!(reply.status, 422, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({ "error": [{ "message": "invalid object: the given class is empty" }] })
    );
    assert_eq!(reply.header("www-authenticate"), None);
}

/// The 404 of a path no backend serves (authorization has passed).
fn assert_not_found(reply: &Reply) {
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({ "error": [{ "message": "not found" }] })
    );
    assert_eq!(
        reply.header("www-authenticate"),
        None,
        "a 404 carries no challenge"
    );
}

fn assert_own_info(reply: &Reply, username: &str) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({ "username": username, "groups": [], "roles": null })
    );
}

// --- no credential, right key, wrong key ---

#[tokio::test]
async fn missing_credential_with_anonymous_off_is_401_naming_api_keys() {
    let server = three_users().start().await;
    let before = server.auth_requests("none", "deny", "missing").await;
    let total = auth_total(&server).await;

    assert_missing(&get(&server, "/v1/meta", None).await);
    assert_missing(&get(&server, "/v1/users/own-info", None).await);

    assert_eq!(
        server.auth_requests("none", "deny", "missing").await - before,
        2.0
    );
    assert_eq!(auth_total(&server).await - total, 2.0);
}

#[tokio::test]
async fn right_key_is_accepted_on_meta_and_own_info() {
    let server = three_users().start().await;
    let before = server.auth_requests("apikey_static", "accept", "ok").await;
    let total = auth_total(&server).await;

    let meta = get(&server, "/v1/meta", Some(&bearer(ALICE_KEY))).await;
    assert_eq!(meta.status, 200, "{meta:?}");
    assert_eq!(
        meta.json(),
        json!({
            "hostname": format!("http://{}", server.http),
            "version": "1.30.0",
            "modules": {},
            "portcullis": { "version": env!("CARGO_PKG_VERSION") },
        })
    );
    assert_eq!(meta.header("www-authenticate"), None);
    assert_own_info(
        &get(&server, "/v1/users/own-info", Some(&bearer(ALICE_KEY))).await,
        "alice",
    );

    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await - before,
        2.0
    );
    assert_eq!(auth_total(&server).await - total, 2.0);
}

#[tokio::test]
async fn wrong_key_and_one_byte_off_key_are_401_invalid_token() {
    let server = three_users().start().await;
    assert_eq!(ALICE_KEY.len(), ALICE_KEY_ONE_OFF.len());
    let before = server
        .auth_requests("apikey_static", "deny", "invalid_key")
        .await;
    let total = auth_total(&server).await;

    for key in [UNKNOWN_KEY, ALICE_KEY_ONE_OFF] {
        assert_invalid_token(
            &get(&server, "/v1/meta", Some(&bearer(key))).await,
            "an invalid key",
        );
    }
    // The same answer for a path that needs a verb.
    assert_invalid_token(
        &get(&server, "/v1/objects", Some(&bearer(UNKNOWN_KEY))).await,
        "an invalid key",
    );

    assert_eq!(
        server
            .auth_requests("apikey_static", "deny", "invalid_key")
            .await
            - before,
        3.0
    );
    assert_eq!(auth_total(&server).await - total, 3.0);
}

#[tokio::test]
async fn many_keys_map_to_a_single_user() {
    let server = keyed(&[ALICE_KEY, BOB_KEY, CAROL_KEY], "ops").start().await;
    for key in [ALICE_KEY, BOB_KEY, CAROL_KEY] {
        assert_own_info(
            &get(&server, "/v1/users/own-info", Some(&bearer(key))).await,
            "ops",
        );
    }
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        3.0
    );
}

#[tokio::test]
async fn key_i_maps_to_user_i() {
    let server = three_users().start().await;
    for (key, user) in [(ALICE_KEY, "alice"), (BOB_KEY, "bob"), (CAROL_KEY, "carol")] {
        assert_own_info(
            &get(&server, "/v1/users/own-info", Some(&bearer(key))).await,
            user,
        );
    }
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        3.0
    );
}

// --- anonymous access ---

#[tokio::test]
async fn anonymous_on_admits_requests_without_credential() {
    let server = three_users()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    let before = server.auth_requests("anonymous", "accept", "ok").await;
    let total = auth_total(&server).await;

    let meta = get(&server, "/v1/meta", None).await;
    assert_eq!(meta.status, 200, "{meta:?}");
    assert_eq!(meta.json()["version"], "1.30.0");

    assert_eq!(
        server.auth_requests("anonymous", "accept", "ok").await - before,
        1.0
    );
    assert_eq!(auth_total(&server).await - total, 1.0);
}

#[tokio::test]
async fn anonymous_own_info_is_401() {
    let server = anonymous_only().start().await;
    let before = server.auth_requests("anonymous", "accept", "ok").await;

    let reply = get(&server, "/v1/users/own-info", None).await;
    assert_error(
        &reply,
        401,
        "unauthorized: anonymous callers have no user information",
        CHALLENGE_MISSING,
    );
    // Authentication admitted the anonymous caller; the handler has nothing to show it.
    assert_eq!(
        server.auth_requests("anonymous", "accept", "ok").await - before,
        1.0
    );
}

#[tokio::test]
async fn bad_key_with_anonymous_on_is_401_never_anonymous() {
    let server = three_users()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    let anonymous = server.auth_requests("anonymous", "accept", "ok").await;
    let invalid = server
        .auth_requests("apikey_static", "deny", "invalid_key")
        .await;

    assert_invalid_token(
        &get(&server, "/v1/meta", Some(&bearer(UNKNOWN_KEY))).await,
        "an invalid key",
    );
    assert_invalid_token(
        &get(
            &server,
            "/v1/users/own-info",
            Some(&bearer(ALICE_KEY_ONE_OFF)),
        )
        .await,
        "an invalid key",
    );

    assert_eq!(
        server
            .auth_requests("apikey_static", "deny", "invalid_key")
            .await
            - invalid,
        2.0
    );
    assert_eq!(
        server.auth_requests("anonymous", "accept", "ok").await,
        anonymous,
        "a bad credential must not fall back to anonymous"
    );
}

#[tokio::test]
async fn malformed_header_with_anonymous_on_is_400_never_anonymous() {
    let server = three_users()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    let anonymous = server.auth_requests("anonymous", "accept", "ok").await;

    assert_invalid_request(
        &get(&server, "/v1/meta", Some("Bearer")).await,
        "empty bearer token",
    );

    assert_eq!(server.auth_requests("none", "deny", "malformed").await, 1.0);
    assert_eq!(
        server.auth_requests("anonymous", "accept", "ok").await,
        anonymous
    );
}

#[tokio::test]
async fn token_without_a_key_method_is_401_unconfigured() {
    let server = anonymous_only().start().await;
    let before = server.auth_requests("none", "deny", "unconfigured").await;
    let total = auth_total(&server).await;

    let reply = get(&server, "/v1/meta", Some(&bearer(UNKNOWN_KEY))).await;
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unauthorized: no authentication scheme is configured")),
        "{reply:?}"
    );
    assert_error(&reply, 401, UNCONFIGURED_MESSAGE, CHALLENGE_INVALID_TOKEN);

    assert_eq!(
        server.auth_requests("none", "deny", "unconfigured").await - before,
        1.0
    );
    assert_eq!(auth_total(&server).await - total, 1.0);
}

// --- the Authorization header ---

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_tolerates_extra_spaces() {
    let server = three_users().start().await;
    for value in [
        format!("bearer {ALICE_KEY}"),
        format!("BEARER {ALICE_KEY}"),
        format!("bEaReR {ALICE_KEY}"),
        format!("Bearer  {ALICE_KEY}"),
    ] {
        let scheme = value.split(' ').next().unwrap_or_default().to_owned();
        let reply = get(&server, "/v1/users/own-info", Some(&value)).await;
        assert_eq!(reply.status, 200, "scheme {scheme:?}: {reply:?}");
        assert_own_info(&reply, "alice");
    }
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        4.0
    );
    assert_eq!(auth_total(&server).await, 4.0);
}

#[tokio::test]
async fn two_authorization_headers_are_400_even_with_valid_keys() {
    let server = three_users().start().await;
    let before = server.auth_requests("none", "deny", "malformed").await;

    let mut headers = HeaderMap::new();
    headers.append(AUTHORIZATION, bearer(ALICE_KEY).parse().expect("header"));
    headers.append(AUTHORIZATION, bearer(BOB_KEY).parse().expect("header"));
    let reply = server.get("/v1/meta").headers(headers).send().await;
    assert_invalid_request(&reply, "more than one Authorization header");

    // A bearer and a basic header are just as ambiguous.
    let mut headers = HeaderMap::new();
    headers.append(AUTHORIZATION, bearer(ALICE_KEY).parse().expect("header"));
    headers.append(AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().expect("header"));
    let reply = server.get("/v1/meta").headers(headers).send().await;
    assert_invalid_request(&reply, "more than one Authorization header");

    assert_eq!(
        server.auth_requests("none", "deny", "malformed").await - before,
        2.0
    );
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        0.0
    );
}

#[tokio::test]
async fn comma_joined_authorization_is_400() {
    let server = three_users().start().await;
    let joined = format!("{}, {}", bearer(ALICE_KEY), bearer(BOB_KEY));
    assert_invalid_request(
        &get(&server, "/v1/meta", Some(&joined)).await,
        "comma-joined Authorization header",
    );
    assert_eq!(server.auth_requests("none", "deny", "malformed").await, 1.0);
    assert_eq!(auth_total(&server).await, 1.0);
}

#[tokio::test]
async fn empty_bearer_is_400() {
    let server = three_users().start().await;
    assert_invalid_request(
        &get(&server, "/v1/meta", Some("Bearer")).await,
        "empty bearer token",
    );
    // Trailing spaces are stripped by the HTTP parser, leaving the bare scheme.
    let raw = server
        .raw("GET", "/v1/meta", &[b"Authorization: bearer    "])
        .await;
    assert_eq!(raw.status, 400);
    assert_eq!(
        raw.json(),
        json!({ "code": 400, "message": "invalid_request: empty bearer token" })
    );
    assert_eq!(
        raw.header("www-authenticate"),
        Some(CHALLENGE_INVALID_REQUEST)
    );
    assert_eq!(server.auth_requests("none", "deny", "malformed").await, 2.0);
}

#[tokio::test]
async fn empty_or_whitespace_only_authorization_is_400() {
    let server = three_users().start().await;
    let lines: [&[u8]; 3] = [
        b"Authorization:",
        b"Authorization:    ",
        b"Authorization: \t ",
    ];
    for line in lines {
        let reply = server.raw("GET", "/v1/meta", &[line]).await;
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(line));
        assert_eq!(
            reply.json(),
            json!({ "code": 400, "message": "invalid_request: empty Authorization header" })
        );
        assert_eq!(
            reply.header("www-authenticate"),
            Some(CHALLENGE_INVALID_REQUEST)
        );
        assert!(reply.header("x-request-id").is_some());
    }
    assert_eq!(server.auth_requests("none", "deny", "malformed").await, 3.0);
    assert_eq!(auth_total(&server).await, 3.0);
}

#[tokio::test]
async fn malformed_bearer_values_are_400() {
    let server = three_users().start().await;
    let tab = format!("Authorization: Bearer\t{ALICE_KEY}");
    let two_tokens = format!("Authorization: Bearer {ALICE_KEY} {BOB_KEY}");
    let mut non_ascii = format!("Authorization: Bearer {ALICE_KEY}").into_bytes();
    non_ascii.push(0xff);
    let cases: [(&str, &[u8]); 3] = [
        ("a tab after the scheme", tab.as_bytes()),
        ("two tokens", two_tokens.as_bytes()),
        ("a byte outside ASCII", &non_ascii),
    ];
    for (what, line) in cases {
        let reply = server.raw("GET", "/v1/meta", &[line]).await;
        assert_eq!(reply.status, 400, "{what}");
        assert_eq!(
            reply.json(),
            json!({ "code": 400, "message": "invalid_request: malformed Authorization header" }),
            "{what}"
        );
        assert_eq!(
            reply.header("www-authenticate"),
            Some(CHALLENGE_INVALID_REQUEST),
            "{what}"
        );
    }
    assert_eq!(server.auth_requests("none", "deny", "malformed").await, 3.0);
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        0.0
    );
}

#[tokio::test]
async fn basic_scheme_is_no_credential_with_anonymous_off() {
    let server = three_users().start().await;
    assert_missing(&get(&server, "/v1/meta", Some("Basic YWxpY2U6c2VjcmV0")).await);
    assert_eq!(server.auth_requests("none", "deny", "missing").await, 1.0);
    assert_eq!(auth_total(&server).await, 1.0);
}

#[tokio::test]
async fn basic_scheme_is_anonymous_with_anonymous_on() {
    let server = three_users()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    let reply = get(&server, "/v1/meta", Some("Basic YWxpY2U6c2VjcmV0")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(server.auth_requests("anonymous", "accept", "ok").await, 1.0);
    assert_eq!(auth_total(&server).await, 1.0);
}

#[tokio::test]
async fn access_token_query_parameter_and_form_field_are_ignored_and_not_logged() {
    let server = three_users().start().await;

    let query = get(&server, &format!("/v1/meta?access_token={ALICE_KEY}"), None).await;
    assert_missing(&query);
    let form = server
        .post("/v1/objects")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={ALICE_KEY}"))
        .send()
        .await;
    assert_missing(&form);

    assert_eq!(server.auth_requests("none", "deny", "missing").await, 2.0);
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        0.0
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains("/v1/meta"),
        "the access log should record the request"
    );
    assert!(
        !stderr.contains(ALICE_KEY),
        "the key sent as access_token appears in the server log"
    );
}

// --- the admin list ---
//
// Only user lists are exercised: static keys carry no groups, so
// AUTHORIZATION_ADMINLIST_GROUPS and _READONLY_GROUPS cannot be reached through this binary
// until a method with groups (OIDC) exists. The authorizer's unit tests cover groups.

#[tokio::test]
async fn admin_list_lets_admins_read_and_write() {
    let server = admin_listed().start().await;
    let key = bearer(ADMIN_KEY);
    assert_store_read(&get(&server, "/v1/objects", Some(&key)).await);
    assert_store_write(&call(&server, Method::POST, "/v1/objects", Some(&key)).await);
    // Paths no backend serves answer 404 only after authorization.
    assert_not_found(&get(&server, UNSERVED, Some(&key)).await);
    assert_not_found(&call(&server, Method::POST, UNSERVED, Some(&key)).await);
    assert_eq!(authorization(&server, "allow").await, 4.0);
    assert_eq!(authorization(&server, "deny").await, 0.0);
}

#[tokio::test]
async fn admin_list_lets_read_only_users_read_but_not_write() {
    let server = admin_listed().start().await;
    let key = bearer(READER_KEY);
    assert_store_read(&get(&server, "/v1/objects", Some(&key)).await);
    assert_not_found(&get(&server, UNSERVED, Some(&key)).await);
    // GraphQL queries are sent with POST but only read (no backend serves GraphQL yet).
    assert_not_found(&call(&server, Method::POST, "/v1/graphql", Some(&key)).await);
    let allowed = authorization(&server, "allow").await;
    assert_eq!(allowed, 3.0);

    let reply = call(&server, Method::POST, "/v1/objects", Some(&key)).await;
    assert_forbidden(&reply, "reader", "write", "/v1/objects");
    assert_eq!(
        reply.text(),
        r#"{"error":[{"message":"forbidden: user 'reader' has insufficient permissions to write /v1/objects"}]}"#
    );
    assert_forbidden(
        &call(&server, Method::DELETE, "/v1/schema/Thing", Some(&key)).await,
        "reader",
        "write",
        "/v1/schema/Thing",
    );
    assert_forbidden(
        &call(&server, Method::POST, UNSERVED, Some(&key)).await,
        "reader",
        "write",
        UNSERVED,
    );
    assert_eq!(authorization(&server, "allow").await, allowed);
    assert_eq!(authorization(&server, "deny").await, 3.0);
}

#[tokio::test]
async fn admin_list_forbids_unlisted_users_to_read_or_write() {
    let server = admin_listed().start().await;
    let key = bearer(STRANGER_KEY);
    assert_forbidden(
        &get(&server, "/v1/objects", Some(&key)).await,
        "stranger",
        "read",
        "/v1/objects",
    );
    assert_forbidden(
        &call(&server, Method::POST, "/v1/graphql", Some(&key)).await,
        "stranger",
        "read",
        "/v1/graphql",
    );
    assert_forbidden(
        &call(&server, Method::POST, "/v1/objects", Some(&key)).await,
        "stranger",
        "write",
        "/v1/objects",
    );
    assert_forbidden(
        &get(&server, UNSERVED, Some(&key)).await,
        "stranger",
        "read",
        UNSERVED,
    );
    assert_eq!(authorization(&server, "deny").await, 4.0);
    assert_eq!(authorization(&server, "allow").await, 0.0);
    // Authentication itself succeeded every time.
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        4.0
    );
}

#[tokio::test]
async fn admin_list_forbidden_path_excludes_the_query_string() {
    let server = admin_listed().start().await;
    let reply = get(&server, "/v1/objects?limit=5", Some(&bearer(STRANGER_KEY))).await;
    assert_forbidden(&reply, "stranger", "read", "/v1/objects");
}

#[tokio::test]
async fn anonymous_listed_as_read_only_may_read_but_not_write() {
    let server = admin_listed()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::ADMINLIST_READONLY_USERS, "reader,anonymous")
        .start()
        .await;
    assert_store_read(&get(&server, "/v1/objects", None).await);
    assert_forbidden(
        &call(&server, Method::POST, "/v1/objects", None).await,
        "anonymous",
        "write",
        "/v1/objects",
    );
    assert_eq!(authorization(&server, "allow").await, 1.0);
    assert_eq!(authorization(&server, "deny").await, 1.0);
    assert_eq!(server.auth_requests("anonymous", "accept", "ok").await, 2.0);

    // The admin's key still writes next to anonymous access.
    assert_store_write(
        &call(
            &server,
            Method::POST,
            "/v1/objects",
            Some(&bearer(ADMIN_KEY)),
        )
        .await,
    );
}

#[tokio::test]
async fn anonymous_not_listed_may_not_read_under_the_admin_list() {
    let server = admin_listed()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    assert_forbidden(
        &get(&server, "/v1/objects", None).await,
        "anonymous",
        "read",
        "/v1/objects",
    );
    assert_eq!(authorization(&server, "deny").await, 1.0);
}

#[tokio::test]
async fn meta_index_and_own_info_need_no_verb_under_the_admin_list() {
    let server = admin_listed().start().await;
    let key = bearer(STRANGER_KEY);

    let meta = get(&server, "/v1/meta", Some(&key)).await;
    assert_eq!(meta.status, 200, "{meta:?}");
    assert_eq!(meta.json()["version"], "1.30.0");
    let index = get(&server, "/v1", Some(&key)).await;
    assert_eq!(index.status, 200, "{index:?}");
    assert_eq!(
        index.json(),
        json!({ "links": [
            { "name": "Meta information about this instance", "href": "/v1/meta" },
            { "name": "The caller's own user information", "href": "/v1/users/own-info" },
        ] })
    );
    assert_own_info(
        &get(&server, "/v1/users/own-info", Some(&key)).await,
        "stranger",
    );

    // No verb was checked, so no authorization decision was counted.
    let text = server.metrics_text().await;
    assert_eq!(metric_value(&text, AUTHORIZATIONS, &[]), 0.0);
    assert_eq!(
        metric_value(
            &text,
            AUTH_REQUESTS,
            &[("method", "apikey_static"), ("reason", "ok")]
        ),
        3.0
    );
}

// --- health, request ids, route templates ---

#[tokio::test]
async fn health_probes_need_no_credential_and_are_not_counted_as_authentication() {
    let server = three_users().start().await;
    for path in ["/v1/.well-known/live", "/v1/.well-known/ready"] {
        let reply = get(&server, path, None).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(reply.text(), "", "{path}");
        assert_eq!(reply.header("www-authenticate"), None, "{path}");
        // The credential is not even read: a malformed or invalid one does not matter.
        assert_eq!(
            get(&server, path, Some("Bearer")).await.status,
            200,
            "{path}"
        );
        assert_eq!(
            get(&server, path, Some(&bearer(UNKNOWN_KEY))).await.status,
            200,
            "{path}"
        );
    }
    let text = server.metrics_text().await;
    assert_eq!(metric_value(&text, AUTH_REQUESTS, &[]), 0.0);
    for route in ["/v1/.well-known/live", "/v1/.well-known/ready"] {
        assert_eq!(
            metric_value(
                &text,
                HTTP_REQUESTS,
                &[("method", "GET"), ("route", route), ("status", "200")]
            ),
            3.0,
            "{route}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let server = admin_listed().start().await;
    let admin = bearer(ADMIN_KEY);
    let stranger = bearer(STRANGER_KEY);
    let replies = [
        (200, get(&server, "/v1/meta", Some(&admin)).await),
        (200, get(&server, "/v1/.well-known/live", None).await),
        (401, get(&server, "/v1/meta", None).await),
        (
            401,
            get(&server, "/v1/meta", Some(&bearer(UNKNOWN_KEY))).await,
        ),
        (400, get(&server, "/v1/meta", Some("Bearer")).await),
        (200, get(&server, "/v1/objects", Some(&admin)).await),
        (403, get(&server, "/v1/objects", Some(&stranger)).await),
        (404, get(&server, UNSERVED, Some(&admin)).await),
        (404, get(&server, "/nowhere", Some(&admin)).await),
        (
            422,
            call(&server, Method::POST, "/v1/objects", Some(&admin)).await,
        ),
    ];
    let mut ids = Vec::new();
    for (status, reply) in &replies {
        assert_eq!(reply.status, *status, "{reply:?}");
        let id = reply
            .header("x-request-id")
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no X-Request-Id on a {status}"));
        assert!(!id.is_empty(), "empty X-Request-Id on a {status}");
        ids.push(id);
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "generated ids repeat: {ids:?}");

    // The raw 400 for a whitespace-only header carries one too.
    let raw = server.raw("GET", "/v1/meta", &[b"Authorization:  "]).await;
    assert_eq!(raw.status, 400);
    assert!(raw.header("x-request-id").is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn plain_client_request_ids_are_echoed_and_others_replaced() {
    let server = admin_listed().start().await;
    let given = "trace-42.abc_DEF";
    for (status, authorization) in [
        (200, Some(bearer(ADMIN_KEY))),
        (401, None),
        (400, Some("Bearer".to_owned())),
    ] {
        let mut request = server.get("/v1/meta").header("x-request-id", given);
        if let Some(value) = &authorization {
            request = request.authorization(value);
        }
        let reply = request.send().await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.header("x-request-id"), Some(given), "on a {status}");
    }
    let long = "a".repeat(65);
    for not_plain in ["has space", "semi;colon", long.as_str()] {
        let reply = server
            .get("/v1/.well-known/live")
            .header("x-request-id", not_plain)
            .send()
            .await;
        let id = reply
            .header("x-request-id")
            .map(str::to_owned)
            .expect("a generated X-Request-Id");
        assert!(!id.is_empty());
        assert_ne!(id, not_plain, "a non-plain id was echoed");
    }
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template_never_raw_path() {
    let server = three_users().start().await;
    let key = bearer(ALICE_KEY);
    let labels = [
        ("method", "GET"),
        ("route", "/v1/{path*}"),
        ("status", "404"),
    ];
    let before = server.metric(HTTP_REQUESTS, &labels).await;

    assert_not_found(&get(&server, "/v1/objects/some-id-7c2e41", Some(&key)).await);
    assert_eq!(server.metric(HTTP_REQUESTS, &labels).await - before, 1.0);

    assert_missing(&get(&server, "/v1/objects/other-id-93ad0f", None).await);
    assert_not_found(&get(&server, "/no-such-place-5e8b", Some(&key)).await);
    assert_missing(&get(&server, "/no-such-place-5e8b", None).await);

    let text = server.metrics_text().await;
    assert_eq!(
        metric_value(
            &text,
            HTTP_REQUESTS,
            &[
                ("method", "GET"),
                ("route", "/v1/{path*}"),
                ("status", "401")
            ]
        ),
        1.0
    );
    for status in ["404", "401"] {
        assert_eq!(
            metric_value(
                &text,
                HTTP_REQUESTS,
                &[("method", "GET"), ("route", "unrouted"), ("status", status)]
            ),
            1.0,
            "unrouted {status}"
        );
    }
    for raw in [
        "some-id-7c2e41",
        "other-id-93ad0f",
        "no-such-place-5e8b",
        "/v1/objects",
    ] {
        assert!(
            !text.contains(raw),
            "the raw path {raw:?} is in the exposition"
        );
    }
}
