//! The upstream proxy: when an upstream database is configured, every `/v1` request that
//! Portcullis does not serve itself is forwarded to it after the gate, bodies streamed both
//! ways, with the caller's identity in `X-Portcullis-*` headers. Client headers an upstream
//! may take for identity, the client's address or the method (`X-Portcullis-*`, `Forwarded`,
//! `X-Forwarded-*`, `X-Real-IP`, the method overrides, in any spelling) never pass: the
//! upstream hears about the caller from Portcullis alone.

mod body;
mod client;
mod schema;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self as actix_header, HeaderMap as ActixHeaderMap};
use actix_web::http::{Method as ActixMethod, StatusCode as ActixStatus};
use actix_web::{guard, web, HttpMessage, HttpRequest, HttpResponse};
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT_ENCODING, HOST};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use http_body::Body as _;
use hyper::body::Incoming;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use portcullis_config::UpstreamSettings;

use self::body::{RequestBody, ResponseBody};
pub use self::client::ClientError;
use self::client::{ClientSetup, UpstreamClient};
pub use self::schema::{Lookup, SchemaError, Snapshot, UpstreamSchema};
use crate::authz::ListFilter;
use crate::error::ApiError;
use crate::gate::Caller;
use crate::metrics::{Metrics, UpstreamResult};

/// The readiness path, on Portcullis and on the upstream alike.
const READY_PATH: &str = "/v1/.well-known/ready";

/// How long the readiness probe waits for the upstream.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The most of the upstream's readiness body the probe reads (to leave the connection
/// reusable); a longer body is dropped with its connection.
const READY_BODY_CAP: usize = 64 * 1024;

/// The most of an upstream's list (schema, tenants, aliases) Portcullis reads to filter it with
/// RBAC; a longer one is a 502.
const LIST_BODY_CAP: usize = 64 * 1024 * 1024;

/// The longest a TCP connect to the upstream may take, when the request timeout is longer.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// The user name the upstream receives.
pub const X_PORTCULLIS_USER: &str = "x-portcullis-user";
/// The caller's groups: each percent-encoded ([`GROUP_ESCAPES`]), then comma-separated.
pub const X_PORTCULLIS_GROUPS: &str = "x-portcullis-groups";
/// Every client header with this prefix is removed before forwarding, so a client can never
/// speak for Portcullis.
const X_PORTCULLIS_PREFIX: &str = "x-portcullis-";
/// Every client header with this prefix is removed: ours (For, Proto, Host) replace them, and
/// the others (Port, Prefix, Server, Ssl, ...) would tell the upstream what Portcullis did not
/// check.
const X_FORWARDED_PREFIX: &str = "x-forwarded-";

/// Client headers that upstreams and the frameworks they are built on read as the client's
/// address (`Forwarded`, `X-Real-IP` and kin), as the request's method (the method
/// overrides, which would turn a GET judged as a read into a write upstream), or as its path
/// (`X-Original-URL`, `X-Rewrite-URL`). Compared with `_` read as `-`.
const SPOOFABLE: [&str; 9] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
    "x-original-url",
    "x-rewrite-url",
];

/// The bytes escaped in each group name of [`X_PORTCULLIS_GROUPS`]: `,` (the separator), `%`
/// (the escape), `"` (a quoted list element), space (list parsers trim it), controls, and,
/// as percent-encoding always does, every non-ASCII byte. So `evil,admins` goes as
/// `evil%2Cadmins`, never read as membership of `admins`, and a group name is recovered by
/// splitting on `,` and percent-decoding each part.
const GROUP_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%').add(b',');

/// Hop-by-hop headers (RFC 9110 §7.6.1), plus `Proxy-Connection`, which old clients send.
/// They describe one connection and are never forwarded, in either direction.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The proxy: the upstream's address, the options and what each worker's pooled client is
/// built from. Shared by all workers; each worker has its own client ([`configure`]).
pub struct Proxy {
    setup: ClientSetup,
    ready_uri: Uri,
    forward_auth: bool,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// What RBAC knows of the upstream's schema (RBAC on), forgotten when a call that
    /// changes it passes.
    schema: Option<Arc<UpstreamSchema>>,
}

