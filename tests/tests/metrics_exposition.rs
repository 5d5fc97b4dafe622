//! The metrics exposition after real traffic passes `promtool check metrics` (its parser and
//! its linter: HELP and TYPE for every family, counter and unit naming).

use std::path::PathBuf;
use std::process::Stdio;

use portcullis_config::vars;
use portcullis_tests::{client, metric_value, Server, ServerBuilder};
use reqwest::header::AUTHORIZATION;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Looked up on `PATH`, wherever it is installed.
const PROMTOOL: &str = "promtool";

/// The first `PATH` entry holding a file named `name`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

const ADMIN_KEY: &str = "pk-root-41d7b2e09c3f8a65";
const READER_KEY: &str = "pk-reader-e6a03f9c17b2d854";
const UNKNOWN_KEY: &str = "pk-nobody-2c8e5a1f0b7d3946";

/// Keys for an admin and a read-only user, anonymous on, the admin list on.
async fn busy_server() -> Server {
    ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            vars::APIKEY_ALLOWED_KEYS,
            format!("{ADMIN_KEY},{READER_KEY}"),
        )
        .env(vars::APIKEY_USERS, "root,reader")
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "root")
        .env(vars::ADMINLIST_READONLY_USERS, "reader")
        .start()
        .await
}

/// Sends accepted, denied, anonymous, malformed, forbidden and public requests, and returns
/// how many went through authentication.
async fn exercise(server: &Server) -> f64 {
    let http = client();
    let bearer = |key: &str| format!("Bearer {key}");
    let requests: Vec<(reqwest::Method, &str, Option<String>, u16)> = vec![
        (
            reqwest::Method::GET,
            "/v1/meta",
            Some(bearer(ADMIN_KEY)),
            200,
        ),
        // The embedded store answers: 422 for an object without a class, 200 for a listing.
        (
            reqwest::Method::POST,
            "/v1/objects",
            Some(bearer(ADMIN_KEY)),
            422,
        ),
        (
            reqwest::Method::GET,
            "/v1/objects",
            Some(bearer(READER_KEY)),
            200,
        ),
        (
            reqwest::Method::DELETE,
            "/v1/objects/x",
            Some(bearer(READER_KEY)),
            403,
        ),
        (
            reqwest::Method::GET,
            "/v1/meta",
            Some(bearer(UNKNOWN_KEY)),
            401,
        ),
        (reqwest::Method::GET, "/v1/meta", None, 200),
        (reqwest::Method::GET, "/v1/users/own-info", None, 401),
        (
            reqwest::Method::GET,
            "/v1/meta",
            Some("Bearer".to_owned()),
            400,
        ),
        (reqwest::Method::GET, "/elsewhere", None, 404),
        (reqwest::Method::GET, "/v1/.well-known/live", None, 200),
        (reqwest::Method::GET, "/v1/.well-known/ready", None, 200),
    ];
    let mut authenticated = 0.0;
    for (method, path, authorization, status) in requests {
        let mut request = http.request(method.clone(), server.url(path));
        if method == reqwest::Method::POST {
            request = request.json(&serde_json::json!({}));
        }
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(reqwest::Error::without_url)
            .expect("request sent");
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        if !path.starts_with("/v1/.well-known/") {
            authenticated += 1.0;
        }
    }
    authenticated
}

#[tokio::test]
async fn exposition_passes_promtool_check_metrics() {
    // Checked first, so that its absence fails in a second with the fix, not after the traffic.
    let promtool_path = on_path(PROMTOOL).unwrap_or_else(|| {
        panic!(
            "`{PROMTOOL}` is not on PATH: run the suite with `tests/run`, which installs it \
             (Debian package `prometheus`)"
        )
    });
    let server = busy_server().await;
    let authenticated = exercise(&server).await;
    let text = server.metrics_text().await;

    // The traffic is there to be checked: accepts, denies and anonymous, authorization both
    // ways, and latency histograms.
    assert_eq!(
        metric_value(&text, "portcullis_auth_requests_total", &[]),
        authenticated
    );
    for (labels, expected) in [
        (
            &[("method", "apikey_static"), ("result", "accept")][..],
            4.0,
        ),
        (
            &[("method", "apikey_static"), ("reason", "invalid_key")][..],
            1.0,
        ),
        (&[("method", "anonymous"), ("result", "accept")][..], 3.0),
        (&[("method", "none"), ("reason", "malformed")][..], 1.0),
    ] {
        assert_eq!(
            metric_value(&text, "portcullis_auth_requests_total", labels),
            expected,
            "{labels:?}"
        );
    }
    assert_eq!(
        metric_value(
            &text,
            "portcullis_authorization_total",
            &[("result", "allow")]
        ),
        2.0
    );
    assert_eq!(
        metric_value(
            &text,
            "portcullis_authorization_total",
            &[("result", "deny")]
        ),
        1.0
    );
    for histogram in [
        "portcullis_auth_duration_seconds_count",
        "portcullis_http_request_duration_seconds_count",
    ] {
        assert!(metric_value(&text, histogram, &[]) > 0.0, "{histogram}");
    }
    assert!(!text.contains(ADMIN_KEY) && !text.contains(READER_KEY) && !text.contains(UNKNOWN_KEY));

    let mut promtool = Command::new(&promtool_path)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {} ({err})", promtool_path.display()));
    let mut stdin = promtool.stdin.take().expect("promtool stdin");
    stdin
        .write_all(text.as_bytes())
        .await
        .expect("exposition written to promtool");
    drop(stdin);
    let output = promtool
        .wait_with_output()
        .await
        .expect("promtool finished");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.is_empty() && stderr.is_empty(),
        "promtool check metrics: {}\nstdout: {stdout}\nstderr: {stderr}\nexposition:\n{text}",
        output.status
    );
}

#[tokio::test]
async fn metrics_are_served_with_the_text_format_content_type_on_their_own_port_only() {
    let server = busy_server().await;
    let metrics = server.metrics.expect("metrics enabled");
    let response = client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .expect("metrics reachable");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = response.text().await.expect("metrics text");
    assert!(
        body.contains("# TYPE portcullis_build_info gauge"),
        "{body}"
    );
    assert_eq!(
        metric_value(
            &body,
            "portcullis_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // The API port does not serve them: with an admin key it is an unknown path.
    let api = client()
        .get(server.url("/metrics"))
        .header(AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .expect("API reachable");
    assert_eq!(api.status(), 404);
}

#[tokio::test]
async fn metrics_can_be_switched_off() {
    let server = ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::PROMETHEUS_MONITORING_ENABLED, "false")
        .start()
        .await;
    assert_eq!(server.metrics, None);
    assert!(
        !server
            .stdout()
            .iter()
            .any(|l| l.starts_with("metrics listening")),
        "{:?}",
        server.stdout()
    );
    let live = client()
        .get(server.url("/v1/.well-known/live"))
        .send()
        .await
        .expect("API reachable");
    assert_eq!(live.status(), 200);
}
