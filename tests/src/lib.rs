//! Test harness: starts the real `portcullis` binary on 127.0.0.1:0 with a fresh data
//! directory, waits until it reports its bound addresses, and reads its metrics.

pub mod api;
pub mod assert;
pub mod hostile;
pub mod oidc_provider;
pub mod oidc_support;
pub mod rbac;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use portcullis_config::vars;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// How long a server may take to bind its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one raw HTTP exchange may take.
const RAW_TIMEOUT: Duration = Duration::from_secs(10);

/// The path of the `portcullis` binary, built once per test process with the same cargo that
/// runs the tests, so `cargo test --workspace` alone always tests the current code.
///
/// Built with the feature set `cargo test --workspace` resolves (every member, tests
/// selected), so after the README's test command it only links the binary. `-p
/// portcullis-server` alone resolves fewer features and compiled the server and some of its
/// dependencies a second time (about 150 s per run on this machine).
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = std::process::Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "--workspace",
            "--tests",
            "--bin",
            "portcullis",
        ]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo build for the portcullis binary");
        assert!(
            status.success(),
            "cargo build of the portcullis binary failed"
        );
        // The test executable lives in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("current test executable");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> directory");
        let bin = profile_dir.join(format!("portcullis{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} not found after build", bin.display());
        bin
    })
}

/// A new database key in the key format, from `portcullis generate-key` (for a bootstrap
/// admin key the server accepts as a database user's).
pub fn generated_key() -> String {
    let out = std::process::Command::new(binary())
        .arg("generate-key")
        .output()
        .expect("portcullis generate-key runs");
    assert!(out.status.success(), "generate-key failed: {out:?}");
    String::from_utf8(out.stdout)
        .expect("UTF-8 key")
        .trim()
        .to_owned()
}

/// Configures a server before it starts.
pub struct ServerBuilder {
    env: BTreeMap<String, String>,
    data_dir: Option<PathBuf>,
    unread_stderr: bool,
}

/// A running server. Dropping it kills the process.
pub struct Server {
    child: Child,
    /// The API address.
    pub http: SocketAddr,
    /// The metrics address, when metrics are on.
    pub metrics: Option<SocketAddr>,
    /// The gRPC address, when gRPC is on.
    pub grpc: Option<SocketAddr>,
    data_dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    // Holds the standard-error log; removed when the server is dropped.
    _log_dir: tempfile::TempDir,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
    // With `unread_stderr`: the pipe's read end, held open and never read.
    _stderr_pipe: Option<tokio::process::ChildStderr>,
}

/// What a server that refused to start left behind.
#[derive(Debug)]
pub struct StartFailure {
    /// The exit code.
    pub code: Option<i32>,
    /// Everything it wrote to standard error.
    pub stderr: String,
    /// Everything it wrote to standard output.
    pub stdout: String,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// A server on 127.0.0.1:0 with metrics on 127.0.0.1:0, two workers and text logs.
    pub fn new() -> Self {
        let mut env = BTreeMap::new();
        for (k, v) in [
            (vars::HTTP_ADDR, "127.0.0.1:0"),
            (vars::METRICS_ADDR, "127.0.0.1:0"),
            // An ephemeral gRPC port: tests run side by side, and 50051 may be taken.
            (vars::GRPC_ADDR, "127.0.0.1:0"),
            (vars::WORKERS, "2"),
            (vars::LOG_LEVEL, "info"),
            (vars::LOG_FORMAT, "text"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        ServerBuilder {
            env,
            data_dir: None,
            unread_stderr: false,
        }
    }

    /// Sets an environment variable for the server.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a default variable.
    pub fn unset(mut self, name: &str) -> Self {
        self.env.remove(name);
        self
    }

    /// Uses an existing data directory (to restart over the same store).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Connects standard error to a pipe that nobody reads (a stalled log collector): once
    /// its buffer is full, every write to it blocks. [`Server::stderr`] is then empty.
    pub fn unread_stderr(mut self) -> Self {
        self.unread_stderr = true;
        self
    }

    fn command(&self, data_dir: &Path, stderr: std::fs::File) -> Command {
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .envs(&self.env)
            .env(vars::PERSISTENCE_DATA_PATH, data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if self.unread_stderr {
                Stdio::piped()
            } else {
                Stdio::from(stderr)
            })
            .kill_on_drop(true);
        cmd
    }

    /// Starts the server and waits until it has bound its sockets.
    pub async fn start(self) -> Server {
        match self.try_start().await {
            Ok(server) => server,
            Err(failure) => panic!("server did not start: {failure:?}"),
        }
    }

    /// Starts a server that is expected to refuse to start.
    pub async fn start_expect_failure(self) -> StartFailure {
        match self.try_start().await {
            Ok(server) => panic!("server started on {} but should not have", server.http),
            Err(failure) => failure,
        }
    }

    async fn try_start(self) -> Result<Server, StartFailure> {
        let (tempdir, data_dir) = match &self.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let t = tempfile::tempdir().expect("temp dir");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let log_dir = tempfile::tempdir().expect("temp dir");
        let stderr_path = log_dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut child = self
            .command(&data_dir, stderr)
            .spawn()
            .expect("spawn portcullis");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().expect("stdout lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let metrics_expected = !matches!(
            self.env.get(vars::PROMETHEUS_MONITORING_ENABLED).map(|v| v.to_ascii_lowercase()),
            Some(v) if ["false", "off", "0", "disabled"].contains(&v.as_str())
        );
        let grpc_expected = !self
            .env
            .get(vars::GRPC_ADDR)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
        let mut http = None;
        let mut metrics = None;
        let mut grpc = None;
        let wait = async {
            while let Some(line) = rx.recv().await {
                if let Some(a) = line.strip_prefix("http listening on ") {
                    http = a.trim().parse().ok();
                } else if let Some(a) = line.strip_prefix("metrics listening on ") {
                    metrics = a.trim().parse().ok();
                } else if let Some(a) = line.strip_prefix("grpc listening on ") {
                    grpc = a.trim().parse().ok();
                }
                if http.is_some()
                    && (metrics.is_some() || !metrics_expected)
                    && (grpc.is_some() || !grpc_expected)
                {
                    return true;
                }
            }
            false
        };
        let ready = tokio::time::timeout(START_TIMEOUT, wait)
            .await
            .unwrap_or(false);
        if !ready {
            let _ = child.start_kill();
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .ok()
                .and_then(Result::ok);
            // Let the stdout reader drain what is left.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Err(StartFailure {
                code: status.and_then(|s| s.code()),
                stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                stdout: lines.lock().expect("stdout lines").join("\n"),
            });
        }
        Ok(Server {
            child,
            http: http.expect("http address"),
            metrics,
            grpc,
            data_dir,
            _tempdir: tempdir,
            _log_dir: log_dir,
            stdout: lines,
            stderr_path,
            _stderr_pipe: stderr_pipe,
        })
    }
}

