//! End-to-end tests of the upstream proxy: the real binary in front of a real HTTP server
//! written here (actix-web, on its own thread and port), which echoes what it received,
//! streams large bodies and answers slowly on demand.
//!
//! Keys here are test fixtures, but no assertion message or panic of a test contains one.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use portcullis_config::vars;
use portcullis_testkit::{FaultIssuer, TestKey, GROUPS_CLAIM};
use portcullis_tests::assert::{assert_forbidden, invalid_credential_body};
use portcullis_tests::oidc_support::{oidc_server, wait_until_accepted};
use portcullis_tests::{raw_request, RawResponse, Server, ServerBuilder};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ADMIN_KEY: &str = "pk-proxy-admin-7c1e93b0d54a28f6";
const READER_KEY: &str = "pk-proxy-reader-2f8a61c7e09d3b45";
/// A user on no list: authenticated, allowed neither to read nor to write.
const UNLISTED_KEY: &str = "pk-proxy-unlisted-5d09b7e1c3a4f862";

const UPSTREAM_REQUESTS: &str = "portcullis_upstream_requests_total";
const UPSTREAM_DURATION_COUNT: &str = "portcullis_upstream_request_duration_seconds_count";

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The upstream: a real HTTP server.

/// Bytes of the large bodies: a fixed pattern, repeated.
const PATTERN_LEN: usize = 64 * 1024;
static PATTERN: [u8; PATTERN_LEN] = pattern();

const fn pattern() -> [u8; PATTERN_LEN] {
    let mut bytes = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        bytes[i] = (i * 31 % 251) as u8;
        i += 1;
    }
    bytes
}

/// A body hash both ends of a test agree on (the upstream runs in this process, so std's
/// SipHash with its fixed keys is the same function on both sides).
fn digest(chunks: &[&[u8]]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for chunk in chunks {
        hasher.write(chunk);
    }
    format!("{:016x}", hasher.finish())
}

/// `len` bytes of the pattern, as the upstream streams them.
fn pattern_bytes(len: usize) -> Vec<u8> {
    PATTERN.iter().copied().cycle().take(len).collect()
}

/// A streamed response body of `remaining` pattern bytes, sized or chunked.
struct PatternBody {
    remaining: usize,
    sized: bool,
}

impl MessageBody for PatternBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        if self.sized {
            BodySize::Sized(self.remaining as u64)
        } else {
            BodySize::Stream
        }
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = this.remaining.min(PATTERN_LEN);
        this.remaining -= n;
        Poll::Ready(Some(Ok(web::Bytes::from_static(&PATTERN[..n]))))
    }
}

fn query_param<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.query_string()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Every request: counted, then echoed as JSON, unless the path asks for something else
/// (`/v1/large?bytes=N[&chunked=1]`, `/v1/slow?ms=N`, `?status=N` anywhere).
async fn upstream_handler(
    req: HttpRequest,
    body: web::Bytes,
    hits: web::Data<AtomicUsize>,
) -> HttpResponse {
    if req.path() == "/v1/.well-known/ready" {
        return HttpResponse::Ok().finish();
    }
    hits.fetch_add(1, Ordering::SeqCst);
    if req.path() == "/v1/large" {
        let bytes = query_param(&req, "bytes")
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        return HttpResponse::Ok()
            .insert_header(("x-upstream", "large"))
            .body(PatternBody {
                remaining: bytes,
                sized: query_param(&req, "chunked").is_none(),
            });
    }
    if req.path() == "/v1/slow" {
        let ms = query_param(&req, "ms")
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let status = query_param(&req, "status")
        .and_then(|s| s.parse().ok())
        .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
        .unwrap_or(actix_web::http::StatusCode::OK);
    HttpResponse::build(status)
        .insert_header(("x-upstream", "echo"))
        .json(json!({
            "method": req.method().as_str(),
            "path": req.path(),
            "query": req.query_string(),
            "headers": headers,
            "body_len": body.len(),
            "body_hash": digest(&[&body]),
            // Which upstream connection carried the request (connection reuse).
            "peer": req.peer_addr().map(|a| a.to_string()),
        }))
}

/// The upstream server, on its own thread with its own actix system.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    handle: ServerHandle,
}

