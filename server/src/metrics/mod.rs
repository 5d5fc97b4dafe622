//! Every metric of the server, registered once on its own registry and served on its own
//! port (what each one means: `docs/metrics.md`).
//!
//! Label values come only from closed sets ([`labels`], the auth crate's methods and reasons,
//! route templates, status codes), which the caller turns into a dense index: the request
//! path does no label hashing. The four families every request adds to are counted per thread
//! and summed at each scrape ([`sharded`]); the others' series are created on first use and
//! then cached in fixed slots ([`Slots`]).
//! What the auth crate and the log output count in atomics is read at scrape time ([`scraped`]).

pub mod grpc;
pub mod labels;
pub mod rbac;
pub mod scraped;
mod sharded;

use std::sync::{Arc, OnceLock};

use actix_web::http::{Method, StatusCode};
use portcullis_auth::oidc::OidcStats;
use portcullis_auth::{AuthMethod, KeyRegistryHandle, Reason};
use prometheus::core::{MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::gate::route_table::{template_of, ROUTE_SLOTS};

pub use labels::{Decision, HttpMethod, KeyOperation, KeyOutcome, UpstreamResult, UserState};
pub use scraped::{DbUsersCollector, LogCollector, OidcCollector, ThrottleCollector};

/// Status codes that get a cached slot; others are looked up by label each time.
const CACHED_STATUSES: [u16; 17] = [
    200, 201, 204, 301, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 502, 503, 504,
];

/// [`CACHED_STATUSES`] as label values.
const CACHED_STATUS_LABELS: [&str; CACHED_STATUSES.len()] = [
    "200", "201", "204", "301", "400", "401", "403", "404", "405", "409", "413", "422", "429",
    "500", "502", "503", "504",
];

/// The route template and method label of a `route * methods + method` slot.
fn route_method_of(slot: usize) -> (&'static str, &'static str) {
    let methods = HttpMethod::ALL.len();
    (
        template_of(slot / methods),
        HttpMethod::ALL[slot % methods].as_str(),
    )
}

/// Buckets for microsecond-scale authentication work (1 us to 100 ms).
const AUTH_BUCKETS: [f64; 14] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 2.5e-2, 0.1,
];

/// Buckets for whole requests (25 us to 10 s).
const HTTP_BUCKETS: [f64; 16] = [
    2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 2.5,
    10.0,
];

/// Buckets for requests forwarded to the upstream (100 us to 60 s, the default timeout).
const UPSTREAM_BUCKETS: [f64; 18] = [
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
];

/// A labelled metric and its series cached at dense indices, which the caller computes from
/// label enums: a series is created (its labels hashed) on first use, and after that an
/// observation costs an index and an atomic load.
pub struct Slots<V, T> {
    vec: V,
    cells: Box<[OnceLock<T>]>,
}

impl<B: MetricVecBuilder + 'static> Slots<MetricVec<B>, B::M> {
    /// `len` slots over `vec`, which is registered on `registry`.
    fn register(
        registry: &Registry,
        vec: MetricVec<B>,
        len: usize,
    ) -> Result<Self, prometheus::Error> {
        registry.register(Box::new(vec.clone()))?;
        Ok(Slots {
            vec,
            cells: (0..len).map(|_| OnceLock::new()).collect(),
        })
    }

    /// The series at `index`, created with the label values `labels` gives on first use.
    /// `index` must be below the `len` given at registration (every caller computes it from
    /// closed sets).
    fn get<'a, const N: usize>(
        &self,
        index: usize,
        labels: impl FnOnce() -> [&'a str; N],
    ) -> &B::M {
        self.cells[index].get_or_init(|| self.vec.with_label_values(&labels()))
    }
}

