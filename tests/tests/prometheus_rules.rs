//! The alerting and recording rules in `deploy/prometheus/`: `promtool check rules` accepts
//! every file, `promtool test rules` passes every unit test, and every metric a rule reads is
//! one the real binary exports (so a renamed metric cannot leave an alert that never fires).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portcullis_config::vars;
use portcullis_testkit::{FaultIssuer, TestKey};
use portcullis_tests::oidc_support::{oidc_server, with_api_key, API_KEY};
use portcullis_tests::{client, Server};
use tokio::process::Command;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

fn files_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {suffix} files in {}", dir.display());
    files
}

async fn promtool(args: &[&str], files: &[PathBuf], cwd: &Path) {
    let output = Command::new("promtool")
        .args(args)
        .args(files)
        .current_dir(cwd)
        .output()
        .await
        .expect("promtool runs (tests/run installs it: Debian package prometheus)");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let dir = rules_dir();
    promtool(&["check", "rules"], &files_in(&dir, ".rules.yml"), &dir).await;
    let tests = dir.join("tests");
    promtool(&["test", "rules"], &files_in(&tests, ".test.yml"), &tests).await;
}

/// Every `portcullis_...` name in `text` (recording rules are named `portcullis:...`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("portcullis_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The families of an exposition, with their histogram and summary series names.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(family) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = family.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// A server with every optional family present: OIDC on, proxy mode (the upstream is down),
/// the admin list on, and traffic that touches each family once.
async fn server_with_every_family(issuer: &FaultIssuer) -> Server {
    let server = with_api_key(oidc_server(&issuer.url()))
        .env(vars::UPSTREAM_URL, "http://127.0.0.1:9")
        .env(vars::UPSTREAM_TIMEOUT, "1s")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(
            vars::ADMINLIST_USERS,
            portcullis_tests::oidc_support::API_KEY_USER,
        )
        .start()
        .await;
    let http = client();
    let bearer = format!("Bearer {API_KEY}");
    for (method, path) in [
        ("GET", "/v1/meta"),
        ("GET", "/v1/schema"),
        ("POST", "/v1/users/db/nobody/rotate-key"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        http.request(method, server.url(path))
            .header("authorization", &bearer)
            .send()
            .await
            .expect("request");
    }
    http.get(server.url("/v1/meta"))
        .header("authorization", "Bearer wrong-key")
        .send()
        .await
        .expect("request");
    server
}

/// The metrics of a server with TLS on (a self-signed certificate made here).
async fn tls_server_exposition() -> String {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let server = portcullis_tests::ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::TLS_CERT_FILE, cert.display().to_string())
        .env(vars::TLS_KEY_FILE, key.display().to_string())
        .start()
        .await;
    server.metrics_text().await
}

/// The metrics of a replica sharing users through PostgreSQL (the `portcullis_user_sync_*`
/// families exist only then); the store is unreachable here, which a replica starts through.
async fn replica_exposition() -> String {
    let unreachable = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let server = portcullis_tests::ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, API_KEY)
        .env(vars::APIKEY_USERS, "root")
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::UPSTREAM_URL, "http://127.0.0.1:9")
        .env(
            vars::USER_STORE_URL,
            format!("postgres://portcullis@127.0.0.1:{unreachable}/none"),
        )
        .env(vars::KEY_REVOCATION_BOUND, "200ms")
        .start()
        .await;
    server.metrics_text().await
}

#[tokio::test]
async fn every_metric_a_rule_reads_is_exported() {
    let key = TestKey::rsa_a();
    let issuer = FaultIssuer::start(&[&key]).await;
    let server = server_with_every_family(&issuer).await;
    let exposition = server.metrics_text().await;
    let mut exported = exported(&exposition);
    // TLS's families exist only with TLS on.
    exported.extend(self::exported(&tls_server_exposition().await));
    // The replicas' families exist only with the shared user store.
    exported.extend(self::exported(&replica_exposition().await));
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"))
            .unwrap();

    let mut read = BTreeSet::new();
    for file in files_in(&rules_dir(), ".rules.yml") {
        read.extend(metric_names(&std::fs::read_to_string(&file).unwrap()));
    }
    assert!(read.len() >= 8, "the rules read {read:?}");
    let missing: Vec<_> = read.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "rules read metrics the binary does not export: {missing:?}\nexported: {exported:?}"
    );
    for name in &read {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| exported.contains(*f)))
            .unwrap_or(name);
        assert!(docs.contains(family), "{family} is not in docs/metrics.md");
    }
}
