//! In-process tests of the application through `actix_web::test`: the gate's answers to header,
//! route, admin-list and request-id cases, without spawning the binary. The end-to-end suite
//! (`tests/tests/api_keys.rs`) checks the same behaviours against the real binary.
//!
//! Keys here are fixtures, but no assertion message contains one.

use std::sync::Arc;

use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use portcullis_config::{vars, Settings};
use serde_json::{json, Value};

use super::{app, AppState};
use crate::metrics::Metrics;

const ADMIN_KEY: &str = "pk-root-7d31c0a95e2b84f6";
const READER_KEY: &str = "pk-reader-0b8e4f2a6c93d751";
const STRANGER_KEY: &str = "pk-stranger-e5a2917c3d08b64f";
const UNKNOWN_KEY: &str = "pk-nobody-4c9f0e3b7a15d286";

const CHALLENGE_INVALID_TOKEN: &str = r#"Bearer realm="portcullis", error="invalid_token""#;
const CHALLENGE_INVALID_REQUEST: &str = r#"Bearer realm="portcullis", error="invalid_request""#;

/// An application's state and what the test reads besides responses.
struct Fixture {
    state: AppState,
    metrics: Arc<Metrics>,
    /// Holds the document store's directory for the test's duration.
    _data: tempfile::TempDir,
}

