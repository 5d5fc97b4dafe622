//! Replicas sharing users and keys through PostgreSQL (issue 14, `docs/replicas.md`): three
//! real Portcullis processes over one real, throwaway PostgreSQL cluster that each test starts
//! itself (Debian's server binaries, run as the unprivileged `postgres` user when the tests
//! run as root, on a free 127.0.0.1 port, in a temporary directory), so that it can pause
//! (SIGSTOP), stop and restart it.
//!
//! Timing: the revocation bound `B` is 1 s here (reads time out after B/4 = 250 ms, which a
//! loaded machine must not reach by accident). Every "within B" assertion allows
//! `EPSILON` more, for scheduling on a loaded 2-core machine (the lead's builds run beside the
//! tests); the bound itself is enforced by the server's clock, so a slow machine only widens
//! what the test can observe, never what the server accepts.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_config::vars;
use portcullis_tests::{Server, ServerBuilder};
use reqwest::StatusCode;
use serde_json::Value;

const ROOT_KEY: &str = "root-static-key-0123456789";
const BOUND: Duration = Duration::from_millis(1000);
const EPSILON: Duration = Duration::from_millis(600);

/// A throwaway PostgreSQL cluster. Dropping it shuts it down and removes its files.
struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    postmaster: Option<Child>,
    /// The `postgres` user's (uid, gid) when the tests run as root.
    owner: Option<(u32, u32)>,
}

/// The newest installed PostgreSQL's program directory (`/usr/lib/postgresql/<v>/bin`).
fn pg_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (tests/run installs them)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
        .1
}

/// The `postgres` user's ids from /etc/passwd, when running as root (initdb refuses root).
fn owner() -> Option<(u32, u32)> {
    let me = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("a postgres user (Debian's postgresql package creates it)");
    let fields: Vec<&str> = line.split(':').collect();
    Some((
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
    ))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// initdb, then start.
    fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let mut pg = Postgres {
            bin: pg_bin(),
            dir,
            port: free_port(),
            postmaster: None,
            owner,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data())
            .args(["-U", "portcullis", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.spawn();
        pg
    }

    /// Starts the postmaster on the cluster's directory and port, and waits until it answers.
    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("log")).expect("log file");
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(self.dir.path().join("log"), Some(uid), Some(gid))
                .expect("chown log");
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=100",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.postmaster = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.postmaster.as_ref().expect("running").id()
    }

    /// The postmaster and every process it started (by parent PID, never by name).
    fn processes(&self) -> Vec<u32> {
        let pid = self.pid();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid)
            .chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
            .collect()
    }

    fn signal(&self, signal: &str, pids: &[u32]) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .args(pids.iter().map(u32::to_string))
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Freezes the cluster (a silent partition: sockets stay open, nothing answers).
    fn pause(&self) -> Vec<u32> {
        let pids = self.processes();
        self.signal("STOP", &pids);
        pids
    }

    fn resume(&self, pids: &[u32]) {
        self.signal("CONT", pids);
    }

    /// A fast shutdown (SIGINT), waited for.
    fn stop(&mut self) {
        let mut child = self.postmaster.take().expect("running");
        self.signal("INT", &[child.id()]);
        child.wait().expect("wait for postgres");
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://portcullis@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL through psql; its output, unaligned, tuples only.
    fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "portcullis",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// A new cluster with the database `name`, and that database's URL.
    fn with_db(name: &str) -> (Postgres, String) {
        let pg = Postgres::start();
        pg.create_db(name);
        let url = pg.url(name);
        (pg, url)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.postmaster.take() {
            let pids = self.processes_of(child.id());
            let _ = Command::new("kill")
                .arg("-CONT")
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
            // Immediate shutdown: the postmaster ends its children.
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }
}

impl Postgres {
    fn processes_of(&self, pid: u32) -> Vec<u32> {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid)
            .chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
            .collect()
    }
}

/// A replica: static `root` (admin), database users on, the shared store at `url`. The
/// upstream is never called here (every route used is Portcullis' own).
fn replica(url: &str) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ROOT_KEY)
        .env(vars::APIKEY_USERS, "root")
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "root")
        .env(vars::UPSTREAM_URL, "http://127.0.0.1:9")
        .env(vars::USER_STORE_URL, url)
        .env(
            vars::KEY_REVOCATION_BOUND,
            format!("{}ms", BOUND.as_millis()),
        )
        .env(vars::GRPC_ADDR, "off")
        .env(vars::WORKERS, "1")
        // The tight loops of refused keys would spend the budget of failed checks.
        .env(vars::AUTH_FAILURE_LIMIT, "0")
}

