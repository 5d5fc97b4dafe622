//! Start-up of the real binary: invalid configuration exits with code 2 and names the
//! variable, bind failures exit non-zero, and no key text ever reaches the logs.

use std::io::Write;

use portcullis_config::vars;
use portcullis_tests::{client, ServerBuilder, StartFailure};
use reqwest::header::AUTHORIZATION;

const KEY_ONE: &str = "pk-startup-one-a93f07c2e5d1";
const KEY_TWO: &str = "pk-startup-two-4be8d61f0a37";
const KEY_THREE: &str = "pk-startup-three-c05a2d9e71b8";

/// Exit code for an invalid configuration.
const CONFIG_EXIT: i32 = 2;

fn with_keys(keys: &str, users: &str) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, keys)
        .env(vars::APIKEY_USERS, users)
}

/// Asserts a configuration refusal naming `variable`, with no key text anywhere in the output.
fn assert_refused(failure: &StartFailure, variable: &str, secrets: &[&str]) {
    // Checked before any assertion prints the output.
    for secret in secrets {
        assert!(
            !failure.stderr.contains(secret) && !failure.stdout.contains(secret),
            "the output of a refused start contains a configured key"
        );
    }
    assert_eq!(
        failure.code,
        Some(CONFIG_EXIT),
        "exit code; stderr: {}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains("invalid configuration"),
        "{}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains(variable),
        "stderr does not name {variable}: {}",
        failure.stderr
    );
    assert!(
        !failure.stdout.contains("listening"),
        "a refused server bound a socket: {}",
        failure.stdout
    );
}

#[tokio::test]
async fn mismatched_apikey_users_exit_2_naming_the_variable() {
    let keys = [KEY_ONE, KEY_TWO, KEY_THREE].join(",");
    let failure = with_keys(&keys, "alice,bob").start_expect_failure().await;
    assert_refused(&failure, vars::APIKEY_USERS, &[KEY_ONE, KEY_TWO, KEY_THREE]);
    assert!(
        failure.stderr.contains("(2 users, 3 keys)"),
        "{}",
        failure.stderr
    );
}

/// The bootstrap admin's key from the server's standard output: the indented line after
/// "shown only this once".
fn bootstrap_key(stdout: &[String]) -> Option<String> {
    let shown = stdout
        .iter()
        .position(|l| l.contains("shown only this once"))?;
    stdout[shown + 1..]
        .iter()
        .find(|l| l.starts_with("    ") && !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

async fn own_info_username(
    server: &portcullis_tests::Server,
    key: &str,
) -> (u16, serde_json::Value) {
    let response = client()
        .get(server.url("/v1/users/own-info"))
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

// Weaviate opens the database to everyone when no method is enabled. Portcullis used to refuse
// to start naming AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED; it now turns database users on and
// creates an `admin` whose key is shown once on standard output, and its notice names the
// variable that would choose anonymous access instead.
#[tokio::test]
async fn no_method_configured_starts_with_a_bootstrap_admin_shown_once_and_never_logged() {
    for anonymous in [None, Some("false")] {
        let mut builder = ServerBuilder::new();
        if let Some(value) = anonymous {
            builder = builder.env(vars::ANONYMOUS_ACCESS_ENABLED, value);
        }
        let server = builder.start().await;
        let key = bootstrap_key(&server.stdout())
            .unwrap_or_else(|| panic!("no bootstrap key on stdout (anonymous {anonymous:?})"));
        let stderr = server.stderr();
        assert!(
            !stderr.contains(&key),
            "the bootstrap key is in the log (anonymous {anonymous:?})"
        );
        assert!(
            stderr.contains("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true"),
            "the notice does not name the anonymous switch: {stderr}"
        );
        assert_eq!(
            own_info_username(&server, &key).await,
            (
                200,
                serde_json::json!({ "username": "admin", "groups": [], "roles": null })
            )
        );
        let anonymous_request = client()
            .get(server.url("/v1/meta"))
            .send()
            .await
            .expect("request sent");
        assert_eq!(anonymous_request.status(), 401, "anonymous stays off");
        assert!(
            !server.stderr().contains(&key),
            "the key is in the log after use"
        );

        // A restart over the same data directory keeps the admin and does not show its key again.
        let data = server.kill9().await;
        let mut builder = ServerBuilder::new().data_dir(&data);
        if let Some(value) = anonymous {
            builder = builder.env(vars::ANONYMOUS_ACCESS_ENABLED, value);
        }
        let restarted = builder.start().await;
        assert!(
            !restarted.stdout().iter().any(|l| l.contains(&key)),
            "the bootstrap key was shown again"
        );
        assert!(
            bootstrap_key(&restarted.stdout()).is_none(),
            "a second bootstrap admin was created over the same data directory"
        );
        assert_eq!(own_info_username(&restarted, &key).await.0, 200);
        assert!(!restarted.stderr().contains(&key), "the key is in the log");
    }
}

#[tokio::test]
async fn duplicate_keys_are_refused_without_echoing_them() {
    let keys = [KEY_ONE, KEY_TWO, KEY_ONE].join(",");
    let failure = with_keys(&keys, "alice").start_expect_failure().await;
    assert_refused(&failure, vars::APIKEY_ALLOWED_KEYS, &[KEY_ONE, KEY_TWO]);
    assert!(
        failure.stderr.contains("key 3 repeats key 1"),
        "{}",
        failure.stderr
    );
}

#[tokio::test]
async fn a_key_with_a_control_character_is_refused_without_echoing_it() {
    let keys = format!("{KEY_ONE},{KEY_TWO}\u{7}");
    let failure = with_keys(&keys, "alice").start_expect_failure().await;
    assert_refused(&failure, vars::APIKEY_ALLOWED_KEYS, &[KEY_ONE, KEY_TWO]);
}

#[tokio::test]
async fn enabled_keys_without_users_are_refused() {
    let failure = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, KEY_ONE)
        .start_expect_failure()
        .await;
    assert_refused(&failure, vars::APIKEY_USERS, &[KEY_ONE]);
}

#[tokio::test]
async fn an_unknown_portcullis_variable_exits_2() {
    let failure = with_keys(KEY_ONE, "alice")
        .env("PORTCULLIS_FOO", "1")
        .start_expect_failure()
        .await;
    assert_refused(&failure, "PORTCULLIS_FOO", &[KEY_ONE]);
}

#[tokio::test]
async fn rbac_with_anonymous_access_is_refused() {
    let failure = with_keys(KEY_ONE, "alice")
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start_expect_failure()
        .await;
    assert_refused(&failure, vars::RBAC_ENABLED, &[KEY_ONE]);
    assert!(
        failure
            .stderr
            .contains("cannot enable anonymous access and rbac authorization"),
        "{}",
        failure.stderr
    );
}

#[tokio::test]
async fn every_problem_is_reported_in_one_refusal() {
    let failure = with_keys(&format!("{KEY_ONE},{KEY_TWO}"), "a,b,c")
        .env(vars::LOG_LEVEL, "loud")
        .env("PORTCULLIS_FOO", "1")
        .start_expect_failure()
        .await;
    assert_refused(&failure, vars::APIKEY_USERS, &[KEY_ONE, KEY_TWO]);
    for variable in [vars::LOG_LEVEL, "PORTCULLIS_FOO"] {
        assert!(
            failure.stderr.contains(variable),
            "stderr does not name {variable}: {}",
            failure.stderr
        );
    }
}

#[tokio::test]
async fn an_unreadable_key_file_is_refused_naming_the_file_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-keys");
    let failure = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            "AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE",
            missing.display().to_string(),
        )
        .env(vars::APIKEY_USERS, "alice")
        .start_expect_failure()
        .await;
    assert_refused(&failure, "AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE", &[]);
}

