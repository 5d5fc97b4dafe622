//! What the OIDC suites share: a server configured for OpenID Connect against an issuer,
//! requests with a bearer token, the assertions on Portcullis' OIDC answers (503 with
//! `Retry-After`, an accepted principal; the 401 is `assert::assert_invalid_token`), polling
//! with a deadline, and the outcome counted in `portcullis_auth_requests_total`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use portcullis_config::vars;
use portcullis_testkit::{poll_every, CLIENT_ID, GROUPS_CLAIM, USERNAME_CLAIM};
use serde_json::{json, Value};

use crate::{metric_value, RawResponse, Server, ServerBuilder};

/// How often the e2e waits look again: each look is a request to the server.
const EVERY: Duration = Duration::from_millis(50);

/// The static API key the suites configure next to OIDC.
pub const API_KEY: &str = "oidc-suite-static-key-8c1f2e9a";
/// The user of [`API_KEY`].
pub const API_KEY_USER: &str = "api-user";
/// The own-info route every suite authenticates against.
pub const OWN_INFO: &str = "/v1/users/own-info";

/// A server with OIDC on against `issuer`, the suites' client id and claims, and the given
/// extra variables (the `PORTCULLIS_OIDC_*` timings a test needs).
pub fn oidc_server(issuer: &str) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::OIDC_ENABLED, "true")
        .env(vars::OIDC_ISSUER, issuer)
        .env(vars::OIDC_CLIENT_ID, CLIENT_ID)
        .env(vars::OIDC_USERNAME_CLAIM, USERNAME_CLAIM)
        .env(vars::OIDC_GROUPS_CLAIM, GROUPS_CLAIM)
}

/// Adds a static API key ([`API_KEY`] for [`API_KEY_USER`]).
pub fn with_api_key(builder: ServerBuilder) -> ServerBuilder {
    builder
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, API_KEY)
        .env(vars::APIKEY_USERS, API_KEY_USER)
}

/// `GET /v1/users/own-info` with `Authorization: Bearer <token>`, over a raw connection (so
/// that any token bytes go out exactly as given).
pub async fn own_info(server: &Server, token: &str) -> RawResponse {
    let header = format!("Authorization: Bearer {token}");
    server.raw("GET", OWN_INFO, &[header.as_bytes()]).await
}

/// [`own_info`] that must answer within `bound`; returns the response and how long it took.
pub async fn own_info_within(
    server: &Server,
    token: &str,
    bound: Duration,
) -> (RawResponse, Duration) {
    let started = Instant::now();
    match tokio::time::timeout(bound, own_info(server, token)).await {
        Ok(response) => (response, started.elapsed()),
        Err(_) => panic!("a request with a bearer token hung for more than {bound:?}"),
    }
}

