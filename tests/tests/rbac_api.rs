//! The roles API end to end (`docs/rbac.md`): every `/v1/authz` route's codes and messages
//! against Weaviate's, the fixes (has-permission coverage, remove-permissions, names with `:`
//! and `,`, sorted group listings), deleting users and roles, kill -9 durability, the root
//! users from the settings, and a `match`-scoped role manager that cannot escalate. Every test
//! runs the real binary on 127.0.0.1:0 over a real SQLite file.

use portcullis_config::vars;
use portcullis_tests::rbac::call;
use portcullis_tests::{Server, ServerBuilder};
use reqwest::Method;
use serde_json::{json, Value};

/// RBAC with database users and the bootstrap admin `admin` (whose key is `admin_key`) as the
/// root user.
fn rbac_server(admin_key: &str) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::BOOTSTRAP_ADMIN_KEY, admin_key)
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "admin")
}

/// `method path` as `key` with an optional JSON body: the status and the body (`Null` when
/// empty).
fn error(message: &str) -> Value {
    json!({ "error": [{ "message": message }] })
}

async fn create_user(server: &Server, admin: &str, id: &str) -> String {
    let (status, body) = call(
        server,
        Method::POST,
        &format!("/v1/users/db/{id}"),
        admin,
        None,
    )
    .await;
    assert_eq!(status, 201, "create {id}: {body}");
    body["apikey"].as_str().expect("apikey").to_owned()
}

async fn create_role(server: &Server, key: &str, name: &str, permissions: Value) -> (u16, Value) {
    call(
        server,
        Method::POST,
        "/v1/authz/roles",
        key,
        Some(json!({ "name": name, "permissions": permissions })),
    )
    .await
}

async fn assign(server: &Server, key: &str, user: &str, body: Value) -> (u16, Value) {
    call(
        server,
        Method::POST,
        &format!("/v1/authz/users/{user}/assign"),
        key,
        Some(body),
    )
    .await
}

