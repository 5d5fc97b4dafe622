//! Prometheus metrics, registered once on their own registry and served on their own port.
//!
//! Label values come only from closed sets (auth methods, reasons, route templates, a fixed
//! list of HTTP methods, status codes). Series are created on first use and then cached in
//! fixed slots, so the request path does no label hashing after warm-up.

use std::sync::OnceLock;

use actix_web::http::{Method, StatusCode};
use portcullis_auth::{AuthMethod, Reason};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::gate::route_table::{template_of, ROUTE_SLOTS};
use crate::proxy::UpstreamResult;
use portcullis_auth::oidc::{FetchResult, FetchTrigger, OidcStats};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntGauge};
use std::sync::{Arc, Mutex};

/// HTTP method label values.
const HTTP_METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

/// Status codes that get a cached slot; others are looked up by label each time.
const CACHED_STATUSES: [u16; 16] = [
    200, 201, 204, 301, 400, 401, 403, 404, 405, 409, 413, 422, 500, 502, 503, 504,
];

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

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// All of the server's metrics.
pub struct Metrics {
    registry: Registry,
    auth_requests: IntCounterVec,
    auth_request_slots: Vec<OnceLock<IntCounter>>,
    auth_duration: HistogramVec,
    auth_duration_slots: Vec<OnceLock<Histogram>>,
    authorization: IntCounterVec,
    authorization_slots: [OnceLock<IntCounter>; 2],
    http_requests: IntCounterVec,
    http_request_slots: Vec<OnceLock<IntCounter>>,
    http_duration: HistogramVec,
    http_duration_slots: Vec<OnceLock<Histogram>>,
    upstream_requests: IntCounterVec,
    upstream_duration: HistogramVec,
    upstream_slots: Vec<OnceLock<(IntCounter, Histogram)>>,
}

