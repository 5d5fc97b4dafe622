//! The gRPC listener: HTTP/2 cleartext with prior knowledge (as Weaviate serves gRPC) on its
//! own port and its own runtime, every call through the [`GrpcGate`], then the health service,
//! the embedded store, the upstream, or UNAVAILABLE when an upstream URL is set without a gRPC
//! upstream. HTTP/2 resources are bounded so a client that opens connections or streams and
//! sends nothing cannot hold memory: a connection count, streams per connection, the header
//! list size, a deadline for the connection preface, keepalive pings, and the body deadline of
//! unary calls (in the gate). With `PORTCULLIS_TLS_CERT_FILE` every connection is a TLS one
//! (ALPN `h2`), its handshake and then its preface each under the preface's deadline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::FutureExt;
use http::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tonic::body::Body;
use tonic::service::Routes;
use tonic::Status;
use tonic_health::ServingStatus;

use crate::gate::Gate;
use crate::grpc::embedded::WeaviateService;
use crate::grpc::gate::{GateShared, GrpcGate, Peer, ResponseFuture};
use crate::grpc::methods::HEALTH_PREFIX;
use crate::grpc::pb::weaviate_server::WeaviateServer;
use crate::grpc::proxy::GrpcProxy;

/// Open connections at most; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 1024;
/// Concurrent streams per connection (HTTP/2 SETTINGS); more are refused by the protocol.
const MAX_CONCURRENT_STREAMS: u32 = 128;
/// The largest header list a call may send: room for a 10 KiB token and the usual metadata,
/// not for a megabyte of headers per stream.
const MAX_HEADER_LIST_SIZE: u32 = 32 * 1024;
/// How long a new connection may take to send the HTTP/2 preface.
const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);
/// Keepalive pings on idle connections, and how long an answer may take before the
/// connection is closed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the health status follows the gate's readiness.
const HEALTH_POLL: Duration = Duration::from_millis(250);
/// How long shutdown waits for calls in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The 503 message REST's proxy gives when it has no upstream for a route, in gRPC words.
const NOT_CONFIGURED: &str = "upstream unavailable: the gRPC upstream is not configured \
                              (set PORTCULLIS_UPSTREAM_GRPC_ADDR)";

/// Where admitted calls go.
#[derive(Clone)]
pub enum Backend {
    /// The embedded store's service.
    Embedded(WeaviateService),
    /// An upstream's gRPC port.
    Proxy(GrpcProxy),
    /// An upstream REST URL without a gRPC address: every call answers UNAVAILABLE.
    NotConfigured,
}

/// What the listener needs to serve.
pub struct GrpcServerParts {
    /// The gate state.
    pub shared: Arc<GateShared>,
    /// The backend behind the gate.
    pub backend: Backend,
    /// TLS (`PORTCULLIS_TLS_CERT_FILE`), or `None` for cleartext HTTP/2.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A bound gRPC listener, serving on its own threads until [`RunningGrpc::stop`].
pub struct RunningGrpc {
    stop: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The bound address.
    pub addr: SocketAddr,
}

impl RunningGrpc {
    /// Stops accepting, lets calls in flight finish (up to a grace period) and joins the threads.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        for thread in self.threads {
            if thread.join().is_err() {
                tracing::error!("a gRPC worker thread panicked");
            }
        }
    }
}

/// Binds `addr` and starts `workers` threads, each a single-threaded runtime accepting on the
/// shared socket (as the HTTP server's workers do).
pub fn start(
    addr: SocketAddr,
    workers: usize,
    parts: GrpcServerParts,
) -> anyhow::Result<RunningGrpc> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!(
            "while binding the gRPC address {addr} (PORTCULLIS_GRPC_ADDR or GRPC_PORT; \
             PORTCULLIS_GRPC_ADDR=off turns gRPC off)"
        )
    })?;
    listener
        .set_nonblocking(true)
        .context("while configuring the gRPC socket")?;
    let bound = listener
        .local_addr()
        .context("while reading the bound gRPC address")?;
    let (reporter, health) = tonic_health::server::health_reporter();
    // The reporter says SERVING until told otherwise, and the follower below first runs once
    // worker 0's runtime does: set the status now, before any worker accepts, so that a call
    // right after start never reads SERVING while the gate cannot serve (a test saw it).
    let initial = if parts.shared.gate.can_serve() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in ["", "weaviate.v1.Weaviate"] {
        // Nothing else holds the reporter yet: its lock is free, so this completes at its
        // first poll (the follower sets it again in any case).
        let _ = reporter.set_service_status(name, initial).now_or_never();
    }
    let service = GrpcGate::new(
        parts.shared.clone(),
        Dispatch {
            health: Routes::new(health),
            backend: match parts.backend {
                Backend::Embedded(service) => {
                    Inner::Embedded(Routes::new(WeaviateServer::new(service)))
                }
                Backend::Proxy(proxy) => Inner::Proxy(proxy),
                Backend::NotConfigured => Inner::NotConfigured,
            },
        },
    );
    let acceptor = parts.tls.map(tokio_rustls::TlsAcceptor::from);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop, stopped) = watch::channel(false);
    let mut threads = Vec::with_capacity(workers.max(1));
    for worker in 0..workers.max(1) {
        let listener = listener
            .try_clone()
            .context("while sharing the gRPC socket with a worker")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("while starting a gRPC worker runtime")?;
        let service = service.clone();
        let connections = connections.clone();
        let acceptor = acceptor.clone();
        let stopped = stopped.clone();
        // One worker keeps the health status current for all.
        let readiness = (worker == 0).then(|| (parts.shared.gate.clone(), reporter.clone()));
        let thread = std::thread::Builder::new()
            .name(format!("portcullis-grpc-{worker}"))
            .spawn(move || {
                runtime.block_on(async move {
                    if let Some((gate, reporter)) = readiness {
                        tokio::spawn(follow_readiness(gate, reporter, stopped.clone()));
                    }
                    serve(listener, service, acceptor, connections, stopped).await;
                });
            })
            .context("while starting a gRPC worker thread")?;
        threads.push(thread);
    }
    Ok(RunningGrpc {
        stop,
        threads,
        addr: bound,
    })
}

