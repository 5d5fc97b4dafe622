//! The official Weaviate Python client (`weaviate-client`, pinned in
//! `tests/python/requirements.txt`) end to end against the real binary, over REST and gRPC
//! (issue 12): `tests/python/client_e2e.py` connects without skipping the init checks, creates
//! a collection, inserts 500 objects with `insert_many`, reads them back every way the issue
//! lists, and is refused as a wrong key and as a read-only user; with a static key, a
//! database-user key and an OIDC client-credentials token from the real provider. Each test
//! then checks over REST that both APIs saw the same data.
//!
//! The interpreter is `PORTCULLIS_TEST_PYTHON`, which `tests/run` sets after installing the
//! requirements into `target/pyvenv`. Without it these tests fail, saying so: they never skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use portcullis_config::vars;
use portcullis_tests::assert::INVALID_MESSAGE;
use portcullis_tests::oidc_provider::{OidcProvider, SERVICE_USERNAME};
use portcullis_tests::oidc_support::oidc_server;
use portcullis_tests::{Server, ServerBuilder};
use serde_json::Value;

const ROOT_KEY: &str = "py-root-static-key-0123456789";
const READER_KEY: &str = "py-reader-static-key-0123456789";
const WRONG_KEY: &str = "py-wrong-key-0123456789";

/// The objects the scenario inserts with `insert_many`, and one more from its mixed batch.
const INSERTED: usize = 500;
const STORED: usize = INSERTED + 1;

