//! A fault-injecting OpenID issuer on 127.0.0.1:0 for the OIDC tests. It serves discovery
//! (`/.well-known/openid-configuration`) and a JWKS (`/jwks`) whose behaviour a test switches at
//! run time (up, down, slow, an HTTP error, an oversized or malformed body, other keys,
//! `Cache-Control: max-age`), counts every request per path (so a test can assert "no fetch" or
//! "at most one fetch per cooldown" where the fetches happen), and mints tokens with its
//! standard claims, signed by a [`TestKey`].
//!
//! The HTTP side is a few lines over a tokio listener, one request per connection
//! (`Connection: close`), so that "down" can be a closed port: connection refused.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::{eventually, jws, now, random_id, TestKey};

/// The client id (audience) the OIDC tests configure (`AUTHENTICATION_OIDC_CLIENT_ID`).
pub const CLIENT_ID: &str = "portcullis";
/// The username claim the tests configure (`AUTHENTICATION_OIDC_USERNAME_CLAIM`).
pub const USERNAME_CLAIM: &str = "preferred_username";
/// The groups claim the tests configure (`AUTHENTICATION_OIDC_GROUPS_CLAIM`).
pub const GROUPS_CLAIM: &str = "groups";
/// The discovery document's path.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The JWKS path (the discovery document's `jwks_uri`).
pub const JWKS_PATH: &str = "/jwks";
/// A JWKS an attacker controls, served so that a test can point `jku`/`x5u` at it and then
/// assert it was never fetched. Every path under `/attacker/` is counted.
pub const ATTACKER_PREFIX: &str = "/attacker/";
/// The algorithms the issuer advertises by default.
pub const DEFAULT_ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];
/// How large [`JwksBody::Huge`] bodies are: past the 1 MiB cap.
pub const HUGE_BODY_BYTES: usize = 1536 * 1024;

/// How the issuer answers every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Normal answers.
    Up,
    /// Reads the request, waits this long, then answers normally.
    Slow(Duration),
    /// Answers every request with this status and an empty JSON object.
    Status(u16),
}

/// What `/jwks` serves while the issuer is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksBody {
    /// `{"keys": [the published keys]}`.
    Keys,
    /// The published keys plus padding past 1 MiB, with a `Content-Length`.
    Huge,
    /// The same, chunked, without a `Content-Length`.
    HugeChunked,
    /// These exact bytes (malformed JSON, wrong shapes).
    Raw(String),
    /// This HTTP status with an empty JSON object (discovery still answers normally).
    Status(u16),
    /// A `302 Found` to this `Location`.
    Redirect(String),
}

/// One request the issuer received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The path, without the query string.
    pub path: String,
    /// When the request head was read.
    pub at: Instant,
}

struct State {
    mode: Mode,
    jwks_body: JwksBody,
    keys: Vec<Value>,
    attacker_keys: Vec<Value>,
    discovery_issuer: Option<String>,
    algs: Vec<String>,
    max_age: Option<u64>,
}

struct Shared {
    base: String,
    state: Mutex<State>,
    log: Mutex<Vec<Received>>,
}

/// A running fault issuer. Dropping it closes the port.
pub struct FaultIssuer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl FaultIssuer {
    /// Starts an issuer publishing `keys` (their public JWKs) with the default algorithms.
    pub async fn start(keys: &[&TestKey]) -> FaultIssuer {
        Self::start_with_jwks(keys.iter().map(|k| k.jwk()).collect()).await
    }