/// One worker's client for the upstream, with its own connection pool.
struct WorkerClient(UpstreamClient);

impl Proxy {
    /// Builds the proxy: parses the upstream URL and, for `https`, loads the trusted roots.
    /// Fails only at start-up.
    pub fn new(config: &UpstreamSettings, metrics: Arc<Metrics>) -> Result<Self, ClientError> {
        let setup = ClientSetup::new(
            &config.url,
            config.timeout.min(CONNECT_TIMEOUT_CAP),
            metrics.upstream_connections_opened(),
        )?;
        let ready_uri = Uri::from_parts(setup.uri_parts(PathAndQuery::from_static(READY_PATH)))
            .map_err(|_| ClientError::Incomplete)?;
        Ok(Proxy {
            setup,
            ready_uri,
            forward_auth: config.forward_auth,
            timeout: config.timeout,
            metrics,
            schema: None,
        })
    }

    /// The proxy invalidating `schema` when a call that may change the upstream's
    /// collections or aliases passes through it.
    pub fn with_schema(mut self, schema: Arc<UpstreamSchema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Forwards one request and returns the upstream's answer, its body still streaming.
    async fn forward(
        &self,
        client: &UpstreamClient,
        req: &HttpRequest,
        payload: web::Payload,
        caller: &Caller,
    ) -> Result<HttpResponse, ApiError> {
        let body = if has_body(req.headers()) {
            RequestBody::stream(payload)
        } else {
            RequestBody::Empty
        };
        let headers = self.request_headers(req, caller);
        let response = self.send(client, req, body, headers).await;
        // Once the upstream has answered (or failed: it may have applied the change), what
        // RBAC knew of its collections and aliases may be out of date.
        if let Some(schema) = &self.schema {
            if changes_schema(req.method(), req.path()) {
                schema.invalidate();
            }
        }
        Ok(build_response(req.method(), response?, self.timeout))
    }

    /// Forwards a list request (`GET /v1/schema`, `/v1/schema/{C}/tenants`, `/v1/aliases`)
    /// and answers with the upstream's list less the items `filter` hides, as Weaviate filters
    /// it. The list is asked for unencoded and read whole (up to [`LIST_BODY_CAP`], within the
    /// timeout); one that cannot be read or filtered is a 502, never passed on unfiltered. An
    /// answer other than 2xx passes as it came (it lists nothing).
    async fn forward_filtered(
        &self,
        client: &UpstreamClient,
        req: &HttpRequest,
        caller: &Caller,
        filter: &ListFilter,
    ) -> Result<HttpResponse, ApiError> {
        let mut headers = self.request_headers(req, caller);
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let response = self.send(client, req, RequestBody::Empty, headers).await?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Ok(build_response(
                req.method(),
                Response::from_parts(parts, body),
                self.timeout,
            ));
        }
        const UNFILTERABLE: ApiError =
            ApiError::BadGateway("the upstream's list could not be read to filter it");
        let encoded = parts
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return Err(UNFILTERABLE);
        }
        let bytes = tokio::time::timeout(self.timeout, collect(body, LIST_BODY_CAP))
            .await
            .map_err(|_| ApiError::GatewayTimeout)?
            .ok_or(UNFILTERABLE)?;
        let mut list: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| UNFILTERABLE)?;
        if !filter_list(&mut list, filter) {
            return Err(UNFILTERABLE);
        }
        let status =
            ActixStatus::from_u16(parts.status.as_u16()).unwrap_or(ActixStatus::BAD_GATEWAY);
        Ok(HttpResponse::build(status).json(list))
    }

    /// Sends one request to the upstream with `headers`, counting the outcome; the answer's
    /// body still streams.
    async fn send(
        &self,
        client: &UpstreamClient,
        req: &HttpRequest,
        body: RequestBody,
        headers: HeaderMap,
    ) -> Result<Response<Incoming>, ApiError> {
        let method = http::Method::from_bytes(req.method().as_str().as_bytes())
            .map_err(|_| ApiError::BadRequest("unsupported HTTP method".to_owned()))?;
        let uri = self.upstream_uri(req)?;
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;

        let started = Instant::now();
        let sent = tokio::time::timeout(self.timeout, client.request(request)).await;
        let seconds = started.elapsed().as_secs_f64();
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                let (result, error) = classify_error(&err);
                self.metrics.observe_upstream(result, seconds);
                tracing::warn!(
                    error = %err,
                    cause = ?std::error::Error::source(&err),
                    result = result.as_str(),
                    method = %req.method(),
                    path = ?req.path(),
                    "upstream request failed"
                );
                return Err(error);
            }
            Err(_elapsed) => {
                self.metrics
                    .observe_upstream(UpstreamResult::Timeout, seconds);
                tracing::warn!(
                    timeout_ms = self.timeout.as_millis() as u64,
                    method = %req.method(),
                    path = ?req.path(),
                    "upstream did not answer in time"
                );
                return Err(ApiError::GatewayTimeout);
            }
        };
        self.metrics.observe_upstream(UpstreamResult::Ok, seconds);
        Ok(response)
    }

    /// The upstream's URI for a request: its scheme and authority, then the path and query
    /// exactly as the client sent them.
    fn upstream_uri(&self, req: &HttpRequest) -> Result<Uri, ApiError> {
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or_else(|| req.path());
        // actix parsed it with the same grammar, so this only copies it.
        PathAndQuery::from_maybe_shared(web::Bytes::copy_from_slice(path_and_query.as_bytes()))
            .ok()
            .and_then(|pq| Uri::from_parts(self.setup.uri_parts(pq)).ok())
            .ok_or_else(|| ApiError::BadRequest("invalid request target".to_owned()))
    }

    /// The headers the upstream receives: the client's end-to-end headers, minus the
    /// `Authorization` header (unless forwarding it is on), anything claiming to come from
    /// Portcullis and anything an upstream may read as the client's address or method
    /// ([`is_spoofable`]), plus the upstream's `Host`, our `X-Forwarded-*` and the caller's
    /// identity.
    fn request_headers(&self, req: &HttpRequest, caller: &Caller) -> HeaderMap {
        let incoming = req.headers();
        let connection_named = connection_tokens(
            incoming
                .get_all(actix_header::CONNECTION)
                .map(|v| v.as_bytes()),
        );
        let mut out = HeaderMap::with_capacity(incoming.len() + 6);
        out.insert(HOST, self.setup.host.clone());
        for (name, value) in incoming.iter() {
            let lower = name.as_str();
            let skip = is_hop_by_hop(lower)
                || connection_named.iter().any(|n| n == lower)
                || is_spoofable(lower)
                // The upstream's Host is set above; the client's goes in X-Forwarded-Host.
                || lower == "host"
                // actix has already answered `Expect: 100-continue`.
                || lower == "expect"
                || (lower == "authorization" && !self.forward_auth);
            if skip {
                continue;
            }
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(lower.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                out.append(n, v);
            }
        }

        // X-Forwarded-For: the peer Portcullis itself saw. A client's own chain cannot be
        // told from a forgery, so it is dropped (trusting proxies in front is not built).
        if let Some(peer) = req.peer_addr() {
            insert_bytes(&mut out, "x-forwarded-for", &ip_text(peer.ip()));
        }
        let proto: &[u8] = if req.app_config().secure() {
            b"https"
        } else {
            b"http"
        };
        insert_bytes(&mut out, "x-forwarded-proto", proto);
        match incoming.get(actix_header::HOST) {
            Some(host) => insert_bytes(&mut out, "x-forwarded-host", host.as_bytes()),
            None => {
                if let Some(authority) = req.uri().authority() {
                    insert_bytes(&mut out, "x-forwarded-host", authority.as_str().as_bytes());
                }
            }
        }

        let principal = &caller.0;
        insert_bytes(&mut out, X_PORTCULLIS_USER, principal.username().as_bytes());
        insert_bytes(
            &mut out,
            X_PORTCULLIS_GROUPS,
            encode_groups(principal.groups()).as_bytes(),
        );
        out
    }

    /// `200` when the upstream's readiness endpoint answers 2xx within [`READY_TIMEOUT`],
    /// else `503` with an empty body.
    async fn ready(&self, client: &UpstreamClient) -> HttpResponse {
        let mut request = Request::new(RequestBody::Empty);
        *request.uri_mut() = self.ready_uri.clone();
        request.headers_mut().insert(HOST, self.setup.host.clone());
        let probe = async {
            let response = client.request(request).await?;
            let status = response.status();
            // Read the (small) body so the connection goes back to the pool.
            drain(response.into_body(), READY_BODY_CAP).await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(READY_TIMEOUT, probe).await {
            Ok(Ok(status)) if status.is_success() => HttpResponse::Ok().finish(),
            Ok(Ok(status)) => {
                tracing::info!(status = status.as_u16(), "upstream is not ready");
                HttpResponse::ServiceUnavailable().finish()
            }
            Ok(Err(err)) => {
                tracing::info!(
                    error = %err,
                    cause = ?std::error::Error::source(&err),
                    "upstream readiness probe failed"
                );
                HttpResponse::ServiceUnavailable().finish()
            }
            Err(_elapsed) => {
                tracing::info!("upstream readiness probe timed out");
                HttpResponse::ServiceUnavailable().finish()
            }
        }
    }
}

