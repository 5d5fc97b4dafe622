//! End-to-end tests of TLS on the listeners against the real binary, with certificates each
//! test generates (rcgen): HTTP/1.1 and h2 by ALPN, untrusted and expired certificates,
//! client certificates optional and required, a certificate replaced on disk under an open
//! connection, a broken replacement refused, SIGHUP, a mismatched pair at start-up, gRPC over
//! TLS with tonic, the metrics listener and `portcullis healthcheck`.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_config::vars;
use portcullis_tests::{Server, ServerBuilder};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const LIVE: &str = "/v1/.well-known/live";
const RELOADS: &str = "portcullis_tls_reloads_total";
const EXPIRY: &str = "portcullis_tls_certificate_expiry_timestamp_seconds";

/// A certificate authority that issues the tests' server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// An issued certificate with its key, in PEM, and the certificate's DER.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1, valid from `from` to `until`
    /// (years), with the CA after the leaf in its chain.
    fn server_valid(&self, from: i32, until: i32) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        self.issue(params, true)
    }

    fn server(&self) -> Leaf {
        self.server_valid(2020, 2090)
    }

    fn client(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, false)
    }

    fn issue(&self, params: CertificateParams, chain: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let cert_pem = if chain {
            format!("{}{}", cert.pem(), self.cert.pem())
        } else {
            cert.pem()
        };
        Leaf {
            cert_pem,
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// The certificate and key files a server is given, in a directory of their own.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn new(leaf: &Leaf) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let files = Files {
            cert: dir.path().join("server.crt"),
            key: dir.path().join("server.key"),
            _dir: dir,
        };
        files.write(leaf);
        files
    }

    /// Writes both files in place (the key created 0600), the certificate first.
    fn write(&self, leaf: &Leaf) {
        std::fs::write(&self.cert, &leaf.cert_pem).unwrap();
        write_private(&self.key, &leaf.key_pem);
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.cert.with_file_name(name)
    }
}

fn write_private(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
}

/// A server with anonymous access, TLS from `files` and a fast file poll.
fn tls_server(files: &Files) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::TLS_CERT_FILE, files.cert.display().to_string())
        .env(vars::TLS_KEY_FILE, files.key.display().to_string())
        .env(vars::TLS_RELOAD_INTERVAL, "100ms")
}

fn https(server: &Server, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", server.http.port())
}

/// A reqwest client trusting only `ca`.
fn client_trusting(ca: &Ca) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(10))
}

fn identity(leaf: &Leaf) -> reqwest::Identity {
    reqwest::Identity::from_pem(format!("{}{}", leaf.cert_pem, leaf.key_pem).as_bytes()).unwrap()
}

/// Every message in an error's chain, lower case (rustls' reasons sit deep in reqwest's).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut current = Some(err);
    while let Some(err) = current {
        text.push_str(&err.to_string().to_ascii_lowercase());
        text.push_str(" / ");
        current = err.source();
    }
    text
}

/// The server refused the handshake. In TLS 1.3 the client finishes its side before the server
/// judges its certificate, so the refusal shows either as the server's alert or, when the
/// client is already writing its request, as the connection closing under it.
fn assert_handshake_refused(err: &reqwest::Error) {
    let text = chain(err);
    assert!(
        ["alert", "certificate", "closed", "reset", "broken pipe"]
            .iter()
            .any(|sign| text.contains(sign)),
        "{text}"
    );
}

async fn get_live(client: &reqwest::Client, server: &Server) -> reqwest::Response {
    client.get(https(server, LIVE)).send().await.unwrap()
}