impl Upstream {
    fn start() -> Upstream {
        let hits = Arc::new(AtomicUsize::new(0));
        let data = web::Data::from(hits.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(256 * MIB))
                        .default_service(web::to(upstream_handler))
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind the upstream");
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((addr, server.handle()))
                    .expect("report the upstream");
                server.await.expect("upstream server");
            });
        });
        let (addr, handle) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("upstream started");
        Upstream { addr, hits, handle }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// An address where nothing listens (bound once, then released).
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Portcullis in front of it.

fn proxy_builder(upstream_url: &str) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::UPSTREAM_URL, upstream_url)
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            vars::APIKEY_ALLOWED_KEYS,
            format!("{ADMIN_KEY},{READER_KEY}"),
        )
        .env(vars::APIKEY_USERS, "alice,reader")
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "false")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "alice")
        .env(vars::ADMINLIST_READONLY_USERS, "reader")
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// Whether a raw response carries `name` (lower case) at least once.
fn has_header(response: &RawResponse, name: &str) -> bool {
    response.headers.iter().any(|(n, _)| n == name)
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}): {text:?}"))
}

/// The values the upstream saw for a header (empty when absent).
fn seen(echo: &Value, header: &str) -> Vec<String> {
    echo["headers"][header]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn upstream_count(server: &Server, result: &str) -> f64 {
    server
        .metric(UPSTREAM_REQUESTS, &[("result", result)])
        .await
}

/// The peak resident set size of a process, in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib * 1024
}

/// The deadline for large bodies (the harness client's 10 s is for small requests).
const BULK_TIMEOUT: Duration = Duration::from_secs(120);

/// A client for large bodies read as they arrive.
fn bulk_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(BULK_TIMEOUT)
        .no_proxy()
        .build()
        .expect("http client")
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn forwards_method_path_query_headers_and_body_with_the_callers_identity() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url()).start().await;
    let body = br#"{"class":"Article","properties":{"title":"hello"}}"#;
    let reply = server
        .post("/v1/objects?consistency_level=ALL&x=a%20b")
        .bearer(ADMIN_KEY)
        .header("content-type", "application/json")
        .header("x-openai-api-key", "sk-test-openai")
        .header("x-portcullis-user", "root")
        .header("X-Portcullis-Groups", "admins")
        .header("x-portcullis-anything", "spoofed")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .body(body.to_vec())
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-upstream"),
        Some("echo"),
        "upstream response headers pass back"
    );
    assert!(
        reply.header("x-request-id").is_some(),
        "the gate still tags the response"
    );
    let echo = parse_json(&reply.text());

    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/objects");
    assert_eq!(echo["query"], "consistency_level=ALL&x=a%20b");
    assert_eq!(echo["body_len"], body.len());
    assert_eq!(echo["body_hash"], digest(&[body]));
    assert_eq!(seen(&echo, "content-type"), ["application/json"]);
    assert_eq!(seen(&echo, "x-openai-api-key"), ["sk-test-openai"]);
    // The identity is Portcullis' own; the client's claims are gone.
    assert_eq!(seen(&echo, "x-portcullis-user"), ["alice"]);
    assert_eq!(seen(&echo, "x-portcullis-groups"), [""]);
    assert!(seen(&echo, "x-portcullis-anything").is_empty());
    assert!(
        seen(&echo, "authorization").is_empty(),
        "not forwarded by default"
    );
    // The client's X-Forwarded-* are replaced by ours: its chain cannot be told from a forgery.
    assert_eq!(seen(&echo, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen(&echo, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&echo, "x-forwarded-host"), [server.http.to_string()]);
    assert_eq!(seen(&echo, "host"), [upstream.addr.to_string()]);

    // Other methods and the upstream's own statuses, HEAD without a body.
    let reply = server
        .delete("/v1/objects/Article/7?status=204")
        .bearer(ADMIN_KEY)
        .send()
        .await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (204, ""));
    let reply = server
        .get("/v1/objects/Article/8?status=404")
        .bearer(READER_KEY)
        .send()
        .await;
    assert_eq!(reply.status, 404);
    let echo = parse_json(&reply.text());
    assert_eq!(
        (echo["method"].clone(), seen(&echo, "x-portcullis-user")),
        (json!("GET"), vec!["reader".to_owned()])
    );
    assert_eq!(echo["body_len"], 0);
    let head = server
        .head("/v1/objects/Article/8?status=404")
        .bearer(READER_KEY)
        .send()
        .await;
    assert_eq!(head.status, 404);
    assert!(
        head.header("content-length").is_some_and(|v| v != "0"),
        "HEAD keeps the upstream's Content-Length: {:?}",
        head.header("content-length")
    );
    assert_eq!(head.body.len(), 0);

    // /v1/meta and the /v1 index belong to the upstream in proxy mode.
    let reply = server.get("/v1/meta").bearer(READER_KEY).send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(parse_json(&reply.text())["path"], "/v1/meta");

    assert_eq!(upstream.hits(), 5);
    assert_eq!(upstream_count(&server, "ok").await, 5.0);
    assert_eq!(
        server
            .metric(UPSTREAM_DURATION_COUNT, &[("result", "ok")])
            .await,
        5.0
    );
    upstream.stop().await;
}