/// Removes from an upstream's list the items `filter` hides, by the list's shape in Weaviate:
/// the schema `{"classes": [{"class"}]}`, a collection's tenants `[{"name"}]`, the aliases
/// `{"aliases": [{"alias", "class"}]}` (a missing or null list has nothing to hide). `false`
/// when the list is not of that shape: it cannot be filtered.
fn filter_list(list: &mut serde_json::Value, filter: &ListFilter) -> bool {
    use portcullis_auth::rbac::Action;
    use serde_json::Value;
    fn text<'v>(item: &'v Value, key: &str) -> Option<&'v str> {
        item.get(key).and_then(Value::as_str)
    }
    let items = match filter.action() {
        Action::ReadCollections => list.get_mut("classes"),
        Action::ReadAliases => list.get_mut("aliases"),
        Action::ReadTenants => Some(list),
        _ => return false,
    };
    let items = match items {
        None | Some(Value::Null) => return true,
        Some(Value::Array(items)) => items,
        Some(_) => return false,
    };
    // An item without its names cannot be judged: the whole list is refused, not passed.
    let mut readable = true;
    items.retain(|item| {
        let allowed = match filter.action() {
            Action::ReadCollections => text(item, "class").map(|c| filter.allows(c)),
            Action::ReadTenants => text(item, "name").map(|t| filter.allows(t)),
            _ => text(item, "class")
                .zip(text(item, "alias"))
                .map(|(c, a)| filter.allows_alias(c, a)),
        };
        readable &= allowed.is_some();
        allowed.unwrap_or(false)
    });
    readable
}

