//! The gate in front of every gRPC call: a tower service around the whole gRPC backend (the
//! embedded service, the upstream forwarder, or the "not configured" answer), so nothing
//! reaches a backend unjudged. It reads the `authorization` metadata with REST's rules
//! ([`credential::from_values`]), asks REST's [`Gate`] for the decision (the same gatekeeper,
//! the same counting, the same messages), maps REST's status to the gRPC code, enforces the
//! call's deadline and the request body deadline, and counts every call by method and code.
//! The health service is answered without a credential, as the clients call it at connect.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::ResponseError;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use portcullis_auth::client::UNKNOWN_PEER;
use tonic::body::Body;
use tonic::{Code, Status};
use tracing::Level;

use crate::error::ApiError;
use crate::gate::{credential, Gate};
use crate::grpc::methods::{GrpcCode, GrpcMethod};
use crate::logging;
use crate::metrics::grpc::GrpcMetrics;

/// The gRPC metadata key of the credential (HTTP/2 header names are lower case).
const AUTHORIZATION: &str = "authorization";
/// The gRPC deadline header.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The message of a call whose `grpc-timeout` passed before its answer.
pub(crate) const DEADLINE_PASSED: &str = "the call's deadline passed";

/// A boxed response future.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// `X-Forwarded-For`, read from trusted proxies only (REST's rule).
const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// The address a call's connection came from, set by the listener on every request.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

/// What the gate shares across connections.
pub struct GateShared {
    /// REST's gate: the gatekeeper, the counters and the refusal messages.
    pub gate: Arc<Gate>,
    /// The gRPC calls' own counters.
    pub metrics: Arc<GrpcMetrics>,
    /// How long a unary call's request body may take after its headers
    /// (`PORTCULLIS_BODY_TIMEOUT`, as for REST).
    pub body_timeout: Duration,
}

/// The gate around `S`, the backend every admitted call goes to.
#[derive(Clone)]
pub struct GrpcGate<S> {
    shared: Arc<GateShared>,
    inner: S,
}

impl<S> GrpcGate<S> {
    /// The gate in front of `inner`.
    pub fn new(shared: Arc<GateShared>, inner: S) -> Self {
        GrpcGate { shared, inner }
    }
}

impl<S> tower::Service<Request<Body>> for GrpcGate<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call is served by a clone of the backend, made ready in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        Box::pin(async move { Ok(admit_and_call(shared, inner, req).await) })
    }
}