/// The role names in a list of roles.
fn names(roles: &Value) -> Vec<String> {
    roles
        .as_array()
        .expect("a list of roles")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn own_role_names(server: &Server, key: &str) -> Vec<String> {
    let (status, body) = call(server, Method::GET, "/v1/users/own-info", key, None).await;
    assert_eq!(status, 200, "{body}");
    names(&body["roles"])
}

#[tokio::test]
async fn role_routes_answer_weaviates_codes_and_messages() {
    let admin = portcullis_tests::generated_key();
    let server = rbac_server(&admin).start().await;
    let read_movies = json!([{"action": "read_data", "data": {"collection": "Movie*"}}]);

    let (status, body) = call(
        &server,
        Method::POST,
        "/v1/authz/roles",
        &admin,
        Some(json!({})),
    )
    .await;
    assert_eq!((status, body), (400, error("role name is required")));
    let (status, body) = create_role(&server, &admin, "1bad", read_movies.clone()).await;
    assert_eq!((status, body), (400, error("role name is invalid")));
    let (status, body) = create_role(
        &server,
        &admin,
        "alt",
        json!([{"action": "read_data", "data": {"collection": "Movie|Book"}}]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"][0]["message"].as_str().expect("message");
    assert!(
        message.starts_with("role permissions are invalid: "),
        "{message}"
    );
    assert!(
        message.contains("\"|\""),
        "the refusal names the syntax: {message}"
    );
    let (status, body) = create_role(&server, &admin, "viewer", read_movies.clone()).await;
    assert_eq!(
        (status, body),
        (
            400,
            error("you cannot create role with the same name as built-in role viewer")
        )
    );

    assert_eq!(
        create_role(&server, &admin, "movies", read_movies.clone()).await,
        (201, Value::Null)
    );
    let (status, body) = create_role(&server, &admin, "movies", read_movies.clone()).await;
    assert_eq!(
        (status, body),
        (409, error("role with name movies already exists"))
    );

    let (status, body) = call(&server, Method::GET, "/v1/authz/roles/movies", &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "movies", "permissions": [
            {"action": "read_data", "data": {"collection": "Movie*", "tenant": "*", "object": "*"}}
        ]})
    );
    assert_eq!(
        call(&server, Method::GET, "/v1/authz/roles/nope", &admin, None).await,
        (404, Value::Null)
    );
    let (status, body) = call(&server, Method::GET, "/v1/authz/roles", &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&body),
        ["admin", "movies", "read-only", "root", "viewer"]
    );

    // add-permissions
    let book = json!([{"action": "read_data", "data": {"collection": "Book"}}]);
    let path = |role: &str, op: &str| format!("/v1/authz/roles/{role}/{op}");
    let (status, body) = call(
        &server,
        Method::POST,
        &path("admin", "add-permissions"),
        &admin,
        Some(json!({"permissions": book})),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, error("you can not update built-in role admin"))
    );
    let (status, body) = call(
        &server,
        Method::POST,
        &path("movies", "add-permissions"),
        &admin,
        Some(json!({"permissions": []})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            error("invalid permissions role has to have at least 1 permission")
        )
    );
    assert_eq!(
        call(
            &server,
            Method::POST,
            &path("nope", "add-permissions"),
            &admin,
            Some(json!({"permissions": book}))
        )
        .await,
        (404, Value::Null)
    );
    let cluster = json!({"action": "read_cluster"});
    let both = json!([book[0].clone(), cluster.clone()]);
    assert_eq!(
        call(
            &server,
            Method::POST,
            &path("movies", "add-permissions"),
            &admin,
            Some(json!({"permissions": both}))
        )
        .await,
        (200, Value::Null)
    );

    // remove-permissions removes every listed one it holds, whatever the order (Weaviate
    // stopped at the first it did not hold, leaving the rest).
    let (status, body) = call(
        &server,
        Method::POST,
        &path("viewer", "remove-permissions"),
        &admin,
        Some(json!({"permissions": book})),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, error("you cannot update built-in role viewer"))
    );
    let listed = json!([
        {"action": "delete_data", "data": {"collection": "Nothing"}},
        book[0].clone(),
        cluster.clone(),
    ]);
    assert_eq!(
        call(
            &server,
            Method::POST,
            &path("movies", "remove-permissions"),
            &admin,
            Some(json!({"permissions": listed}))
        )
        .await,
        (200, Value::Null)
    );
    let (_, body) = call(&server, Method::GET, "/v1/authz/roles/movies", &admin, None).await;
    assert_eq!(
        body["permissions"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    assert_eq!(body["permissions"][0]["data"]["collection"], "Movie*");

    // has-permission answers coverage, built-in roles included; an unknown role has nothing.
    for (role, permission, held) in [
        (
            "movies",
            json!({"action": "read_data", "data": {"collection": "Movie"}}),
            true,
        ),
        (
            "movies",
            json!({"action": "read_data", "data": {"collection": "MovieNight", "tenant": "t1"}}),
            true,
        ),
        (
            "movies",
            json!({"action": "read_data", "data": {"collection": "Book"}}),
            false,
        ),
        ("movies", json!({"action": "read_data"}), false),
        (
            "viewer",
            json!({"action": "read_data", "data": {"collection": "Book"}}),
            true,
        ),
        (
            "viewer",
            json!({"action": "delete_data", "data": {"collection": "Book"}}),
            false,
        ),
        ("admin", json!({"action": "delete_data"}), true),
        ("nope", json!({"action": "read_data"}), false),
    ] {
        let reply = call(
            &server,
            Method::POST,
            &path(role, "has-permission"),
            &admin,
            Some(permission.clone()),
        )
        .await;
        assert_eq!(reply, (200, json!(held)), "{role} {permission}");
    }
    let (status, _) = call(
        &server,
        Method::POST,
        &path("movies", "has-permission"),
        &admin,
        Some(json!({"action": "fly"})),
    )
    .await;
    assert_eq!(status, 400);

    // delete
    let (status, body) = call(
        &server,
        Method::DELETE,
        "/v1/authz/roles/admin",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (400, error("you can not delete built-in role admin"))
    );
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            "/v1/authz/roles/nope",
            &admin,
            None
        )
        .await,
        (204, Value::Null)
    );
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            "/v1/authz/roles/movies",
            &admin,
            None
        )
        .await,
        (204, Value::Null)
    );
    assert_eq!(
        call(&server, Method::GET, "/v1/authz/roles/movies", &admin, None)
            .await
            .0,
        404
    );

    let text = server.metrics_text().await;
    for (op, result, expected) in [
        ("create_role", "ok", 1.0),
        ("create_role", "rejected", 5.0),
        ("add_permissions", "ok", 1.0),
        ("add_permissions", "rejected", 3.0),
        ("remove_permissions", "ok", 1.0),
        ("delete_role", "ok", 2.0),
        ("delete_role", "rejected", 1.0),
    ] {
        let labels = [("op", op), ("result", result)];
        assert_eq!(
            portcullis_tests::metric_value(&text, "portcullis_rbac_changes_total", &labels),
            expected,
            "{op} {result}"
        );
    }
    assert_eq!(
        portcullis_tests::metric_value(&text, "portcullis_rbac_roles", &[]),
        4.0
    );
}