/// Whether a call may change which collections or aliases the upstream has: a write under
/// `/v1/aliases`, a class created (`POST /v1/schema`) or deleted (`DELETE /v1/schema/{C}`), a
/// backup restored. (A class an object write creates by auto-schema is learned when a later
/// call names it: an unknown name makes the schema fetched again.)
fn changes_schema(method: &ActixMethod, path: &str) -> bool {
    if method == ActixMethod::GET || method == ActixMethod::HEAD {
        return false;
    }
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    if segments.next() != Some("v1") {
        return false;
    }
    let rest: Vec<&str> = segments.collect();
    match rest.as_slice() {
        ["aliases", ..] => true,
        ["schema"] => method == ActixMethod::POST,
        ["schema", _] => method == ActixMethod::DELETE,
        ["backups", _, _, "restore"] => method == ActixMethod::POST,
        _ => false,
    }
}

/// Reads a whole body; `None` past `cap` bytes or when it fails.
async fn collect(mut body: Incoming, cap: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Some(out),
            Some(Err(_)) => return None,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if out.len() + data.len() > cap {
                        return None;
                    }
                    out.extend_from_slice(data);
                }
            }
        }
    }
}

/// Reads and discards a body, up to `cap` bytes.
async fn drain(mut body: Incoming, cap: usize) {
    let mut read = 0;
    while read <= cap {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) | None => return,
        }
    }
}

