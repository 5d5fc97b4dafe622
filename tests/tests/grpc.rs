//! End-to-end tests of the gRPC listener against the real binary, with a tonic client: the
//! gate's statuses and messages (REST's), hostile metadata, the health service, a database
//! key rotated under an open channel, metrics, bounded HTTP/2 resources, and proxy mode in
//! front of a second Portcullis. Until the embedded store answers a method, a call that
//! passed the gate answers UNIMPLEMENTED naming it: that is the "admitted" signal here.
//!
//! Keys are test fixtures but treated as secrets: no assertion message contains one.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portcullis_config::vars;
use portcullis_server::grpc::pb::weaviate_client::WeaviateClient;
use portcullis_server::grpc::pb::{BatchObjectsRequest, SearchRequest, TenantsGetRequest};
use portcullis_testkit::{FaultIssuer, TestKey};
use portcullis_tests::oidc_support::oidc_server;
use portcullis_tests::{Server, ServerBuilder};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const ADMIN_KEY: &str = "pk-grpc-admin-4c1e9b7a02d5";
const READER_KEY: &str = "pk-grpc-reader-8e3f60c2b91a";
const STRANGER_KEY: &str = "pk-grpc-stranger-1a7d5e9c03b4";
const WRONG_KEY: &str = "pk-grpc-nobody-77f0c2e4a8d1";

const MISSING_MESSAGE: &str = "unauthorized: anonymous access not enabled. Please authenticate through one of the available methods: [API-keys]";
const INVALID_MESSAGE: &str = "unauthorized: invalid credential";
const OIDC_UNAVAILABLE: &str =
    "the OpenID Connect issuer's signing keys are not available yet; retry later";
const NOT_CONFIGURED: &str =
    "upstream unavailable: the gRPC upstream is not configured (set PORTCULLIS_UPSTREAM_GRPC_ADDR)";

const SEARCH: &str = "/weaviate.v1.Weaviate/Search";
const BATCH_OBJECTS: &str = "/weaviate.v1.Weaviate/BatchObjects";

/// Static keys: an admin, a read-only user and a user on no list.
fn keyed() -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            vars::APIKEY_ALLOWED_KEYS,
            format!("{ADMIN_KEY},{READER_KEY},{STRANGER_KEY}"),
        )
        .env(vars::APIKEY_USERS, "admin,reader,stranger")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "admin")
        .env(vars::ADMINLIST_READONLY_USERS, "reader")
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the gRPC listener")
}

async fn client(server: &Server) -> WeaviateClient<Channel> {
    WeaviateClient::new(channel(server.grpc.expect("grpc address")).await)
}

/// A request with every `authorization` value given (none, one, or several).
fn with_auth<T>(message: T, values: &[&str]) -> Request<T> {
    let mut request = Request::new(message);
    for value in values {
        let value: MetadataValue<_> = value.parse().expect("ascii metadata");
        request.metadata_mut().append("authorization", value);
    }
    request
}

fn search() -> SearchRequest {
    SearchRequest {
        collection: "Article".to_owned(),
        ..Default::default()
    }
}

