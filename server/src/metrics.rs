//! Prometheus metrics, registered once on their own registry and served on their own port.
//!
//! Label values come only from closed sets (auth methods, reasons, route templates, a fixed
//! list of HTTP methods, status codes). Series are created on first use and then cached in
//! fixed slots, so the request path does no label hashing after warm-up.

use std::sync::OnceLock;

use actix_web::http::{Method, StatusCode};
use portcullis_auth::{AuthMethod, Reason};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::route_table::{template_of, ROUTE_SLOTS};

/// HTTP method label values.
const HTTP_METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];

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
    2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0,
    2.5, 10.0,
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
        })
    }

    /// Counts one authentication outcome and its duration.
    pub fn observe_auth(&self, method: AuthMethod, reason: Reason, seconds: f64) {
        let slot = method.index() * Reason::ALL.len() + reason.index();
        self.auth_request_slots[slot]
            .get_or_init(|| {
                self.auth_requests
                    .with_label_values(&[method.as_str(), reason.result(), reason.as_str()])
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

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render().expect("render")).expect("utf-8")
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