    /// Starts an issuer publishing exactly these JWKs (for duplicate kids, `use: enc`, ...).
    pub async fn start_with_jwks(jwks: Vec<Value>) -> FaultIssuer {
        let socket = bind(SocketAddr::from(([127, 0, 0, 1], 0)));
        let addr = socket.local_addr().expect("fault issuer address");
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            state: Mutex::new(State {
                mode: Mode::Up,
                jwks_body: JwksBody::Keys,
                keys: jwks,
                attacker_keys: Vec::new(),
                discovery_issuer: None,
                algs: DEFAULT_ALGS.iter().map(|s| (*s).to_owned()).collect(),
                max_age: None,
            }),
            log: Mutex::new(Vec::new()),
        });
        let issuer = FaultIssuer {
            shared,
            addr,
            acceptor: Mutex::new(None),
        };
        issuer.spawn_acceptor(socket);
        issuer
    }

    fn spawn_acceptor(&self, listener: tokio::net::TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(shared.clone(), stream));
            }
        });
        *self.acceptor.lock().expect("acceptor") = Some(task);
    }

    /// The issuer URL, `http://127.0.0.1:<port>` (what discovery reports, and what tokens carry
    /// in `iss`).
    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.shared.base)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the port: from the return on, connections are refused. Requests already
    /// accepted are still answered.
    pub async fn down(&self) {
        let task = self.acceptor.lock().expect("acceptor").take();
        if let Some(task) = task {
            task.abort();
            // Awaiting the aborted task drops its listener before this returns.
            let _ = task.await;
        }
    }

    /// Opens the port again (the same one) if it was down, and answers normally.
    pub async fn up(&self) {
        self.set_mode(Mode::Up);
        let down = self.acceptor.lock().expect("acceptor").is_none();
        if down {
            let listener = bind(self.addr);
            self.spawn_acceptor(listener);
        }
    }

    /// Sets how every request is answered (the port stays as it is).
    pub fn set_mode(&self, mode: Mode) {
        self.state().mode = mode;
    }

    /// Sets what `/jwks` serves.
    pub fn set_jwks_body(&self, body: JwksBody) {
        self.state().jwks_body = body;
    }

    /// Publishes these keys (replacing the JWKS).
    pub fn publish(&self, keys: &[&TestKey]) {
        self.publish_jwks(keys.iter().map(|k| k.jwk()).collect());
    }

    /// Publishes exactly these JWKs.
    pub fn publish_jwks(&self, jwks: Vec<Value>) {
        self.state().keys = jwks;
    }

    /// Serves these keys under `/attacker/` (for `jku`/`x5u` headers that must never be
    /// followed).
    pub fn publish_attacker(&self, keys: &[&TestKey]) {
        self.state().attacker_keys = keys.iter().map(|k| k.jwk()).collect();
    }

    /// Makes discovery report another `issuer` (None: the real URL).
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        self.state().discovery_issuer = issuer;
    }

    /// Sets `id_token_signing_alg_values_supported`.
    pub fn set_algs(&self, algs: &[&str]) {
        self.state().algs = algs.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Sends `Cache-Control: max-age=<seconds>` with the JWKS (None: no such header).
    pub fn set_max_age(&self, seconds: Option<u64>) {
        self.state().max_age = seconds;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("fault issuer state")
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().expect("request log").clone()
    }

    /// Requests received on `path`.
    pub fn count(&self, path: &str) -> usize {
        let log = self.shared.log.lock().expect("request log");
        log.iter().filter(|r| r.path == path).count()
    }

    /// Requests received on any path.
    pub fn total_requests(&self) -> usize {
        self.shared.log.lock().expect("request log").len()
    }

    /// Requests for the JWKS.
    pub fn jwks_fetches(&self) -> usize {
        self.count(JWKS_PATH)
    }

    /// Requests for the discovery document.
    pub fn discovery_fetches(&self) -> usize {
        self.count(DISCOVERY_PATH)
    }

    /// Requests under [`ATTACKER_PREFIX`].
    pub fn attacker_requests(&self) -> usize {
        let log = self.shared.log.lock().expect("request log");
        log.iter()
            .filter(|r| r.path.starts_with(ATTACKER_PREFIX))
            .count()
    }

    /// When each request on `path` arrived.
    pub fn times(&self, path: &str) -> Vec<Instant> {
        let log = self.shared.log.lock().expect("request log");
        log.iter()
            .filter(|r| r.path == path)
            .map(|r| r.at)
            .collect()
    }

    /// When the last request on `path` arrived.
    pub fn last(&self, path: &str) -> Option<Instant> {
        self.times(path).last().copied()
    }

    /// Waits until `path` has received at least `n` requests; false on timeout.
    pub async fn wait_for_count(&self, path: &str, n: usize, timeout: Duration) -> bool {
        eventually(timeout, || self.count(path) >= n).await
    }

    /// Sleeps until at least `cooldown` has passed since the last JWKS or discovery request,
    /// so that the next unknown `kid` may trigger a fetch.
    pub async fn wait_past_cooldown(&self, cooldown: Duration) {
        let last = [self.last(JWKS_PATH), self.last(DISCOVERY_PATH)]
            .into_iter()
            .flatten()
            .max();
        if let Some(last) = last {
            let ready = last + cooldown + Duration::from_millis(150);
            let now = Instant::now();
            if ready > now {
                tokio::time::sleep(ready - now).await;
            }
        }
    }

    // ---- tokens ----

    /// Standard valid claims: `iss`, `aud`, `sub`, username, groups, `iat`, `exp` (+10 min) and
    /// a random `jti` (so every token is new to the server's cache).
    pub fn claims(&self) -> Map<String, Value> {
        let now = now();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.shared.base));
        claims.insert("aud".into(), json!(CLIENT_ID));
        claims.insert("sub".into(), json!("user-1"));
        claims.insert(USERNAME_CLAIM.into(), json!("alice"));
        claims.insert(GROUPS_CLAIM.into(), json!(["staff"]));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 600));
        claims.insert("jti".into(), json!(random_id()));
        claims
    }

    /// A valid token signed by `key`: `{"alg","kid","typ":"JWT"}` and [`Self::claims`].
    pub fn token(&self, key: &TestKey) -> String {
        self.token_with(key, |_, _| {})
    }

    /// A token signed by `key` (with its own algorithm) after `edit` changed the standard
    /// header and claims.
    pub fn token_with(
        &self,
        key: &TestKey,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        let mut header = key.header();
        let mut claims = self.claims();
        edit(&mut header, &mut claims);
        let header = serde_json::to_vec(&header).expect("header json");
        let claims = serde_json::to_vec(&claims).expect("claims json");
        jws(&header, &claims, |message| key.sign(key.alg(), message))
    }
}