impl Server {
    /// A URL on the API address.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The data directory the server was given.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's process id (`None` once it has exited), to read `/proc/<pid>/status`.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Lines the server printed to standard output so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lines").clone()
    }

    /// What the server logged to standard error so far. The server writes its log from a
    /// thread of its own, a moment after a request is answered, so this waits until the file
    /// has stopped growing (at most two seconds).
    pub fn stderr(&self) -> String {
        let read = || std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let mut log = read();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            let again = read();
            if again.len() == log.len() {
                break;
            }
            log = again;
        }
        log
    }

    /// Stops the server gracefully (SIGTERM, as a container runtime does), waits for it to
    /// exit, and returns its exit code and everything it wrote to standard error.
    pub async fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("the server is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits within 30 s of SIGTERM")
            .expect("wait for the server");
        let log = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        (status.code(), log)
    }

    /// The metrics exposition text.
    pub async fn metrics_text(&self) -> String {
        let addr = self.metrics.expect("metrics are enabled");
        let response = client()
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("metrics reachable");
        assert_eq!(response.status(), 200, "GET /metrics");
        response.text().await.expect("metrics text")
    }

    /// The value of one series in the exposition (0 when the series does not exist yet).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics_text().await, name, labels)
    }

    /// `portcullis_auth_requests_total{method,result,reason}`.
    pub async fn auth_requests(&self, method: &str, result: &str, reason: &str) -> f64 {
        self.metric(
            "portcullis_auth_requests_total",
            &[("method", method), ("result", result), ("reason", reason)],
        )
        .await
    }

    /// Sends `method path` over a fresh TCP connection with exactly the given header lines
    /// (`"Name: value"`, written byte for byte), for requests an HTTP client would refuse or
    /// normalise. `Host` and `Connection: close` are added.
    pub async fn raw(&self, method: &str, path: &str, header_lines: &[&[u8]]) -> RawResponse {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.http).into_bytes();
        for line in header_lines {
            request.extend_from_slice(line);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        raw_request(self.http, &request).await
    }

    /// Kills the process with SIGKILL and waits for it (a crash, not a shutdown), and returns
    /// the data directory for a restart over the same store.
    ///
    /// A data directory the harness created is kept on disk from here on (it is left in the
    /// system temp directory): dropping the server must not delete the store it returns.
    pub async fn kill9(mut self) -> PathBuf {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        if let Some(dir) = self._tempdir.take() {
            let _ = dir.keep();
        }
        self.data_dir.clone()
    }
}

/// The value of the series `name{labels}` in a text exposition: the series whose labels
/// include every given pair. 0 when absent.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let all = labels.iter().all(|(k, v)| {
                rest.contains(&format!("{{{k}=\"{v}\"")) || rest.contains(&format!(",{k}=\"{v}\""))
            });
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// A reqwest client with a short timeout that never goes through a proxy (the servers are
/// local, and a proxy from the environment would see test credentials).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("http client")
}

/// A response read from a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The only value of a header (case-insensitive name); panics if it appears twice.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        let mut values = self.headers.iter().filter(|(n, _)| *n == name);
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(
            values.next().is_none(),
            "header {name} appears more than once"
        );
        first
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Writes `request` (a complete HTTP/1.1 request, which should ask for `Connection: close`) to
/// `addr` and reads the whole response.
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.expect("read response");
        bytes
    };
    let bytes = tokio::time::timeout(RAW_TIMEOUT, exchange)
        .await
        .expect("raw HTTP exchange timed out");
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> RawResponse {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = if chunked {
        dechunk(rest)
    } else if let Some(length) = length {
        rest[..length.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return body;
        };
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_value_matches_labels_and_sums() {
        let text =
            "# HELP x y\nx_total{a=\"1\",b=\"2\"} 3\nx_total{a=\"1\",b=\"3\"} 4\nx_total 1\n";
        assert_eq!(
            metric_value(text, "x_total", &[("a", "1"), ("b", "2")]),
            3.0
        );
        assert_eq!(metric_value(text, "x_total", &[("a", "1")]), 7.0);
        assert_eq!(metric_value(text, "x_total", &[("a", "9")]), 0.0);
        assert_eq!(metric_value(text, "y_total", &[]), 0.0);
    }

    #[test]
    fn parses_sized_and_chunked_raw_responses() {
        let sized = parse_response(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\nX-Request-Id: a\r\n\r\n{}",
        );
        assert_eq!(sized.status, 401);
        assert_eq!(sized.header("x-request-id"), Some("a"));
        assert_eq!(sized.body, b"{}");
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!(chunked.body, b"abcde");
    }
}
