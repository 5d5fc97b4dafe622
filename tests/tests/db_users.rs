//! Database users end to end (`docs/users.md`): Weaviate's dynamic-user acceptance cases,
//! durability across kill -9, the rotation race, hostile keys (`docs/hostile-inputs.md` rows
//! 38-42) and the bootstrap admin. Every test runs the real binary on 127.0.0.1:0 over a real
//! SQLite file.

use std::time::{Duration, Instant};

use portcullis_config::vars;
use portcullis_tests::assert::{forbidden_body, invalid_credential_body};
use portcullis_tests::{client, Server, ServerBuilder};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ROOT_KEY: &str = "root-static-key-0123456789";
const READER_KEY: &str = "reader-static-key-0123456789";

/// Static `root` (admin) and `reader` (read-only), database users on, admin list on.
fn managed() -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            vars::APIKEY_ALLOWED_KEYS,
            format!("{ROOT_KEY},{READER_KEY}"),
        )
        .env(vars::APIKEY_USERS, "root,reader")
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "root")
        .env(vars::ADMINLIST_READONLY_USERS, "reader")
}

async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    key: &str,
) -> (StatusCode, Value) {
    call_with(server, method, path, key, None).await
}

/// `method path` as `key` (anonymous when empty) with an optional JSON body: the status and
/// the body as JSON (`Null` when empty, a string when not JSON).
async fn call_with(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server.request(method, path);
    if !key.is_empty() {
        request = request.bearer(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await;
    let value = if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&reply.body).unwrap_or_else(|_| Value::String(reply.text()))
    };
    (reply.status, value)
}

async fn create(server: &Server, id: &str) -> String {
    let (status, body) = call(
        server,
        reqwest::Method::POST,
        &format!("/v1/users/db/{id}"),
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "create {id}: {body}");
    body["apikey"].as_str().expect("apikey in body").to_owned()
}

async fn whoami(server: &Server, key: &str) -> StatusCode {
    call(server, reqwest::Method::GET, "/v1/users/own-info", key)
        .await
        .0
}

fn unauthorized() -> Value {
    invalid_credential_body()
}

#[tokio::test]
async fn create_use_and_delete_a_user() {
    let server = managed().start().await;
    let key = create(&server, "alice").await;
    assert!(
        key.starts_with("pcu_"),
        "keys carry the recognisable prefix"
    );
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/users/own-info", &key).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"username": "alice", "groups": [], "roles": null})
    );
    assert_eq!(
        server.auth_requests("apikey_db", "accept", "ok").await,
        1.0,
        "the accept is counted as apikey_db"
    );

    let (status, body) = call(
        &server,
        reqwest::Method::DELETE,
        "/v1/users/db/alice",
        ROOT_KEY,
    )
    .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/users/own-info", &key).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));
    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        "/v1/users/db/alice",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        server
            .metric(
                "portcullis_key_operations_total",
                &[("op", "delete"), ("result", "ok")]
            )
            .await,
        1.0
    );
}

#[tokio::test]
async fn rotation_rejects_the_old_key_and_changes_the_first_letters() {
    let server = managed().start().await;
    let old = create(&server, "bob").await;
    let (_, before) = call(&server, reqwest::Method::GET, "/v1/users/db/bob", ROOT_KEY).await;
    let (status, body) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/bob/rotate-key",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 200);
    let new = body["apikey"].as_str().expect("new key").to_owned();
    assert_ne!(new, old);
    assert_eq!(whoami(&server, &old).await, 401);
    assert_eq!(whoami(&server, &new).await, 200);
    let (_, after) = call(&server, reqwest::Method::GET, "/v1/users/db/bob", ROOT_KEY).await;
    assert_eq!(before["apiKeyFirstLetters"], json!(&old[4..7]));
    assert_eq!(after["apiKeyFirstLetters"], json!(&new[4..7]));
    assert_ne!(before["apiKeyFirstLetters"], after["apiKeyFirstLetters"]);
}