impl Drop for FaultIssuer {
    fn drop(&mut self) {
        if let Ok(mut acceptor) = self.acceptor.lock() {
            if let Some(task) = acceptor.take() {
                task.abort();
            }
        }
    }
}

fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    // The port is reused after `down`; connections closed by this side linger in TIME_WAIT.
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(addr)
        .unwrap_or_else(|err| panic!("bind fault issuer on {addr}: {err}"));
    socket.listen(128).expect("listen")
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let Some(path) = read_request_path(&mut stream).await else {
        return;
    };
    shared.log.lock().expect("request log").push(Received {
        path: path.clone(),
        at: Instant::now(),
    });
    let (mode, response) = {
        let state = shared.state.lock().expect("fault issuer state");
        (state.mode.clone(), respond(&shared.base, &state, &path))
    };
    match mode {
        Mode::Up => {}
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::Status(code) => {
            let head = format!(
                "HTTP/1.1 {code} Fault\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.shutdown().await;
            return;
        }
    }
    // The client may have given up (timeouts): write errors are expected.
    let _ = match response {
        Response::Sized {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(&body);
            stream.write_all(&out).await
        }
        Response::Chunked { headers, body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n{headers}\r\n"
            );
            write_chunked(&mut stream, head.as_bytes(), &body).await
        }
    };
    let _ = stream.shutdown().await;
}

async fn write_chunked(stream: &mut TcpStream, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    stream.write_all(head).await?;
    for chunk in body.chunks(64 * 1024) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    stream.write_all(b"0\r\n\r\n").await
}

async fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() > 64 * 1024 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&buf);
    let target = head.lines().next()?.split(' ').nth(1)?;
    Some(target.split('?').next().unwrap_or(target).to_owned())
}

enum Response {
    Sized {
        status: &'static str,
        headers: String,
        body: Vec<u8>,
    },
    Chunked {
        headers: String,
        body: Vec<u8>,
    },
}

const JSON: &str = "content-type: application/json\r\n";

fn respond(base: &str, state: &State, path: &str) -> Response {
    let ok = |headers: String, body: Vec<u8>| Response::Sized {
        status: "200 OK",
        headers,
        body,
    };
    if path == DISCOVERY_PATH {
        let body = json!({
            "issuer": state.discovery_issuer.clone().unwrap_or_else(|| base.to_owned()),
            "jwks_uri": format!("{base}{JWKS_PATH}"),
            "authorization_endpoint": format!("{base}/auth"),
            "token_endpoint": format!("{base}/token"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": state.algs,
        });
        return ok(JSON.to_owned(), body.to_string().into_bytes());
    }
    if path == JWKS_PATH {
        let mut headers = JSON.to_owned();
        if let Some(age) = state.max_age {
            headers.push_str(&format!("cache-control: public, max-age={age}\r\n"));
        }
        return match &state.jwks_body {
            JwksBody::Keys => ok(
                headers,
                json!({ "keys": state.keys }).to_string().into_bytes(),
            ),
            JwksBody::Huge => ok(headers, huge_jwks(&state.keys)),
            JwksBody::HugeChunked => Response::Chunked {
                headers,
                body: huge_jwks(&state.keys),
            },
            JwksBody::Raw(raw) => ok(headers, raw.clone().into_bytes()),
            JwksBody::Status(code) => Response::Sized {
                status: status_line(*code),
                headers,
                body: b"{}".to_vec(),
            },
            JwksBody::Redirect(location) => Response::Sized {
                status: status_line(302),
                headers: format!("{headers}location: {location}\r\n"),
                body: Vec::new(),
            },
        };
    }
    if path.starts_with(ATTACKER_PREFIX) {
        let body = json!({ "keys": state.attacker_keys }).to_string();
        return ok(JSON.to_owned(), body.into_bytes());
    }
    Response::Sized {
        status: "404 Not Found",
        headers: JSON.to_owned(),
        body: b"{}".to_vec(),
    }
}

fn status_line(code: u16) -> &'static str {
    match code {
        200 => "200 OK",
        301 => "301 Moved Permanently",
        302 => "302 Found",
        404 => "404 Not Found",
        429 => "429 Too Many Requests",
        500 => "500 Internal Server Error",
        502 => "502 Bad Gateway",
        503 => "503 Service Unavailable",
        _ => "599 Fault",
    }
}