#[tokio::test]
async fn forwards_the_authorization_header_only_when_configured() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url())
        .env(vars::UPSTREAM_FORWARD_AUTH, "true")
        .start()
        .await;
    let reply = server.get("/v1/schema").bearer(READER_KEY).send().await;
    assert_eq!(reply.status, 200);
    let echo = parse_json(&reply.text());
    assert!(
        seen(&echo, "authorization") == [bearer(READER_KEY)],
        "the client's Authorization header reaches the upstream unchanged"
    );
    assert_eq!(seen(&echo, "x-portcullis-user"), ["reader"]);
    upstream.stop().await;
}

#[tokio::test]
async fn removes_hop_by_hop_headers_in_both_directions() {
    // Request direction: the echo upstream reports what arrived. A raw request, because HTTP
    // clients refuse or rewrite several of these headers.
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url()).start().await;
    let request = format!(
        "POST /v1/batch/objects HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Connection: close, X-Drop-Me\r\nX-Drop-Me: 1\r\nX-Keep-Me: 2\r\nKeep-Alive: timeout=5\r\n\
         TE: trailers\r\nTrailer: X-Checksum\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\
         Proxy-Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        host = server.http
    );
    let response = raw_request(server.http, request.as_bytes()).await;
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let echo: Value = serde_json::from_slice(&response.body).expect("echo JSON");
    assert_eq!(echo["body_len"], 11, "the chunked body is forwarded whole");
    assert_eq!(echo["body_hash"], digest(&[b"hello world"]));
    for header in [
        "x-drop-me",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(
            seen(&echo, header).is_empty(),
            "{header} reached the upstream"
        );
    }
    assert!(
        !seen(&echo, "connection")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("x-drop-me")),
        "the client's Connection header reached the upstream"
    );
    assert_eq!(seen(&echo, "x-keep-me"), ["2"]);
    upstream.stop().await;

    // Response direction: an upstream that sends hop-by-hop headers (a raw one: actix writes
    // its own Connection header).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let raw_upstream = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = stream
                .write_all(
                    b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\
                      Connection: close, X-Upstream-Private\r\nX-Upstream-Private: secret\r\n\
                      Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\n\
                      Trailer: X-Checksum\r\nX-Upstream-Public: yes\r\n\r\nok",
                )
                .await;
        }
    });
    let server = proxy_builder(&format!("http://{raw_upstream}"))
        .start()
        .await;
    let request = format!(
        "GET /v1/schema HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {READER_KEY}\r\n\
         Connection: close\r\n\r\n",
        server.http
    );
    let response = raw_request(server.http, request.as_bytes()).await;
    assert_eq!(
        (response.status, response.body.as_slice()),
        (201, &b"ok"[..])
    );
    for header in [
        "x-upstream-private",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
    ] {
        assert!(
            !has_header(&response, header),
            "{header} reached the client"
        );
    }
    assert!(has_header(&response, "x-upstream-public"));
}