/// Maps a failed upstream call to its label and the client's error.
fn classify_error(err: &hyper_util::client::legacy::Error) -> (UpstreamResult, ApiError) {
    if err.is_connect() {
        (
            UpstreamResult::ConnectError,
            ApiError::BadGateway("could not connect to the upstream"),
        )
    } else {
        (
            UpstreamResult::Error,
            ApiError::BadGateway("the upstream request failed"),
        )
    }
}

/// Whether the client sent a body to forward. A request with neither `Content-Length` nor
/// `Transfer-Encoding` has none, and must not reach the upstream with an empty chunked body.
fn has_body(headers: &ActixHeaderMap) -> bool {
    if headers.contains_key(actix_header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(actix_header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// The client's response: the upstream's status and end-to-end headers, its body streamed.
fn build_response(
    method: &ActixMethod,
    response: Response<Incoming>,
    read_timeout: Duration,
) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status = ActixStatus::from_u16(parts.status.as_u16()).unwrap_or(ActixStatus::BAD_GATEWAY);
    let connection_named = connection_tokens(
        parts
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .map(|v| v.as_bytes()),
    );
    let mut length = None;
    let mut headers = ActixHeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let lower = name.as_str();
        if lower == "content-length" {
            // actix writes Content-Length itself from the sized body below.
            length = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            continue;
        }
        if is_hop_by_hop(lower) || connection_named.iter().any(|n| n == lower) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            actix_header::HeaderName::from_bytes(lower.as_bytes()),
            actix_header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    let body = ResponseBody::new(body, length, read_timeout, method.clone());
    let mut response = HttpResponse::with_body(status, body);
    *response.headers_mut() = headers;
    response.map_into_boxed_body()
}

/// An address as `X-Forwarded-For` text. IPv4, nearly every peer, is written by hand: the
/// formatter's version costs more than the rest of the header handling.
fn ip_text(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = Vec::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
            out
        }
        IpAddr::V6(_) => ip.to_string().into_bytes(),
    }
}

/// Header names listed in `Connection` headers, lower-cased (they are hop-by-hop too).
fn connection_tokens<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_hop_by_hop(lower_name: &str) -> bool {
    HOP_BY_HOP.contains(&lower_name)
}

/// Whether `a` (a lower-case header name) starts with `b`, with `_` in `a` read as `-`: CGI,
/// WSGI, PHP and nginx's `underscores_in_headers` give `X_Portcullis_User` the same variable
/// as `X-Portcullis-User`.
fn starts_with_dashed(a: &str, b: &str) -> bool {
    a.len() >= b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (x == b'_' && y == b'-'))
}

/// Whether a client header (its lower-case name) is one an upstream may take for the
/// caller's identity, address, method or path, in any spelling: it is never forwarded.
pub(crate) fn is_spoofable(lower_name: &str) -> bool {
    starts_with_dashed(lower_name, X_PORTCULLIS_PREFIX)
        || starts_with_dashed(lower_name, X_FORWARDED_PREFIX)
        || SPOOFABLE
            .iter()
            .any(|name| name.len() == lower_name.len() && starts_with_dashed(lower_name, name))
}

/// The value of [`X_PORTCULLIS_GROUPS`]: each group percent-encoded with [`GROUP_ESCAPES`],
/// joined with `,`. One allocation, as a plain join would take.
pub(crate) fn encode_groups(groups: &[String]) -> String {
    let mut value = String::with_capacity(groups.iter().map(|g| g.len() + 1).sum());
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            value.push(',');
        }
        value.extend(utf8_percent_encode(group, GROUP_ESCAPES));
    }
    value
}

/// Sets a header whose name is a valid constant and whose value may carry any non-control
/// bytes (user names are UTF-8); an impossible value is logged and left out.
fn insert_bytes(headers: &mut HeaderMap, name: &'static str, value: &[u8]) {
    match HeaderValue::from_bytes(value) {
        Ok(value) => {
            headers.insert(HeaderName::from_static(name), value);
        }
        Err(_) => tracing::warn!(
            header = name,
            "value not representable in a header; left out"
        ),
    }
}

