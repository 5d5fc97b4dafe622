//! The streamed listing against the listing as it was built before it streamed: the same
//! bytes for a small store (order and fields, for admins and read-only callers, with and
//! without last-used times), and a store of 100,000 users listed whole.

use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::test::{self, TestRequest};
use portcullis_auth::api_key::{format, UserRecord};
use portcullis_auth::{KeyRegistryHandle, UserInfo, UserStore};
use portcullis_config::{vars, Settings};
use serde_json::{json, Value};

use super::rfc3339;
use crate::app::{app, AppState};
use crate::metrics::Metrics;

const ADMIN_KEY: &str = "pk-root-7d31c0a95e2b84f6";
const READER_KEY: &str = "pk-reader-0b8e4f2a6c93d751";

/// The listing's serializer before it streamed, kept here as the reference: one JSON value
/// per user, the whole list serialized at once.
fn old_user_json(info: &UserInfo, admin: bool, include_last_used: bool) -> Value {
    let mut v = json!({
        "userId": info.id,
        "dbUserType": if info.is_static { "db_env_user" } else { "db_user" },
        "roles": [],
        "active": info.active,
    });
    if let Some(created) = info.created_at_ms.and_then(rfc3339) {
        v["createdAt"] = Value::String(created);
    }
    if include_last_used {
        if let Some(last) = info.last_used_ms.and_then(rfc3339) {
            v["lastUsedAt"] = Value::String(last);
        }
    }
    if admin {
        if let Some(letters) = &info.first_letters {
            v["apiKeyFirstLetters"] = Value::String(letters.clone());
        }
    }
    v
}

fn old_body(users: &[UserInfo], admin: bool, include_last_used: bool) -> Vec<u8> {
    let body: Vec<Value> = users
        .iter()
        .filter(|u| admin || !u.is_static)
        .map(|u| old_user_json(u, admin, include_last_used))
        .collect();
    serde_json::to_vec(&body).expect("serialize")
}

struct Fixture {
    state: AppState,
    keys: KeyRegistryHandle,
    _data: tempfile::TempDir,
}

/// Static users root (admin), reader (read-only) and a static `zed`, database users on, and
/// `seeded` users stored directly in the user store before start (`seed00000`, ...).
async fn fixture(seeded: usize) -> Fixture {
    let data = tempfile::tempdir().expect("temporary directory");
    if seeded > 0 {
        let store = UserStore::open(data.path()).await.expect("user store");
        let users: Vec<UserRecord> = (0..seeded)
            .map(|i| {
                let key = format::generate().expect("a key");
                UserRecord::new(&format!("seed{i:05}"), &key, 1_700_000_000_000 + i as i64)
            })
            .collect();
        for chunk in users.chunks(10_000) {
            store.insert_many(chunk).await.expect("seed");
        }
    }
    let settings = Settings::from_vars([
        (vars::APIKEY_ENABLED, "true"),
        (
            vars::APIKEY_ALLOWED_KEYS,
            &format!("{ADMIN_KEY},{READER_KEY},pk-zed-5a1c9e0f3b7d2846"),
        ),
        (vars::APIKEY_USERS, "root,reader,zed"),
        (vars::DB_USERS_ENABLED, "true"),
        (vars::ADMINLIST_ENABLED, "true"),
        (vars::ADMINLIST_USERS, "root"),
        (vars::ADMINLIST_READONLY_USERS, "reader"),
        (
            vars::PERSISTENCE_DATA_PATH,
            data.path().to_str().expect("UTF-8 temporary path"),
        ),
    ])
    .expect("valid settings");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let keys = crate::start_key_registry(&settings)
        .await
        .expect("key registry");
    let state = AppState::new(&settings, metrics, keys.clone())
        .await
        .expect("application state");
    Fixture {
        state,
        keys,
        _data: data,
    }
}