#[tokio::test]
async fn suspend_and_activate_with_and_without_revoking_the_key() {
    let server = managed().start().await;
    let key = create(&server, "carol").await;
    // Without revoke_key: the key works again after activation.
    let (status, body) = call_with(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/carol/deactivate",
        ROOT_KEY,
        Some(json!({"revoke_key": false})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    assert_eq!(whoami(&server, &key).await, 401);
    assert_eq!(
        server
            .auth_requests("apikey_db", "deny", "user_inactive")
            .await,
        1.0
    );
    let (_, info) = call(
        &server,
        reqwest::Method::GET,
        "/v1/users/db/carol",
        ROOT_KEY,
    )
    .await;
    assert_eq!(info["active"], false);
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/carol/activate",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(whoami(&server, &key).await, 200);

    // With revoke_key: the key stays revoked after activation, until a rotation.
    let (status, _) = call_with(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/carol/deactivate",
        ROOT_KEY,
        Some(json!({"revoke_key": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/carol/activate",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(whoami(&server, &key).await, 401);
    assert_eq!(
        server.auth_requests("apikey_db", "deny", "revoked").await,
        1.0
    );
    let (_, body) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/carol/rotate-key",
        ROOT_KEY,
    )
    .await;
    let rotated = body["apikey"].as_str().expect("key").to_owned();
    assert_eq!(whoami(&server, &rotated).await, 200);
}

#[tokio::test]
async fn conflicts_unprocessable_and_not_found_answers() {
    let server = managed().start().await;
    create(&server, "dave").await;
    let post = reqwest::Method::POST;
    let cases: Vec<(reqwest::Method, String, &str, u16, &str)> = vec![
        (post.clone(), "/v1/users/db/dave".into(), ROOT_KEY, 409, "user 'dave' already exists"),
        (post.clone(), "/v1/users/db/dave/activate".into(), ROOT_KEY, 409, "user 'dave' is already active"),
        (post.clone(), "/v1/users/db/root".into(), ROOT_KEY, 422, "user 'root' is a static user from the environment and cannot be managed here"),
        (post.clone(), "/v1/users/db/reader/rotate-key".into(), ROOT_KEY, 422, "user 'reader' is a static user from the environment and cannot be managed here"),
        (reqwest::Method::DELETE, "/v1/users/db/reader".into(), ROOT_KEY, 422, "user 'reader' is a static user from the environment and cannot be managed here"),
        (post.clone(), "/v1/users/db/1starts-with-digit".into(), ROOT_KEY, 422, "user name must start with a letter and contain only letters, digits and -_@. (at most 128 characters)"),
        (post.clone(), format!("/v1/users/db/{}", "a".repeat(129)), ROOT_KEY, 422, "user name must start with a letter and contain only letters, digits and -_@. (at most 128 characters)"),
        (post.clone(), "/v1/users/db/nobody/rotate-key".into(), ROOT_KEY, 404, "user 'nobody' not found"),
        (post.clone(), "/v1/users/db/nobody/activate".into(), ROOT_KEY, 404, "user 'nobody' not found"),
        (post.clone(), "/v1/users/db/nobody/deactivate".into(), ROOT_KEY, 404, "user 'nobody' not found"),
        (reqwest::Method::DELETE, "/v1/users/db/nobody".into(), ROOT_KEY, 404, "user 'nobody' not found"),
        (reqwest::Method::GET, "/v1/users/db/nobody".into(), ROOT_KEY, 404, "user 'nobody' not found"),
    ];
    for (method, path, key, status, message) in cases {
        let (got, body) = call(&server, method.clone(), &path, key).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {body}");
        assert_eq!(
            body,
            json!({"error": [{"message": message}]}),
            "{method} {path}"
        );
    }
    let (status, _) = call(
        &server,
        post.clone(),
        "/v1/users/db/dave/deactivate",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&server, post, "/v1/users/db/dave/deactivate", ROOT_KEY).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"error": [{"message": "user 'dave' is already deactivated"}]})
    );
}

#[tokio::test]
async fn users_cannot_deactivate_or_delete_themselves() {
    // A database user made admin through the admin list.
    let server = managed()
        .env(vars::ADMINLIST_USERS, "root,erin")
        .start()
        .await;
    let key = create(&server, "erin").await;
    let (status, body) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/erin/deactivate",
        &key,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": [{"message": "users cannot deactivate themselves"}]})
    );
    let (status, body) = call(&server, reqwest::Method::DELETE, "/v1/users/db/erin", &key).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": [{"message": "users cannot delete themselves"}]})
    );
    assert_eq!(whoami(&server, &key).await, 200, "nothing was changed");
}