#[tokio::test]
async fn streams_a_50_mib_body_both_ways_in_bounded_memory() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url())
        .env(vars::WORKERS, "1")
        .start()
        .await;
    let pid = server.pid().expect("server pid");
    let http = bulk_client();

    // Warm up the code paths and the connection pool before taking the baseline.
    let reply = server
        .put("/v1/objects/Big/0")
        .bearer(ADMIN_KEY)
        .body(pattern_bytes(MIB))
        .timeout(BULK_TIMEOUT)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let baseline = peak_rss(pid);

    let len = 50 * MIB;
    let body = pattern_bytes(len);
    let expected_hash = digest(&[&body]);
    let reply = server
        .put("/v1/objects/Big/1")
        .bearer(ADMIN_KEY)
        .body(body)
        .timeout(BULK_TIMEOUT)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let echo = parse_json(&reply.text());
    assert_eq!(echo["body_len"], len);
    assert_eq!(echo["body_hash"], expected_hash);

    // And back: a sized and a chunked 50 MiB response, read as they arrive.
    for (query, sized) in [("", true), ("&chunked=1", false)] {
        let mut response = http
            .get(server.url(&format!("/v1/large?bytes={len}{query}")))
            .header("authorization", bearer(READER_KEY))
            .send()
            .await
            .map_err(reqwest::Error::without_url)
            .expect("request sent");
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_length().is_some(), sized, "{query}");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut received = 0;
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            hasher.write(&chunk);
            received += chunk.len();
        }
        assert_eq!(received, len, "{query}");
        assert_eq!(
            format!("{:016x}", hasher.finish()),
            expected_hash,
            "{query}"
        );
    }

    let growth = peak_rss(pid).saturating_sub(baseline);
    assert!(
        growth < 16 * MIB,
        "peak RSS grew by {} KiB while 150 MiB passed through",
        growth / 1024
    );
    assert_eq!(upstream_count(&server, "ok").await, 4.0);
    upstream.stop().await;
}

#[tokio::test]
async fn refused_requests_and_portcullis_routes_never_reach_the_upstream() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url()).start().await;
    let reply = server.get("/v1/schema").send().await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        parse_json(&reply.text()),
        json!({"code": 401, "message": "unauthorized: anonymous access not enabled. Please authenticate through one of the available methods: [API-keys]"})
    );
    let reply = server
        .post("/v1/objects")
        .bearer("pk-not-a-key-1234567890abcdef")
        .body("{}")
        .send()
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(parse_json(&reply.text()), invalid_credential_body());
    let reply = server
        .delete("/v1/schema/Article")
        .bearer(READER_KEY)
        .send()
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        parse_json(&reply.text()),
        json!({"error": [{"message": "forbidden: user 'reader' has insufficient permissions to write /v1/schema/Article"}]})
    );

    // Portcullis' own routes, however the path is spelled.
    let reply = server
        .get("/v1/users/own-info")
        .bearer(READER_KEY)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(parse_json(&reply.text())["username"], "reader");
    for path in [
        "/v1/users/no-such-route/x/y",
        "/v1/%75sers/no-such-route/x/y",
        "/v1//users/no-such-route/x/y",
        "/v1/.well-known/no-such-route",
        "/v1/x/../users/no-such-route/x/y",
        "/v1/./schema",
    ] {
        // Raw, because HTTP clients resolve dot segments before sending.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
             Connection: close\r\n\r\n",
            server.http
        );
        let response = raw_request(server.http, request.as_bytes()).await;
        assert_eq!(response.status, 404, "{path}");
    }
    let reply = server.get("/v1/.well-known/live").send().await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, ""));

    assert_eq!(
        upstream.hits(),
        0,
        "a refused or own request reached the upstream"
    );
    assert_eq!(server.metric(UPSTREAM_REQUESTS, &[]).await, 0.0);
    upstream.stop().await;
}