/// How long one run of the script may take (the client's connect checks included).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The credential a run of the script uses.
enum Credential<'a> {
    ApiKey(&'a str),
    Bearer(&'a str),
}

fn python() -> PathBuf {
    match std::env::var_os("PORTCULLIS_TEST_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "PORTCULLIS_TEST_PYTHON is not set: these tests run the official Weaviate Python \
             client. Run them through tests/run, which installs tests/python/requirements.txt \
             into target/pyvenv and sets it, or set it to a python that has those packages"
        ),
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/client_e2e.py")
}

/// Runs one scenario of the script against `server` and returns what it printed after
/// `RESULT`. A failed run panics with the script's standard error (which never holds the
/// credential: it is passed in the environment and the script does not print it).
async fn run(
    server: &Server,
    scenario: &str,
    collection: &str,
    credential: Credential<'_>,
) -> Value {
    run_with(server, scenario, collection, credential, &[]).await
}

/// [`run`] with more variables for the script.
async fn run_with(
    server: &Server,
    scenario: &str,
    collection: &str,
    credential: Credential<'_>,
    extra: &[(&str, &str)],
) -> Value {
    let grpc = server.grpc.expect("the gRPC address");
    let mut command = tokio::process::Command::new(python());
    command
        .envs(extra.iter().copied())
        .arg(script())
        .env("PORTCULLIS_E2E_HTTP_PORT", server.http.port().to_string())
        .env("PORTCULLIS_E2E_GRPC_PORT", grpc.port().to_string())
        .env("PORTCULLIS_E2E_SCENARIO", scenario)
        .env("PORTCULLIS_E2E_COLLECTION", collection)
        .env_remove("PORTCULLIS_E2E_API_KEY")
        .env_remove("PORTCULLIS_E2E_BEARER")
        // Warnings (a deprecation in a dependency, the version check) are not failures.
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match credential {
        Credential::ApiKey(key) => command.env("PORTCULLIS_E2E_API_KEY", key),
        Credential::Bearer(token) => command.env("PORTCULLIS_E2E_BEARER", token),
    };
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", python().display()));
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{scenario}: the Python client took over {SCRIPT_TIMEOUT:?}"))
        .expect("wait for the Python client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{scenario}: the Python client failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{scenario}: no RESULT line:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).expect("the RESULT line is JSON")
}

/// What the full scenario must have seen; the filter counts are computed here again from the
/// properties the script gives object `i` (`count = i % 7`, `done = i` even, `price = i / 2`).
fn assert_full(result: &Value, collection: &str) {
    assert_eq!(result["inserted"], INSERTED, "{result}");
    assert_eq!(result["server_version"], "1.30.0");
    assert_eq!(result["client_version"], "4.24.1");
    assert_eq!(
        result["batch_error"],
        format!(
            "invalid int property 'count' on class '{collection}': expected an integer, got the string \"seven\""
        ),
    );
    assert_eq!(result["iterated"], STORED);
    assert_eq!(result["total_count"], STORED);
    let count = |p: &dyn Fn(usize) -> bool| (0..STORED).filter(|i| p(*i)).count();
    assert_eq!(result["total_count_not_done"], count(&|i| i % 2 == 1));
    let filters = &result["filters"];
    assert_eq!(filters["count=3"], count(&|i| i % 7 == 3));
    assert_eq!(
        filters["count=3&done"],
        count(&|i| i % 7 == 3 && i % 2 == 0)
    );
    assert_eq!(
        filters["count=1|count=2"],
        count(&|i| i % 7 == 1 || i % 7 == 2)
    );
    assert_eq!(filters["title=item 42"], 1);
    assert_eq!(filters["price=10.5"], 1);
    assert_eq!(filters["id"], 1);
    assert_eq!(
        result["by_id"]["properties"],
        serde_json::json!({"title": "item 42", "count": 0, "price": 21.0, "done": true})
    );
    let near = result["near_vector_error"].as_str().unwrap_or_default();
    assert!(
        near.contains("near_vector search is not supported by the embedded store"),
        "{near}"
    );
}

/// REST sees what the client wrote over gRPC: every object, and the same page.
async fn assert_rest_agrees(server: &Server, key: &str, collection: &str, result: &Value) {
    let reply = server
        .get(&format!("/v1/objects?class={collection}&limit=10000"))
        .bearer(key)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
    let objects = body["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), STORED);
    let by_id = &result["by_id"];
    let stored = objects
        .iter()
        .find(|o| o["id"] == by_id["uuid"])
        .expect("object 42 over REST");
    // REST keeps the JSON the client's gRPC batch carried: whole numbers as integers.
    assert_eq!(
        stored["properties"],
        serde_json::json!({"title": "item 42", "count": 0, "price": 21, "done": true})
    );
    let reply = server
        .get(&format!("/v1/objects?class={collection}&offset=5&limit=10"))
        .bearer(key)
        .send()
        .await;
    let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
    let page: Vec<&str> = body["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    let grpc_page: Vec<&str> = result["page"]
        .as_array()
        .expect("page")
        .iter()
        .map(|id| id.as_str().expect("id"))
        .collect();
    assert_eq!(page, grpc_page, "REST's page and gRPC's fetch_objects page");
}

/// A read-only user reads, and its insert_many is refused and writes nothing.
fn assert_read_only(result: &Value) {
    assert_eq!(
        result["insert_error"], "InsufficientPermissionsError",
        "{result}"
    );
    assert_eq!(result["count_before"], STORED);
    assert_eq!(result["count_after"], STORED);
    assert_eq!(result["read"], 3);
}

/// Static `root` (admin) and `reader` (read-only) keys, database users on, the admin list on.
fn with_static_keys(builder: ServerBuilder, admins: &str, readers: &str) -> ServerBuilder {
    builder
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            vars::APIKEY_ALLOWED_KEYS,
            format!("{ROOT_KEY},{READER_KEY}"),
        )
        .env(vars::APIKEY_USERS, "root,reader")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, admins)
        .env(vars::ADMINLIST_READONLY_USERS, readers)
}

#[tokio::test]
async fn static_key_runs_the_scenario_and_rest_sees_the_same_data() {
    let server = with_static_keys(ServerBuilder::new(), "root", "reader")
        .start()
        .await;
    let collection = "PyStatic";
    let result = run(&server, "full", collection, Credential::ApiKey(ROOT_KEY)).await;
    assert_full(&result, collection);
    assert_rest_agrees(&server, ROOT_KEY, collection, &result).await;

    let refused = run(
        &server,
        "read-only",
        collection,
        Credential::ApiKey(READER_KEY),
    )
    .await;
    assert_read_only(&refused);

    let wrong = run(
        &server,
        "wrong-key",
        collection,
        Credential::ApiKey(WRONG_KEY),
    )
    .await;
    // At connect: /v1/meta answers 401, which the client raises as an unexpected status
    // (it does so even with skip_init_checks, so a wrong key never reaches a first call).
    assert_eq!(
        wrong["connect_error"], "UnexpectedStatusCodeError",
        "{wrong}"
    );
    assert_eq!(wrong["connect_status"], 401);
    let message = wrong["connect_message"].as_str().unwrap_or_default();
    assert!(message.contains(INVALID_MESSAGE), "{message}");
}

#[tokio::test]
async fn database_user_keys_run_the_scenario() {
    let server = with_static_keys(
        ServerBuilder::new(),
        "root,py-admin",
        "reader,py-reader,py-rotated",
    )
    .env(vars::DB_USERS_ENABLED, "true")
    .start()
    .await;
    let mut keys = Vec::new();
    for user in ["py-admin", "py-reader", "py-rotated"] {
        let reply = server
            .post(&format!("/v1/users/db/{user}"))
            .bearer(ROOT_KEY)
            .send()
            .await;
        assert_eq!(reply.status, 201, "create {user}: {}", reply.text());
        let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
        keys.push(body["apikey"].as_str().expect("apikey").to_owned());
    }
    let collection = "PyDbUser";
    let result = run(&server, "full", collection, Credential::ApiKey(&keys[0])).await;
    assert_full(&result, collection);
    assert_rest_agrees(&server, ROOT_KEY, collection, &result).await;
    let refused = run(
        &server,
        "read-only",
        collection,
        Credential::ApiKey(&keys[1]),
    )
    .await;
    assert_read_only(&refused);

    // A connected client whose key an admin rotates: its next gRPC call is refused with
    // REST's 401 message.
    let rotated = run_with(
        &server,
        "rotated",
        collection,
        Credential::ApiKey(&keys[2]),
        &[
            ("PORTCULLIS_E2E_ROTATED_USER", "py-rotated"),
            ("PORTCULLIS_E2E_ADMIN_KEY", ROOT_KEY),
        ],
    )
    .await;
    assert_eq!(rotated["before"], 2, "{rotated}");
    assert_eq!(rotated["after_error"], "WeaviateQueryError");
    let message = rotated["after_message"].as_str().unwrap_or_default();
    assert!(message.contains(INVALID_MESSAGE), "{message}");
}

#[tokio::test]
async fn oidc_client_credentials_token_runs_the_scenario() {
    let provider = OidcProvider::start().await;
    let server = with_static_keys(
        oidc_server(provider.issuer()),
        &format!("root,{SERVICE_USERNAME}"),
        "reader",
    )
    .start()
    .await;
    let token = provider.token_client_credentials().await;
    let collection = "PyOidc";
    let result = run(&server, "full", collection, Credential::Bearer(&token)).await;
    assert_full(&result, collection);
    assert_rest_agrees(&server, ROOT_KEY, collection, &result).await;
}