#[tokio::test]
async fn only_admins_manage_users_and_listing_depends_on_the_caller() {
    let server = managed().start().await;
    let key = create(&server, "frank").await;
    // Read-only and database (unlisted) users may not manage.
    let (status, body) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/mallory",
        READER_KEY,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error": [{"message": "forbidden: user 'reader' has insufficient permissions to write /v1/users/db/mallory"}]})
    );
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/frank/rotate-key",
        &key,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        whoami(&server, &key).await,
        200,
        "the failed rotation changed nothing"
    );

    // Admin: database and static users, with first letters.
    let (status, list) = call(&server, reqwest::Method::GET, "/v1/users/db", ROOT_KEY).await;
    assert_eq!(status, 200);
    let list = list.as_array().expect("array").clone();
    let ids: Vec<(&str, &str)> = list
        .iter()
        .map(|u| {
            (
                u["userId"].as_str().unwrap_or(""),
                u["dbUserType"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("frank", "db_user"),
            ("root", "db_env_user"),
            ("reader", "db_env_user")
        ]
    );
    assert_eq!(list[0]["apiKeyFirstLetters"], json!(&key[4..7]));
    assert_eq!(list[0]["roles"], json!([]));
    assert_eq!(list[0]["active"], json!(true));
    assert!(list[0]["createdAt"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // Read-only: database users only, no first letters.
    let (status, list) = call(&server, reqwest::Method::GET, "/v1/users/db", READER_KEY).await;
    assert_eq!(status, 200);
    let list = list.as_array().expect("array").clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["userId"], "frank");
    assert!(list[0].get("apiKeyFirstLetters").is_none());
    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        "/v1/users/db/root",
        READER_KEY,
    )
    .await;
    assert_eq!(status, 404, "static users are shown to admins only");

    // An unlisted user may not read at all under the admin list.
    let (status, _) = call(&server, reqwest::Method::GET, "/v1/users/db", &key).await;
    assert_eq!(status, 403);

    // lastUsedAt only on request, once the key was used.
    let (_, info) = call(
        &server,
        reqwest::Method::GET,
        "/v1/users/db/frank?includeLastUsedTime=true",
        ROOT_KEY,
    )
    .await;
    assert!(
        info["lastUsedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{info}"
    );
    let (_, info) = call(
        &server,
        reqwest::Method::GET,
        "/v1/users/db/frank",
        ROOT_KEY,
    )
    .await;
    assert!(info.get("lastUsedAt").is_none());
}

#[tokio::test]
async fn own_info_for_static_database_and_anonymous_callers() {
    let server = managed()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    let key = create(&server, "gina").await;
    let (status, body) = call(
        &server,
        reqwest::Method::GET,
        "/v1/users/own-info",
        READER_KEY,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"username": "reader", "groups": [], "roles": null})
        )
    );
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/users/own-info", &key).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"username": "gina", "groups": [], "roles": null})
        )
    );
    let (status, _) = call(&server, reqwest::Method::GET, "/v1/users/own-info", "").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn management_is_refused_when_database_users_are_off() {
    // An administrator (authorization comes first, as in Weaviate): the admin list's.
    let server = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ROOT_KEY)
        .env(vars::APIKEY_USERS, "root")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "root")
        .start()
        .await;
    let (status, body) = call(&server, reqwest::Method::POST, "/v1/users/db/x", ROOT_KEY).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": [{"message": "db user management is not enabled"}]})
    );
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/users/db", ROOT_KEY).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn acknowledged_changes_survive_kill_9() {
    let server = managed().start().await;
    let kept = create(&server, "henry").await;
    let old = create(&server, "iris").await;
    let (_, body) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/iris/rotate-key",
        ROOT_KEY,
    )
    .await;
    let rotated = body["apikey"].as_str().expect("key").to_owned();
    let doomed = create(&server, "jack").await;
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        "/v1/users/db/jack",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 204);
    let suspended = create(&server, "kate").await;
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/kate/deactivate",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 200);

    let dir = server.kill9().await;
    let server = managed().data_dir(&dir).start().await;
    assert_eq!(whoami(&server, &kept).await, 200);
    assert_eq!(whoami(&server, &rotated).await, 200);
    assert_eq!(
        whoami(&server, &old).await,
        401,
        "the rotated-out key stays rejected"
    );
    assert_eq!(
        whoami(&server, &doomed).await,
        401,
        "the deleted user stays deleted"
    );
    assert_eq!(
        whoami(&server, &suspended).await,
        401,
        "the deactivation holds"
    );
    assert_eq!(
        server
            .metric("portcullis_db_users", &[("state", "active")])
            .await,
        2.0
    );
    assert_eq!(
        server
            .metric("portcullis_db_users", &[("state", "inactive")])
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_stream_of_creates_interrupted_by_kill_9_loses_no_acknowledged_user() {
    let server = managed().start().await;
    let url = server.url("");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let writer = tokio::spawn(async move {
        let http = client();
        for i in 0..10_000 {
            let id = format!("stream{i}");
            let sent = http
                .post(format!("{url}/v1/users/db/{id}"))
                .bearer_auth(ROOT_KEY)
                .send()
                .await;
            let Ok(resp) = sent else { break };
            if resp.status() != StatusCode::CREATED {
                break;
            }
            let Ok(body) = resp.json::<Value>().await else {
                break;
            };
            let key = body["apikey"].as_str().unwrap_or_default().to_owned();
            if tx.send((id, key)).is_err() {
                break;
            }
        }
    });
    // Let some creates land, then crash the server in the middle of the stream.
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.len() < 30 && Instant::now() < deadline {
        if let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            acknowledged.push(item);
        }
    }
    let dir = server.kill9().await;
    let _ = writer.await;
    while let Ok(item) = rx.try_recv() {
        acknowledged.push(item);
    }
    assert!(
        acknowledged.len() >= 30,
        "only {} creates were acknowledged",
        acknowledged.len()
    );

    let server = managed().data_dir(&dir).start().await;
    for (id, key) in &acknowledged {
        let (status, _) = call(
            &server,
            reqwest::Method::GET,
            &format!("/v1/users/db/{id}"),
            ROOT_KEY,
        )
        .await;
        assert_eq!(status, 200, "{id} was acknowledged but is gone");
        assert_eq!(
            whoami(&server, key).await,
            200,
            "{id}'s key no longer works"
        );
    }
}

