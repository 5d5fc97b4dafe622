//! Proxy mode for gRPC: every call the gate admitted is forwarded to the upstream's gRPC port
//! as it arrives, frame by frame at the HTTP/2 level (no per-method code, no buffering of a
//! batch), with the caller's identity in `x-portcullis-user` / `x-portcullis-groups` (REST's
//! encoding), `authorization` only with `PORTCULLIS_UPSTREAM_FORWARD_AUTH`, and `grpc-timeout`
//! passed on. An upstream that cannot be reached answers UNAVAILABLE.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use portcullis_auth::Principal;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::grpc::gate::{ResponseFuture, DEADLINE_PASSED};
use crate::proxy::{encode_groups, X_PORTCULLIS_GROUPS, X_PORTCULLIS_USER};

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 keepalive towards the upstream, so a dead upstream connection is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the forwarder could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream address is not a valid URI authority.
    #[error("PORTCULLIS_UPSTREAM_GRPC_ADDR is not a valid host:port")]
    BadAddress,
}

/// The forwarder: one lazily connected HTTP/2 channel to the upstream, shared by every call.
#[derive(Clone)]
pub struct GrpcProxy {
    channel: Channel,
    forward_auth: bool,
}

impl GrpcProxy {
    /// A forwarder to `addr` (`host:port`, checked by the settings). Connects on first use,
    /// and again after the upstream went away.
    pub fn new(addr: &str, forward_auth: bool) -> Result<Self, ProxyError> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|_| ProxyError::BadAddress)?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT);
        Ok(GrpcProxy {
            channel: endpoint.connect_lazy(),
            forward_auth,
        })
    }

    async fn forward(mut self, mut req: Request<Body>) -> Response<Body> {
        let principal = req.extensions_mut().remove::<Principal>();
        let headers = req.headers_mut();
        if !self.forward_auth {
            headers.remove(http::header::AUTHORIZATION);
        }
        // The gate removed any client-sent copies; only these reach the upstream.
        if let Some(principal) = principal {
            if let Ok(user) = HeaderValue::from_bytes(principal.username().as_bytes()) {
                headers.insert(X_PORTCULLIS_USER, user);
            }
            if let Ok(groups) = HeaderValue::from_str(&encode_groups(principal.groups())) {
                headers.insert(X_PORTCULLIS_GROUPS, groups);
            }
        }
        let ready =
            std::future::poll_fn(|cx| tower::Service::poll_ready(&mut self.channel, cx)).await;
        let result = match ready {
            Ok(()) => tower::Service::call(&mut self.channel, req).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(response) => response,
            Err(err) => failure_status(&err).into_http(),
        }
    }
}

/// The status for a call the channel could not complete. tonic's channel enforces the
/// `grpc-timeout` it forwards, so a deadline that passes while the upstream is silent can end
/// here, just before the gate's own timer: it is DEADLINE_EXCEEDED with the gate's message, not
/// an unreachable upstream.
fn failure_status(err: &tonic::transport::Error) -> Status {
    // tonic's own text is only "transport error"; the cause is in the sources.
    let mut cause = err.to_string();
    let mut source = std::error::Error::source(err);
    let mut deadline = false;
    while let Some(inner) = source {
        deadline |= inner.is::<tonic::TimeoutExpired>();
        cause.push_str(": ");
        cause.push_str(&inner.to_string());
        source = inner.source();
    }
    if deadline {
        return Status::deadline_exceeded(DEADLINE_PASSED);
    }
    tracing::warn!(error = %cause, "the gRPC upstream could not be reached");
    Status::unavailable("upstream unavailable: the gRPC upstream could not be reached")
}

impl tower::Service<Request<Body>> for GrpcProxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let proxy = self.clone();
        Box::pin(async move { Ok(proxy.forward(req).await) })
    }
}