/// A rustls client configuration trusting `ca`, offering `alpn`, with an optional identity.
fn raw_config(ca: &Ca, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// The leaf certificate the server presented on this connection.
fn served_leaf(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One keep-alive HTTP/1.1 request on an open connection: the status and body.
async fn request_on(stream: &mut TlsStream<TcpStream>) -> (u16, String) {
    stream
        .write_all(format!("GET {LIVE} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "connection closed before a whole response");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head[9..12].parse().unwrap();
                return (status, body[..length].to_owned());
            }
        }
    }
}

/// Waits until the metric reaches `at_least`, at most ten seconds.
async fn wait_for_metric(server: &Server, name: &str, labels: &[(&str, &str)], at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = server.metric(name, labels).await;
        if value >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} stayed at {value}, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 1 January of `year`, 00:00 UTC, in Unix seconds (the tests' certificates expire then).
fn not_after_seconds(year: i32) -> f64 {
    let days: i64 = (1970..year)
        .map(|y| {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                366
            } else {
                365
            }
        })
        .sum();
    (days * 86_400) as f64
}

#[tokio::test]
async fn serves_http1_and_h2_by_alpn_with_the_expiry_metric() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server());
    let server = tls_server(&files).start().await;

    let h1 = client_trusting(&ca).http1_only().build().unwrap();
    let response = get_live(&h1, &server).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);

    let h2 = client_trusting(&ca).build().unwrap();
    let response = get_live(&h2, &server).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);

    // What the server selects, offer by offer.
    let both = connect(server.http, raw_config(&ca, &[b"h2", b"http/1.1"])).await;
    assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut h1_only = connect(server.http, raw_config(&ca, &[b"http/1.1"])).await;
    assert_eq!(h1_only.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(request_on(&mut h1_only).await.0, 200);
    let version = h1_only.get_ref().1.protocol_version().unwrap();
    assert!(
        matches!(
            version,
            rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2
        ),
        "{version:?}"
    );

    // Cleartext to the TLS port is not served.
    let plain = portcullis_tests::client()
        .get(server.url(LIVE))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));

    assert_eq!(server.metric(EXPIRY, &[]).await, not_after_seconds(2090));
    assert_eq!(server.metric(RELOADS, &[("result", "applied")]).await, 0.0);
    assert_eq!(server.metric(RELOADS, &[("result", "refused")]).await, 0.0);
    assert!(server
        .metrics_text()
        .await
        .contains(&format!("{RELOADS}{{result=\"refused\"}} 0")));
}

#[tokio::test]
async fn a_tls12_only_client_is_served() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server());
    let server = tls_server(&files).start().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut stream = connect(server.http, Arc::new(config)).await;
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(request_on(&mut stream).await.0, 200);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_issuer_refuses_the_certificate() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server());
    let server = tls_server(&files).start().await;
    let stranger = client_trusting(&Ca::new("another ca")).build().unwrap();
    let err = stranger.get(https(&server, LIVE)).send().await.unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("unknownissuer") || text.contains("unknown issuer"),
        "{text}"
    );
    // The server itself is fine for a client that trusts it.
    let trusting = client_trusting(&ca).build().unwrap();
    assert_eq!(get_live(&trusting, &server).await.status(), 200);
}

#[tokio::test]
async fn an_expired_certificate_is_served_but_refused_by_a_verifying_client() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server_valid(2020, 2021));
    let server = tls_server(&files).start().await;
    let client = client_trusting(&ca).build().unwrap();
    let err = client.get(https(&server, LIVE)).send().await.unwrap_err();
    let text = chain(&err);
    assert!(text.contains("expired"), "{text}");
    // The gauge an expiry alert reads shows the past date.
    assert_eq!(server.metric(EXPIRY, &[]).await, not_after_seconds(2021));
}

#[tokio::test]
async fn optional_client_certificates_are_verified_when_sent() {
    let ca = Ca::new("test ca");
    let clients = Ca::new("client ca");
    let files = Files::new(&ca.server());
    std::fs::write(files.path_of("clients.pem"), clients.pem()).unwrap();
    let server = tls_server(&files)
        .env(
            vars::TLS_CLIENT_CA_FILE,
            files.path_of("clients.pem").display().to_string(),
        )
        .start()
        .await;

    let anonymous = client_trusting(&ca).build().unwrap();
    assert_eq!(get_live(&anonymous, &server).await.status(), 200);
    let known = client_trusting(&ca)
        .identity(identity(&clients.client("alice")))
        .build()
        .unwrap();
    assert_eq!(get_live(&known, &server).await.status(), 200);
    // A certificate from another CA is refused even though none is required.
    let unknown = client_trusting(&ca)
        .identity(identity(&Ca::new("rogue ca").client("mallory")))
        .build()
        .unwrap();
    let err = unknown.get(https(&server, LIVE)).send().await.unwrap_err();
    assert_handshake_refused(&err);
}