async fn serve(
    listener: std::net::TcpListener,
    service: GrpcGate<Dispatch>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(error = %err, "the gRPC socket could not be used");
            return;
        }
    };
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .max_pending_accept_reset_streams(Some(64))
        .max_local_error_reset_streams(Some(256));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = stopped.changed() => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(error = %err, "gRPC accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let http2 = http2.clone();
        // The gate reads the peer (the client, or a trusted proxy) from each call.
        let service = tower::ServiceExt::map_request(
            service.clone(),
            move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer.ip()));
                req.map(Body::new)
            },
        );
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // The permit lives as long as the connection.
            let _permit = permit;
            let service = TowerToHyperService::new(service);
            let ended =
                match acceptor {
                    // The handshake, then the preface read through TLS, each get the preface's
                    // deadline: a client that stalls in either holds a slot no longer than a
                    // silent cleartext one.
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(PREFACE_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(err)) => {
                                    tracing::debug!(error = %err, "gRPC TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                        let Some(stream) =
                            crate::tls::preface::read_preface(stream, PREFACE_TIMEOUT).await
                        else {
                            return;
                        };
                        let connection = http2.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(connection).await
                    }
                    None => {
                        if !preface_arrives(&stream).await {
                            return;
                        }
                        let connection = http2.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(connection).await
                    }
                };
            if let Err(err) = ended {
                tracing::debug!(error = %err, "gRPC connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("gRPC calls still in flight at shutdown were cut off");
    }
}

/// Whether the connection sent the 24-byte HTTP/2 preface within [`PREFACE_TIMEOUT`] (a
/// connection that sends nothing is closed instead of holding a slot).
async fn preface_arrives(stream: &TcpStream) -> bool {
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            if stream.readable().await.is_err() {
                return false;
            }
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n >= buf.len() => return true,
                // Part of it: give the rest a moment instead of spinning on a readable socket.
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(PREFACE_TIMEOUT, wait)
        .await
        .unwrap_or(false)
}

/// Keeps the health status equal to the gate's readiness (REST's `ready`): SERVING while an
/// authentication method can serve, NOT_SERVING while none can (OIDC keys not loaded yet).
async fn follow_readiness(
    gate: Arc<Gate>,
    reporter: tonic_health::server::HealthReporter,
    mut stopped: watch::Receiver<bool>,
) {
    let mut last = None;
    loop {
        let status = if gate.can_serve() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            reporter.set_service_status("", status).await;
            reporter
                .set_service_status("weaviate.v1.Weaviate", status)
                .await;
            last = Some(status);
        }
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(HEALTH_POLL) => {}
        }
    }
}

/// The service behind the gate: health by path, everything else to the backend.
#[derive(Clone)]
struct Dispatch {
    health: Routes,
    backend: Inner,
}

#[derive(Clone)]
enum Inner {
    Embedded(Routes),
    Proxy(GrpcProxy),
    NotConfigured,
}

impl tower::Service<Request<Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if req.uri().path().starts_with(HEALTH_PREFIX) {
            let mut health = self.health.clone();
            return Box::pin(async move { routes_call(&mut health, req).await });
        }
        match &self.backend {
            Inner::Embedded(routes) => {
                let mut routes = routes.clone();
                Box::pin(async move { routes_call(&mut routes, req).await })
            }
            Inner::Proxy(proxy) => tower::Service::call(&mut proxy.clone(), req),
            Inner::NotConfigured => {
                Box::pin(async move { Ok(Status::unavailable(NOT_CONFIGURED).into_http()) })
            }
        }
    }
}

async fn routes_call(
    routes: &mut Routes,
    req: Request<Body>,
) -> Result<Response<Body>, Infallible> {
    std::future::poll_fn(|cx| tower::Service::<Request<Body>>::poll_ready(routes, cx)).await?;
    tower::Service::call(routes, req).await
}