/// Whether a request path is forwarded: under `/v1`, not one of Portcullis' own namespaces
/// (`/v1/users`, `/v1/.well-known`), and without dot segments. The check runs on the
/// percent-decoded path with empty segments ignored, so `/v1/%75sers/x` or `/v1//users/x`
/// cannot reach an upstream route that Portcullis owns, and `/v1/../x` cannot leave `/v1`.
/// The upstream still receives the path exactly as the client sent it.
pub fn is_forwarded(path: &str) -> bool {
    // Borrowed unless the path has an escape to decode.
    let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode_str(path).into();
    let mut segments = decoded
        .split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .peekable();
    if segments.next() != Some(b"v1".as_slice()) {
        return false;
    }
    if let Some(&first) = segments.peek() {
        if first == b"users" || first == b".well-known" {
            return false;
        }
    }
    segments.all(|s| s != b"." && s != b"..")
}

/// Registers the proxy's routes when an upstream is configured (a no-op otherwise), with this
/// worker's own upstream client (called once per worker, from the app factory). Must be
/// registered before Portcullis' own routes: it answers `/v1/.well-known/ready` with the
/// upstream's readiness, and its catch-all claims every forwarded `/v1` path (including
/// `/v1/meta` and any embedded-store route), leaving the rest to the routes after it.
pub fn configure(cfg: &mut web::ServiceConfig, proxy: Option<&web::Data<Proxy>>) {
    let Some(proxy) = proxy else {
        return;
    };
    cfg.app_data(proxy.clone())
        .app_data(web::Data::new(WorkerClient(proxy.setup.client())))
        .route(READY_PATH, web::get().to(ready))
        .service(
            // A static prefix: actix matches it without a regex (a `{tail:.*}` pattern ran
            // one on every forwarded request).
            web::scope("/v1")
                // A routing guard, not an authorization one: the gate has already decided.
                // A path it rejects falls through to the routes registered after this.
                .guard(guard::fn_guard(|ctx| is_forwarded(ctx.head().uri.path())))
                .default_service(web::to(forward)),
        );
}

async fn ready(
    proxy: web::Data<Proxy>,
    client: web::Data<WorkerClient>,
    gate: Option<web::Data<crate::gate::Gate>>,
) -> HttpResponse {
    // Ready only when the upstream is, and when some authentication method can serve.
    if gate.is_some_and(|gate| !gate.can_serve()) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    proxy.ready(&client.0).await
}

