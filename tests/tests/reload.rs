//! Configuration reload on SIGHUP against the real binary (issue 15, item 2): the server reads
//! a config file the test rewrites, then gets `kill -HUP`. Static keys removed and added under
//! load, the admin list changed, an invalid configuration refused whole, a restart-only
//! setting named and ignored, the log level changed, and a new OIDC issuer taking over once its
//! keys load.
//!
//! Keys here are fixtures but treated as secrets: no assertion message contains one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_config::vars;
use portcullis_testkit::{
    poll_every, FaultIssuer, TestKey, CLIENT_ID, GROUPS_CLAIM, USERNAME_CLAIM,
};
use portcullis_tests::assert::{assert_forbidden, assert_invalid_token};
use portcullis_tests::{client, Server, ServerBuilder};

const OLD_KEY: &str = "reload-old-key-4f1a9c2e7b";
const KEPT_KEY: &str = "reload-kept-key-8d3e5a0f61";
const NEW_KEY: &str = "reload-new-key-b27c94e1d0";

const APPLIED: &str = "configuration reloaded:";
const REFUSED: &str = "configuration reload refused";
const RELOADS: &str = "portcullis_config_reloads_total";
const LAST_RELOAD: &str = "portcullis_config_last_reload_timestamp_seconds";

/// A YAML config file the test rewrites between reloads.
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ConfigFile {
    fn new(entries: &[(impl AsRef<str>, impl AsRef<str>)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = ConfigFile {
            path: dir.path().join("portcullis.yaml"),
            _dir: dir,
        };
        file.write(entries);
        file
    }

    /// Replaces the file's content at once (a rename), as a config manager would.
    fn write(&self, entries: &[(impl AsRef<str>, impl AsRef<str>)]) {
        let text: String = entries
            .iter()
            .map(|(name, value)| {
                format!("{}: {}\n", name.as_ref(), serde_json::json!(value.as_ref()))
            })
            .collect();
        let staging = self.path.with_extension("yaml.new");
        std::fs::write(&staging, text).expect("write config");
        std::fs::rename(&staging, &self.path).expect("replace config");
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// A server reading `file`, with the failure throttle off (the load loop sends a removed key
/// many times, and must see 401s, not 429s).
fn builder(file: &ConfigFile) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::CONFIG_FILE, file.path().to_string_lossy())
        .env(vars::AUTH_FAILURE_LIMIT, "0")
}

fn hup(server: &Server) {
    let pid = server.pid().expect("server running");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid}");
}

/// Waits until the log holds `needle` at least `times` times; panics after 20 s.
async fn wait_for_log(server: &Server, needle: &str, times: usize) -> String {
    let found = poll_every(Duration::from_millis(50), Duration::from_secs(20), || {
        let log = server.stderr();
        async move { (log.matches(needle).count() >= times).then_some(log) }
    })
    .await;
    found.unwrap_or_else(|| panic!("the log never showed {needle:?} {times} time(s)"))
}

async fn reloads(server: &Server, result: &str) -> f64 {
    server.metric(RELOADS, &[("result", result)]).await
}

async fn status_of(server: &Server, key: &str) -> u16 {
    server
        .get("/v1/meta")
        .bearer(key)
        .send()
        .await
        .status
        .as_u16()
}

fn static_keys<'a>(keys: &'a str, users: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (vars::APIKEY_ENABLED, "true"),
        (vars::APIKEY_ALLOWED_KEYS, keys),
        (vars::APIKEY_USERS, users),
    ]
}

/// One request of the load loop: which key, when it was sent, and its status (or that the
/// connection failed).
struct Sent {
    key: usize,
    at: Instant,
    status: Result<u16, String>,
}