#[tokio::test]
async fn required_client_certificates_fail_the_handshake_without_one() {
    let ca = Ca::new("test ca");
    let clients = Ca::new("client ca");
    let files = Files::new(&ca.server());
    std::fs::write(files.path_of("clients.pem"), clients.pem()).unwrap();
    let server = tls_server(&files)
        .env(
            vars::TLS_CLIENT_CA_FILE,
            files.path_of("clients.pem").display().to_string(),
        )
        .env(vars::TLS_CLIENT_AUTH, "require")
        .start()
        .await;

    let anonymous = client_trusting(&ca).build().unwrap();
    let err = anonymous
        .get(https(&server, LIVE))
        .send()
        .await
        .unwrap_err();
    assert_handshake_refused(&err);
    let known = client_trusting(&ca)
        .identity(identity(&clients.client("alice")))
        .build()
        .unwrap();
    assert_eq!(get_live(&known, &server).await.status(), 200);
}

#[tokio::test]
async fn a_replaced_certificate_reaches_new_connections_and_open_ones_keep_working() {
    let ca = Ca::new("test ca");
    let first = ca.server_valid(2020, 2080);
    let files = Files::new(&first);
    let server = tls_server(&files).start().await;
    let config = raw_config(&ca, &[b"http/1.1"]);

    let mut open = connect(server.http, config.clone()).await;
    assert_eq!(served_leaf(&open), first.der);
    assert_eq!(request_on(&mut open).await.0, 200);

    let second = ca.server_valid(2020, 2085);
    files.write(&second);
    wait_for_metric(&server, RELOADS, &[("result", "applied")], 1.0).await;

    // The open connection is not dropped and still answers.
    assert_eq!(request_on(&mut open).await.0, 200);
    assert_eq!(served_leaf(&open), first.der);
    // A client that resumes its session keeps the certificate the session was made with (as
    // TLS has it); a new session gets the new certificate.
    let resumed = connect(server.http, config).await;
    assert_eq!(
        resumed.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    assert_eq!(served_leaf(&resumed), first.der);
    let fresh = connect(server.http, raw_config(&ca, &[b"http/1.1"])).await;
    assert_eq!(served_leaf(&fresh), second.der);
    assert_eq!(server.metric(EXPIRY, &[]).await, not_after_seconds(2085));
    assert_eq!(server.metric(RELOADS, &[("result", "refused")]).await, 0.0);
    assert!(server.stderr().contains("TLS certificate reloaded"));
}

#[tokio::test]
async fn a_broken_replacement_is_refused_and_the_old_certificate_kept() {
    let ca = Ca::new("test ca");
    let first = ca.server();
    let files = Files::new(&first);
    let server = tls_server(&files).start().await;

    // Not PEM at all.
    std::fs::write(&files.cert, "this is not a certificate\n").unwrap();
    wait_for_metric(&server, RELOADS, &[("result", "refused")], 1.0).await;
    // Fresh client configurations: a resumed session would show the old certificate anyway.
    let mut stream = connect(server.http, raw_config(&ca, &[b"http/1.1"])).await;
    assert_eq!(served_leaf(&stream), first.der);
    assert_eq!(request_on(&mut stream).await.0, 200);

    // A valid certificate with a key that is not its own.
    let other = ca.server();
    std::fs::write(&files.cert, &other.cert_pem).unwrap();
    wait_for_metric(&server, RELOADS, &[("result", "refused")], 2.0).await;
    let stream = connect(server.http, raw_config(&ca, &[b"http/1.1"])).await;
    assert_eq!(served_leaf(&stream), first.der);

    assert_eq!(server.metric(RELOADS, &[("result", "applied")]).await, 0.0);
    let log = server.stderr();
    let cert_name = files.cert.display().to_string();
    let key_name = files.key.display().to_string();
    assert!(log.contains("TLS certificate reload refused"), "{log}");
    assert!(log.contains(&format!(
        "the private key in {key_name} does not match the certificate in {cert_name}"
    )));
    // The key never reaches the log.
    let key_body = first.key_pem.lines().nth(1).unwrap();
    assert!(!log.contains(key_body));
    // Each refused pair is tried once, not on every poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.metric(RELOADS, &[("result", "refused")]).await, 2.0);
}

#[tokio::test]
async fn sighup_reloads_the_certificate_at_once() {
    let ca = Ca::new("test ca");
    let first = ca.server();
    let files = Files::new(&first);
    // A poll too slow to matter: only the signal can reload within the test.
    let server = tls_server(&files)
        .env(vars::TLS_RELOAD_INTERVAL, "1h")
        .start()
        .await;
    let second = ca.server();
    files.write(&second);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_metric(&server, RELOADS, &[("result", "applied")], 1.0).await;
    let fresh = connect(server.http, raw_config(&ca, &[b"http/1.1"])).await;
    assert_eq!(served_leaf(&fresh), second.der);
    assert!(server.stderr().contains("trigger=\"SIGHUP\"") || server.stderr().contains("SIGHUP"));
}

#[tokio::test]
async fn start_up_refuses_a_key_that_does_not_match_naming_both_files() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server());
    write_private(&files.key, &ca.server().key_pem);
    let failure = tls_server(&files).start_expect_failure().await;
    assert_eq!(failure.code, Some(1));
    let expected = format!(
        "the private key in {} does not match the certificate in {}",
        files.key.display(),
        files.cert.display()
    );
    assert!(failure.stderr.contains(&expected), "{}", failure.stderr);
}