#[tokio::test]
async fn no_request_after_rotate_key_returns_is_accepted_with_the_old_key() {
    let server = managed().env(vars::WORKERS, "2").start().await;
    let old = create(&server, "race").await;
    let url = server.url("/v1/users/own-info");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (url, old, stop) = (url.clone(), old.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let http = client();
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let status = http
                    .get(&url)
                    .bearer_auth(&old)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                seen.push((started, status.unwrap_or(0)));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/race/rotate-key",
        ROOT_KEY,
    )
    .await;
    let acknowledged = Instant::now();
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut before_ok, mut after, mut after_ok) = (0, 0, 0);
    for worker in workers {
        for (started, status) in worker.await.expect("worker") {
            if started > acknowledged {
                after += 1;
                if status == 200 {
                    after_ok += 1;
                }
            } else if status == 200 {
                before_ok += 1;
            }
        }
    }
    assert!(before_ok > 0, "the old key worked before the rotation");
    assert!(after > 0, "requests were made after the rotation");
    assert_eq!(
        after_ok, 0,
        "{after_ok} of {after} requests after rotate-key returned were accepted with the old key"
    );
}

/// `docs/hostile-inputs.md` row 38: right prefix, bad checksum: 401 before any lookup.
#[tokio::test]
async fn a_key_with_a_bad_checksum_is_refused_before_lookup() {
    let server = managed().start().await;
    let key = create(&server, "lena").await;
    let mut bytes = key.into_bytes();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bytes).expect("ascii");
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/meta", &bad).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));
    assert_eq!(
        server
            .auth_requests("apikey_db", "deny", "invalid_key")
            .await,
        1.0
    );
    for shape in [
        "pcu_",
        "pcu_short",
        "pcu_toolong_________________________________________________________________",
    ] {
        let (status, _) = call(&server, reqwest::Method::GET, "/v1/meta", shape).await;
        assert_eq!(status, 401, "{shape}");
    }
}