#[tokio::test]
async fn static_keys_removed_and_added_under_load() {
    let keys = [OLD_KEY, KEPT_KEY, NEW_KEY];
    let start = [OLD_KEY, KEPT_KEY].join(",");
    let file = ConfigFile::new(&static_keys(&start, "ann,bob"));
    let server = builder(&file).start().await;
    assert_eq!(status_of(&server, OLD_KEY).await, 200);
    assert_eq!(status_of(&server, NEW_KEY).await, 401);
    assert_eq!(reloads(&server, "applied").await, 0.0);

    // Four clients, each on its own kept-alive connection, cycling through the three keys.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::<Sent>::new()));
    let url = server.url("/v1/meta");
    let mut loops = Vec::new();
    for worker in 0..4 {
        let (stop, sent, url) = (stop.clone(), sent.clone(), url.clone());
        loops.push(tokio::spawn(async move {
            let http = client();
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let key = i % keys.len();
                i += 1;
                let at = Instant::now();
                let status = http
                    .get(&url)
                    .bearer_auth(keys[key])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.without_url().to_string());
                sent.lock().unwrap().push(Sent { key, at, status });
            }
        }));
    }
    // Under way before the reload: the old key accepted a few times.
    let warmed = poll_every(Duration::from_millis(20), Duration::from_secs(30), || {
        let accepted = sent
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.key == 0 && s.status == Ok(200))
            .count();
        async move { (accepted >= 10).then_some(()) }
    })
    .await;
    assert!(warmed.is_some(), "the load loop got going");

    let reloaded = [KEPT_KEY, NEW_KEY].join(",");
    file.write(&static_keys(&reloaded, "bob,cy"));
    hup(&server);
    let log = wait_for_log(&server, APPLIED, 1).await;
    let applied_seen = Instant::now();
    assert!(
        log.contains("static API keys (1 added, 1 removed, 0 reassigned)"),
        "the applied line names the key change by counts"
    );
    for key in keys {
        assert!(!log.contains(key), "a key appears in the log");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in loops {
        task.await.expect("load loop");
    }

    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let errors = sent.iter().filter(|s| s.status.is_err()).count();
    assert_eq!(errors, 0, "connection errors during the reload");
    let after = |key: usize| {
        sent.iter()
            .filter(move |s| s.key == key && s.at > applied_seen)
            .map(|s| *s.status.as_ref().unwrap())
            .collect::<Vec<u16>>()
    };
    let old_before = sent
        .iter()
        .filter(|s| s.key == 0 && s.at < applied_seen && s.status == Ok(200))
        .count();
    let mut summary = std::collections::BTreeMap::new();
    for s in sent.iter() {
        *summary
            .entry((s.key, s.at > applied_seen, s.status.clone()))
            .or_insert(0) += 1;
    }
    assert!(
        old_before > 0,
        "the old key was accepted before the reload: (key index, after, status) -> count {summary:?}"
    );
    let (old_after, kept_all, new_after) = (after(0), after(1), after(2));
    assert!(!old_after.is_empty() && !new_after.is_empty());
    assert!(
        old_after.iter().all(|s| *s == 401),
        "the removed key succeeded after the reload was logged: {:?}",
        old_after.iter().filter(|s| **s != 401).count()
    );
    assert!(
        new_after.iter().all(|s| *s == 200),
        "the new key: {new_after:?}"
    );
    let kept: Vec<u16> = sent
        .iter()
        .filter(|s| s.key == 1)
        .map(|s| *s.status.as_ref().unwrap())
        .collect();
    assert!(
        kept.iter().all(|s| *s == 200) && !kept_all.is_empty(),
        "a key in both sets must never miss"
    );

    let removed = server.get("/v1/meta").bearer(OLD_KEY).send().await;
    assert_invalid_token(&removed, "the removed key");
    let counted = server
        .auth_requests("apikey_static", "deny", "invalid_key")
        .await;
    assert!(
        counted > old_after.len() as f64,
        "refusals of the removed key are counted as invalid_key: {counted}"
    );
    assert_eq!(reloads(&server, "applied").await, 1.0);
    assert_eq!(reloads(&server, "refused").await, 0.0);
    assert!(server.metric(LAST_RELOAD, &[]).await > 1.7e9);
}