/// All of the server's own metrics.
pub struct Metrics {
    registry: Registry,
    /// Authentication outcomes and durations, HTTP requests and durations: per thread.
    requests: Arc<sharded::RequestMetrics>,
    /// By decision.
    authorization: Slots<IntCounterVec, IntCounter>,
    /// By result.
    upstream_requests: Slots<IntCounterVec, IntCounter>,
    /// By result.
    upstream_duration: Slots<HistogramVec, Histogram>,
    /// By operation x outcome.
    key_operations: Slots<IntCounterVec, IntCounter>,
    /// Connections opened to the upstream (proxy mode).
    upstream_connections_opened: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric (the ones read from auth's atomics are registered
    /// by [`Metrics::register_oidc`] and [`Metrics::register_db_users`]).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let authorization = IntCounterVec::new(
            Opts::new(
                "portcullis_authorization_total",
                "Authorization decisions on routes that check a verb.",
            ),
            &["result"],
        )?;
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "portcullis_upstream_requests_total",
                "Requests forwarded to the upstream, by result.",
            ),
            &["result"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_upstream_request_duration_seconds",
                "Time from forwarding a request until the upstream's response headers or the failure, by result.",
            )
            .buckets(UPSTREAM_BUCKETS.to_vec()),
            &["result"],
        )?;
        let key_operations = IntCounterVec::new(
            Opts::new(
                "portcullis_key_operations_total",
                "User and key management operations by operation and result.",
            ),
            &["op", "result"],
        )?;
        let upstream_connections_opened = IntCounter::new(
            "portcullis_upstream_connections_opened_total",
            "Connections opened to the upstream; flat under steady load while they are reused.",
        )?;
        registry.register(Box::new(upstream_connections_opened.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new("portcullis_build_info", "Build information; always 1."),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let methods = HttpMethod::ALL.len();
        let requests = Arc::new(sharded::RequestMetrics::new(sharded::Specs {
            auth_requests: sharded::Spec {
                name: "portcullis_auth_requests_total",
                help: "Authentication outcomes by method, result and reason.",
                labels: &["method", "result", "reason"],
                slots: AuthMethod::ALL.len() * Reason::ALL.len(),
                values: |slot| {
                    let method = AuthMethod::ALL[slot / Reason::ALL.len()];
                    let reason = Reason::ALL[slot % Reason::ALL.len()];
                    vec![method.as_str(), reason.result(), reason.as_str()]
                },
            },
            auth_duration: sharded::Spec {
                name: "portcullis_auth_duration_seconds",
                help: "Time spent authenticating a request, by method.",
                labels: &["method"],
                slots: AuthMethod::ALL.len(),
                values: |slot| vec![AuthMethod::ALL[slot].as_str()],
            },
            http_requests: sharded::Spec {
                name: "portcullis_http_requests_total",
                help: "HTTP requests by method, route template and status.",
                labels: &["method", "route", "status"],
                slots: ROUTE_SLOTS * methods * CACHED_STATUSES.len(),
                values: |slot| {
                    let status = CACHED_STATUS_LABELS[slot % CACHED_STATUSES.len()];
                    let route_method = slot / CACHED_STATUSES.len();
                    let (route, method) = route_method_of(route_method);
                    vec![method, route, status]
                },
            },
            http_duration: sharded::Spec {
                name: "portcullis_http_request_duration_seconds",
                help: "HTTP request latency by method and route template.",
                labels: &["method", "route"],
                slots: ROUTE_SLOTS * methods,
                values: |slot| {
                    let (route, method) = route_method_of(slot);
                    vec![method, route]
                },
            },
        })?);
        registry.register(Box::new(sharded::Registered(Arc::clone(&requests))))?;
        let metrics = Metrics {
            requests,
            authorization: Slots::register(&registry, authorization, Decision::ALL.len())?,
            upstream_requests: Slots::register(
                &registry,
                upstream_requests,
                UpstreamResult::ALL.len(),
            )?,
            upstream_duration: Slots::register(
                &registry,
                upstream_duration,
                UpstreamResult::ALL.len(),
            )?,
            key_operations: Slots::register(
                &registry,
                key_operations,
                KeyOperation::ALL.len() * KeyOutcome::ALL.len(),
            )?,
            upstream_connections_opened,
            registry,
        };
        metrics.registry.register(Box::new(build_info))?;
        metrics
            .registry
            .register(Box::new(LogCollector::new(crate::logging::lines_dropped)?))?;
        Ok(metrics)
    }

    /// Counts one authentication outcome and its duration.
    pub fn observe_auth(&self, method: AuthMethod, reason: Reason, seconds: f64) {
        let slot = method.index() * Reason::ALL.len() + reason.index();
        self.requests.observe_auth(slot, method.index(), seconds);
    }

    /// Counts one authorization decision.
    pub fn observe_authorization(&self, allowed: bool) {
        let decision = Decision::of(allowed);
        self.authorization
            .get(decision.index(), || [decision.as_str()])
            .inc();
    }

    /// Counts one finished HTTP request.
    pub fn observe_http(&self, method: &Method, route: usize, status: StatusCode, seconds: f64) {
        let method = HttpMethod::of(method);
        let route_method = route * HttpMethod::ALL.len() + method.index();
        let slot = CACHED_STATUSES
            .iter()
            .position(|&s| s == status.as_u16())
            .map(|s| route_method * CACHED_STATUSES.len() + s);
        self.requests.observe_http(
            slot,
            || [method.as_str(), template_of(route), status.as_str()],
            route_method,
            seconds,
        );
    }

    /// Counts one request forwarded to the upstream and the time until its response headers
    /// (or the failure).
    pub fn observe_upstream(&self, result: UpstreamResult, seconds: f64) {
        let labels = || [result.as_str()];
        self.upstream_requests.get(result.index(), labels).inc();
        self.upstream_duration
            .get(result.index(), labels)
            .observe(seconds);
    }

    /// The counter of connections opened to the upstream, for the proxy's connector.
    pub fn upstream_connections_opened(&self) -> IntCounter {
        self.upstream_connections_opened.clone()
    }

    /// Counts one user-management operation.
    pub fn observe_key_operation(&self, op: KeyOperation, outcome: KeyOutcome) {
        self.key_operations
            .get(op.index() * KeyOutcome::ALL.len() + outcome.index(), || {
                [op.as_str(), outcome.as_str()]
            })
            .inc();
    }

    /// Registers the OpenID Connect metrics (only when OIDC is on).
    pub fn register_oidc(&self, stats: Arc<OidcStats>) -> Result<(), prometheus::Error> {
        self.registry.register(Box::new(OidcCollector::new(stats)?))
    }

    /// Registers `portcullis_db_users`, read from the counts `keys` publishes.
    pub fn register_db_users(&self, keys: KeyRegistryHandle) -> Result<(), prometheus::Error> {
        if keys.sync_stats().is_some() {
            self.registry
                .register(Box::new(scraped::UserSyncCollector::new(keys.clone())?))?;
        }
        self.registry
            .register(Box::new(DbUsersCollector::new(keys)?))
    }

    /// Registers the failure throttle's table metrics (only when the throttle is on).
    pub fn register_throttle(
        &self,
        throttle: Arc<portcullis_auth::throttle::FailureThrottle>,
    ) -> Result<(), prometheus::Error> {
        self.registry
            .register(Box::new(ThrottleCollector::new(throttle)?))
    }

    /// Registers the TLS reload counter and certificate expiry gauge (server/src/tls/).
    pub fn register_tls(&self, tls: &crate::tls::Tls) -> Result<(), prometheus::Error> {
        tls.register(&self.registry)
    }

    /// Registers the configuration reload metrics (`crate::reload`).
    pub fn register_reloads(
        &self,
    ) -> Result<crate::reload::metrics::ReloadMetrics, prometheus::Error> {
        crate::reload::metrics::ReloadMetrics::register(&self.registry)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render().expect("render")).expect("utf-8")
    }

    #[test]
    fn exports_oidc_stats_with_closed_labels() {
        let m = Metrics::new().expect("metrics");
        let stats = Arc::new(OidcStats::new(std::time::Duration::from_secs(300)));
        m.register_oidc(stats).expect("register");
        let t = text(&m);
        for line in [
            r#"portcullis_jwks_fetch_total{result="success",trigger="startup"} 0"#,
            r#"portcullis_jwks_fetch_total{result="timeout",trigger="kid_miss"} 0"#,
            "portcullis_jwks_keys 0",
            "portcullis_jwks_last_success_timestamp_seconds 0",
            "portcullis_jwks_stale 1",
            "portcullis_jwks_refetch_suppressed_total 0",
            "portcullis_token_cache_hits_total 0",
            "portcullis_token_cache_misses_total 0",
        ] {
            assert!(t.contains(line), "{line} missing from\n{t}");
        }
        assert_eq!(t.matches("portcullis_jwks_fetch_total{").count(), 24);
    }

    #[test]
    fn counts_auth_outcomes_with_closed_labels() {
        let m = Metrics::new().expect("metrics");
        m.observe_auth(AuthMethod::ApiKeyStatic, Reason::Ok, 1e-6);
        m.observe_auth(AuthMethod::ApiKeyStatic, Reason::Ok, 1e-6);
        m.observe_auth(AuthMethod::None, Reason::Missing, 1e-6);
        let t = text(&m);
        assert!(t.contains(
            r#"portcullis_auth_requests_total{method="apikey_static",reason="ok",result="accept"} 2"#
        ));
        assert!(t.contains(
            r#"portcullis_auth_requests_total{method="none",reason="missing",result="deny"} 1"#
        ));
        assert!(t.contains(r#"portcullis_build_info{version=""#));
        assert!(t.contains("# TYPE portcullis_log_lines_dropped_total counter"));
        assert!(t.contains("portcullis_log_lines_dropped_total 0"));
    }

    #[actix_web::test]
    async fn reads_db_user_counts_at_scrape_and_counts_key_operations() {
        let settings = portcullis_config::Settings::from_vars([
            ("AUTHENTICATION_APIKEY_ENABLED", "true"),
            (
                "AUTHENTICATION_APIKEY_ALLOWED_KEYS",
                "pk-a-6e1f0c2b9d37a845",
            ),
            ("AUTHENTICATION_APIKEY_USERS", "a"),
        ])
        .expect("settings");
        let keys = crate::start_key_registry(&settings)
            .await
            .expect("key registry");
        let m = Metrics::new().expect("metrics");
        m.register_db_users(keys).expect("register");
        m.observe_key_operation(KeyOperation::Rotate, KeyOutcome::Ok);
        m.observe_key_operation(KeyOperation::Delete, KeyOutcome::Rejected);
        m.observe_key_operation(KeyOperation::Delete, KeyOutcome::Rejected);
        let t = text(&m);
        for line in [
            "# HELP portcullis_db_users Database users by state.",
            "# TYPE portcullis_db_users gauge",
            r#"portcullis_db_users{state="active"} 0"#,
            r#"portcullis_db_users{state="inactive"} 0"#,
            "# TYPE portcullis_key_operations_total counter",
            r#"portcullis_key_operations_total{op="rotate",result="ok"} 1"#,
            r#"portcullis_key_operations_total{op="delete",result="rejected"} 2"#,
        ] {
            assert!(t.contains(line), "{line} missing from\n{t}");
        }
    }

    #[test]
    fn every_cached_status_has_its_own_label() {
        for (status, label) in CACHED_STATUSES.iter().zip(CACHED_STATUS_LABELS) {
            assert_eq!(status.to_string(), label);
        }
        let slots = ROUTE_SLOTS * HttpMethod::ALL.len();
        assert_eq!(route_method_of(0), (template_of(0), "GET"));
        assert_eq!(route_method_of(slots - 1).0, "unrouted");
    }

    #[test]
    fn sums_every_thread_and_keeps_the_counts_of_threads_that_ended() {
        let m = Arc::new(Metrics::new().expect("metrics"));
        let other = Metrics::new().expect("another server's metrics");
        m.observe_auth(AuthMethod::Anonymous, Reason::Ok, 2e-6);
        other.observe_auth(AuthMethod::Anonymous, Reason::Ok, 2e-6);
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        m.observe_auth(AuthMethod::Anonymous, Reason::Ok, 2e-6);
                        m.observe_http(&Method::GET, 4, StatusCode::OK, 3e-5);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
        m.observe_http(&Method::GET, 4, StatusCode::OK, 2.0);
        let t = text(&m);
        for line in [
            r#"portcullis_auth_requests_total{method="anonymous",reason="ok",result="accept"} 31"#,
            r#"portcullis_auth_duration_seconds_bucket{method="anonymous",le="0.000001"} 0"#,
            r#"portcullis_auth_duration_seconds_bucket{method="anonymous",le="0.0000025"} 31"#,
            r#"portcullis_auth_duration_seconds_bucket{method="anonymous",le="+Inf"} 31"#,
            r#"portcullis_auth_duration_seconds_count{method="anonymous"} 31"#,
            r#"portcullis_http_requests_total{method="GET",route="/v1/meta",status="200"} 31"#,
            r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/v1/meta",le="0.000025"} 0"#,
            r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/v1/meta",le="0.00005"} 30"#,
            r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/v1/meta",le="1"} 30"#,
            r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/v1/meta",le="2.5"} 31"#,
            r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/v1/meta",le="+Inf"} 31"#,
            r#"portcullis_http_request_duration_seconds_count{method="GET",route="/v1/meta"} 31"#,
            "# TYPE portcullis_http_request_duration_seconds histogram",
            "# TYPE portcullis_auth_requests_total counter",
        ] {
            assert!(t.contains(line), "{line} missing from\n{t}");
        }
        let sum = t
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    r#"portcullis_http_request_duration_seconds_sum{method="GET",route="/v1/meta"} "#,
                )
            })
            .expect("a sum");
        let sum: f64 = sum.parse().expect("a number");
        assert!((sum - (2.0 + 30.0 * 3e-5)).abs() < 1e-9, "{sum}");
        // The other instance counted its own observation only.
        assert!(text(&other).contains(
            r#"portcullis_auth_requests_total{method="anonymous",reason="ok",result="accept"} 1"#
        ));
    }

    #[test]
    fn counts_http_requests_by_template_and_uncached_status() {
        let m = Metrics::new().expect("metrics");
        m.observe_http(&Method::GET, 4, StatusCode::OK, 1e-4);
        m.observe_http(&Method::GET, 4, StatusCode::IM_A_TEAPOT, 1e-4);
        let t = text(&m);
        assert!(t.contains(
            r#"portcullis_http_requests_total{method="GET",route="/v1/meta",status="200"} 1"#
        ));
        assert!(t.contains(
            r#"portcullis_http_requests_total{method="GET",route="/v1/meta",status="418"} 1"#
        ));
        assert!(t.contains(
            r#"portcullis_http_request_duration_seconds_count{method="GET",route="/v1/meta"} 2"#
        ));
    }
}