async fn three(url: &str) -> [Server; 3] {
    let (a, b, c) = tokio::join!(
        replica(url).start(),
        replica(url).start(),
        replica(url).start()
    );
    [a, b, c]
}

/// Waits until `server` counts `want` replicas holding a live lease
/// (`portcullis_user_sync_live_replicas`), at most `within`.
async fn live_replicas(server: &Server, want: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let live = server
            .metric("portcullis_user_sync_live_replicas", &[])
            .await;
        if live == want as f64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "live replicas: {live}, not {want}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `GET /v1/users/own-info` as `key`: the status, the `Retry-After` header and the body.
async fn whoami(server: &Server, key: &str) -> (StatusCode, Option<String>, Value) {
    let reply = server
        .request(reqwest::Method::GET, "/v1/users/own-info")
        .bearer(key)
        .send()
        .await;
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (
        reply.status,
        reply.header("retry-after").map(str::to_owned),
        body,
    )
}

async fn manage(server: &Server, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = manage_acked(server, method, path).await;
    (status, body)
}

/// A management call: the status, how many replicas acknowledged the change (the
/// `X-Portcullis-Replicas-Acknowledged` header) and the body.
async fn manage_acked(
    server: &Server,
    method: reqwest::Method,
    path: &str,
) -> (StatusCode, Option<String>, Value) {
    let reply = server.request(method, path).bearer(ROOT_KEY).send().await;
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let acked = reply
        .header("x-portcullis-replicas-acknowledged")
        .map(str::to_owned);
    (reply.status, acked, body)
}

async fn create(server: &Server, id: &str) -> String {
    let (status, body) = manage(server, reqwest::Method::POST, &format!("/v1/users/db/{id}")).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "create {id}: {body}; the server's log:\n{}",
        server.stderr()
    );
    body["apikey"].as_str().expect("apikey").to_owned()
}

/// Waits until `server` answers `key` with `want`, at most `within`; how long it took.
async fn until(server: &Server, key: &str, want: StatusCode, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, _, body) = whoami(server, key).await;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{} answered {status} ({body}), not {want}, for {within:?}",
            server.http
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asserts `key` is refused with 401 on every replica, `tries` times each, back to back.
async fn refused_everywhere(replicas: &[Server], key: &str, tries: usize, what: &str) {
    for server in replicas {
        for _ in 0..tries {
            let (status, _, body) = whoami(server, key).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what} on {}: {body}",
                server.http
            );
        }
    }
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_every_replica_within_the_bound() {
    let (_pg, url) = Postgres::with_db("changes");
    let replicas = three(&url).await;
    let [a, b, c] = &replicas;

    // Create on A, use on B and C.
    let key = create(a, "alice").await;
    assert_eq!(
        whoami(a, &key).await.0,
        StatusCode::OK,
        "on the writer at once"
    );
    for server in [b, c] {
        until(server, &key, StatusCode::OK, BOUND + EPSILON).await;
    }

    // Rotate on B: acknowledged by all three replicas, so refused everywhere as soon as the
    // call returns (acknowledged revocation).
    let (status, acked, body) =
        manage_acked(b, reqwest::Method::POST, "/v1/users/db/alice/rotate-key").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        acked.as_deref(),
        Some("3"),
        "every replica acknowledged the rotation"
    );
    let rotated = body["apikey"].as_str().expect("apikey").to_owned();
    refused_everywhere(
        &replicas,
        &key,
        30,
        "the rotated key, after the call returned",
    )
    .await;
    for server in &replicas {
        until(server, &rotated, StatusCode::OK, BOUND + EPSILON).await;
    }

    // Deactivate on B.
    let (status, acked, body) =
        manage_acked(b, reqwest::Method::POST, "/v1/users/db/alice/deactivate").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(acked.as_deref(), Some("3"));
    refused_everywhere(&replicas, &rotated, 30, "a deactivated user's key").await;

    // Activate on C, then delete on B.
    let (status, acked, body) =
        manage_acked(c, reqwest::Method::POST, "/v1/users/db/alice/activate").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(acked.as_deref(), Some("3"));
    for server in &replicas {
        until(server, &rotated, StatusCode::OK, BOUND + EPSILON).await;
    }
    let (status, acked, body) =
        manage_acked(b, reqwest::Method::DELETE, "/v1/users/db/alice").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(acked.as_deref(), Some("3"));
    refused_everywhere(&replicas, &rotated, 30, "a deleted user's key").await;

    // The same name created again on C is a new user on A.
    let again = create(c, "alice").await;
    until(a, &again, StatusCode::OK, BOUND + EPSILON).await;
    let (status, body) = manage(a, reqwest::Method::GET, "/v1/users/db/alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true, "{body}");

    // Changes arrived by notification, and the metrics say so.
    let notified = a
        .metric(
            "portcullis_user_sync_changes_applied_total",
            &[("via", "notify")],
        )
        .await;
    assert!(
        notified >= 1.0,
        "changes applied by notification on A: {notified}"
    );
}