async fn search_status(server: &Server, values: &[&str]) -> (Code, String) {
    match client(server)
        .await
        .search(with_auth(search(), values))
        .await
    {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

async fn batch_status(server: &Server, values: &[&str]) -> (Code, String) {
    let request = with_auth(BatchObjectsRequest::default(), values);
    match client(server).await.batch_objects(request).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn admitted(method: &str) -> (Code, String) {
    (
        Code::Unimplemented,
        format!("{method} is not served by the embedded store yet"),
    )
}

async fn health(addr: SocketAddr, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel(addr).await);
    let reply = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check answered");
    reply.into_inner().status()
}

#[tokio::test]
async fn the_gate_answers_grpc_with_rests_decision_and_messages() {
    let server = keyed().start().await;
    // No credential, a wrong key: UNAUTHENTICATED with REST's 401 messages.
    assert_eq!(
        search_status(&server, &[]).await,
        (Code::Unauthenticated, MISSING_MESSAGE.to_owned())
    );
    assert_eq!(
        search_status(&server, &[&bearer(WRONG_KEY)]).await,
        (Code::Unauthenticated, INVALID_MESSAGE.to_owned())
    );
    // The scheme in any case; reads and writes for the admin.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let value = format!("{scheme} {ADMIN_KEY}");
        assert_eq!(
            search_status(&server, &[&value]).await,
            admitted("Search"),
            "{scheme}"
        );
    }
    assert_eq!(
        batch_status(&server, &[&bearer(ADMIN_KEY)]).await,
        admitted("BatchObjects")
    );
    // The read-only user reads, and is refused a write with REST's 403 message.
    assert_eq!(
        search_status(&server, &[&bearer(READER_KEY)]).await,
        admitted("Search")
    );
    let tenants = client(&server)
        .await
        .tenants_get(with_auth(
            TenantsGetRequest::default(),
            &[&bearer(READER_KEY)],
        ))
        .await
        .expect_err("not served yet");
    assert_eq!(tenants.code(), Code::Unimplemented);
    assert_eq!(
        batch_status(&server, &[&bearer(READER_KEY)]).await,
        (
            Code::PermissionDenied,
            format!(
                "forbidden: user 'reader' has insufficient permissions to write {BATCH_OBJECTS}"
            )
        )
    );
    // A user on no list may do neither.
    assert_eq!(
        search_status(&server, &[&bearer(STRANGER_KEY)]).await,
        (
            Code::PermissionDenied,
            format!("forbidden: user 'stranger' has insufficient permissions to read {SEARCH}")
        )
    );

    // Counted in the same series as REST, and in the gRPC series by method and code.
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        8.0
    );
    assert_eq!(
        server
            .auth_requests("apikey_static", "deny", "invalid_key")
            .await,
        1.0
    );
    assert_eq!(server.auth_requests("none", "deny", "missing").await, 1.0);
    let grpc = |method: &'static str, code: &'static str| {
        let server = &server;
        async move {
            server
                .metric(
                    "portcullis_grpc_requests_total",
                    &[("method", method), ("code", code)],
                )
                .await
        }
    };
    assert_eq!(grpc(SEARCH, "UNAUTHENTICATED").await, 2.0);
    assert_eq!(grpc(SEARCH, "UNIMPLEMENTED").await, 4.0);
    assert_eq!(grpc(SEARCH, "PERMISSION_DENIED").await, 1.0);
    assert_eq!(grpc(BATCH_OBJECTS, "PERMISSION_DENIED").await, 1.0);
    assert_eq!(
        server
            .metric(
                "portcullis_grpc_request_duration_seconds_count",
                &[("method", BATCH_OBJECTS)]
            )
            .await,
        2.0
    );
}

#[tokio::test]
async fn hostile_authorization_metadata_gets_exact_codes() {
    let server = keyed().start().await;
    let admin = bearer(ADMIN_KEY);
    // Two entries: ambiguous, never guessed at.
    let (code, message) = search_status(&server, &[&admin, &admin]).await;
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(
        message,
        "invalid_request: more than one Authorization header"
    );
    // An empty bearer.
    assert_eq!(
        search_status(&server, &["Bearer "]).await,
        (
            Code::InvalidArgument,
            "invalid_request: empty bearer token".to_owned()
        )
    );
    // A 10 KiB token: judged as REST judges it (an invalid key), not a transport error.
    let long = bearer(&"k".repeat(10 * 1024));
    assert_eq!(
        search_status(&server, &[&long]).await,
        (Code::Unauthenticated, INVALID_MESSAGE.to_owned())
    );
    // Another scheme counts as no credential.
    assert_eq!(
        search_status(&server, &["Basic dXNlcjpwYXNz"]).await,
        (Code::Unauthenticated, MISSING_MESSAGE.to_owned())
    );
    // Non-ASCII bytes: tonic's client refuses to send them as ASCII metadata, so send them
    // as a binary-safe raw header with the h2 client.
    let addr = server.grpc.expect("grpc address");
    let (code, message) = raw_call(addr, SEARCH, &[("authorization", b"Bearer k\xffy")]).await;
    assert_eq!(code, Some(Code::InvalidArgument as i32));
    assert_eq!(message, "invalid_request: malformed Authorization header");
    assert_eq!(server.auth_requests("none", "deny", "malformed").await, 3.0);
}