#[tokio::test]
async fn keys_can_come_from_a_file_and_are_not_logged() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "{KEY_ONE},{KEY_TWO}").expect("key file written");
    let server = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            "AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE",
            file.path().display().to_string(),
        )
        .env(vars::APIKEY_USERS, "alice,bob")
        .start()
        .await;
    for (key, user) in [(KEY_ONE, "alice"), (KEY_TWO, "bob")] {
        let response = client()
            .get(server.url("/v1/users/own-info"))
            .header(AUTHORIZATION, format!("Bearer {key}"))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("JSON body");
        assert_eq!(body["username"], user);
    }
    let stderr = server.stderr();
    assert!(
        !stderr.contains(KEY_ONE) && !stderr.contains(KEY_TWO),
        "a key from the key file appears in the log"
    );
}

/// Runs accepted, rejected and near-miss requests against a server logging at `trace` in
/// `format`, then checks that no key text was logged anywhere.
async fn assert_keys_never_logged(format: &str) {
    let near_miss = format!("{}x", &KEY_ONE[..KEY_ONE.len() - 1]);
    let server = with_keys(&format!("{KEY_ONE},{KEY_TWO}"), "alice,bob")
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "false")
        .env(vars::LOG_LEVEL, "trace")
        .env(vars::LOG_FORMAT, format)
        .start()
        .await;
    let http = client();
    for (value, status) in [
        (format!("Bearer {KEY_ONE}"), 200),
        (format!("bearer {KEY_TWO}"), 200),
        (format!("Bearer {near_miss}"), 401),
        (format!("Bearer {KEY_ONE} {KEY_TWO}"), 400),
        (format!("Bearer {KEY_ONE}, Bearer {KEY_TWO}"), 400),
    ] {
        let response = http
            .get(server.url("/v1/users/own-info"))
            .header(AUTHORIZATION, value)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), status, "LOG_FORMAT={format}");
    }
    let response = http
        .get(server.url(&format!("/v1/meta?access_token={KEY_TWO}")))
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .expect("request sent");
    assert_eq!(response.status(), 401);

    let stderr = server.stderr();
    let stdout = server.stdout().join("\n");
    assert!(
        stderr.contains("portcullis::access"),
        "LOG_FORMAT={format}: the access log is missing"
    );
    assert!(
        stderr.contains(vars::APIKEY_ALLOWED_KEYS) && stderr.contains("2 keys"),
        "LOG_FORMAT={format}: the masked key count is not logged"
    );
    for (name, secret) in [
        ("KEY_ONE", KEY_ONE),
        ("KEY_TWO", KEY_TWO),
        ("near miss", &near_miss),
    ] {
        assert!(
            !stderr.contains(secret),
            "LOG_FORMAT={format}: {name} appears in stderr"
        );
        assert!(
            !stdout.contains(secret),
            "LOG_FORMAT={format}: {name} appears in stdout"
        );
    }
}