#[tokio::test]
async fn assignments_follow_users_groups_and_deletions() {
    let admin = portcullis_tests::generated_key();
    let server = rbac_server(&admin).start().await;
    let alice = create_user(&server, &admin, "alice").await;
    let reader = json!([{"action": "read_data", "data": {"collection": "Movie"}}]);
    assert_eq!(create_role(&server, &admin, "reader", reader).await.0, 201);

    // The checks before the caller's permission, in Weaviate's order.
    let cases = [
        (
            json!({"roles": [""], "userType": "db"}),
            400,
            error("one or more of the roles you want to assign is empty"),
        ),
        (
            json!({"roles": ["root"], "userType": "db"}),
            403,
            error("assigning: modifying 'root' role or changing its assignments is not allowed"),
        ),
        (
            json!({"roles": ["read-only"], "userType": "db"}),
            403,
            error(
                "assigning: modifying 'read-only' role or changing its assignments is not allowed",
            ),
        ),
        (
            json!({"roles": [], "userType": "db"}),
            400,
            error("roles can not be empty"),
        ),
        (
            json!({"roles": ["nope"], "userType": "db"}),
            404,
            error("one or more of the roles requested doesn't exist"),
        ),
        (
            json!({"roles": ["reader"], "userType": "oidc"}),
            500,
            error("user exists: oidc is not enabled"),
        ),
    ];
    for (body, status, answer) in cases {
        assert_eq!(
            assign(&server, &admin, "alice", body.clone()).await,
            (status, answer),
            "{body}"
        );
    }
    let (status, body) = assign(
        &server,
        &admin,
        "alice",
        json!({"roles": ["reader"], "userType": "ldap"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        assign(
            &server,
            &admin,
            "ghost",
            json!({"roles": ["reader"], "userType": "db"})
        )
        .await,
        (404, error("username to assign role to doesn't exist"))
    );
    // alice may not assign roles, not even to herself.
    let (status, body) = assign(
        &server,
        &alice,
        "alice",
        json!({"roles": ["admin"], "userType": "db"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("assign_and_revoke_users"),
        "{body}"
    );
    assert!(own_role_names(&server, &alice).await.is_empty());

    assert_eq!(
        assign(
            &server,
            &admin,
            "alice",
            json!({"roles": ["reader", "viewer"], "userType": "db"})
        )
        .await,
        (200, Value::Null)
    );
    assert_eq!(own_role_names(&server, &alice).await, ["reader", "viewer"]);
    // DBUserInfo.roles, in the user and in the listing.
    let (_, body) = call(&server, Method::GET, "/v1/users/db/alice", &admin, None).await;
    assert_eq!(body["roles"], json!(["reader", "viewer"]), "{body}");
    let (_, body) = call(&server, Method::GET, "/v1/users/db", &admin, None).await;
    let listed: Vec<&Value> = body
        .as_array()
        .expect("a list")
        .iter()
        .filter(|u| u["userId"] == "alice" || u["userId"] == "admin")
        .collect();
    assert_eq!(listed.len(), 2, "{body}");
    for user in listed {
        let expected = if user["userId"] == "alice" {
            json!(["reader", "viewer"])
        } else {
            json!(["root"])
        };
        assert_eq!(user["roles"], expected, "{user}");
    }
    let (status, body) = call(
        &server,
        Method::GET,
        "/v1/authz/users/alice/roles/db",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!([{"name": "reader", "permissions": null}, {"name": "viewer", "permissions": null}])
        )
    );
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/users/alice/roles/db?includeFullRoles=true",
        &alice,
        None,
    )
    .await;
    assert_eq!(
        body[0]["permissions"][0]["data"]["collection"], "Movie",
        "{body}"
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/v1/authz/users/ghost/roles/db",
            &admin,
            None
        )
        .await,
        (404, Value::Null)
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/v1/authz/users/alice/roles/ldap",
            &admin,
            None
        )
        .await
        .0,
        422
    );
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/reader/user-assignments",
        &admin,
        None,
    )
    .await;
    assert_eq!(body, json!([{"userId": "alice", "userType": "db_user"}]));
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/reader/users",
        &admin,
        None,
    )
    .await;
    assert_eq!(body, json!(["alice"]));

    // Groups: names with ':' and ',' work, listings are sorted.
    for group in ["zeta", "ops:eu,1", "alpha"] {
        let reply = call(
            &server,
            Method::POST,
            &format!("/v1/authz/groups/{}/assign", urlencode(group)),
            &admin,
            Some(json!({"roles": ["reader"], "groupType": "oidc"})),
        )
        .await;
        assert_eq!(reply, (200, Value::Null), "{group}");
    }
    let (_, body) = call(&server, Method::GET, "/v1/authz/groups/oidc", &admin, None).await;
    assert_eq!(body, json!(["alpha", "ops:eu,1", "zeta"]));
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/reader/group-assignments",
        &admin,
        None,
    )
    .await;
    assert_eq!(body[1], json!({"groupId": "ops:eu,1", "groupType": "oidc"}));
    let (_, body) = call(
        &server,
        Method::GET,
        &format!("/v1/authz/groups/{}/roles/oidc", urlencode("ops:eu,1")),
        &admin,
        None,
    )
    .await;
    assert_eq!(body, json!([{"name": "reader", "permissions": null}]));
    let (status, body) = call(
        &server,
        Method::POST,
        "/v1/authz/groups/zeta/assign",
        &admin,
        Some(json!({"roles": ["reader"], "groupType": "ldap"})),
    )
    .await;
    assert_eq!((status, body), (400, error("unknown groupType: ldap")));
    assert_eq!(
        call(
            &server,
            Method::POST,
            "/v1/authz/groups/zeta/assign",
            &admin,
            Some(json!({"roles": ["nope"], "groupType": "oidc"}))
        )
        .await,
        (404, Value::Null)
    );
    assert_eq!(
        call(
            &server,
            Method::POST,
            "/v1/authz/groups/zeta/revoke",
            &admin,
            Some(json!({"roles": ["reader"], "groupType": "oidc"}))
        )
        .await
        .0,
        200
    );
    let (_, body) = call(&server, Method::GET, "/v1/authz/groups/oidc", &admin, None).await;
    assert_eq!(body, json!(["alpha", "ops:eu,1"]));

    // The deprecated revoke (no userType, as the Python client sends it).
    assert_eq!(
        call(
            &server,
            Method::POST,
            "/v1/authz/users/alice/revoke",
            &admin,
            Some(json!({"roles": ["viewer"]}))
        )
        .await,
        (200, Value::Null)
    );
    assert_eq!(own_role_names(&server, &alice).await, ["reader"]);
    assert_eq!(
        call(
            &server,
            Method::POST,
            "/v1/authz/users/ghost/revoke",
            &admin,
            Some(json!({"roles": ["viewer"]}))
        )
        .await,
        (404, error("username to revoke role from doesn't exist"))
    );

    // Deleting a role removes its assignments.
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            "/v1/authz/roles/reader",
            &admin,
            None
        )
        .await
        .0,
        204
    );
    assert!(own_role_names(&server, &alice).await.is_empty());
    assert_eq!(
        create_role(&server, &admin, "reader", json!([])).await.0,
        201
    );
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/reader/user-assignments",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        body,
        json!([]),
        "a new role of the same name has no holders"
    );
    let (_, body) = call(&server, Method::GET, "/v1/authz/groups/oidc", &admin, None).await;
    assert_eq!(body, json!([]));

    // Deleting a user removes its assignments: a new user of that name starts with none.
    assert_eq!(
        assign(
            &server,
            &admin,
            "alice",
            json!({"roles": ["viewer"], "userType": "db"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(&server, Method::DELETE, "/v1/users/db/alice", &admin, None)
            .await
            .0,
        204
    );
    let alice = create_user(&server, &admin, "alice").await;
    assert!(own_role_names(&server, &alice).await.is_empty());
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/viewer/user-assignments",
        &admin,
        None,
    )
    .await;
    assert_eq!(body, json!([]));

    // And after a crash the deletion is still there (it was one transaction with the user's).
    let data = server.kill9().await;
    let server = rbac_server(&admin).data_dir(&data).start().await;
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/viewer/user-assignments",
        &admin,
        None,
    )
    .await;
    assert_eq!(body, json!([]));
}