#[tokio::test]
async fn health_answers_without_a_credential_and_follows_readiness() {
    let server = keyed().start().await;
    let addr = server.grpc.expect("grpc address");
    assert_eq!(health(addr, "").await, ServingStatus::Serving);
    assert_eq!(
        health(addr, "weaviate.v1.Weaviate").await,
        ServingStatus::Serving
    );

    // OIDC alone, its issuer down: REST ready is 503, so NOT_SERVING, and a token cannot be
    // judged: UNAVAILABLE with REST's message.
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    issuer.down().await;
    let server = oidc_server(&issuer.url())
        .env(vars::OIDC_REFRESH_INTERVAL, "1s")
        .env(vars::OIDC_KID_MISS_COOLDOWN, "1s")
        .env(vars::OIDC_FETCH_TIMEOUT, "1s")
        .start()
        .await;
    let addr = server.grpc.expect("grpc address");
    assert_eq!(health(addr, "").await, ServingStatus::NotServing);
    let token = issuer.token(&key);
    assert_eq!(
        search_status(&server, &[&bearer(&token)]).await,
        (Code::Unavailable, OIDC_UNAVAILABLE.to_owned())
    );

    // The issuer back: SERVING once its keys load, the token admitted, a forged one refused.
    issuer.up().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(addr, "").await != ServingStatus::Serving {
        assert!(Instant::now() < deadline, "keys never loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        search_status(&server, &[&bearer(&token)]).await,
        admitted("Search")
    );
    let mut forged = token.into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(
        search_status(&server, &[&bearer(&forged)]).await,
        (Code::Unauthenticated, INVALID_MESSAGE.to_owned())
    );
    assert_eq!(
        server.auth_requests("oidc", "deny", "bad_signature").await,
        1.0
    );
}

#[tokio::test]
async fn anonymous_access_is_served_where_enabled_but_a_bad_key_is_never_anonymous() {
    let server = ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ADMIN_KEY)
        .env(vars::APIKEY_USERS, "admin")
        .start()
        .await;
    assert_eq!(search_status(&server, &[]).await, admitted("Search"));
    assert_eq!(batch_status(&server, &[]).await, admitted("BatchObjects"));
    assert_eq!(
        search_status(&server, &[&bearer(WRONG_KEY)]).await,
        (Code::Unauthenticated, INVALID_MESSAGE.to_owned())
    );
}

#[tokio::test]
async fn a_rotated_database_key_is_refused_on_a_channel_opened_before() {
    let server = keyed()
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "admin,carol")
        .start()
        .await;
    let created = server
        .post("/v1/users/db/carol")
        .bearer(ADMIN_KEY)
        .send()
        .await;
    assert_eq!(created.status.as_u16(), 201);
    let old_key = created.json()["apikey"]
        .as_str()
        .expect("apikey")
        .to_owned();

    // One channel held across the rotation.
    let mut held = client(&server).await;
    let call = |key: String| with_auth(search(), &[&bearer(&key)]);
    let before = held
        .search(call(old_key.clone()))
        .await
        .expect_err("unimplemented");
    assert_eq!(before.code(), Code::Unimplemented);

    let rotated = server
        .post("/v1/users/db/carol/rotate-key")
        .bearer(ADMIN_KEY)
        .send()
        .await;
    assert_eq!(rotated.status.as_u16(), 200);
    let new_key = rotated.json()["apikey"]
        .as_str()
        .expect("apikey")
        .to_owned();

    let after = held.search(call(old_key)).await.expect_err("refused");
    assert_eq!(after.code(), Code::Unauthenticated);
    assert_eq!(after.message(), INVALID_MESSAGE);
    let fresh = held.search(call(new_key)).await.expect_err("unimplemented");
    assert_eq!(fresh.code(), Code::Unimplemented);
}

#[tokio::test]
async fn an_upstream_without_a_grpc_address_answers_unavailable_after_the_gate() {
    let server = keyed()
        .env(vars::UPSTREAM_URL, "http://127.0.0.1:9")
        .start()
        .await;
    assert_eq!(
        search_status(&server, &[&bearer(ADMIN_KEY)]).await,
        (Code::Unavailable, NOT_CONFIGURED.to_owned())
    );
    // The gate still comes first.
    assert_eq!(
        search_status(&server, &[]).await,
        (Code::Unauthenticated, MISSING_MESSAGE.to_owned())
    );
}

