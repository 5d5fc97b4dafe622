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
use portcullis_tests::oidc_support::{oidc_server, wait_until_accepted};
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

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
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
    run_script(
        "client_e2e.py",
        server,
        scenario,
        collection,
        credential,
        extra,
    )
    .await
}

/// Runs `scenario` of the script `name` (in `tests/python`) against `server`.
async fn run_script(
    name: &str,
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
        .arg(script(name))
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

/// The refusal every denied call of the roles scenarios raises in the client.
const REFUSED: &str = "InsufficientPermissionsError";

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

/// Roles (issue 13) through the official client: roles from its permission builders,
/// assigned to and revoked from database users; list, get, exists, has_permissions,
/// get_assigned_roles(include_permissions=True), get_user_assignments, get_my_user; a viewer
/// cannot write, a collection-scoped role reads only its collection, and a role manager with
/// scope `match` cannot grant more than it holds.
#[tokio::test]
async fn roles_for_database_users_through_the_client() {
    let admin = portcullis_tests::generated_key();
    let server = ServerBuilder::new()
        .env(vars::BOOTSTRAP_ADMIN_KEY, &admin)
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "admin")
        .start()
        .await;
    let r = run_script(
        "roles_e2e.py",
        &server,
        "roles-db",
        "-",
        Credential::ApiKey(&admin),
        &[],
    )
    .await;
    assert_eq!(r["client_version"], "4.24.1");
    assert_eq!(
        strings(&r["roles"]),
        [
            "admin",
            "movie-reader",
            "read-only",
            "role-manager",
            "root",
            "viewer"
        ],
        "{r}"
    );
    // The client upper-cases `movie`; the role reads back with every filter filled in.
    let movie_reader = [
        r#"read_collections {"collection": "Movie"}"#,
        r#"read_data {"collection": "Movie", "tenant": "*"}"#,
    ];
    assert_eq!(strings(&r["movie_reader"]), movie_reader, "{r}");
    assert_eq!(r["exists"], serde_json::json!([true, false]));
    assert_eq!(r["get_missing"], true);
    // has-permission answers coverage, and the client reads the answer.
    assert_eq!(
        r["has"],
        serde_json::json!({
            "movie-reader read Movie": true,
            "movie-reader read Book": false,
            "movie-reader read+update Movie": false,
            "role-manager read MovieNight": true,
            "viewer read Book": true,
            "viewer create Book": false,
        })
    );
    assert_eq!(
        r["assigned_full"],
        serde_json::json!({ "movie-reader": movie_reader })
    );
    assert_eq!(strings(&r["assigned_names"]), ["movie-reader"]);
    assert_eq!(
        r["user_assignments"],
        serde_json::json!([["py-movies", "db_user"]])
    );
    assert_eq!(strings(&r["assigned_user_ids"]), ["py-movies"]);
    assert_eq!(strings(&r["db_user_roles"]), ["movie-reader"]);
    assert_eq!(
        r["admin_me"],
        serde_json::json!({"user_id": "admin", "roles": ["root"]})
    );

    // A viewer reads everything and changes nothing.
    assert_eq!(
        r["viewer_me"],
        serde_json::json!({"user_id": "py-viewer", "roles": ["viewer"]})
    );
    assert_eq!(r["viewer_reads"], serde_json::json!([1, 1]));
    for refusal in [
        "viewer_insert",
        "viewer_insert_many",
        "viewer_delete_collection",
        "viewer_create_role",
    ] {
        assert_eq!(r[refusal], REFUSED, "{refusal}: {r}");
    }

    // A collection-scoped role reads its collection only (rbac_enforce.rs checks that the
    // schema list shows only it: the client's list_all reads more of a class than the
    // embedded store keeps).
    assert_eq!(r["movies_exists"], serde_json::json!([true, REFUSED]));
    assert_eq!(r["movies_read_movie"], 1);
    assert_eq!(r["movies_read_book"], REFUSED);
    assert_eq!(
        r["movies_me"],
        serde_json::json!({ "movie-reader": movie_reader })
    );

    // A `match` manager grants what it holds and nothing more.
    for (what, refusal) in r["manager_escalations"].as_object().expect("escalations") {
        assert_eq!(refusal, REFUSED, "{what}");
    }
    assert_eq!(
        r["manager_escalations"].as_object().map(|o| o.len()),
        Some(4)
    );
    assert_eq!(r["manager_sees"], serde_json::json!([true, false, false]));
    assert_eq!(r["target_read"], 1);
    assert_eq!(r["target_read_book"], REFUSED);

    // Revoke (the client's deprecated path), remove-permissions and delete take effect for
    // the next call.
    assert_eq!(r["revoked_names"], serde_json::json!([]));
    assert_eq!(
        strings(&r["after_remove"]),
        [r#"read_collections {"collection": "Movie"}"#]
    );
    assert_eq!(r["deleted_exists"], false);
    assert_eq!(r["movies_after_revoke"], REFUSED);
    assert_eq!(r["movies_me_after"], serde_json::json!([]));
    assert_eq!(r["target_after_delete"], REFUSED);

    // Over REST, the manager's refused escalation left no role behind, and the viewer's
    // refused writes wrote nothing.
    let reply = server
        .get("/v1/authz/roles/book-sub")
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(reply.status, 404);
    let reply = server
        .get("/v1/objects?class=Movie")
        .bearer(&admin)
        .send()
        .await;
    let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(body["objects"].as_array().map(Vec::len), Some(1), "{body}");
}

/// Roles for OIDC users and groups (issue 13) through the official client, with tokens from
/// the real provider: alice gets a role's permissions through her group `staff`, bob through
/// his own OIDC user; group listings are sorted; revoking takes the permissions away.
#[tokio::test]
async fn roles_for_oidc_users_and_groups_through_the_client() {
    let provider = OidcProvider::start().await;
    let server = oidc_server(provider.issuer())
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, ROOT_KEY)
        .env(vars::APIKEY_USERS, "root")
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "root")
        .start()
        .await;
    let alice = provider.token_password("alice", "alice-password").await;
    let bob = provider.token_password("bob", "bob-password").await;
    wait_until_accepted(&server, &alice, Duration::from_secs(10)).await;
    let r = run_script(
        "roles_e2e.py",
        &server,
        "roles-oidc",
        "-",
        Credential::ApiKey(ROOT_KEY),
        &[
            ("PORTCULLIS_E2E_ALICE_TOKEN", alice.as_str()),
            ("PORTCULLIS_E2E_BOB_TOKEN", bob.as_str()),
        ],
    )
    .await;
    let movies = [
        r#"read_collections {"collection": "Movie"}"#,
        r#"read_data {"collection": "Movie", "tenant": "*"}"#,
    ];
    let books = [
        r#"read_collections {"collection": "Book"}"#,
        r#"read_data {"collection": "Book", "tenant": "*"}"#,
    ];
    assert_eq!(
        strings(&r["known_groups"]),
        ["alpha-team", "staff", "zeta-team"],
        "{r}"
    );
    assert_eq!(
        r["staff_roles"],
        serde_json::json!({ "staff-movies": movies })
    );
    assert_eq!(
        r["group_assignments"],
        serde_json::json!([
            ["alpha-team", "oidc"],
            ["staff", "oidc"],
            ["zeta-team", "oidc"]
        ])
    );
    assert_eq!(strings(&r["bob_roles"]), ["bob-books"]);
    assert_eq!(r["bob_full"], serde_json::json!({ "bob-books": books }));
    assert_eq!(r["bob_assignments"], serde_json::json!([["bob", "oidc"]]));

    assert_eq!(
        r["alice_me"],
        serde_json::json!({"user_id": "alice", "groups": ["admins", "staff"], "roles": ["staff-movies"]})
    );
    assert_eq!(r["alice_reads_movie"], 1);
    assert_eq!(r["alice_reads_book"], REFUSED);
    assert_eq!(r["alice_exists"], serde_json::json!([true, REFUSED]));
    assert_eq!(strings(&r["alice_own_group"]), ["staff-movies"]);
    assert_eq!(r["alice_other_group"], REFUSED);
    assert_eq!(
        r["bob_me"],
        serde_json::json!({"user_id": "bob", "groups": ["readers"], "roles": ["bob-books"]})
    );
    assert_eq!(r["bob_reads_book"], 1);
    assert_eq!(r["bob_reads_movie"], REFUSED);

    assert_eq!(
        strings(&r["known_groups_after"]),
        ["alpha-team", "zeta-team"]
    );
    assert_eq!(r["bob_roles_after"], serde_json::json!([]));
    assert_eq!(r["alice_after"], REFUSED);
    assert_eq!(r["alice_roles_after"], serde_json::json!([]));
    assert_eq!(r["bob_after"], REFUSED);

    // Over REST with alice's token: the group's role is gone, the 403 names her groups.
    let reply = server
        .get("/v1/objects?class=Movie")
        .bearer(&alice)
        .send()
        .await;
    assert_eq!(reply.status, 403);
    let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(
        body["error"][0]["message"],
        "rbac: authorization, forbidden action: user 'alice' (of groups 'admins', 'staff') has \
         insufficient permissions to read_data [[Domain: data, Collection: Movie, Tenant: *, Object: *]]"
    );
}