/// Issue 11, item 4: `/v1`, `/v1/` and `/v1/meta` need no verb for GET, and any other method
/// used to be judged the same way, so a user on no list could `DELETE /v1/meta` or `POST /v1`
/// on the upstream. Every method but GET and HEAD is now a write there.
#[tokio::test]
async fn no_verb_routes_are_writes_for_any_method_but_get_and_head() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url())
        .env(
            vars::APIKEY_ALLOWED_KEYS,
            format!("{ADMIN_KEY},{READER_KEY},{UNLISTED_KEY}"),
        )
        .env(vars::APIKEY_USERS, "alice,reader,mallory")
        .start()
        .await;
    let refused = [
        (reqwest::Method::DELETE, "/v1/meta", UNLISTED_KEY, "mallory"),
        (reqwest::Method::POST, "/v1", UNLISTED_KEY, "mallory"),
        (reqwest::Method::PUT, "/v1/", UNLISTED_KEY, "mallory"),
        (reqwest::Method::PATCH, "/v1/meta", UNLISTED_KEY, "mallory"),
        (reqwest::Method::OPTIONS, "/v1", UNLISTED_KEY, "mallory"),
        (reqwest::Method::DELETE, "/v1/meta", READER_KEY, "reader"),
        (reqwest::Method::POST, "/v1/", READER_KEY, "reader"),
    ];
    for (method, path, key, user) in &refused {
        let reply = server
            .request(method.clone(), path)
            .bearer(key)
            .body("{}")
            .send()
            .await;
        assert_forbidden(&reply, user, "write", path);
    }
    assert_eq!(upstream.hits(), 0, "a refused write reached the upstream");
    assert_eq!(
        server
            .metric("portcullis_authorization_total", &[("result", "deny")])
            .await,
        refused.len() as f64
    );
    assert_eq!(
        server.auth_requests("apikey_static", "accept", "ok").await,
        refused.len() as f64,
        "authenticated, then refused by the verb"
    );

    // GET stays open to any authenticated caller; an admin may write.
    let reply = server.get("/v1/meta").bearer(UNLISTED_KEY).send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(parse_json(&reply.text())["path"], "/v1/meta");
    let reply = server.delete("/v1/meta").bearer(ADMIN_KEY).send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(parse_json(&reply.text())["method"], "DELETE");
    assert_eq!(upstream.hits(), 2);
    assert_eq!(
        server
            .metric("portcullis_authorization_total", &[("result", "allow")])
            .await,
        1.0,
        "only the admin's write checked a verb"
    );
    upstream.stop().await;
}