#[tokio::test]
async fn proxy_mode_forwards_admitted_calls_to_a_second_portcullis() {
    // The upstream: a Portcullis with the embedded store that knows only the admin key.
    let upstream = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ADMIN_KEY)
        .env(vars::APIKEY_USERS, "admin")
        .start()
        .await;
    let upstream_grpc = upstream.grpc.expect("upstream grpc").to_string();
    let front = |forward_auth: bool| {
        keyed()
            .env(vars::UPSTREAM_URL, format!("http://{}", upstream.http))
            .env(vars::UPSTREAM_GRPC_ADDR, upstream_grpc.clone())
            .env(vars::UPSTREAM_FORWARD_AUTH, forward_auth.to_string())
            .start()
    };

    // Forwarding the credential: the upstream admits the admin and answers.
    let forwarding = front(true).await;
    assert_eq!(
        search_status(&forwarding, &[&bearer(ADMIN_KEY)]).await,
        admitted("Search")
    );
    // The front's gate refuses before the upstream sees anything.
    assert_eq!(
        batch_status(&forwarding, &[&bearer(READER_KEY)]).await.0,
        Code::PermissionDenied
    );
    assert_eq!(
        upstream
            .metric(
                "portcullis_grpc_requests_total",
                &[("method", BATCH_OBJECTS), ("code", "UNIMPLEMENTED")]
            )
            .await,
        0.0
    );

    // Without PORTCULLIS_UPSTREAM_FORWARD_AUTH the credential stays at the front: the
    // upstream sees a call without one.
    let stripping = front(false).await;
    assert_eq!(
        search_status(&stripping, &[&bearer(ADMIN_KEY)]).await,
        (Code::Unauthenticated, MISSING_MESSAGE.to_owned())
    );

    // Upstream down: UNAVAILABLE.
    drop(upstream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, message) = search_status(&forwarding, &[&bearer(ADMIN_KEY)]).await;
    assert_eq!(code, Code::Unavailable, "{message}");
}

#[tokio::test]
async fn streams_that_send_nothing_are_bounded_and_others_are_served() {
    let server = keyed().env(vars::BODY_TIMEOUT, "4s").start().await;
    let addr = server.grpc.expect("grpc address");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let admin = bearer(ADMIN_KEY);
    // One whole call first, so the server's SETTINGS (its stream limit) have arrived.
    {
        let mut ready = sender.clone().ready().await.expect("ready");
        let (response, mut stream) = ready
            .send_request(
                grpc_request(SEARCH, &[("authorization", admin.as_bytes())]),
                false,
            )
            .expect("send");
        stream
            .send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
            .expect("message");
        response.await.expect("answered");
    }
    // Open 200 streams with headers and no message: more than the 128 one connection may
    // hold (the client queues the rest until streams free up).
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut ready = sender.clone().ready().await.expect("ready");
        let request = grpc_request(SEARCH, &[("authorization", admin.as_bytes())]);
        held.push(ready.send_request(request, false).expect("send headers"));
    }

    // Meanwhile another client is served.
    let started = Instant::now();
    assert_eq!(search_status(&server, &[&admin]).await, admitted("Search"));
    assert!(started.elapsed() < Duration::from_secs(1));

    // Every held stream ends with DEADLINE_EXCEEDED once the body deadline passes (the
    // queued ones one deadline later): nothing is held for ever.
    let ending = async {
        for (response, _stream) in held {
            let response = response.await.expect("a response");
            let status = match response.headers().get("grpc-status") {
                Some(status) => status.as_bytes().to_vec(),
                None => {
                    let mut body = response.into_body();
                    while body.data().await.is_some() {}
                    let trailers = body.trailers().await.expect("trailers").expect("present");
                    trailers
                        .get("grpc-status")
                        .expect("status")
                        .as_bytes()
                        .to_vec()
                }
            };
            assert_eq!(status, b"4", "DEADLINE_EXCEEDED");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), ending)
        .await
        .expect("every stream ended within two body deadlines");
    assert_eq!(
        server
            .metric(
                "portcullis_grpc_requests_total",
                &[("method", SEARCH), ("code", "DEADLINE_EXCEEDED")]
            )
            .await,
        200.0
    );
}

/// A gRPC request's headers for `path`, with `extra` raw headers.
fn grpc_request(path: &str, extra: &[(&str, &[u8])]) -> http::Request<()> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    for (name, value) in extra {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_bytes(value).expect("value"),
        );
    }
    request
}

/// One unary call over raw HTTP/2 with an empty message: the grpc-status and grpc-message
/// it ends with (in the headers of a trailers-only answer, or in the trailers).
async fn raw_call(addr: SocketAddr, path: &str, extra: &[(&str, &[u8])]) -> (Option<i32>, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut sender = sender.ready().await.expect("ready");
    let (response, mut stream) = sender
        .send_request(grpc_request(path, extra), false)
        .expect("send");
    // An empty message: compression flag 0, length 0.
    stream
        .send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .expect("send message");
    let response = response.await.expect("response");
    let read = |headers: &http::HeaderMap| {
        (
            headers
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            headers
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .map(percent_decode)
                .unwrap_or_default(),
        )
    };
    let (status, message) = read(response.headers());
    if status.is_some() {
        return (status, message);
    }
    let mut body = response.into_body();
    while body.data().await.is_some() {}
    let trailers = body.trailers().await.expect("trailers").unwrap_or_default();
    read(&trailers)
}

/// grpc-message is percent-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