async fn admit_and_call<S>(
    shared: Arc<GateShared>,
    mut inner: S,
    mut req: Request<Body>,
) -> Response<Body>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let started = Instant::now();
    let method = GrpcMethod::of(req.uri().path());
    // The client by REST's rule, before the forwarding headers are stripped.
    let peer = req
        .extensions()
        .get::<Peer>()
        .map_or(UNKNOWN_PEER, |peer| peer.0);
    let client = shared.gate.client_of(peer, || {
        req.headers()
            .get_all(X_FORWARDED_FOR)
            .iter()
            .map(http::HeaderValue::as_bytes)
    });
    strip_identity(req.headers_mut());

    let mut access = Access {
        client,
        judged: None,
    };
    let response = if method.is_health() {
        call_ready(&mut inner, req).await
    } else {
        let deadline = match grpc_timeout(req.headers()) {
            Ok(deadline) => deadline,
            Err(status) => return finish(&shared, method, started, access, status.into_http()),
        };
        let credential = credential::from_values(
            req.headers()
                .get_all(AUTHORIZATION)
                .iter()
                .map(http::HeaderValue::as_bytes),
        );
        let path = req.uri().path().to_owned();
        let (decision, auth_method, reason) = shared
            .gate
            .admit(credential, method.verb(), &path, client, started)
            .await;
        let principal = match decision {
            Ok(principal) => principal,
            Err(error) => {
                // The refusal's reason is in the line; a 403's user is in its message.
                access.judged = Some(Judged {
                    auth: auth_method,
                    reason,
                    principal: None,
                });
                return finish(
                    &shared,
                    method,
                    started,
                    access,
                    status_of(&error).into_http(),
                );
            }
        };
        access.judged = Some(Judged {
            auth: auth_method,
            reason,
            principal: Some((principal.kind().as_str(), principal.username().to_owned())),
        });
        if let Some(rbac) = shared.gate.rbac() {
            // RBAC needs the collection in the message: a unary call's body is read (bounded
            // by the body limit and deadline) and handed on unchanged.
            let decision = if method.is_unary() {
                match read_unary(req, rbac.max_body(), shared.body_timeout).await {
                    Ok((bytes, rebuilt)) => {
                        req = rebuilt;
                        // In proxy mode, the upstream's aliases and collections for its
                        // names (fetched if not known), then the decision.
                        match rbac.learn_grpc(method, &bytes).await {
                            Ok(()) => {
                                shared
                                    .gate
                                    .judge_grpc(&principal, method, Some(&bytes), client)
                            }
                            Err(error) => Err(error),
                        }
                    }
                    Err(status) => {
                        return finish(&shared, method, started, access, status.into_http())
                    }
                }
            } else {
                shared.gate.judge_grpc(&principal, method, None, client)
            };
            if let Err(error) = decision {
                return finish(
                    &shared,
                    method,
                    started,
                    access,
                    status_of(&error).into_http(),
                );
            }
        }
        req.extensions_mut().insert(principal);
        if method.is_unary() {
            let body_deadline = tokio::time::Instant::now() + shared.body_timeout;
            req = req.map(|body| Body::new(DeadlineBody::new(body, body_deadline)));
        }
        match deadline {
            Some(deadline) => {
                match tokio::time::timeout(deadline, call_ready(&mut inner, req)).await {
                    Ok(response) => response,
                    Err(_) => Status::deadline_exceeded(DEADLINE_PASSED).into_http(),
                }
            }
            None => call_ready(&mut inner, req).await,
        }
    };
    finish(&shared, method, started, access, response)
}

/// A unary call's whole body (at most `limit` bytes, within `timeout`), and the request
/// rebuilt around the same bytes.
async fn read_unary(
    req: Request<Body>,
    limit: usize,
    timeout: Duration,
) -> Result<(bytes::Bytes, Request<Body>), Status> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let collected =
        tokio::time::timeout(timeout, http_body_util::Limited::new(body, limit).collect())
            .await
            .map_err(|_| Status::deadline_exceeded("the request body did not arrive in time"))?
            .map_err(|_| {
                Status::resource_exhausted("the request message is too large or unreadable")
            })?;
    let bytes = collected.to_bytes();
    let rebuilt = Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes.clone())));
    Ok((bytes, rebuilt))
}

/// Waits for the backend to be ready and calls it.
async fn call_ready<S>(inner: &mut S, req: Request<Body>) -> Response<Body>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    match std::future::poll_fn(|cx| inner.poll_ready(cx)).await {
        Ok(()) => match inner.call(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(never) => match never {},
    }
}

/// Counts the call when its status is known: now for a trailers-only answer (a refusal, an
/// error before any message), else when the body's trailers pass.
fn finish(
    shared: &GateShared,
    method: GrpcMethod,
    started: Instant,
    access: Access,
    response: Response<Body>,
) -> Response<Body> {
    let pending = Pending {
        metrics: shared.metrics.clone(),
        method,
        started,
        access,
    };
    if let Some(status) = response.headers().get("grpc-status") {
        pending.record(GrpcCode::of_header(status.as_bytes()));
        return response;
    }
    if response.status() != StatusCode::OK {
        // Not a gRPC answer at all (an upstream's HTTP error): clients read it as UNKNOWN.
        pending.record(GrpcCode::Unknown);
        return response;
    }
    response.map(|body| {
        Body::new(CountedBody {
            inner: body,
            pending: Some(pending),
        })
    })
}