fn urlencode(name: &str) -> String {
    name.replace(':', "%3A").replace(',', "%2C")
}

#[tokio::test]
async fn acknowledged_changes_survive_kill_9_and_root_mirrors_the_settings() {
    let admin = portcullis_tests::generated_key();
    let server = rbac_server(&admin).start().await;
    let bob = create_user(&server, &admin, "bob").await;
    // A root name is refused before anything else about the user is looked at.
    assert_eq!(
        call(&server, Method::POST, "/v1/users/db/admin", &admin, None).await,
        (
            422,
            error(
                "user 'admin' is a root user (AUTHORIZATION_RBAC_ROOT_USERS) and cannot be \
                 managed through this API"
            )
        )
    );
    let perms = json!([{"action": "read_data", "data": {"collection": "Movie"}}, {"action": "read_cluster"}]);
    assert_eq!(create_role(&server, &admin, "ops", perms).await.0, 201);
    assert_eq!(
        assign(
            &server,
            &admin,
            "bob",
            json!({"roles": ["ops"], "userType": "db"})
        )
        .await
        .0,
        200
    );
    assert_eq!(own_role_names(&server, &admin).await, ["root"]);
    let data = server.kill9().await;

    // Restarted with bob as the root user instead of admin: admin's root assignment goes.
    let server = ServerBuilder::new()
        .env(vars::BOOTSTRAP_ADMIN_KEY, admin.as_str())
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "bob")
        .data_dir(&data)
        .start()
        .await;
    assert_eq!(own_role_names(&server, &bob).await, ["ops", "root"]);
    assert!(own_role_names(&server, &admin).await.is_empty());
    let (status, body) = call(&server, Method::GET, "/v1/authz/roles/ops", &bob, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["permissions"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/root/user-assignments",
        &bob,
        None,
    )
    .await;
    assert_eq!(body, json!([{"userId": "bob", "userType": "db_user"}]));
    // admin holds nothing now: the role routes refuse it, and root's holders are hidden.
    let (status, body) = call(&server, Method::GET, "/v1/authz/roles/ops", &admin, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/v1/authz/roles/root/user-assignments",
            &admin,
            None
        )
        .await
        .0,
        403
    );
    let (_, body) = call(&server, Method::GET, "/v1/authz/roles", &admin, None).await;
    assert_eq!(body, json!([]));

    // bob holds root through his name: no one may take over his account through the users API,
    // not even root (bob) itself, and no database user can be created under a root name.
    let refused = error(
        "user 'bob' is a root user (AUTHORIZATION_RBAC_ROOT_USERS) and cannot be managed through \
         this API",
    );
    for (method, path) in [
        (Method::POST, "/v1/users/db/bob/rotate-key"),
        (Method::POST, "/v1/users/db/bob/deactivate"),
        (Method::POST, "/v1/users/db/bob/activate"),
        (Method::DELETE, "/v1/users/db/bob"),
    ] {
        let (status, body) = call(&server, method.clone(), path, &bob, None).await;
        assert_eq!((status, &body), (422, &refused), "{method} {path}");
    }
    assert_eq!(own_role_names(&server, &bob).await, ["ops", "root"]);
}