/// Issue 11, item 5: the upstream must hear about the caller from Portcullis alone. Groups were
/// comma-joined, so a group named `evil,admins` read upstream as membership of `admins`; and
/// identity, address and method-override headers in spellings other than ours
/// (`X_Portcullis_User`, `Forwarded`, `X-Real-IP`, `X-HTTP-Method-Override`, ...) passed.
#[tokio::test]
async fn the_upstream_hears_identity_address_and_method_from_portcullis_alone() {
    let upstream = Upstream::start();
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    let server = oidc_server(&issuer.url())
        .env(vars::UPSTREAM_URL, upstream.url())
        .start()
        .await;
    wait_until_accepted(&server, &issuer.token(&key), Duration::from_secs(10)).await;
    let token = issuer.token_with(&key, |_, claims| {
        claims.insert(
            GROUPS_CLAIM.into(),
            json!(["evil,admins", "staff", " admins", "100%"]),
        );
    });
    let spoofed = [
        ("X_Portcullis_User", "root"),
        ("x-portcullis_groups", "admins"),
        ("X-Portcullis-Groups", "admins"),
        (
            "Forwarded",
            "for=198.51.100.9;proto=https;host=evil.example",
        ),
        ("X-Real-IP", "198.51.100.9"),
        ("X_Real_IP", "198.51.100.9"),
        ("X-Client-IP", "198.51.100.9"),
        ("X-Forwarded-For", "198.51.100.9"),
        ("X_Forwarded_For", "198.51.100.9"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X_HTTP_Method_Override", "DELETE"),
        ("X-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Original-URL", "/v1/schema/Article"),
    ];
    let mut request = server
        .get("/v1/objects")
        .bearer(&token)
        .header("x-openai-api-key", "sk-test-openai");
    for (name, value) in spoofed {
        request = request.header(name, value);
    }
    let reply = request.send().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = parse_json(&reply.text());
    assert_eq!(echo["method"], "GET");
    assert_eq!(seen(&echo, "x-portcullis-user"), ["alice"]);
    // Each group percent-encoded, then comma-joined: split on `,`, decode each part.
    assert_eq!(
        seen(&echo, "x-portcullis-groups"),
        ["evil%2Cadmins,staff,%20admins,100%25"]
    );
    for (name, _) in spoofed {
        let lower = name.to_ascii_lowercase();
        if ["x-portcullis-groups", "x-forwarded-for"].contains(&lower.as_str()) {
            continue;
        }
        assert!(
            seen(&echo, &lower).is_empty(),
            "{name} reached the upstream"
        );
    }
    assert_eq!(seen(&echo, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen(&echo, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&echo, "x-forwarded-host"), [server.http.to_string()]);
    assert_eq!(
        seen(&echo, "x-openai-api-key"),
        ["sk-test-openai"],
        "other X-* pass"
    );
    assert_eq!(
        server.auth_requests("oidc", "accept", "ok").await,
        2.0,
        "the readiness poll and the request"
    );
    assert_eq!(upstream.hits(), 1);
    upstream.stop().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_counted() {
    let server = proxy_builder(&closed_port().await).start().await;
    let reply = server.get("/v1/schema").bearer(READER_KEY).send().await;
    assert_eq!(reply.status, 502);
    assert_eq!(
        parse_json(&reply.text()),
        json!({"code": 502, "message": "upstream unavailable: could not connect to the upstream"})
    );
    assert_eq!(upstream_count(&server, "connect_error").await, 1.0);
    assert_eq!(upstream_count(&server, "ok").await, 0.0);
    assert_eq!(
        server
            .metric(UPSTREAM_DURATION_COUNT, &[("result", "connect_error")])
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_slow_upstream_is_504_after_the_timeout_and_counted() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url())
        .env(vars::UPSTREAM_TIMEOUT, "1s")
        .start()
        .await;
    let started = Instant::now();
    let reply = server
        .get("/v1/slow?ms=3000")
        .bearer(READER_KEY)
        .send()
        .await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 504);
    assert_eq!(
        parse_json(&reply.text()),
        json!({"code": 504, "message": "upstream timed out"})
    );
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2500),
        "answered after {elapsed:?}"
    );
    assert_eq!(upstream_count(&server, "timeout").await, 1.0);

    // Below the timeout, the same route answers.
    let reply = server
        .get("/v1/slow?ms=200")
        .bearer(READER_KEY)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(parse_json(&reply.text())["path"], "/v1/slow");
    assert_eq!(upstream_count(&server, "ok").await, 1.0);
    upstream.stop().await;
}

#[tokio::test]
async fn ready_follows_the_upstream() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url()).start().await;
    // Public, like Portcullis' own probe: no credential needed.
    let reply = server.get("/v1/.well-known/ready").send().await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, ""));

    upstream.stop().await;
    let reply = server.get("/v1/.well-known/ready").send().await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (503, ""));
    // Liveness is Portcullis' own and does not depend on the upstream.
    let reply = server.get("/v1/.well-known/live").send().await;
    assert_eq!(reply.status, 200);

    let down = proxy_builder(&closed_port().await).start().await;
    let reply = down.get("/v1/.well-known/ready").send().await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (503, ""));
}

const CONNECTIONS_OPENED: &str = "portcullis_upstream_connections_opened_total";