/// `docs/hostile-inputs.md` row 39: a valid id with a wrong secret and an unknown id get the
/// same answer in the same time class. Both must be judged 300 times, so the failure
/// throttle (which would answer 429 past its budget of 100) is off here.
#[tokio::test]
async fn wrong_secret_and_unknown_id_are_indistinguishable() {
    let server = managed().env(vars::AUTH_FAILURE_LIMIT, "0").start().await;
    let real = create(&server, "mike").await;
    let other = create(&server, "nina").await;
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        "/v1/users/db/nina",
        ROOT_KEY,
    )
    .await;
    assert_eq!(status, 204);
    // A well-formed key whose id exists but whose secret is another key's: rebuild a valid
    // checksum is not possible from outside, so use the deleted user's (well-formed) key for the
    // unknown id, and the real id with the deleted key's secret+check for the wrong secret.
    let wrong_secret = format!("{}{}", &real[..17], &other[17..]);
    let unknown_id = other.clone();
    let (s1, b1) = call(&server, reqwest::Method::GET, "/v1/meta", &wrong_secret).await;
    let (s2, b2) = call(&server, reqwest::Method::GET, "/v1/meta", &unknown_id).await;
    assert_eq!((s1, &b1), (StatusCode::UNAUTHORIZED, &unauthorized()));
    assert_eq!((s2, &b2), (s1, &b1), "same status and body");
    let http = client();
    let median = |key: String| {
        let http = http.clone();
        let url = server.url("/v1/meta");
        async move {
            let mut times = Vec::new();
            for _ in 0..150 {
                let t = Instant::now();
                let resp = http
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(resp.status(), 401);
                times.push(t.elapsed());
            }
            times.sort();
            times[times.len() / 2]
        }
    };
    let a = median(wrong_secret).await;
    let b = median(unknown_id).await;
    let ratio = a.as_secs_f64() / b.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "median {a:?} vs {b:?}: different time classes"
    );
}