/// A change that bumps the log but sends no notification (written with psql), and a listener
/// killed from SQL: both still arrive within the bound, by polling and by the resync after
/// the listener's reconnect.
#[tokio::test]
async fn lost_notifications_still_arrive_within_the_bound() {
    let (pg, url) = Postgres::with_db("lost");
    let replicas = three(&url).await;
    let [a, b, c] = &replicas;
    let bob = create(a, "bob").await;
    for server in [b, c] {
        until(server, &bob, StatusCode::OK, BOUND + EPSILON).await;
    }

    // Deactivate bob behind the replicas' backs, with no NOTIFY.
    pg.psql(
        "lost",
        "WITH s AS (UPDATE portcullis_sync SET change_seq = change_seq + 1, \
           change_tag = gen_random_uuid()::text RETURNING change_seq, change_tag), \
         u AS (UPDATE portcullis_users SET active = false, seq = (SELECT change_seq FROM s) \
           WHERE id = 'bob' RETURNING key_id, key_digest, created_at_ms) \
         INSERT INTO portcullis_changes \
           (seq, tag, kind, op, user_id, key_id, key_digest, active, revoked, created_at_ms) \
         SELECT s.change_seq, s.change_tag, 'user', 'deactivate', 'bob', u.key_id, \
           u.key_digest, false, false, u.created_at_ms FROM s, u",
    );
    let changed = Instant::now();
    for server in &replicas {
        until(server, &bob, StatusCode::UNAUTHORIZED, BOUND + EPSILON).await;
    }
    assert!(
        changed.elapsed() < BOUND + EPSILON,
        "{:?}",
        changed.elapsed()
    );
    refused_everywhere(&replicas, &bob, 20, "deactivated without a notification").await;
    let polled = b
        .metric(
            "portcullis_user_sync_changes_applied_total",
            &[("via", "poll")],
        )
        .await;
    assert!(polled >= 1.0, "the change was applied by polling: {polled}");

    // Kill every listener's connection, then change a user at once.
    let killed = pg.psql(
        "lost",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name LIKE 'portcullis-listen-%'",
    );
    assert_eq!(killed, "3", "one listener per replica");
    let carol = create(a, "carol").await;
    let (status, body) = manage(a, reqwest::Method::POST, "/v1/users/db/carol/rotate-key").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = Instant::now();
    for server in [b, c] {
        until(server, &carol, StatusCode::UNAUTHORIZED, BOUND + EPSILON).await;
    }
    assert!(
        rotated.elapsed() < BOUND + EPSILON,
        "{:?}",
        rotated.elapsed()
    );
    refused_everywhere(&replicas, &carol, 20, "rotated while listeners were down").await;

    // The listeners came back.
    let deadline = Instant::now() + Duration::from_secs(10);
    for server in &replicas {
        loop {
            let up = server.metric("portcullis_user_sync_listener_up", &[]).await;
            if up == 1.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "listener of {} not back",
                server.http
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let back = pg.psql(
        "lost",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'portcullis-listen-%'",
    );
    assert_eq!(back, "3", "every listener reconnected");
}

/// PostgreSQL frozen (SIGSTOP), then stopped: database keys get 503 `store_unavailable` with
/// `Retry-After` within the bound on every replica, static keys keep working, and service
/// resumes when the store returns, without restarting Portcullis.
#[tokio::test]
async fn an_unreachable_store_fences_database_keys_within_the_bound() {
    let (mut pg, url) = Postgres::with_db("fence");
    let replicas = three(&url).await;
    let [a, b, c] = &replicas;
    let dan = create(a, "dan").await;
    // A well-formed key nobody holds any more.
    let eve = create(a, "eve").await;
    let (status, body) = manage(a, reqwest::Method::DELETE, "/v1/users/db/eve").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for server in [b, c] {
        until(server, &dan, StatusCode::OK, BOUND + EPSILON).await;
        until(server, &eve, StatusCode::UNAUTHORIZED, BOUND + EPSILON).await;
    }

    for outage in ["paused", "stopped"] {
        let paused = match outage {
            "paused" => Some(pg.pause()),
            _ => {
                pg.stop();
                None
            }
        };
        let cut = Instant::now();
        for server in &replicas {
            until(
                server,
                &dan,
                StatusCode::SERVICE_UNAVAILABLE,
                BOUND + EPSILON,
            )
            .await;
        }
        assert!(
            cut.elapsed() < BOUND + EPSILON,
            "{outage}: {:?}",
            cut.elapsed()
        );
        // Fenced for good while the store is out; static keys unaffected.
        for server in &replicas {
            for _ in 0..10 {
                let (status, retry, body) = whoami(server, &dan).await;
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{outage}: {body}");
                assert_eq!(retry.as_deref(), Some("1"), "{outage}");
                assert_eq!(body["code"], 503, "{body}");
                assert!(
                    body["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("store_unavailable")),
                    "{body}"
                );
                let (status, _, body) = whoami(server, ROOT_KEY).await;
                assert_eq!(status, StatusCode::OK, "{outage}: static key: {body}");
            }
            // A key nobody holds is refused the same way: no oracle of which keys exist.
            let (status, _, body) = whoami(server, &eve).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{outage}: {body}");
            let fenced = server
                .auth_requests("apikey_db", "deny", "store_unavailable")
                .await;
            assert!(
                fenced >= 10.0,
                "{outage}: store_unavailable counted: {fenced}"
            );
            assert_eq!(
                server.metric("portcullis_user_sync_fenced", &[]).await,
                1.0,
                "{outage}"
            );
        }
        match paused {
            Some(pids) => pg.resume(&pids),
            None => pg.spawn(),
        }
        for server in &replicas {
            until(server, &dan, StatusCode::OK, Duration::from_secs(15)).await;
        }
        assert_eq!(a.metric("portcullis_user_sync_fenced", &[]).await, 0.0);
    }

    // Writes work again and propagate.
    let (status, body) = manage(c, reqwest::Method::POST, "/v1/users/db/dan/rotate-key").await;
    assert_eq!(status, StatusCode::OK, "{body}; C's log:\n{}", c.stderr());
    for server in [a, b] {
        until(server, &dan, StatusCode::UNAUTHORIZED, BOUND + EPSILON).await;
    }
}

/// Two replicas starting at once on an empty database: exactly one creates the bootstrap
/// admin and prints its key, which works on both.
#[tokio::test]
async fn two_replicas_starting_at_once_create_one_bootstrap_admin() {
    let (pg, url) = Postgres::with_db("boot");
    let first = || {
        ServerBuilder::new()
            .env(vars::UPSTREAM_URL, "http://127.0.0.1:9")
            .env(vars::USER_STORE_URL, url.as_str())
            .env(
                vars::KEY_REVOCATION_BOUND,
                format!("{}ms", BOUND.as_millis()),
            )
            .env(vars::GRPC_ADDR, "off")
            .env(vars::WORKERS, "1")
    };
    let (a, b) = tokio::join!(first().start(), first().start());
    let keys: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|server| {
            server
                .stdout()
                .join("\n")
                .split_whitespace()
                .filter(|w| w.starts_with("pcu_"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(keys.len(), 1, "one bootstrap key printed in all: {keys:?}");
    for server in [&a, &b] {
        until(server, &keys[0], StatusCode::OK, BOUND + EPSILON).await;
    }
    assert_eq!(
        pg.psql("boot", "SELECT count(*) FROM portcullis_users"),
        "1",
        "one user"
    );
}

/// A replica refuses to start on the embedded document store, and the message never shows
/// the URL's password.
#[tokio::test]
async fn the_embedded_store_is_refused_and_the_password_never_shown() {
    let failure = ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(
            vars::USER_STORE_URL,
            "postgres://u:hunter2-secret@127.0.0.1:1/db",
        )
        .start_expect_failure()
        .await;
    assert!(
        failure.stderr.contains("PORTCULLIS_USER_STORE_URL")
            && failure.stderr.contains("PORTCULLIS_UPSTREAM_URL"),
        "{}",
        failure.stderr
    );
    assert!(!failure.stderr.contains("hunter2"), "{}", failure.stderr);
    assert!(!failure.stdout.contains("hunter2"));

    // An unreachable store: the replica starts (fenced), and says so with the URL's
    // credentials hidden.
    let server = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ROOT_KEY)
        .env(vars::APIKEY_USERS, "root")
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::UPSTREAM_URL, "http://127.0.0.1:9")
        .env(vars::GRPC_ADDR, "off")
        .env(
            vars::USER_STORE_URL,
            format!("postgres://u:hunter2-secret@127.0.0.1:{}/db", free_port()),
        )
        .start()
        .await;
    let stderr = server.stderr();
    assert!(
        stderr.contains("the user store cannot be reached")
            && stderr.contains("postgres://***@127.0.0.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!server.stdout().join("\n").contains("hunter2"));
}

/// An upstream that answers every request 200 with an empty body (the proxy asks it for its
/// readiness), on 127.0.0.1; its URL.
async fn ready_upstream() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut seen, mut buf) = (Vec::new(), [0u8; 1024]);
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if socket.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// `GET /v1/.well-known/ready`: its status.
async fn ready(server: &Server) -> StatusCode {
    server
        .request(reqwest::Method::GET, "/v1/.well-known/ready")
        .send()
        .await
        .status
}

/// Replicas started while PostgreSQL is down (one on a store another replica made, one on a
/// database never migrated): static keys work, database keys and user management get 503
/// `store_unavailable`, `ready` turns 503 after the grace; when PostgreSQL starts, both catch
/// up without a restart: the users are loaded, the schema made, management works again.
#[tokio::test]
async fn replicas_started_while_the_store_is_down_catch_up_when_it_returns() {
    let mut pg = Postgres::start();
    pg.create_db("late");
    pg.create_db("fresh");
    let url = pg.url("late");
    let fresh_url = pg.url("fresh");
    let hal = {
        let first = replica(&url).start().await;
        create(&first, "hal").await
    };
    pg.stop();

    const GRACE: Duration = Duration::from_millis(3000);
    let upstream = ready_upstream().await;
    let late = |url: &str| {
        replica(url)
            .env(
                vars::USER_STORE_READY_GRACE,
                format!("{}ms", GRACE.as_millis()),
            )
            .env(vars::UPSTREAM_URL, upstream.as_str())
    };
    let started = Instant::now();
    let (b, c) = tokio::join!(late(&url).start(), late(&fresh_url).start());
    for server in [&b, &c] {
        let (status, _, body) = whoami(server, ROOT_KEY).await;
        assert_eq!(status, StatusCode::OK, "a static key: {body}");
        for key in [hal.as_str(), &portcullis_tests::generated_key()] {
            let (status, retry, body) = whoami(server, key).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(retry.as_deref(), Some("1"));
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("store_unavailable")),
                "{body}"
            );
        }
        for (method, path) in [
            (reqwest::Method::POST, "/v1/users/db/ivy"),
            (reqwest::Method::GET, "/v1/users/db"),
            (reqwest::Method::GET, "/v1/users/db/hal"),
            (reqwest::Method::POST, "/v1/users/db/hal/rotate-key"),
            (reqwest::Method::DELETE, "/v1/users/db/hal"),
        ] {
            let (status, body) = manage(server, method.clone(), path).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}: {body}"
            );
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("store_unavailable")),
                "{method} {path}: {body}"
            );
        }
        assert_eq!(server.metric("portcullis_user_sync_fenced", &[]).await, 1.0);
    }
    // Ready during the grace (counted from the start), unready after it.
    if started.elapsed() < GRACE - Duration::from_millis(300) {
        assert_eq!(ready(&b).await, StatusCode::OK, "within the grace");
    }
    // The grace runs from the registry's start, a little after `started`.
    let deadline = Instant::now() + GRACE + Duration::from_secs(5);
    for server in [&b, &c] {
        while ready(server).await != StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                Instant::now() < deadline,
                "still ready long after the grace"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            started.elapsed() >= GRACE,
            "unready before the grace ended: {:?}",
            started.elapsed()
        );
        let (status, _, _) = whoami(server, ROOT_KEY).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "static keys still work when unready"
        );
    }

    pg.spawn();
    until(&b, &hal, StatusCode::OK, Duration::from_secs(15)).await;
    for server in [&b, &c] {
        let start = Instant::now();
        while ready(server).await != StatusCode::OK {
            assert!(start.elapsed() < Duration::from_secs(15), "ready again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Management works again on both, and the never-migrated database has its schema.
    let (status, body) = manage(&b, reqwest::Method::GET, "/v1/users/db/hal").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ivy = create(&c, "ivy").await;
    assert_eq!(whoami(&c, &ivy).await.0, StatusCode::OK);
    assert_eq!(
        pg.psql("fresh", "SELECT id FROM portcullis_users"),
        "ivy",
        "the fresh database was migrated when it came back"
    );
    let (status, acked, body) =
        manage_acked(&b, reqwest::Method::POST, "/v1/users/db/hal/rotate-key").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(acked.as_deref(), Some("1"), "b alone holds a lease on late");
    assert_eq!(whoami(&b, &hal).await.0, StatusCode::UNAUTHORIZED);
}

/// Roles are shared too, and their changes acknowledged like key changes: a role created and
/// assigned on A governs the user on B as soon as the call returns (both replicas
/// acknowledged it), and its revocation on B likewise on A.
#[tokio::test]
async fn roles_and_assignments_reach_every_replica() {
    let (_pg, url) = Postgres::with_db("roles");
    let rbac = || {
        replica(&url)
            .unset(vars::ADMINLIST_ENABLED)
            .unset(vars::ADMINLIST_USERS)
            .env(vars::RBAC_ENABLED, "true")
            .env(vars::RBAC_ROOT_USERS, "root")
    };
    let (a, b) = tokio::join!(rbac().start(), rbac().start());
    let ann = create(&a, "ann").await;
    until(&b, &ann, StatusCode::OK, BOUND + EPSILON).await;

    let own_roles = |server: &Server| {
        let request = server
            .request(reqwest::Method::GET, "/v1/users/own-info")
            .bearer(&ann);
        async move {
            let reply = request.send().await;
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            assert_eq!(reply.status, StatusCode::OK, "{body}");
            body["roles"]
                .as_array()
                .map(|roles| {
                    roles
                        .iter()
                        .filter_map(|r| r["name"].as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    let reply = a
        .request(reqwest::Method::POST, "/v1/authz/roles")
        .bearer(ROOT_KEY)
        .json(&serde_json::json!({
            "name": "movies",
            "permissions": [{"action": "read_data", "data": {"collection": "Movie"}}]
        }))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(
        reply.header("x-portcullis-replicas-acknowledged"),
        Some("2"),
        "a role created: acknowledged by both"
    );
    let reply = a
        .request(reqwest::Method::POST, "/v1/authz/users/ann/assign")
        .bearer(ROOT_KEY)
        .json(&serde_json::json!({"roles": ["movies"], "userType": "db"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.header("x-portcullis-replicas-acknowledged"),
        Some("2"),
        "an assignment: acknowledged by both"
    );
    assert_eq!(own_roles(&a).await, ["movies"], "on the writer at once");
    assert_eq!(
        own_roles(&b).await,
        ["movies"],
        "on B as soon as the call returned"
    );

    let reply = b
        .request(reqwest::Method::POST, "/v1/authz/users/ann/revoke")
        .bearer(ROOT_KEY)
        .json(&serde_json::json!({"roles": ["movies"], "userType": "db"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.header("x-portcullis-replicas-acknowledged"),
        Some("2")
    );
    assert!(
        own_roles(&a).await.is_empty(),
        "the revocation holds on A as soon as the call returned"
    );

    // A role deleted on B: gone on A when the call returns.
    let reply = b
        .request(reqwest::Method::DELETE, "/v1/authz/roles/movies")
        .bearer(ROOT_KEY)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(
        reply.header("x-portcullis-replicas-acknowledged"),
        Some("2")
    );
    let reply = a
        .request(reqwest::Method::GET, "/v1/authz/roles/movies")
        .bearer(ROOT_KEY)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    let waited = a
        .metric("portcullis_user_sync_ack_wait_seconds_count", &[])
        .await;
    assert!(waited >= 2.0, "acknowledgement waits on A: {waited}");
}

/// The change log is pruned once every live replica has applied it (retention 0 here), and
/// a replica that fell behind the pruned point (paused past its lease) reloads in full.
#[tokio::test]
async fn the_change_log_is_pruned_and_a_replica_behind_it_reloads_in_full() {
    let (pg, url) = Postgres::with_db("prune");
    let pruning = || replica(&url).env(vars::CHANGE_LOG_RETENTION, "0s");
    let (a, b) = tokio::join!(pruning().start(), pruning().start());
    let jay = create(&a, "jay").await;
    until(&b, &jay, StatusCode::OK, BOUND + EPSILON).await;
    for _ in 0..5 {
        let (status, body) = manage(&a, reqwest::Method::POST, "/v1/users/db/jay/rotate-key").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = manage(&a, reqwest::Method::POST, "/v1/users/db/jay/rotate-key").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jay = body["apikey"].as_str().expect("apikey").to_owned();
    until(&b, &jay, StatusCode::OK, BOUND + EPSILON).await;
    // Every entry below the replicas' common position goes (every 4 s with B = 1 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = pg.psql("prune", "SELECT count(*) FROM portcullis_changes");
        if left == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log still holds {left} entries"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pruned = a.metric("portcullis_user_sync_log_pruned_total", &[]).await
        + b.metric("portcullis_user_sync_log_pruned_total", &[]).await;
    assert!(pruned >= 6.0, "entries pruned: {pruned}");

    // B paused past its lease: A's changes meanwhile are pruned, B's position with them.
    let b_pid = b.pid().expect("B runs").to_string();
    let signal = |sig: &str| {
        let status = Command::new("kill")
            .args([sig, &b_pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig}");
    };
    signal("-STOP");
    let (status, acked, body) =
        manage_acked(&a, reqwest::Method::POST, "/v1/users/db/jay/rotate-key").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        acked.as_deref(),
        Some("1"),
        "B's lease ended unacknowledged"
    );
    let rotated = body["apikey"].as_str().expect("apikey").to_owned();
    let kay = create(&a, "kay").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = pg.psql(
            "prune",
            "SELECT count(*) FROM portcullis_changes WHERE kind = 'user' AND op = 'rotate'",
        );
        if left == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotation is still in the log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    signal("-CONT");
    until(&b, &kay, StatusCode::OK, Duration::from_secs(10)).await;
    let (status, _, body) = whoami(&b, &jay).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old key on B: {body}");
    until(&b, &rotated, StatusCode::OK, BOUND + EPSILON).await;
    assert!(
        b.metric(
            "portcullis_user_sync_full_reloads_total",
            &[("reason", "pruned")]
        )
        .await
            >= 1.0,
        "B reloaded in full because its position was pruned"
    );
}

/// A replica killed with SIGKILL and started again catches up with what changed meanwhile;
/// no acknowledged change is lost.
#[tokio::test]
async fn a_replica_killed_and_restarted_catches_up() {
    let (_pg, url) = Postgres::with_db("restart");
    let (a, b) = tokio::join!(replica(&url).start(), replica(&url).start());
    let fay = create(&a, "fay").await;
    let gus = create(&b, "gus").await;
    until(&b, &fay, StatusCode::OK, BOUND + EPSILON).await;
    live_replicas(&a, 2, BOUND + EPSILON).await;
    b.kill9().await;
    // B's lease runs out: A counts itself alone.
    live_replicas(&a, 1, BOUND + BOUND + EPSILON).await;

    let (status, body) = manage(&a, reqwest::Method::POST, "/v1/users/db/fay/rotate-key").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = body["apikey"].as_str().expect("apikey").to_owned();
    let (status, body) = manage(&a, reqwest::Method::DELETE, "/v1/users/db/gus").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let b = replica(&url).start().await;
    for key in [&fay, &gus] {
        let (status, _, body) = whoami(&b, key).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "at once after the restart: {body}"
        );
    }
    let (status, _, body) = whoami(&b, &rotated).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the rotated key after the restart: {body}"
    );
    let (status, body) = manage(&b, reqwest::Method::GET, "/v1/users/db").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|u| u["userId"].as_str())
        .collect();
    assert!(
        names.contains(&"fay") && !names.contains(&"gus"),
        "{names:?}"
    );

    // Stopped (SIGTERM) with the listener and the pool open: a clean exit. The dropped
    // listener's connection once panicked without a runtime, and the process aborted.
    for replica in [a, b] {
        let (code, log) = replica.stop().await;
        assert_eq!(
            code,
            Some(0),
            "a replica's exit on SIGTERM; its log:\n{log}"
        );
    }
}

/// Changes in a row on two replicas at once, each sent as soon as the last returned, while
/// every replica renews its lease after every change it reads, and renewals are slow: none
/// waits on a lease renewal.
/// (A renewal holds the change counter's share lock inside a transaction; while it ran in the
/// registry's context, a change holding that context waited on it until its write timed out.)
#[tokio::test]
async fn changes_in_a_row_never_wait_on_a_lease_renewal() {
    let (pg, url) = Postgres::with_db("in_a_row");
    let replicas = three(&url).await;
    let [a, b, _] = &replicas;
    create(a, "hal").await;
    create(b, "ida").await;
    // Renewals that take 30 ms in the store, so that changes start while one is open.
    pg.psql(
        "in_a_row",
        "CREATE FUNCTION slow_renewal() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(0.03); RETURN NEW; END $$; \
         CREATE TRIGGER slow_renewal BEFORE INSERT OR UPDATE ON portcullis_replicas \
         FOR EACH ROW EXECUTE FUNCTION slow_renewal()",
    );
    async fn rotate_in_a_row(writer: &str, server: &Server, user: &str) -> Duration {
        let path = format!("/v1/users/db/{user}/rotate-key");
        {
            let mut slowest = Duration::ZERO;
            for round in 0..40 {
                let started = Instant::now();
                let (status, acked, body) =
                    manage_acked(server, reqwest::Method::POST, &path).await;
                let took = started.elapsed();
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "rotation {round} on {writer} after {took:?}: {body}; its log:\n{}",
                    server.stderr()
                );
                assert_eq!(
                    acked.as_deref(),
                    Some("3"),
                    "rotation {round} on {writer} after {took:?}; its log:\n{}",
                    server.stderr()
                );
                slowest = slowest.max(took);
            }
            slowest
        }
    }
    let (on_a, on_b) = tokio::join!(
        rotate_in_a_row("A", a, "hal"),
        rotate_in_a_row("B", b, "ida")
    );
    // A rotation waits for three acknowledgements, never for a write timeout (5 s).
    for (writer, slowest) in [("A", on_a), ("B", on_b)] {
        assert!(
            slowest < Duration::from_secs(3),
            "slowest rotation on {writer}: {slowest:?}"
        );
    }
}

/// With RBAC on, a replica also starts while the store is down: the settings' root user is
/// authorized, anyone else gets 503 (not 403: the caller may hold a role not read yet), the
/// roles API answers 503, and once the store answers, the stored roles decide.
#[tokio::test]
async fn with_rbac_a_replica_starts_while_the_store_is_down() {
    const OTHER_KEY: &str = "other-static-key-0123456789";
    let (mut pg, url) = Postgres::with_db("rbac_late");
    let upstream = ready_upstream().await;
    let rbac = || {
        replica(&url)
            .unset(vars::ADMINLIST_ENABLED)
            .unset(vars::ADMINLIST_USERS)
            .env(vars::APIKEY_ALLOWED_KEYS, format!("{ROOT_KEY},{OTHER_KEY}"))
            .env(vars::APIKEY_USERS, "root,other")
            .env(vars::RBAC_ENABLED, "true")
            .env(vars::RBAC_ROOT_USERS, "root")
            .env(vars::UPSTREAM_URL, upstream.as_str())
    };
    let as_user = |server: &Server, key: &str, method: reqwest::Method, path: &str| {
        let request = server.request(method, path).bearer(key);
        async move {
            let reply = request.send().await;
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            (
                reply.status,
                reply.header("retry-after").map(str::to_owned),
                body,
            )
        }
    };
    {
        let first = rbac().start().await;
        let reply = first
            .request(reqwest::Method::POST, "/v1/authz/roles")
            .bearer(ROOT_KEY)
            .json(&serde_json::json!({
                "name": "cluster-reader",
                "permissions": [{"action": "read_cluster"}]
            }))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    }
    pg.stop();

    let late = rbac().start().await;
    let (status, _, body) = as_user(
        &late,
        ROOT_KEY,
        reqwest::Method::GET,
        "/v1/cluster/statistics",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the settings' root user: {body}");
    for (key, method, path) in [
        (OTHER_KEY, reqwest::Method::GET, "/v1/cluster/statistics"),
        (ROOT_KEY, reqwest::Method::GET, "/v1/authz/roles"),
        (
            ROOT_KEY,
            reqwest::Method::POST,
            "/v1/authz/users/other/assign",
        ),
    ] {
        let (status, retry, body) = as_user(&late, key, method.clone(), path).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path} before the roles were read: {body}"
        );
        assert_eq!(retry.as_deref(), Some("1"), "{method} {path}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("store_unavailable")),
            "{method} {path}: {body}"
        );
    }

    pg.spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) =
            as_user(&late, ROOT_KEY, reqwest::Method::GET, "/v1/authz/roles").await;
        if status == StatusCode::OK {
            assert!(
                body.as_array()
                    .is_some_and(|roles| roles.iter().any(|r| r["name"] == "cluster-reader")),
                "the stored role, read when the store came back: {body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the roles were never read: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A denial is an answer again, and a role given now takes effect.
    let (status, _, body) = as_user(
        &late,
        OTHER_KEY,
        reqwest::Method::GET,
        "/v1/cluster/statistics",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let reply = late
        .request(reqwest::Method::POST, "/v1/authz/users/other/assign")
        .bearer(ROOT_KEY)
        .json(&serde_json::json!({"roles": ["cluster-reader"], "userType": "db"}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let (status, _, body) = as_user(
        &late,
        OTHER_KEY,
        reqwest::Method::GET,
        "/v1/cluster/statistics",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