/// The listing's status, content type and bytes.
async fn list(fixture: &Fixture, uri: &str, key: &str) -> (u16, String, Vec<u8>) {
    let service = test::init_service(app(fixture.state.clone())).await;
    let req = TestRequest::get()
        .uri(uri)
        .insert_header((AUTHORIZATION, format!("Bearer {key}")))
        .to_request();
    let res = test::call_service(&service, req).await;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    (status, content_type, test::read_body(res).await.to_vec())
}

#[actix_web::test]
async fn the_streamed_listing_has_the_bytes_of_the_whole_list() {
    // More than two pages of seeded users, and users in every state made through the API.
    let fixture = fixture(2 * super::listing::PAGE + 7).await;
    let keys = &fixture.keys;
    let amy = keys.create_user("amy").await.expect("amy");
    keys.create_user("bob").await.expect("bob");
    keys.create_user("zoe").await.expect("zoe");
    keys.create_user("seed00003x")
        .await
        .expect("between seeded users");
    keys.deactivate("bob", "root", true).await.expect("bob off");
    keys.deactivate("zoe", "root", false)
        .await
        .expect("zoe off");
    keys.authenticate(amy.expose()).await.expect("amy used");

    let users = keys.list().await.expect("list");
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids.len(), 2 * super::listing::PAGE + 7 + 4 + 3);
    let (db, statics) = ids.split_at(ids.len() - 3);
    assert!(db.windows(2).all(|w| w[0] < w[1]), "database users by name");
    assert_eq!(
        statics,
        ["root", "reader", "zed"],
        "then static users as configured"
    );
    assert!(users
        .iter()
        .any(|u| u.id == "amy" && u.last_used_ms.is_some()));

    for (key, admin) in [(ADMIN_KEY, true), (READER_KEY, false)] {
        for (query, include) in [("", false), ("?includeLastUsedTime=true", true)] {
            let (status, content_type, body) =
                list(&fixture, &format!("/v1/users/db{query}"), key).await;
            assert_eq!(status, 200);
            assert_eq!(content_type, "application/json");
            let expected = old_body(&users, admin, include);
            assert!(
                body == expected,
                "admin {admin}, {query:?}: {} bytes streamed, {} expected; first difference at {:?}",
                body.len(),
                expected.len(),
                body.iter().zip(&expected).position(|(a, b)| a != b)
            );
        }
    }
}

#[actix_web::test]
async fn an_empty_store_lists_the_static_users_alone() {
    let fixture = fixture(0).await;
    let (status, _, body) = list(&fixture, "/v1/users/db", ADMIN_KEY).await;
    assert_eq!(status, 200);
    let users = fixture.keys.list().await.expect("list");
    assert_eq!(users.len(), 3);
    assert_eq!(body, old_body(&users, true, false));
    let (_, _, body) = list(&fixture, "/v1/users/db", READER_KEY).await;
    assert_eq!(body, b"[]");
}

#[actix_web::test]
async fn a_hundred_thousand_users_stream_and_count_right() {
    const USERS: usize = 100_000;
    let fixture = fixture(USERS).await;
    let (status, _, body) = list(&fixture, "/v1/users/db", ADMIN_KEY).await;
    assert_eq!(status, 200);
    let listed: Vec<Value> = serde_json::from_slice(&body).expect("the streamed list parses");
    assert_eq!(
        listed.len(),
        USERS + 3,
        "every database user and the static ones"
    );
    for (i, user) in listed.iter().take(USERS).enumerate() {
        assert_eq!(user["userId"], format!("seed{i:05}"), "in name order");
        assert_eq!(user["dbUserType"], "db_user");
    }
    assert_eq!(listed[USERS]["userId"], "root");
    let (_, _, body) = list(&fixture, "/v1/users/db", READER_KEY).await;
    let listed: Vec<Value> = serde_json::from_slice(&body).expect("the reader's list parses");
    assert_eq!(
        listed.len(),
        USERS,
        "no static users for a read-only caller"
    );
}
