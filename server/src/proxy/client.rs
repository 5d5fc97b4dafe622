//! The upstream HTTP/1.1 client: hyper's pooled client, one per worker, over a connector that
//! counts every connection it opens (`portcullis_upstream_connections_opened_total`).
//!
//! One client per worker keeps a worker's connections, and the tasks that drive them, on that
//! worker's thread: a request never waits for a lock another worker holds or wakes another
//! thread. The TLS set-up (roots loaded from disk) is built once and shared.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Parts, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::IntCounter;

use super::body::RequestBody;

/// How long an idle upstream connection stays in a worker's pool. An upstream that closes idle
/// connections sooner is noticed at checkout: the pool skips a closed connection.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections a worker keeps per upstream: enough for the concurrency one worker serves
/// (HAProxy with `http-reuse always` keeps as many as it needs), so steady load opens none.
const POOL_MAX_IDLE: usize = 1024;

/// A worker's client for the upstream.
pub(super) type UpstreamClient = Client<HttpsConnector<Counting<HttpConnector>>, RequestBody>;

/// A failure to set up the upstream client (start-up only).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configured URL is not a valid URI (the config crate has already checked its shape).
    #[error("the upstream URL is not a valid URI: {0}")]
    Url(#[from] http::uri::InvalidUri),
    /// The URL has no scheme or host.
    #[error("the upstream URL needs a scheme and a host")]
    Incomplete,
    /// rustls refused the TLS configuration.
    #[error("could not set up TLS for the upstream: {0}")]
    Tls(#[from] rustls::Error),
}

/// What every worker's client is built from, parsed and loaded once at start.
pub(super) struct ClientSetup {
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    opened: IntCounter,
    /// The upstream's scheme and authority, cloned into each request's URI (no parsing).
    pub(super) scheme: Scheme,
    pub(super) authority: Authority,
    /// The `Host` header the upstream receives: its authority, without a default port.
    pub(super) host: HeaderValue,
}

impl ClientSetup {
    /// Parses `url` (`http(s)://host[:port]`) and builds the TLS configuration: for `https`,
    /// the roots reqwest trusted (webpki's and the system's); for `http`, none is ever used.
    pub(super) fn new(
        url: &str,
        connect_timeout: Duration,
        opened: IntCounter,
    ) -> Result<Self, ClientError> {
        let uri: Uri = url.parse()?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(ClientError::Incomplete);
        };
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(port) if port == default_port => authority.host(),
            _ => authority.as_str(),
        };
        let host = HeaderValue::from_str(host).map_err(|_| ClientError::Incomplete)?;
        let mut roots = rustls::RootCertStore::empty();
        if scheme == Scheme::HTTPS {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let native = rustls_native_certs::load_native_certs();
            for err in &native.errors {
                tracing::warn!(error = %err, "a system CA certificate could not be loaded");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "system CA certificates for the upstream");
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ClientSetup {
            tls: Arc::new(tls),
            connect_timeout,
            opened,
            scheme,
            authority,
            host,
        })
    }

    /// The URI parts of the upstream with `path_and_query`.
    pub(super) fn uri_parts(&self, path_and_query: PathAndQuery) -> Parts {
        let mut parts = Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path_and_query);
        parts
    }

    /// A new client with its own pool, for one worker.
    pub(super) fn client(&self) -> UpstreamClient {
        let mut http = HttpConnector::new();
        // The TLS layer above handles https; this one only opens TCP connections.
        http.enforce_http(false);
        // Requests are written whole (headers, then body chunks): Nagle would hold the last
        // segment of each for the upstream's delayed ACK.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        let counting = Counting {
            inner: http,
            opened: self.opened.clone(),
        };
        let connector = HttpsConnector::from((counting, self.tls.clone()));
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            // The Host header is set per request from a precomputed value.
            .set_host(false)
            .build(connector)
    }
}

/// A connector that counts the connections its inner connector opens.
#[derive(Clone)]
pub(super) struct Counting<C> {
    inner: C,
    opened: IntCounter,
}

impl<C> tower_service::Service<Uri> for Counting<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Unpin,
{
    type Response = C::Response;
    type Error = C::Error;
    type Future = CountingFuture<C::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        CountingFuture {
            inner: self.inner.call(uri),
            opened: self.opened.clone(),
        }
    }
}

/// A connection attempt, counted when it succeeds.
pub(super) struct CountingFuture<F> {
    inner: F,
    opened: IntCounter,
}

impl<F, T, E> Future for CountingFuture<F>
where
    F: Future<Output = Result<T, E>> + Unpin,
{
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        if result.is_ok() {
            self.opened.inc();
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(url: &str) -> ClientSetup {
        let opened = IntCounter::new("opened", "test").unwrap();
        ClientSetup::new(url, Duration::from_secs(1), opened).unwrap()
    }

    #[test]
    fn host_header_drops_only_the_default_port() {
        let cases = [
            ("http://db:8080", "db:8080"),
            ("http://db:80", "db"),
            ("http://db", "db"),
            ("https://db.internal:443", "db.internal"),
            ("https://db.internal:80", "db.internal:80"),
            ("http://127.0.0.1:9000", "127.0.0.1:9000"),
            ("http://[::1]:9000", "[::1]:9000"),
        ];
        for (url, host) in cases {
            let setup = setup(url);
            assert_eq!(setup.host, host, "{url}");
            assert_eq!(
                setup.authority.as_str(),
                &url[url.find("//").unwrap() + 2..]
            );
        }
        assert_eq!(setup("https://db").scheme, Scheme::HTTPS);
        assert_eq!(setup("http://db").scheme, Scheme::HTTP);
    }

    #[test]
    fn a_url_without_a_host_is_refused() {
        let opened = IntCounter::new("opened", "test").unwrap();
        assert!(matches!(
            ClientSetup::new("/v1", Duration::from_secs(1), opened),
            Err(ClientError::Incomplete)
        ));
    }
}