#[tokio::test]
async fn static_keys_are_never_logged_in_text_format() {
    assert_keys_never_logged("text").await;
}

#[tokio::test]
async fn static_keys_are_never_logged_in_json_format() {
    assert_keys_never_logged("json").await;
}

#[tokio::test]
async fn an_http_address_in_use_is_a_start_failure_naming_the_variable() {
    let first = ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    let failure = ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .env(vars::HTTP_ADDR, first.http.to_string())
        .start_expect_failure()
        .await;
    assert_eq!(failure.code, Some(1), "stderr: {}", failure.stderr);
    assert!(
        failure.stderr.contains(vars::HTTP_ADDR),
        "{}",
        failure.stderr
    );
}

// With database users on and neither the admin list nor a database user `admin`, nobody may
// manage users (docs/users.md): the start-up log says so and names the fix; with the admin list
// on it does not.
#[tokio::test]
async fn database_users_without_any_administrator_are_announced_at_start() {
    const WARNING: &str = "nobody can manage users";
    let without = ServerBuilder::new()
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, KEY_ONE)
        .env(vars::APIKEY_USERS, "ops")
        .start()
        .await;
    let stderr = without.stderr();
    assert!(stderr.contains(WARNING), "no warning: {stderr}");
    assert!(
        stderr.contains("AUTHORIZATION_ADMINLIST_USERS"),
        "the warning does not name the fix: {stderr}"
    );
    assert!(!stderr.contains(KEY_ONE), "a static key is in the log");

    let with_list = ServerBuilder::new()
        .env(vars::DB_USERS_ENABLED, "true")
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, KEY_ONE)
        .env(vars::APIKEY_USERS, "ops")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "ops")
        .start()
        .await;
    let stderr = with_list.stderr();
    assert!(
        !stderr.contains(WARNING),
        "warned with the admin list on: {stderr}"
    );
}

/// A new database key from `portcullis generate-key`.
fn generated_key() -> String {
    let key = portcullis_tests::generated_key();
    assert!(key.starts_with("pcu_"), "not a database key");
    key
}

// The operator may supply the first admin's key from a file (docs/users.md): it is used, and
// nothing is printed or logged; a malformed one stops the start naming the variable without
// echoing it; once the admin exists a supplied key is not applied.
#[tokio::test]
async fn the_bootstrap_admin_key_can_come_from_a_file_and_is_never_printed() {
    let key = generated_key();
    let mut file = tempfile::NamedTempFile::new().expect("key file");
    writeln!(file, "{key}").expect("key written");
    let file_var = format!("{}_FILE", vars::BOOTSTRAP_ADMIN_KEY);
    let path = file.path().to_str().expect("UTF-8 path").to_owned();

    let server = ServerBuilder::new()
        .env(&file_var, path.clone())
        .start()
        .await;
    assert_eq!(bootstrap_key(&server.stdout()), None, "a key was printed");
    let stdout = server.stdout().join("\n");
    assert!(!stdout.contains(&key), "the supplied key is on stdout");
    assert!(
        !server.stderr().contains(&key),
        "the supplied key is in the log"
    );
    assert_eq!(
        own_info_username(&server, &key).await,
        (
            200,
            serde_json::json!({ "username": "admin", "groups": [], "roles": null })
        )
    );

    // A restart over the same data with another supplied key keeps the first one.
    let data = server.kill9().await;
    let other = generated_key();
    let restarted = ServerBuilder::new()
        .data_dir(&data)
        .env(vars::BOOTSTRAP_ADMIN_KEY, other.clone())
        .start()
        .await;
    assert!(
        restarted.stderr().contains("is not applied"),
        "no warning that the key was not applied: {}",
        restarted.stderr()
    );
    assert!(
        !restarted.stderr().contains(&other),
        "the new key is in the log"
    );
    assert_eq!(own_info_username(&restarted, &key).await.0, 200);
    assert_eq!(own_info_username(&restarted, &other).await.0, 401);

    // A key that is not a database key: no start, the variable named, the value not echoed.
    const NOT_A_KEY: &str = "admin-password-1234567890";
    let failure = ServerBuilder::new()
        .env(vars::BOOTSTRAP_ADMIN_KEY, NOT_A_KEY)
        .start_expect_failure()
        .await;
    assert_ne!(failure.code, Some(0), "started with a malformed key");
    assert!(
        failure.stderr.contains(vars::BOOTSTRAP_ADMIN_KEY),
        "the error does not name the variable: {}",
        failure.stderr
    );
    assert!(
        !failure.stderr.contains(NOT_A_KEY) && !failure.stdout.contains(NOT_A_KEY),
        "the malformed key was echoed"
    );
}