#[tokio::test]
async fn a_match_scoped_role_manager_cannot_grant_more_than_it_holds() {
    let admin = portcullis_tests::generated_key();
    let server = rbac_server(&admin).start().await;
    let carol = create_user(&server, &admin, "carol").await;
    let manager = json!([
        {"action": "create_roles", "roles": {"role": "*", "scope": "match"}},
        {"action": "update_roles", "roles": {"role": "*", "scope": "match"}},
        {"action": "read_roles", "roles": {"role": "*", "scope": "match"}},
        {"action": "read_data", "data": {"collection": "Movie*"}},
    ]);
    assert_eq!(
        create_role(&server, &admin, "manager", manager).await.0,
        201
    );
    assert_eq!(assign(&server, &admin, "carol", carol_name()).await.0, 200);

    let movie = json!([{"action": "read_data", "data": {"collection": "MovieNight"}}]);
    assert_eq!(
        create_role(&server, &carol, "night", movie).await,
        (201, Value::Null)
    );
    for escalation in [
        json!([{"action": "read_data", "data": {"collection": "Book"}}]),
        json!([{"action": "read_data", "data": {"collection": "*"}}]),
        json!([{"action": "delete_data", "data": {"collection": "Movie"}}]),
        json!([{"action": "create_roles", "roles": {"role": "*", "scope": "all"}}]),
    ] {
        let (status, body) = create_role(&server, &carol, "more", escalation.clone()).await;
        assert_eq!(status, 403, "{escalation}: {body}");
        let message = body["error"][0]["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with(
                "can only create roles with less or equal permissions as the current user"
            ),
            "{message}"
        );
        let (status, _) = call(
            &server,
            Method::POST,
            "/v1/authz/roles/night/add-permissions",
            &carol,
            Some(json!({"permissions": escalation})),
        )
        .await;
        assert_eq!(status, 403);
    }
    // Nor delete a role (no delete_roles), and the failed attempts changed nothing.
    let (status, body) = call(
        &server,
        Method::DELETE,
        "/v1/authz/roles/night",
        &carol,
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        call(&server, Method::GET, "/v1/authz/roles/more", &admin, None)
            .await
            .0,
        404
    );
    let (_, body) = call(&server, Method::GET, "/v1/authz/roles/night", &carol, None).await;
    assert_eq!(body["permissions"].as_array().map(Vec::len), Some(1));
    // A match manager lists roles but not root's.
    let (_, body) = call(&server, Method::GET, "/v1/authz/roles", &carol, None).await;
    assert_eq!(
        names(&body),
        ["admin", "manager", "night", "read-only", "viewer"]
    );
}