/// How the gate judged a call, for its access line.
struct Judged {
    auth: portcullis_auth::AuthMethod,
    reason: portcullis_auth::Reason,
    /// The principal's kind and user name, when one was authenticated and admitted.
    principal: Option<(&'static str, String)>,
}

/// What a call's access line says besides its status.
struct Access {
    client: IpAddr,
    /// None for the health service (no credential read) and a malformed `grpc-timeout`.
    judged: Option<Judged>,
}

/// A call whose status is not known yet: counted and logged once when it is.
struct Pending {
    metrics: Arc<GrpcMetrics>,
    method: GrpcMethod,
    started: Instant,
    access: Access,
}

impl Pending {
    /// Counts the call and writes its access line, as REST does for a request: at info for a
    /// call whose credential was judged (admitted or refused), at debug for one that needed
    /// none (the health service, as REST's public routes).
    fn record(self, code: GrpcCode) {
        // One clock read for the duration and the access line's timestamp.
        let finished = Instant::now();
        let seconds = finished.duration_since(self.started).as_secs_f64();
        self.metrics.observe(self.method, code, seconds);
        let micros = (seconds * 1e6) as u64;
        let client = self.access.client;
        let method = self.method.as_str();
        match &self.access.judged {
            None => {
                if !tracing::event_enabled!(target: ACCESS_TARGET, Level::DEBUG) {
                    return;
                }
                let direct = logging::write_line(Level::DEBUG, ACCESS_TARGET, finished, |line| {
                    line.str("protocol", "grpc");
                    line.ip("client", client);
                    line.str("method", method);
                    line.str("code", code.as_str());
                    line.u64("micros", micros);
                });
                if !direct {
                    tracing::debug!(
                        target: ACCESS_TARGET,
                        protocol = "grpc",
                        client = %client,
                        method,
                        code = code.as_str(),
                        micros,
                    );
                }
            }
            Some(judged) => {
                if !tracing::event_enabled!(target: ACCESS_TARGET, Level::INFO) {
                    return;
                }
                let principal = judged.principal.as_ref().map_or("none", |p| p.0);
                let user = judged.principal.as_ref().map_or("", |p| p.1.as_str());
                let direct = logging::write_line(Level::INFO, ACCESS_TARGET, finished, |line| {
                    line.str("protocol", "grpc");
                    line.ip("client", client);
                    line.str("method", method);
                    line.str("code", code.as_str());
                    line.str("auth", judged.auth.as_str());
                    line.str("outcome", judged.reason.result());
                    line.str("reason", judged.reason.as_str());
                    line.str("principal", principal);
                    line.debug_str("user", user);
                    line.u64("micros", micros);
                });
                if !direct {
                    tracing::info!(
                        target: ACCESS_TARGET,
                        protocol = "grpc",
                        client = %client,
                        method,
                        code = code.as_str(),
                        auth = judged.auth.as_str(),
                        outcome = judged.reason.result(),
                        reason = judged.reason.as_str(),
                        principal,
                        user = ?user,
                        micros,
                    );
                }
            }
        }
    }
}

/// The target of the access log's lines (REST's too).
const ACCESS_TARGET: &str = "portcullis::access";

/// The gRPC status for the error REST would answer: the same message, the code for REST's
/// status (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 503 UNAVAILABLE, 400 INVALID_ARGUMENT,
/// 429 RESOURCE_EXHAUSTED).
pub fn status_of(error: &ApiError) -> Status {
    let code = match error.status_code().as_u16() {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        // Over the budget of failed credentials (docs/hostile-inputs.md).
        429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        502 => Code::Unavailable,
        _ => Code::Internal,
    };
    Status::new(code, error.to_string())
}

/// Removes every client-sent header an upstream could take for the caller's identity (in any
/// spelling, as REST's proxy does): only the gate sets them.
fn strip_identity(headers: &mut HeaderMap) {
    let spoofed: Vec<_> = headers
        .keys()
        .filter(|name| crate::proxy::is_spoofable(name.as_str()))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
}

/// The call's `grpc-timeout`, if it sent one: up to 8 digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(headers: &HeaderMap) -> Result<Option<Duration>, Status> {
    let Some(value) = headers.get(GRPC_TIMEOUT) else {
        return Ok(None);
    };
    let bad = || Status::invalid_argument("malformed grpc-timeout");
    let text = value.to_str().map_err(|_| bad())?;
    if text.len() < 2 || text.len() > 9 {
        return Err(bad());
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let duration = match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return Err(bad()),
    };
    Ok(Some(duration))
}