/// A JWKS with the given keys that is larger than [`HUGE_BODY_BYTES`] (valid JSON).
pub fn huge_jwks(keys: &[Value]) -> Vec<u8> {
    let keys = serde_json::to_string(keys).expect("keys json");
    let padding = "x".repeat(HUGE_BODY_BYTES);
    format!(r#"{{"keys":{keys},"padding":"{padding}"}}"#).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_unverified;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .expect("http client")
    }

    async fn get(url: &str) -> reqwest::Response {
        client().get(url).send().await.expect("request")
    }

    fn verify(token: &str, jwks: &Value, issuer: &str) -> Value {
        let (header, _) = decode_unverified(token);
        let kid = header["kid"].as_str().expect("kid");
        let jwk = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["kid"] == kid)
            .expect("kid published");
        let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("jwk");
        let key = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let alg: Algorithm = header["alg"].as_str().expect("alg").parse().expect("alg");
        let mut validation = Validation::new(alg);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .expect("token verifies")
            .claims
    }

    #[tokio::test]
    async fn serves_discovery_and_jwks_that_verify_minted_tokens() {
        let keys = [TestKey::rsa_a(), TestKey::ec_a(), TestKey::ed25519()];
        let issuer = FaultIssuer::start(&keys.iter().collect::<Vec<_>>()).await;
        let discovery: Value = get(&format!("{}{DISCOVERY_PATH}", issuer.url()))
            .await
            .json()
            .await
            .expect("discovery json");
        assert_eq!(discovery["issuer"], issuer.url());
        assert_eq!(discovery["jwks_uri"], issuer.jwks_url());
        let jwks: Value = get(&issuer.jwks_url()).await.json().await.expect("jwks");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(3));
        for key in &keys {
            let claims = verify(&issuer.token(key), &jwks, &issuer.url());
            assert_eq!(claims[USERNAME_CLAIM], "alice", "{}", key.kid());
        }
        assert_eq!(issuer.discovery_fetches(), 1);
        assert_eq!(issuer.jwks_fetches(), 1);
    }

    #[tokio::test]
    async fn goes_down_and_comes_back_on_the_same_port() {
        let key = TestKey::rsa_a();
        let issuer = FaultIssuer::start(&[&key]).await;
        issuer.down().await;
        let err = client()
            .get(issuer.jwks_url())
            .send()
            .await
            .expect_err("port closed");
        assert!(err.is_connect(), "{err:?}");
        issuer.up().await;
        assert_eq!(get(&issuer.jwks_url()).await.status(), 200);
        assert_eq!(issuer.jwks_fetches(), 1);
    }

    #[tokio::test]
    async fn slow_huge_malformed_status_and_max_age() {
        let key = TestKey::rsa_a();
        let issuer = FaultIssuer::start(&[&key]).await;

        issuer.set_mode(Mode::Slow(Duration::from_millis(400)));
        let started = Instant::now();
        assert_eq!(get(&issuer.jwks_url()).await.status(), 200);
        assert!(started.elapsed() >= Duration::from_millis(400));
        issuer.set_mode(Mode::Status(503));
        assert_eq!(get(&issuer.jwks_url()).await.status(), 503);
        issuer.set_mode(Mode::Up);

        for body in [JwksBody::Huge, JwksBody::HugeChunked] {
            issuer.set_jwks_body(body.clone());
            let bytes = get(&issuer.jwks_url()).await.bytes().await.expect("body");
            assert!(bytes.len() > 1024 * 1024, "{body:?}");
            let parsed: Value = serde_json::from_slice(&bytes).expect("huge JWKS is JSON");
            assert_eq!(parsed["keys"][0]["kid"], "rsa-a");
        }
        issuer.set_jwks_body(JwksBody::Raw("{\"keys\": [".into()));
        let text = get(&issuer.jwks_url()).await.text().await.expect("body");
        assert_eq!(text, "{\"keys\": [");

        issuer.set_jwks_body(JwksBody::Keys);
        issuer.set_max_age(Some(7));
        let response = get(&issuer.jwks_url()).await;
        assert_eq!(
            response.headers()["cache-control"].to_str().ok(),
            Some("public, max-age=7")
        );
        assert_eq!(issuer.jwks_fetches(), 6);
        assert_eq!(issuer.count("/nowhere"), 0);
    }
}