fn body_text(response: &RawResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// A 503 because no issuer keys are available: `{"code":503,"message":...}` and a
/// `Retry-After` in seconds.
pub fn assert_unavailable(response: &RawResponse, what: &str) {
    assert_eq!(
        response.status,
        503,
        "{what}: expected 503, body {}",
        body_text(response)
    );
    let body = response.json();
    assert_eq!(body["code"], 503, "{what}: body {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: message in {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "{what}: only code and message in {body}"
    );
    let retry_after = response.header("retry-after");
    assert!(
        retry_after.and_then(|v| v.parse::<u32>().ok()).is_some(),
        "{what}: Retry-After in seconds, got {retry_after:?}"
    );
}

/// A 200 from own-info for `username` with exactly `groups`.
pub fn assert_accepted(response: &RawResponse, username: &str, groups: &[&str], what: &str) {
    assert_eq!(
        response.status,
        200,
        "{what}: expected 200, body {}",
        body_text(response)
    );
    let body = response.json();
    assert_eq!(body["username"], username, "{what}: username in {body}");
    assert_eq!(body["groups"], json!(groups), "{what}: groups in {body}");
}

/// Calls `probe` every 50 ms until it returns Some, or `timeout` passes (None).
pub async fn poll<T, F, Fut>(timeout: Duration, probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_every(EVERY, timeout, probe).await
}

/// Polls own-info with `token` until it answers 200 (the server has loaded the issuer's
/// keys); panics with the last answer after `timeout`.
pub async fn wait_until_accepted(server: &Server, token: &str, timeout: Duration) -> RawResponse {
    let last = RefCell::new(None);
    let last = &last;
    let accepted = poll(timeout, || async move {
        let response = own_info(server, token).await;
        if response.status == 200 {
            return Some(response);
        }
        *last.borrow_mut() = Some(response);
        None
    })
    .await;
    accepted.unwrap_or_else(|| {
        let (status, body) = last
            .borrow()
            .as_ref()
            .map(|r| (r.status, body_text(r)))
            .unwrap_or_default();
        panic!("token not accepted within {timeout:?}; last answer {status} {body}")
    })
}

/// Polls a metric until `accept(value)`; returns the value, or panics after `timeout`.
pub async fn wait_metric(
    server: &Server,
    name: &str,
    labels: &[(&str, &str)],
    timeout: Duration,
    accept: impl Fn(f64) -> bool,
) -> f64 {
    let last = Cell::new(0.0);
    let (last, accept) = (&last, &accept);
    let reached = poll(timeout, || async move {
        last.set(server.metric(name, labels).await);
        accept(last.get()).then_some(last.get())
    })
    .await;
    reached.unwrap_or_else(|| panic!("{name}{labels:?} stayed at {} for {timeout:?}", last.get()))
}

/// One `portcullis_auth_requests_total` series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuthSeries {
    /// `method` label.
    pub method: String,
    /// `result` label.
    pub result: String,
    /// `reason` label.
    pub reason: String,
}

/// The `portcullis_auth_requests_total` counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct AuthCounts(BTreeMap<AuthSeries, f64>);

impl AuthCounts {
    /// Reads the counters from the exposition text.
    pub fn parse(text: &str) -> AuthCounts {
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("portcullis_auth_requests_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let mut series = AuthSeries {
                method: String::new(),
                result: String::new(),
                reason: String::new(),
            };
            for pair in labels.split(',') {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = value.trim_matches('"').to_owned();
                match name {
                    "method" => series.method = value,
                    "result" => series.result = value,
                    "reason" => series.reason = value,
                    _ => {}
                }
            }
            counts.insert(series, value.trim().parse().unwrap_or(0.0));
        }
        AuthCounts(counts)
    }

    /// Reads the counters from a server.
    pub async fn read(server: &Server) -> AuthCounts {
        AuthCounts::parse(&server.metrics_text().await)
    }

    /// The series that grew since `before`, with how much.
    pub fn grown_since(&self, before: &AuthCounts) -> Vec<(AuthSeries, f64)> {
        self.0
            .iter()
            .filter_map(|(series, value)| {
                let was = before.0.get(series).copied().unwrap_or(0.0);
                (*value > was).then(|| (series.clone(), value - was))
            })
            .collect()
    }
}

/// The one outcome counted since `before` (asserts exactly one request was counted).
pub async fn counted_outcome(server: &Server, before: &AuthCounts, what: &str) -> AuthSeries {
    let grown = AuthCounts::read(server).await.grown_since(before);
    match grown.as_slice() {
        [(series, delta)] if *delta == 1.0 => series.clone(),
        _ => panic!(
            "{what}: expected one request counted in portcullis_auth_requests_total, got {grown:?}"
        ),
    }
}

/// The JSON of a raw response, or Null when it is not JSON.
pub fn json_or_null(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

/// The value of `portcullis_jwks_fetch_total` summed over `result`, for one `trigger`.
pub fn fetches(text: &str, trigger: &str) -> f64 {
    metric_value(text, "portcullis_jwks_fetch_total", &[("trigger", trigger)])
}