/// Static keys for ann and bob, database users on, and the admin list naming `admins`.
fn admin_config(admins: &str) -> Vec<(&'static str, String)> {
    let keys = [KEPT_KEY, NEW_KEY].join(",");
    vec![
        (vars::APIKEY_ENABLED, "true".to_owned()),
        (vars::APIKEY_ALLOWED_KEYS, keys),
        (vars::APIKEY_USERS, "ann,bob".to_owned()),
        (vars::DB_USERS_ENABLED, "true".to_owned()),
        (vars::ADMINLIST_ENABLED, "true".to_owned()),
        (vars::ADMINLIST_USERS, admins.to_owned()),
    ]
}

#[tokio::test]
async fn admin_list_changes_who_manages_users() {
    let file = ConfigFile::new(&admin_config("ann"));
    let server = builder(&file).start().await;
    let create = |name: &'static str| {
        let path = format!("/v1/users/db/{name}");
        let request = server.post(&path).bearer(NEW_KEY);
        async move { (request.send().await, path) }
    };

    let (denied, path) = create("carol").await;
    assert_forbidden(&denied, "bob", "write", &path);

    file.write(&admin_config("ann,bob"));
    hup(&server);
    let log = wait_for_log(&server, APPLIED, 1).await;
    assert!(
        log.contains("admin list"),
        "the applied line names the admin list"
    );
    let (created, _) = create("dave").await;
    assert_eq!(created.status, 201, "bob, now an admin, creates a user");
    assert!(created.json()["apikey"].is_string());

    file.write(&admin_config("ann"));
    hup(&server);
    wait_for_log(&server, APPLIED, 2).await;
    let (denied, path) = create("erin").await;
    assert_forbidden(&denied, "bob", "write", &path);
    assert_eq!(reloads(&server, "applied").await, 2.0);
}

#[tokio::test]
async fn invalid_configuration_is_refused_whole() {
    let file = ConfigFile::new(&static_keys(OLD_KEY, "ann"));
    let server = builder(&file).start().await;
    // A valid key change and an invalid value: nothing of it may apply.
    let mut entries = static_keys(NEW_KEY, "ann");
    entries.push((vars::ADMINLIST_ENABLED, "maybe"));
    file.write(&entries);
    hup(&server);
    let log = wait_for_log(&server, REFUSED, 1).await;
    assert!(
        log.contains(vars::ADMINLIST_ENABLED),
        "the refusal names the variable"
    );
    assert!(
        !log.contains(NEW_KEY) && !log.contains(OLD_KEY),
        "a key appears in the log"
    );
    assert!(!log.contains(APPLIED));
    assert_eq!(
        status_of(&server, OLD_KEY).await,
        200,
        "the old key still serves"
    );
    assert_invalid_token(
        &server.get("/v1/meta").bearer(NEW_KEY).send().await,
        "the refused configuration's key",
    );
    assert_eq!(reloads(&server, "refused").await, 1.0);
    assert_eq!(reloads(&server, "applied").await, 0.0);
    assert_eq!(server.metric(LAST_RELOAD, &[]).await, 0.0);

    // A file that does not parse is refused too, and a fixed one then applies.
    std::fs::write(file.path(), "AUTHENTICATION_APIKEY_ENABLED: [unclosed\n").expect("write");
    hup(&server);
    wait_for_log(&server, REFUSED, 2).await;
    assert_eq!(status_of(&server, OLD_KEY).await, 200);
    file.write(&static_keys(NEW_KEY, "ann"));
    hup(&server);
    wait_for_log(&server, APPLIED, 1).await;
    assert_eq!(status_of(&server, NEW_KEY).await, 200);
    assert_eq!(status_of(&server, OLD_KEY).await, 401);
    assert_eq!(reloads(&server, "refused").await, 2.0);
    assert_eq!(reloads(&server, "applied").await, 1.0);
}