fn slots<T>(n: usize) -> Vec<OnceLock<T>> {
    (0..n).map(|_| OnceLock::new()).collect()
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let auth_requests = IntCounterVec::new(
            Opts::new(
                "portcullis_auth_requests_total",
                "Authentication outcomes by method, result and reason.",
            ),
            &["method", "result", "reason"],
        )?;
        let auth_duration = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_auth_duration_seconds",
                "Time spent authenticating a request, by method.",
            )
            .buckets(AUTH_BUCKETS.to_vec()),
            &["method"],
        )?;
        let authorization = IntCounterVec::new(
            Opts::new(
                "portcullis_authorization_total",
                "Authorization decisions on routes that check a verb.",
            ),
            &["result"],
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "portcullis_http_requests_total",
                "HTTP requests by method, route template and status.",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_http_request_duration_seconds",
                "HTTP request latency by method and route template.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route"],
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
        let build_info = IntGaugeVec::new(
            Opts::new("portcullis_build_info", "Build information; always 1."),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        registry.register(Box::new(auth_requests.clone()))?;
        registry.register(Box::new(auth_duration.clone()))?;
        registry.register(Box::new(authorization.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(upstream_requests.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(build_info))?;

        Ok(Metrics {
            registry,
            auth_requests,
            auth_request_slots: slots(AuthMethod::ALL.len() * Reason::ALL.len()),
            auth_duration,
            auth_duration_slots: slots(AuthMethod::ALL.len()),
            authorization,
            authorization_slots: [OnceLock::new(), OnceLock::new()],
            http_requests,
            http_request_slots: slots(ROUTE_SLOTS * HTTP_METHODS.len() * CACHED_STATUSES.len()),
            http_duration,
            http_duration_slots: slots(ROUTE_SLOTS * HTTP_METHODS.len()),
            upstream_requests,
            upstream_duration,
            upstream_slots: slots(UpstreamResult::ALL.len()),
        })
    }

    /// Counts one authentication outcome and its duration.
    pub fn observe_auth(&self, method: AuthMethod, reason: Reason, seconds: f64) {
        let slot = method.index() * Reason::ALL.len() + reason.index();
        self.auth_request_slots[slot]
            .get_or_init(|| {
                self.auth_requests.with_label_values(&[
                    method.as_str(),
                    reason.result(),
                    reason.as_str(),
                ])
            })
            .inc();
        self.auth_duration_slots[method.index()]
            .get_or_init(|| self.auth_duration.with_label_values(&[method.as_str()]))
            .observe(seconds);
    }

    /// Counts one authorization decision.
    pub fn observe_authorization(&self, allowed: bool) {
        let (i, label) = if allowed { (0, "allow") } else { (1, "deny") };
        self.authorization_slots[i]
            .get_or_init(|| self.authorization.with_label_values(&[label]))
            .inc();
    }

    /// Counts one finished HTTP request.
    pub fn observe_http(&self, method: &Method, route: usize, status: StatusCode, seconds: f64) {
        let m = method_index(method);
        let method_label = HTTP_METHODS[m];
        let route_label = template_of(route);
        match CACHED_STATUSES.iter().position(|&s| s == status.as_u16()) {
            Some(s) => {
                let slot = (route * HTTP_METHODS.len() + m) * CACHED_STATUSES.len() + s;
                self.http_request_slots[slot]
                    .get_or_init(|| {
                        self.http_requests.with_label_values(&[
                            method_label,
                            route_label,
                            status.as_str(),
                        ])
                    })
                    .inc();
            }
            None => self
                .http_requests
                .with_label_values(&[method_label, route_label, status.as_str()])
                .inc(),
        }
        self.http_duration_slots[route * HTTP_METHODS.len() + m]
            .get_or_init(|| {
                self.http_duration
                    .with_label_values(&[method_label, route_label])
            })
            .observe(seconds);
    }

    /// Counts one request forwarded to the upstream and the time until its response headers
    /// (or the failure).
    pub fn observe_upstream(&self, result: UpstreamResult, seconds: f64) {
        let (count, duration) = self.upstream_slots[result.index()].get_or_init(|| {
            let label = [result.as_str()];
            (
                self.upstream_requests.with_label_values(&label),
                self.upstream_duration.with_label_values(&label),
            )
        });
        count.inc();
        duration.observe(seconds);
    }

    /// The registry, for metrics that other modules own and register themselves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// Exports the OpenID Connect machinery's counters and gauges, read from
/// [`OidcStats`] at each scrape. Labels come from the closed `trigger` and `result` sets;
/// never an issuer, a `kid` or a token.
pub struct OidcCollector {
    stats: Arc<OidcStats>,
    fetches: IntCounterVec,
    keys: IntGauge,
    last_success: Gauge,
    stale: IntGauge,
    refetch_suppressed: IntCounter,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    descs: Vec<Desc>,
    // Counters are advanced by the difference since the last scrape; one scrape at a time.
    sync: Mutex<()>,
}

impl OidcCollector {
    /// A collector over `stats`, with every `trigger` x `result` series present from the start.
    pub fn new(stats: Arc<OidcStats>) -> Result<Self, prometheus::Error> {
        let fetches = IntCounterVec::new(
            Opts::new(
                "portcullis_jwks_fetch_total",
                "Issuer key fetches (discovery when needed, then the JWKS), by trigger and result.",
            ),
            &["trigger", "result"],
        )?;
        for trigger in FetchTrigger::ALL {
            for result in FetchResult::ALL {
                fetches.with_label_values(&[trigger.as_str(), result.as_str()]);
            }
        }
        let keys = IntGauge::new(
            "portcullis_jwks_keys",
            "Usable signing keys in the published key set.",
        )?;
        let last_success = Gauge::new(
            "portcullis_jwks_last_success_timestamp_seconds",
            "Unix time of the last successful key fetch (0 before the first).",
        )?;
        let stale = IntGauge::new(
            "portcullis_jwks_stale",
            "1 when the keys may be out of date: none loaded yet, the last fetch failed, or older than the refresh interval.",
        )?;
        let refetch_suppressed = IntCounter::new(
            "portcullis_jwks_refetch_suppressed_total",
            "Refetches asked for by unknown kids that started no fetch (cooldown, negative cache, or one already running).",
        )?;
        let cache_hits = IntCounter::new(
            "portcullis_token_cache_hits_total",
            "OIDC tokens answered from the verified-token cache.",
        )?;
        let cache_misses = IntCounter::new(
            "portcullis_token_cache_misses_total",
            "OIDC tokens that had to be verified.",
        )?;
        let descs = [
            fetches.desc(),
            keys.desc(),
            last_success.desc(),
            stale.desc(),
            refetch_suppressed.desc(),
            cache_hits.desc(),
            cache_misses.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Ok(OidcCollector {
            stats,
            fetches,
            keys,
            last_success,
            stale,
            refetch_suppressed,
            cache_hits,
            cache_misses,
            descs,
            sync: Mutex::new(()),
        })
    }

    fn advance(counter: &IntCounter, total: u64) {
        counter.inc_by(total.saturating_sub(counter.get()));
    }

    fn sync(&self) {
        let _one_at_a_time = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        let stats = &self.stats;
        for trigger in FetchTrigger::ALL {
            for result in FetchResult::ALL {
                let counter = self
                    .fetches
                    .with_label_values(&[trigger.as_str(), result.as_str()]);
                Self::advance(&counter, stats.fetches(trigger, result));
            }
        }
        self.keys
            .set(i64::try_from(stats.keys()).unwrap_or(i64::MAX));
        self.last_success
            .set(stats.last_success_timestamp().unwrap_or(0.0));
        self.stale.set(i64::from(stats.stale()));
        Self::advance(&self.refetch_suppressed, stats.refetch_suppressed());
        Self::advance(&self.cache_hits, stats.cache_hits());
        Self::advance(&self.cache_misses, stats.cache_misses());
    }
}

impl Collector for OidcCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.sync();
        let mut families = self.fetches.collect();
        families.extend(self.keys.collect());
        families.extend(self.last_success.collect());
        families.extend(self.stale.collect());
        families.extend(self.refetch_suppressed.collect());
        families.extend(self.cache_hits.collect());
        families.extend(self.cache_misses.collect());
        families
    }
}

impl Metrics {
    /// Registers the OpenID Connect metrics (only when OIDC is on).
    pub fn register_oidc(&self, stats: Arc<OidcStats>) -> Result<(), prometheus::Error> {
        self.registry.register(Box::new(OidcCollector::new(stats)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