impl Fixture {
    /// Static keys for root (admin), reader (read-only) and stranger (on no list), the admin
    /// list on, anonymous access as given, the embedded store in a fresh directory.
    async fn admin_listed(anonymous: bool) -> Fixture {
        let data = tempfile::tempdir().expect("temporary directory");
        let settings = Settings::from_vars([
            (vars::APIKEY_ENABLED, "true"),
            (
                vars::APIKEY_ALLOWED_KEYS,
                &format!("{ADMIN_KEY},{READER_KEY},{STRANGER_KEY}"),
            ),
            (vars::APIKEY_USERS, "root,reader,stranger"),
            (
                vars::ANONYMOUS_ACCESS_ENABLED,
                if anonymous { "true" } else { "false" },
            ),
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
        let state = AppState::new(&settings, metrics.clone(), keys)
            .await
            .expect("application state");
        Fixture {
            state,
            metrics,
            _data: data,
        }
    }

    fn exposition(&self) -> String {
        String::from_utf8(self.metrics.render().expect("render")).expect("UTF-8 exposition")
    }
}

/// What a test looks at in a response.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    request_id: Option<String>,
    body: Value,
}

/// Sends `req` through a fresh service over the fixture's state.
async fn send(fixture: &Fixture, req: TestRequest) -> Reply {
    let service = test::init_service(app(fixture.state.clone())).await;
    let res = test::call_service(&service, req.to_request()).await;
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    };
    let status = res.status();
    let challenge = header(WWW_AUTHENTICATE.as_str());
    let request_id = header("x-request-id");
    let bytes = test::read_body(res).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Reply {
        status,
        challenge,
        request_id,
        body,
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[actix_web::test]
async fn a_tab_in_the_authorization_header_is_400_invalid_request() {
    let fixture = Fixture::admin_listed(false).await;
    let reply = send(
        &fixture,
        TestRequest::get()
            .uri("/v1/meta")
            .insert_header((AUTHORIZATION, format!("Bearer\t{ADMIN_KEY}"))),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({ "code": 400, "message": "invalid_request: malformed Authorization header" })
    );
    assert_eq!(reply.challenge.as_deref(), Some(CHALLENGE_INVALID_REQUEST));
    assert!(reply.request_id.is_some_and(|id| !id.is_empty()));
    assert!(fixture.exposition().contains(
        r#"portcullis_auth_requests_total{method="none",reason="malformed",result="deny"} 1"#
    ));
}

#[actix_web::test]
async fn an_unrouted_path_is_404_only_after_authentication() {
    let fixture = Fixture::admin_listed(false).await;
    let admin = bearer(ADMIN_KEY);
    for path in ["/nowhere", "/v1/portcullis-unserved"] {
        let reply = send(
            &fixture,
            TestRequest::get()
                .uri(path)
                .insert_header((AUTHORIZATION, admin.as_str())),
        )
        .await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body, json!({ "error": [{ "message": "not found" }] }));
        assert_eq!(reply.challenge, None, "a 404 carries no challenge");

        let anonymous = send(&fixture, TestRequest::get().uri(path)).await;
        assert_eq!(anonymous.status, 401, "{path} without a credential");
    }
    let text = fixture.exposition();
    for status in ["404", "401"] {
        let line = format!(
            r#"portcullis_http_requests_total{{method="GET",route="unrouted",status="{status}"}} 1"#
        );
        assert!(text.contains(&line), "{line}");
    }
}

#[actix_web::test]
async fn the_admin_list_forbids_what_the_caller_may_not_do() {
    let fixture = Fixture::admin_listed(false).await;
    let cases = [
        (TestRequest::post(), READER_KEY, "reader", "write"),
        (TestRequest::delete(), READER_KEY, "reader", "write"),
        (TestRequest::get(), STRANGER_KEY, "stranger", "read"),
    ];
    for (req, key, user, verb) in cases {
        let reply = send(
            &fixture,
            req.uri("/v1/objects")
                .insert_header((AUTHORIZATION, bearer(key))),
        )
        .await;
        assert_eq!(reply.status, 403, "{user} {verb}");
        assert_eq!(
            reply.body,
            json!({ "error": [{ "message": format!(
                "forbidden: user '{user}' has insufficient permissions to {verb} /v1/objects"
            ) }] })
        );
        assert_eq!(reply.challenge, None, "a 403 carries no challenge");
    }
    let allowed = send(
        &fixture,
        TestRequest::get()
            .uri("/v1/objects")
            .insert_header((AUTHORIZATION, bearer(READER_KEY))),
    )
    .await;
    assert_eq!(allowed.status, 200);
    let text = fixture.exposition();
    assert!(text.contains(r#"portcullis_authorization_total{result="deny"} 3"#));
    assert!(text.contains(r#"portcullis_authorization_total{result="allow"} 1"#));
}

#[actix_web::test]
async fn plain_client_request_ids_are_echoed_and_others_replaced() {
    let fixture = Fixture::admin_listed(false).await;
    let given = "trace-42.abc_DEF";
    for (status, authorization) in [
        (200, Some(bearer(ADMIN_KEY))),
        (401, None),
        (400, Some("Bearer".to_owned())),
    ] {
        let mut req = TestRequest::get()
            .uri("/v1/meta")
            .insert_header(("x-request-id", given));
        if let Some(value) = authorization {
            req = req.insert_header((AUTHORIZATION, value));
        }
        let reply = send(&fixture, req).await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.request_id.as_deref(), Some(given), "on a {status}");
    }
    let long = "a".repeat(65);
    for not_plain in ["has space", "semi;colon", long.as_str()] {
        let reply = send(
            &fixture,
            TestRequest::get()
                .uri("/v1/.well-known/live")
                .insert_header(("x-request-id", not_plain)),
        )
        .await;
        let id = reply.request_id.expect("a generated X-Request-Id");
        assert!(!id.is_empty());
        assert_ne!(id, not_plain, "a non-plain id was echoed");
    }
}

#[actix_web::test]
async fn an_invalid_key_is_401_even_with_anonymous_access_on() {
    let fixture = Fixture::admin_listed(true).await;
    let reply = send(
        &fixture,
        TestRequest::get()
            .uri("/v1/meta")
            .insert_header((AUTHORIZATION, bearer(UNKNOWN_KEY))),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.body,
        json!({ "code": 401, "message": "unauthorized: invalid credential" })
    );
    assert_eq!(reply.challenge.as_deref(), Some(CHALLENGE_INVALID_TOKEN));

    // Without a credential the same request is anonymous, and served.
    let anonymous = send(&fixture, TestRequest::get().uri("/v1/meta")).await;
    assert_eq!(anonymous.status, 200);
    let text = fixture.exposition();
    assert!(text.contains(
        r#"portcullis_auth_requests_total{method="apikey_static",reason="invalid_key",result="deny"} 1"#
    ));
    assert!(text.contains(
        r#"portcullis_auth_requests_total{method="anonymous",reason="ok",result="accept"} 1"#
    ));
}

#[actix_web::test]
async fn health_and_meta_answer_get_and_head_and_pass_other_methods_on() {
    let fixture = Fixture::admin_listed(false).await;
    for path in ["/v1/.well-known/live", "/v1/.well-known/ready", "/v1/meta"] {
        for req in [
            TestRequest::get(),
            TestRequest::default().method(Method::HEAD),
        ] {
            let reply = send(
                &fixture,
                req.uri(path)
                    .insert_header((AUTHORIZATION, bearer(ADMIN_KEY))),
            )
            .await;
            assert_eq!(reply.status, 200, "{path}");
        }
        // Another method is not theirs: it passes on to the routes after them, which do not
        // know it either (the same 404 as before GET and HEAD shared one resource).
        for req in [TestRequest::post(), TestRequest::delete()] {
            let reply = send(
                &fixture,
                req.uri(path)
                    .insert_header((AUTHORIZATION, bearer(ADMIN_KEY))),
            )
            .await;
            assert_eq!(reply.status, 404, "{path}");
        }
    }
}