/// The body assigning `manager` to a database user.
fn carol_name() -> Value {
    json!({"roles": ["manager"], "userType": "db"})
}

#[tokio::test]
async fn static_root_users_and_start_up_refusals() {
    const ROOT: &str = "rbac-root-static-key-0123";
    const READER: &str = "rbac-reader-static-key-0123";
    let server = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, format!("{ROOT},{READER}"))
        .env(vars::APIKEY_USERS, "root,reader")
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "root")
        .env(vars::RBAC_VIEWER_USERS, "reader")
        .start()
        .await;
    assert_eq!(own_role_names(&server, ROOT).await, ["root"]);
    assert_eq!(own_role_names(&server, READER).await, ["viewer"]);
    let (_, body) = call(
        &server,
        Method::GET,
        "/v1/authz/roles/viewer/user-assignments",
        ROOT,
        None,
    )
    .await;
    assert_eq!(
        body,
        json!([{"userId": "reader", "userType": "db_env_user"}])
    );
    // The viewer reads roles (read_roles on all) but root stays hidden from it.
    let (_, body) = call(&server, Method::GET, "/v1/authz/roles", READER, None).await;
    assert_eq!(names(&body), ["admin", "read-only", "viewer"]);
    let (status, _) = call(
        &server,
        Method::POST,
        "/v1/authz/roles",
        READER,
        Some(json!({"name": "x", "permissions": []})),
    )
    .await;
    assert_eq!(status, 403);
    server.stop().await;

    for (extra, message) in [
        (
            (vars::ANONYMOUS_ACCESS_ENABLED, "true"),
            "cannot enable anonymous access and rbac authorization",
        ),
        (
            (vars::ADMINLIST_ENABLED, "true"),
            "cannot enable adminlist and rbac at the same time",
        ),
    ] {
        let failure = ServerBuilder::new()
            .env(vars::APIKEY_ENABLED, "true")
            .env(vars::APIKEY_ALLOWED_KEYS, ROOT)
            .env(vars::APIKEY_USERS, "root")
            .env(vars::RBAC_ENABLED, "true")
            .env(extra.0, extra.1)
            .start_expect_failure()
            .await;
        assert!(failure.stderr.contains(message), "{}", failure.stderr);
        assert!(!failure.stderr.contains(ROOT), "the key was echoed");
    }
}