/// A request body that must end by a deadline: a unary call's one message cannot be held open
/// (a stream slot and its buffers) by a client that never sends it.
struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: tokio::time::Instant) -> Self {
        DeadlineBody {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Status::deadline_exceeded(
                "the request message was not received in time",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that counts the call when its trailers (the status) pass, or as
/// CANCELLED when it is dropped before them (the client went away).
struct CountedBody {
    inner: Body,
    pending: Option<Pending>,
}

impl CountedBody {
    fn record(&mut self, code: GrpcCode) {
        if let Some(pending) = self.pending.take() {
            pending.record(code);
        }
    }
}

impl HttpBody for CountedBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers
                        .get("grpc-status")
                        .map_or(GrpcCode::Unknown, |v| GrpcCode::of_header(v.as_bytes()));
                    this.record(code);
                }
            }
            Poll::Ready(Some(Err(status))) => this.record(GrpcCode::of(status.code())),
            Poll::Ready(None) => this.record(GrpcCode::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.record(GrpcCode::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: &str) -> Result<Option<Duration>, Code> {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT, value.parse().expect("header value"));
        grpc_timeout(&headers).map_err(|s| s.code())
    }

    #[test]
    fn reads_grpc_timeouts_in_every_unit_and_refuses_malformed_ones() {
        assert_eq!(timeout_of("1H"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(timeout_of("2M"), Ok(Some(Duration::from_secs(120))));
        assert_eq!(timeout_of("3S"), Ok(Some(Duration::from_secs(3))));
        assert_eq!(timeout_of("250m"), Ok(Some(Duration::from_millis(250))));
        assert_eq!(timeout_of("7u"), Ok(Some(Duration::from_micros(7))));
        assert_eq!(
            timeout_of("99999999n"),
            Ok(Some(Duration::from_nanos(99_999_999)))
        );
        for bad in ["", "S", "123456789S", "1s", "-1S", "1.5S", "1 S"] {
            assert_eq!(timeout_of(bad), Err(Code::InvalidArgument), "{bad:?}");
        }
        assert_eq!(
            grpc_timeout(&HeaderMap::new()).map_err(|s| s.code()),
            Ok(None)
        );
    }

    #[test]
    fn maps_rest_statuses_to_grpc_codes_with_the_same_message() {
        let cases = [
            (ApiError::InvalidCredential, Code::Unauthenticated),
            (
                ApiError::MissingCredential("m".to_owned()),
                Code::Unauthenticated,
            ),
            (
                ApiError::Forbidden {
                    user: "u".to_owned(),
                    verb: "write",
                    path: "/p".to_owned(),
                },
                Code::PermissionDenied,
            ),
            (
                ApiError::ServiceUnavailable {
                    message: "later",
                    retry_after: 1,
                },
                Code::Unavailable,
            ),
            (ApiError::MalformedAuthorization("x"), Code::InvalidArgument),
            (ApiError::Internal, Code::Internal),
        ];
        for (error, code) in cases {
            let status = status_of(&error);
            assert_eq!(status.code(), code, "{error}");
            assert_eq!(status.message(), error.to_string());
        }
    }

    #[test]
    fn strips_identity_headers_in_any_spelling() {
        let mut headers = HeaderMap::new();
        for name in [
            "x-portcullis-user",
            "x-portcullis_groups",
            "x-forwarded-for",
            "te",
        ] {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                "v".parse().expect("value"),
            );
        }
        strip_identity(&mut headers);
        let left: Vec<_> = headers.keys().map(|k| k.as_str().to_owned()).collect();
        assert_eq!(left, ["te"]);
    }
}
