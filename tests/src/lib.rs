//! Test harness: starts the real `portcullis` binary on 127.0.0.1:0 with a fresh data
//! directory, waits until it reports its bound addresses, and reads its metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a server may take to bind its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of the `portcullis` binary, built once per test process with the same cargo that
/// runs the tests, so `cargo test --workspace` alone always tests the current code.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--quiet", "-p", "portcullis-server", "--bin", "portcullis"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build for the portcullis binary");
        assert!(status.success(), "cargo build of the portcullis binary failed");
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

/// Configures a server before it starts.
pub struct ServerBuilder {
    env: BTreeMap<String, String>,
    data_dir: Option<PathBuf>,
}

/// A running server. Dropping it kills the process.
pub struct Server {
    child: Child,
    /// The API address.
    pub http: SocketAddr,
    /// The metrics address, when metrics are on.
    pub metrics: Option<SocketAddr>,
    data_dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
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
            ("PORTCULLIS_HTTP_ADDR", "127.0.0.1:0"),
            ("PORTCULLIS_METRICS_ADDR", "127.0.0.1:0"),
            ("PORTCULLIS_WORKERS", "2"),
            ("LOG_LEVEL", "info"),
            ("LOG_FORMAT", "text"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        ServerBuilder {
            env,
            data_dir: None,
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

    fn command(&self, data_dir: &Path, stderr: std::fs::File) -> Command {
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .envs(&self.env)
            .env("PERSISTENCE_DATA_PATH", data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
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
        let log_dir = tempfile::tempdir().expect("temp dir").keep();
        let stderr_path = log_dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut child = self
            .command(&data_dir, stderr)
            .spawn()
            .expect("spawn portcullis");
        let stdout = child.stdout.take().expect("piped stdout");
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
            self.env.get("PROMETHEUS_MONITORING_ENABLED").map(|v| v.to_ascii_lowercase()),
            Some(v) if ["false", "off", "0", "disabled"].contains(&v.as_str())
        );
        let mut http = None;
        let mut metrics = None;
        let wait = async {
            while let Some(line) = rx.recv().await {
                if let Some(a) = line.strip_prefix("http listening on ") {
                    http = a.trim().parse().ok();
                } else if let Some(a) = line.strip_prefix("metrics listening on ") {
                    metrics = a.trim().parse().ok();
                }
                if http.is_some() && (metrics.is_some() || !metrics_expected) {
                    return true;
                }
            }
            false
        };
        let ready = tokio::time::timeout(START_TIMEOUT, wait).await.unwrap_or(false);
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
            data_dir,
            _tempdir: tempdir,
            stdout: lines,
            stderr_path,
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

    /// Lines the server printed to standard output so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lines").clone()
    }

    /// What the server logged to standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The metrics exposition text.
    pub async fn metrics_text(&self) -> String {
        let addr = self.metrics.expect("metrics are enabled");
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("metrics reachable")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of one series in the exposition (0 when the series does not exist yet).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics_text().await, name, labels)
    }

    /// Kills the process with SIGKILL and waits for it (a crash, not a shutdown).
    pub async fn kill9(mut self) -> PathBuf {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
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
            let all = labels
                .iter()
                .all(|(k, v)| {
                    rest.contains(&format!("{{{k}=\"{v}\"")) || rest.contains(&format!(",{k}=\"{v}\""))
                });
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// A reqwest client with a short timeout and no connection reuse surprises.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_value_matches_labels_and_sums() {
        let text = "# HELP x y\nx_total{a=\"1\",b=\"2\"} 3\nx_total{a=\"1\",b=\"3\"} 4\nx_total 1\n";
        assert_eq!(metric_value(text, "x_total", &[("a", "1"), ("b", "2")]), 3.0);
        assert_eq!(metric_value(text, "x_total", &[("a", "1")]), 7.0);
        assert_eq!(metric_value(text, "x_total", &[("a", "9")]), 0.0);
        assert_eq!(metric_value(text, "y_total", &[]), 0.0);
    }
}