/// Issue 17: upstream connections are kept alive and reused, and the metric counts exactly the
/// connections the upstream saw.
#[tokio::test]
async fn upstream_connections_are_reused_and_counted() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url())
        .env(vars::WORKERS, "1")
        .start()
        .await;
    assert_eq!(server.metric(CONNECTIONS_OPENED, &[]).await, 0.0);

    // Sequential requests: one upstream connection serves them all.
    let mut peers = std::collections::BTreeSet::new();
    for i in 0..40 {
        let reply = server
            .get(&format!("/v1/objects?i={i}"))
            .bearer(READER_KEY)
            .send()
            .await;
        assert_eq!(reply.status, 200);
        let echo = parse_json(&reply.text());
        peers.insert(echo["peer"].as_str().expect("peer").to_owned());
    }
    // Bodies both ways and a streamed response do not cost a connection either.
    let reply = server
        .post("/v1/objects")
        .bearer(ADMIN_KEY)
        .body(pattern_bytes(3 * MIB))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    peers.insert(
        parse_json(&reply.text())["peer"]
            .as_str()
            .expect("peer")
            .to_owned(),
    );
    let reply = server
        .get("/v1/large?bytes=1000000&chunked=1")
        .bearer(READER_KEY)
        .send()
        .await;
    assert_eq!((reply.status.as_u16(), reply.body.len()), (200, 1_000_000));
    let reply = server.get("/v1/schema").bearer(READER_KEY).send().await;
    peers.insert(
        parse_json(&reply.text())["peer"]
            .as_str()
            .expect("peer")
            .to_owned(),
    );
    assert_eq!(peers.len(), 1, "the upstream saw connections {peers:?}");
    assert_eq!(server.metric(CONNECTIONS_OPENED, &[]).await, 1.0);

    // Concurrent requests open at most one connection each, and then reuse them.
    let burst = || {
        futures_util::future::join_all((0..8).map(|i| {
            server
                .get(&format!("/v1/slow?ms=50&i={i}"))
                .bearer(READER_KEY)
                .send()
        }))
    };
    for reply in burst().await {
        assert_eq!(reply.status, 200);
    }
    let after_burst = server.metric(CONNECTIONS_OPENED, &[]).await;
    assert!(
        (2.0..=8.0).contains(&after_burst),
        "{after_burst} connections after 8 concurrent slow requests"
    );
    for _ in 0..3 {
        for reply in burst().await {
            assert_eq!(reply.status, 200);
        }
    }
    assert_eq!(
        server.metric(CONNECTIONS_OPENED, &[]).await,
        after_burst,
        "steady load opened new connections"
    );
    assert_eq!(upstream_count(&server, "ok").await, 43.0 + 32.0);
    upstream.stop().await;
}

/// Issue 17: a 100 MiB upload and a 100 MiB download (sized and chunked) pass through the proxy
/// streamed: the server's peak RSS grows by at most 20 MiB.
#[tokio::test]
async fn streams_100_mib_both_ways_within_20_mib_of_peak_rss() {
    let upstream = Upstream::start();
    let server = proxy_builder(&upstream.url())
        .env(vars::WORKERS, "1")
        .env(vars::BODY_TIMEOUT, "120s")
        .start()
        .await;
    let pid = server.pid().expect("server pid");
    let http = bulk_client();

    // Warm up the code paths and the connection pool before taking the baseline.
    let reply = server
        .put("/v1/objects/Big/0")
        .bearer(ADMIN_KEY)
        .body(pattern_bytes(MIB))
        .timeout(BULK_TIMEOUT)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    let baseline = peak_rss(pid);

    let len = 100 * MIB;
    let body = pattern_bytes(len);
    let expected_hash = digest(&[&body]);
    // Sent as a stream of 64 KiB chunks (chunked), as a client uploading a file would.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(PATTERN_LEN).map(|c| Ok(c.to_vec())).collect();
    drop(body);
    let response = http
        .post(server.url("/v1/batch/objects"))
        .header("authorization", bearer(ADMIN_KEY))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .expect("upload sent");
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.expect("echo JSON");
    assert_eq!(echo["body_len"], len);
    assert_eq!(echo["body_hash"], expected_hash);

    for query in ["", "&chunked=1"] {
        let mut response = http
            .get(server.url(&format!("/v1/large?bytes={len}{query}")))
            .header("authorization", bearer(READER_KEY))
            .send()
            .await
            .map_err(reqwest::Error::without_url)
            .expect("request sent");
        assert_eq!(response.status(), 200);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut received = 0;
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            hasher.write(&chunk);
            received += chunk.len();
        }
        assert_eq!(received, len, "{query}");
        assert_eq!(
            format!("{:016x}", hasher.finish()),
            expected_hash,
            "{query}"
        );
    }

    let growth = peak_rss(pid).saturating_sub(baseline);
    assert!(
        growth <= 20 * MIB,
        "peak RSS grew by {} KiB while 300 MiB passed through",
        growth / 1024
    );
    assert_eq!(upstream_count(&server, "ok").await, 4.0);
    upstream.stop().await;
}