#[tokio::test]
async fn start_up_names_an_unreadable_certificate_and_warns_of_an_open_key_file() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server());
    let missing = files.path_of("missing.crt");
    let failure = tls_server(&files)
        .env(vars::TLS_CERT_FILE, missing.display().to_string())
        .start_expect_failure()
        .await;
    assert!(
        failure.stderr.contains(&format!(
            "cannot use the certificates in {}",
            missing.display()
        )),
        "{}",
        failure.stderr
    );

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = tls_server(&files).start().await;
    assert!(server
        .stderr()
        .contains("the TLS key file can be read by other users than its owner"));
}

#[tokio::test]
async fn grpc_is_served_over_tls_to_tonic() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server());
    let server = tls_server(&files).start().await;
    let addr = server.grpc.unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().status, ServingStatus::Serving as i32);

    // A cleartext HTTP/2 client gets no gRPC answer from the TLS port.
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3))
        .connect()
        .await;
    if let Ok(channel) = plain {
        let call = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        assert!(call.is_err());
    }
}

#[tokio::test]
async fn the_metrics_listener_is_cleartext_unless_metrics_tls_is_on() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca.server());
    // Off by default: the harness reads metrics over plain HTTP.
    let server = tls_server(&files).start().await;
    assert!(server.metrics_text().await.contains(EXPIRY));
    drop(server);

    let server = tls_server(&files)
        .env(vars::METRICS_TLS, "on")
        .start()
        .await;
    let addr = server.metrics.unwrap();
    let client = client_trusting(&ca).build().unwrap();
    let response = client
        .get(format!("https://127.0.0.1:{}/metrics", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains(RELOADS));
    let plain = portcullis_tests::client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
}

#[tokio::test]
async fn healthcheck_speaks_tls_and_trusts_only_the_configured_certificate() {
    let ca = Ca::new("test ca");
    let leaf = ca.server();
    let files = Files::new(&leaf);
    let server = tls_server(&files).start().await;
    let healthcheck = |cert: &Path| {
        let mut command = tokio::process::Command::new(portcullis_tests::binary());
        command
            .arg("healthcheck")
            .env(vars::HTTP_ADDR, server.http.to_string())
            .env(vars::TLS_CERT_FILE, cert)
            .kill_on_drop(true);
        async move { command.output().await.unwrap() }
    };
    let ok = healthcheck(&files.cert).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Another certificate, even from the same CA, is not the server's.
    let other = files.path_of("other.crt");
    std::fs::write(&other, ca.server().cert_pem).unwrap();
    let refused = healthcheck(&other).await;
    assert_eq!(refused.status.code(), Some(1));

    // Without TLS settings it speaks cleartext, which the TLS port does not answer.
    let plain = tokio::process::Command::new(portcullis_tests::binary())
        .arg("healthcheck")
        .env(vars::HTTP_ADDR, server.http.to_string())
        .env_remove(vars::TLS_CERT_FILE)
        .output()
        .await
        .unwrap();
    assert_eq!(plain.status.code(), Some(1));
}