#[tokio::test]
async fn restart_only_settings_are_named_and_the_log_level_applies() {
    let mut start = static_keys(OLD_KEY, "ann");
    start.extend([(vars::HTTP_ADDR, "127.0.0.1:0"), (vars::LOG_LEVEL, "info")]);
    let file = ConfigFile::new(&start);
    let server = builder(&file)
        .unset(vars::HTTP_ADDR)
        .unset(vars::LOG_LEVEL)
        .start()
        .await;
    // Health probes are logged at debug only.
    assert_eq!(server.get("/v1/.well-known/live").send().await.status, 200);
    assert!(!server.stderr().contains("/v1/.well-known/live"));

    let mut changed = static_keys(OLD_KEY, "ann");
    changed.extend([(vars::HTTP_ADDR, "127.0.0.1:1"), (vars::LOG_LEVEL, "debug")]);
    file.write(&changed);
    hup(&server);
    let log = wait_for_log(&server, APPLIED, 1).await;
    let warning = log
        .lines()
        .find(|line| line.contains("need a restart"))
        .expect("a warning names the restart-only settings");
    assert!(warning.contains(vars::HTTP_ADDR), "{warning}");
    assert!(!warning.contains(vars::LOG_LEVEL), "{warning}");
    assert!(log.contains("configuration reloaded: LOG_LEVEL"));

    // Still served where it started; the debug line of a probe now appears.
    assert_eq!(status_of(&server, OLD_KEY).await, 200);
    assert_eq!(server.get("/v1/.well-known/live").send().await.status, 200);
    let log = wait_for_log(&server, "/v1/.well-known/live", 1).await;
    assert!(log.contains("DEBUG"));
    assert_eq!(reloads(&server, "applied").await, 1.0);
}

fn oidc_config(issuer: &str) -> Vec<(&str, &str)> {
    vec![
        (vars::OIDC_ENABLED, "true"),
        (vars::OIDC_ISSUER, issuer),
        (vars::OIDC_CLIENT_ID, CLIENT_ID),
        (vars::OIDC_USERNAME_CLAIM, USERNAME_CLAIM),
        (vars::OIDC_GROUPS_CLAIM, GROUPS_CLAIM),
    ]
}

#[tokio::test]
async fn a_new_issuer_takes_over_once_its_keys_load() {
    let (key_one, key_two) = (TestKey::rsa_a(), TestKey::rsa_b());
    let one = FaultIssuer::start(&[&key_one]).await;
    let two = FaultIssuer::start(&[&key_two]).await;
    let (url_one, url_two) = (one.url(), two.url());
    let file = ConfigFile::new(&oidc_config(&url_one));
    let server = builder(&file).start().await;
    let own_info = |token: String| {
        let request = server.get("/v1/users/own-info").bearer(&token);
        async move { request.send().await }
    };
    let accepted = poll_every(Duration::from_millis(50), Duration::from_secs(20), || {
        let reply = own_info(one.token(&key_one));
        async move { (reply.await.status == 200).then_some(()) }
    })
    .await;
    assert!(accepted.is_some(), "the first issuer's token is accepted");
    assert_invalid_token(&own_info(two.token(&key_two)).await, "second issuer before");

    file.write(&oidc_config(&url_two));
    hup(&server);
    let log = wait_for_log(&server, "OpenID Connect switched", 1).await;
    assert!(log.contains("configuration reloaded: OpenID Connect settings"));
    assert!(
        two.jwks_fetches() >= 1,
        "the new issuer's keys were fetched"
    );
    let reply = own_info(two.token(&key_two)).await;
    assert_eq!(reply.status, 200, "the second issuer's token: {reply:?}");
    assert_eq!(reply.json()["username"], "alice");
    assert_invalid_token(&own_info(one.token(&key_one)).await, "first issuer after");
    // What clients are told to use follows too.
    let advertised = server
        .get("/v1/.well-known/openid-configuration")
        .send()
        .await;
    assert_eq!(
        advertised.json()["href"],
        format!("{url_two}/.well-known/openid-configuration")
    );
    assert_eq!(reloads(&server, "applied").await, 1.0);
}