/// `docs/hostile-inputs.md` row 40: a flood of random secrets against one valid key id: every
/// one is refused and the real key keeps working. This is the key registry's own answer, so
/// the failure throttle (rows 53-56, `throttle.rs`), which would answer 429 past its budget,
/// is off here.
#[tokio::test]
async fn a_flood_of_wrong_secrets_is_refused_and_the_real_key_still_works() {
    let server = managed().env(vars::AUTH_FAILURE_LIMIT, "0").start().await;
    let real = create(&server, "oscar").await;
    let other = create(&server, "paula").await;
    let forged = format!("{}{}", &real[..17], &other[17..]);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, forged) = (server.url("/v1/meta"), forged.clone());
        tasks.push(tokio::spawn(async move {
            let http = client();
            let mut refused = 0;
            for _ in 0..250 {
                let resp = http
                    .get(&url)
                    .bearer_auth(&forged)
                    .send()
                    .await
                    .expect("request");
                if resp.status() == 401 {
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.expect("task");
    }
    assert_eq!(refused, 1000);
    assert_eq!(whoami(&server, &real).await, 200);
    assert_eq!(
        server
            .auth_requests("apikey_db", "deny", "invalid_key")
            .await,
        1000.0
    );
}

/// `docs/hostile-inputs.md` row 42: database user names are ASCII by Weaviate's rule.
#[tokio::test]
async fn unicode_and_control_character_names_are_refused() {
    let server = managed().start().await;
    for name in [
        "%D0%B0dmin",     // Cyrillic a, a homoglyph of "admin"
        "cafe%CC%81",     // NFD e + combining acute
        "ad%E2%80%8Bmin", // zero-width space
        "admin%E2%80%AE", // right-to-left override
        "ad%00min",       // NUL
        "a%20b",
        "a:b",
        "anonymous", // reserved: admin lists use it for callers without a credential
    ] {
        let (status, body) = call(
            &server,
            reqwest::Method::POST,
            &format!("/v1/users/db/{name}"),
            ROOT_KEY,
        )
        .await;
        assert_eq!(status, 422, "{name}: {body}");
    }
    let (_, list) = call(&server, reqwest::Method::GET, "/v1/users/db", ROOT_KEY).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(2),
        "only the static users: {list}"
    );
}

/// The bootstrap admin's key from a first start's standard output.
fn printed_key(server: &Server) -> String {
    server
        .stdout()
        .join("\n")
        .split_whitespace()
        .find(|w| w.starts_with("pcu_"))
        .expect("the bootstrap key is printed")
        .to_owned()
}

/// Issue 11, item 2: with nothing configured (the bootstrap default), any database user could
/// deactivate, rotate or delete `admin` and take the server over. Only the bootstrap admin
/// manages, lists and reads users now; another user gets 403 before any handler runs, and
/// keeps what it may do to itself (own-info) and on the database.
#[tokio::test]
async fn with_nothing_configured_only_the_bootstrap_admin_manages_users() {
    let server = ServerBuilder::new().start().await;
    let admin = printed_key(&server);
    let (status, body) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/mallory",
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mallory = body["apikey"].as_str().expect("apikey").to_owned();

    let refused = [
        (
            reqwest::Method::POST,
            "/v1/users/db/admin/deactivate",
            "write",
        ),
        (
            reqwest::Method::POST,
            "/v1/users/db/admin/rotate-key",
            "write",
        ),
        (reqwest::Method::DELETE, "/v1/users/db/admin", "write"),
        (reqwest::Method::POST, "/v1/users/db/eve", "write"),
        (
            reqwest::Method::POST,
            "/v1/users/db/admin/activate",
            "write",
        ),
        (
            reqwest::Method::POST,
            "/v1/users/db/mallory/rotate-key",
            "write",
        ),
        (reqwest::Method::GET, "/v1/users/db", "read"),
        (reqwest::Method::GET, "/v1/users/db/admin", "read"),
    ];
    for (method, path, verb) in &refused {
        let (status, body) = call_with(
            &server,
            method.clone(),
            path,
            &mallory,
            Some(json!({"revoke_key": true})),
        )
        .await;
        assert_eq!(
            (status, body),
            (StatusCode::FORBIDDEN, forbidden_body("mallory", verb, path)),
            "{method} {path}"
        );
    }
    assert_eq!(
        server
            .metric("portcullis_authorization_total", &[("result", "deny")])
            .await,
        refused.len() as f64
    );
    assert_eq!(
        server.auth_requests("apikey_db", "accept", "ok").await,
        refused.len() as f64 + 1.0,
        "authenticated, then refused: the create and the refusals"
    );
    for op in ["create", "rotate", "activate", "deactivate", "delete"] {
        assert_eq!(
            server
                .metric(
                    "portcullis_key_operations_total",
                    &[("op", op), ("result", "rejected")]
                )
                .await,
            0.0,
            "{op} never reached the KeyRegistry"
        );
    }

    // Nothing changed: the admin still works and still manages; mallory keeps the rest.
    assert_eq!(whoami(&server, &admin).await, 200);
    assert_eq!(whoami(&server, &mallory).await, 200);
    let (status, _) = call(&server, reqwest::Method::GET, "/v1/meta", &mallory).await;
    assert_eq!(status, 200);
    let (status, list) = call(&server, reqwest::Method::GET, "/v1/users/db", &admin).await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["userId"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["admin", "mallory"], "no eve");
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        "/v1/users/db/mallory/deactivate",
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(whoami(&server, &mallory).await, 401);
}

#[tokio::test]
async fn first_start_prints_a_working_admin_key_and_the_second_does_not() {
    let server = ServerBuilder::new().start().await;
    let printed = server.stdout().join("\n");
    let key = printed
        .split_whitespace()
        .find(|w| w.starts_with("pcu_"))
        .expect("the bootstrap key is printed")
        .to_owned();
    let (status, body) = call(&server, reqwest::Method::GET, "/v1/users/own-info", &key).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"username": "admin", "groups": [], "roles": null})
        )
    );
    // The admin can manage users.
    let (status, _) = call(&server, reqwest::Method::POST, "/v1/users/db/second", &key).await;
    assert_eq!(status, 201);
    // Anonymous access stays off.
    let (status, _) = call(&server, reqwest::Method::GET, "/v1/meta", "").await;
    assert_eq!(status, 401);
    assert!(!server.stderr().contains(&key), "the key is never logged");

    let dir = server.kill9().await;
    let server = ServerBuilder::new().data_dir(&dir).start().await;
    assert!(
        !server.stdout().join("\n").contains("pcu_"),
        "the second start prints no key"
    );
    assert_eq!(
        whoami(&server, &key).await,
        200,
        "the bootstrap key still works"
    );
}