async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    proxy: web::Data<Proxy>,
    client: web::Data<WorkerClient>,
) -> Result<HttpResponse, ApiError> {
    // With RBAC, the gate leaves a filter on the lists it wants filtered per item.
    let filter = req.extensions().get::<ListFilter>().cloned();
    match filter {
        Some(filter) if req.method() == ActixMethod::GET => {
            proxy
                .forward_filtered(&client.0, &req, &caller, &filter)
                .await
        }
        _ => proxy.forward(&client.0, &req, payload, &caller).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_database_paths_but_not_portcullis_own() {
        let cases = [
            ("/v1", true),
            ("/v1/", true),
            ("/v1/meta", true),
            ("/v1/schema", true),
            ("/v1/schema/", true),
            ("/v1/objects/Class/123", true),
            ("/v1/graphql", true),
            ("/v1/users", false),
            ("/v1/users/own-info", false),
            ("/v1/users/db/alice", false),
            ("/v1/.well-known/ready", false),
            ("/v1/.well-known/openid-configuration", false),
            ("/v1/%75sers/own-info", false),
            ("/v1/%2E%77ell-known/live", false),
            ("/v1//users/own-info", false),
            ("/v1/x/../users/own-info", false),
            ("/v1/./schema", false),
            ("/v1/%2e%2e/metrics", false),
            ("/metrics", false),
            ("/", false),
            ("/v1x", false),
            ("/v1/objects%", true),
            ("/v1/objects/%zz", true),
            ("/v1/objects/%7", true),
            ("/v1/%", true),
            ("/v1/%2fusers/own-info", false),
            ("/v1/schema/%E2%9C%93", true),
        ];
        for (path, forwarded) in cases {
            assert_eq!(is_forwarded(path), forwarded, "{path}");
        }
    }

    #[test]
    fn identity_address_and_method_headers_are_spoofable_in_any_spelling() {
        for name in [
            "x-portcullis-user",
            "x-portcullis-groups",
            "x_portcullis_user",
            "x-portcullis_groups",
            "x_portcullis-anything",
            "forwarded",
            "x-real-ip",
            "x_real_ip",
            "x-forwarded-for",
            "x_forwarded_for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-prefix",
            "x-http-method-override",
            "x_http_method_override",
            "x-method-override",
            "x-http-method",
            "x-client-ip",
            "true-client-ip",
            "x-original-url",
            "x-rewrite-url",
        ] {
            assert!(is_spoofable(name), "{name}");
        }
        for name in [
            "x-openai-api-key",
            "x-portcullis",
            "x-forwarded",
            "forwarded-by",
            "x-real-ip-hint",
            "x-http-method-overridden",
            "content-type",
            "x-request-id",
        ] {
            assert!(!is_spoofable(name), "{name}");
        }
    }

    #[test]
    fn groups_are_encoded_so_no_name_reads_as_another() {
        let groups = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let cases: [(&[&str], &str); 7] = [
            (&[], ""),
            (&["admins"], "admins"),
            (&["readers", "writers"], "readers,writers"),
            (&["evil,admins"], "evil%2Cadmins"),
            (&["x", " admins"], "x,%20admins"),
            (
                &["cn=ops,ou=groups", "100%", "\"q\""],
                "cn=ops%2Cou=groups,100%25,%22q%22",
            ),
            (&["/org/équipe"], "/org/%C3%A9quipe"),
        ];
        for (names, encoded) in cases {
            let names = groups(names);
            assert_eq!(encode_groups(&names), encoded, "{names:?}");
            // Split on commas, percent-decode each part: the names come back.
            if !names.is_empty() {
                let decoded: Vec<String> = encoded
                    .split(',')
                    .map(|part| {
                        percent_encoding::percent_decode_str(part)
                            .decode_utf8_lossy()
                            .into_owned()
                    })
                    .collect();
                assert_eq!(decoded, names);
            }
        }
    }

    #[test]
    fn only_calls_that_change_classes_or_aliases_forget_the_schema() {
        let cases = [
            (ActixMethod::PUT, "/v1/aliases/Film", true),
            (ActixMethod::DELETE, "/v1/aliases/Film", true),
            (ActixMethod::POST, "/v1/aliases", true),
            (ActixMethod::POST, "/v1/schema", true),
            (ActixMethod::DELETE, "/v1/schema/Movie", true),
            (ActixMethod::POST, "/v1/backups/fs/b1/restore", true),
            (ActixMethod::GET, "/v1/aliases", false),
            (ActixMethod::GET, "/v1/schema", false),
            (ActixMethod::PUT, "/v1/schema/Movie", false),
            (ActixMethod::POST, "/v1/schema/Movie/properties", false),
            (ActixMethod::POST, "/v1/schema/Movie/tenants", false),
            (ActixMethod::POST, "/v1/objects", false),
            (ActixMethod::POST, "/v1/batch/objects", false),
            (ActixMethod::POST, "/v1/backups/fs", false),
        ];
        for (method, path, changes) in cases {
            assert_eq!(changes_schema(&method, path), changes, "{method} {path}");
        }
    }

    #[test]
    fn connection_tokens_are_lower_cased_and_split() {
        let values: [&[u8]; 2] = [b"keep-alive, X-Secret", b"close"];
        assert_eq!(
            connection_tokens(values.into_iter()),
            ["keep-alive", "x-secret", "close"]
        );
    }

    #[test]
    fn only_requests_with_a_declared_body_stream_one() {
        let mut headers = ActixHeaderMap::new();
        assert!(!has_body(&headers));
        headers.insert(
            actix_header::CONTENT_LENGTH,
            actix_header::HeaderValue::from_static("0"),
        );
        assert!(!has_body(&headers));
        headers.insert(
            actix_header::CONTENT_LENGTH,
            actix_header::HeaderValue::from_static("12"),
        );
        assert!(has_body(&headers));
        let mut chunked = ActixHeaderMap::new();
        chunked.insert(
            actix_header::TRANSFER_ENCODING,
            actix_header::HeaderValue::from_static("chunked"),
        );
        assert!(has_body(&chunked));
    }
}
