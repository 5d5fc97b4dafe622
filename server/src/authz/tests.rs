//! The route table and the body readers, route by route.

use actix_web::http::Method;
use portcullis_auth::rbac::Action;
use serde_json::json;

use super::body::{needs, BodyError};
use super::routes::{plan, BodyKind, Plan, ENCODED_NAME};

/// A need as `action name,name,name` (trailing empty names dropped), for compact tables.
fn show(action: Action, values: [&str; 3]) -> String {
    let names: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
    format!("{} {}", action.name(), names.join(","))
}

fn checks(method: Method, path: &str, query: &str) -> Vec<String> {
    match plan(&method, path, query) {
        Plan::Check(needs) => needs
            .as_slice()
            .iter()
            .map(|n| show(n.action, n.request().values))
            .collect(),
        other => panic!("{method} {path}?{query}: expected checks, got {other:?}"),
    }
}

#[test]
fn data_routes_need_their_collection_tenant_and_object() {
    let id = "8f5a3a6e-0000-4000-8000-000000000001";
    let object = format!("/v1/objects/Movie/{id}");
    let cases: Vec<(Method, &str, &str, Vec<String>)> = vec![
        (
            Method::GET,
            &object,
            "",
            vec![format!("read_data Movie,*,{id}")],
        ),
        (
            Method::HEAD,
            &object,
            "tenant=t1",
            vec![format!("read_data Movie,t1,{id}")],
        ),
        (
            Method::PUT,
            &object,
            "",
            vec![format!("update_data Movie,*,{id}")],
        ),
        (
            Method::PATCH,
            &object,
            "",
            vec![format!("update_data Movie,*,{id}")],
        ),
        (
            Method::DELETE,
            &object,
            "tenant=t2&x=1",
            vec![format!("delete_data Movie,t2,{id}")],
        ),
        // Weaviate upper-cases the first letter of a class.
        (
            Method::GET,
            "/v1/objects/movie/1",
            "",
            vec!["read_data Movie,*,1".into()],
        ),
        // The deprecated form without a class may reach any collection.
        (
            Method::GET,
            "/v1/objects/1",
            "",
            vec!["read_data *,*,1".into()],
        ),
        (
            Method::GET,
            "/v1/objects",
            "class=Book",
            vec!["read_data Book,*,*".into()],
        ),
        (
            Method::GET,
            "/v1/objects",
            "class=Book&tenant=t",
            vec!["read_data Book,*,*".into()],
        ),
        (
            Method::GET,
            "/v1/objects",
            "tenant=t",
            vec!["read_data *,t,*".into()],
        ),
        (
            Method::GET,
            "/v1/objects",
            "",
            vec!["read_data *,*,*".into()],
        ),
    ];
    for (method, path, query, expected) in cases {
        assert_eq!(
            checks(method.clone(), path, query),
            expected,
            "{method} {path}?{query}"
        );
    }
}

#[test]
fn schema_tenant_alias_and_cluster_routes() {
    let cases: Vec<(Method, &str, &str, Vec<&str>)> = vec![
        (
            Method::GET,
            "/v1/schema/Movie",
            "",
            vec!["read_collections Movie"],
        ),
        (
            Method::PUT,
            "/v1/schema/Movie",
            "",
            vec!["update_collections Movie"],
        ),
        (
            Method::DELETE,
            "/v1/schema/movie",
            "",
            vec!["delete_collections Movie"],
        ),
        (
            Method::GET,
            "/v1/schema/Movie/shards",
            "",
            vec!["read_tenants Movie,*"],
        ),
        (
            Method::GET,
            "/v1/schema/Movie/shards",
            "tenant=a",
            vec!["read_tenants Movie,a"],
        ),
        (
            Method::PUT,
            "/v1/schema/Movie/shards/s1",
            "",
            vec!["update_tenants Movie,s1"],
        ),
        (
            Method::GET,
            "/v1/schema/Movie/tenants/t1",
            "",
            vec!["read_tenants Movie,t1"],
        ),
        (
            Method::HEAD,
            "/v1/schema/Movie/tenants/t1",
            "",
            vec!["read_tenants Movie,t1"],
        ),
        (
            Method::GET,
            "/v1/aliases/Film",
            "",
            vec!["read_aliases *,Film"],
        ),
        (
            Method::DELETE,
            "/v1/aliases/Film",
            "",
            vec!["delete_aliases *,Film"],
        ),
        (Method::GET, "/v1/nodes", "", vec!["read_nodes minimal"]),
        (
            Method::GET,
            "/v1/nodes",
            "output=verbose",
            vec!["read_nodes verbose,*"],
        ),
        (
            Method::GET,
            "/v1/nodes/Movie",
            "output=verbose",
            vec!["read_nodes verbose,Movie"],
        ),
        (
            Method::GET,
            "/v1/nodes/Movie",
            "output=minimal",
            vec!["read_nodes minimal"],
        ),
        (
            Method::GET,
            "/v1/cluster/statistics",
            "",
            vec!["read_cluster "],
        ),
        (Method::GET, "/v1/tasks", "", vec!["read_cluster "]),
        (
            Method::DELETE,
            "/v1/backups/fs/b1",
            "",
            vec!["manage_backups *"],
        ),
        (
            Method::GET,
            "/v1/replication/replicate/list",
            "collection=movie&shard=s",
            vec!["read_replicate Movie,s"],
        ),
        (
            Method::DELETE,
            "/v1/replication/replicate/abc",
            "",
            vec!["delete_replicate *,*"],
        ),
        (
            Method::GET,
            "/v1/classifications/abc",
            "",
            vec!["read_collections *"],
        ),
        (
            Method::POST,
            "/v1/graphql/batch",
            "",
            vec!["read_collections *", "read_data *,*,*"],
        ),
        (
            Method::PUT,
            "/v1/objects/1/references/p",
            "",
            vec!["update_data *,*,*", "read_data *,*,*", "read_collections *"],
        ),
    ];
    for (method, path, query, expected) in cases {
        assert_eq!(
            checks(method.clone(), path, query),
            expected,
            "{method} {path}?{query}"
        );
    }
}

#[test]
fn user_routes_name_the_user() {
    let cases: Vec<(Method, &str, Vec<&str>)> = vec![
        (Method::GET, "/v1/users/db/alice", vec!["read_users alice"]),
        (
            Method::POST,
            "/v1/users/db/alice",
            vec!["create_users alice"],
        ),
        (
            Method::DELETE,
            "/v1/users/db/alice",
            vec!["delete_users alice"],
        ),
        (
            Method::POST,
            "/v1/users/db/alice/rotate-key",
            vec!["update_users alice"],
        ),
        (
            Method::POST,
            "/v1/users/db/alice/activate",
            vec!["update_users alice"],
        ),
        (
            Method::POST,
            "/v1/users/db/alice/deactivate",
            vec!["update_users alice"],
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            checks(method.clone(), path, ""),
            expected,
            "{method} {path}"
        );
    }
}

#[test]
fn open_handler_filtered_and_unmapped_routes() {
    for path in [
        "/",
        "/v1",
        "/v1/",
        "/v1/meta",
        "/v1/users/own-info",
        "/v1/.well-known/ready",
    ] {
        assert_eq!(plan(&Method::GET, path, ""), Plan::Open, "{path}");
    }
    assert_eq!(plan(&Method::GET, "/v1/backups/fs", ""), Plan::Open);
    assert_eq!(
        plan(&Method::GET, "/v1/backups/fs/b1/restore", ""),
        Plan::Open
    );
    for path in [
        "/v1/authz/roles",
        "/v1/authz/users/alice/assign",
        "/v1/authz/groups/oidc",
    ] {
        assert_eq!(plan(&Method::POST, path, ""), Plan::Handler, "{path}");
    }
    match plan(&Method::GET, "/v1/schema", "") {
        Plan::Filtered { action, collection } => {
            assert_eq!((action, collection), (Action::ReadCollections, None))
        }
        other => panic!("{other:?}"),
    }
    match plan(&Method::GET, "/v1/users/db", "includeLastUsedTime=true") {
        Plan::Filtered { action, .. } => assert_eq!(action, Action::ReadUsers),
        other => panic!("{other:?}"),
    }
    // Tenant and alias lists are filtered per item (by the proxy: the store has neither).
    assert_eq!(
        plan(&Method::GET, "/v1/schema/movie/tenants", ""),
        Plan::Filtered {
            action: Action::ReadTenants,
            collection: Some("Movie".into())
        }
    );
    assert_eq!(
        plan(&Method::GET, "/v1/aliases", "class=Movie"),
        Plan::Filtered {
            action: Action::ReadAliases,
            collection: None
        }
    );
    // Unknown paths and methods are for principals allowed everything only.
    for (method, path) in [
        (Method::GET, "/v1/something-new"),
        (Method::POST, "/v1/schema/Movie"),
        (Method::OPTIONS, "/v1/objects/Movie/1"),
        (Method::POST, "/v1/objects/Movie/1"),
        (Method::GET, "/v1/objects/Movie/1/x/y/z/w"),
        (Method::GET, "/v1/objects//1"),
        (Method::GET, "/v2/objects"),
        (Method::PATCH, "/v1/meta"),
    ] {
        assert_eq!(plan(&method, path, ""), Plan::Unmapped, "{method} {path}");
    }
}

#[test]
fn percent_encoded_names_are_refused_not_guessed() {
    for (path, query) in [
        ("/v1/objects/Mov%69e/1", ""),
        ("/v1/objects/Movie/1", "tenant=t%31"),
        ("/v1/schema/Movie%2A", ""),
        ("/v1/users/db/al%69ce", ""),
    ] {
        assert_eq!(
            plan(&Method::GET, path, query),
            Plan::Refuse(ENCODED_NAME),
            "{path}?{query}"
        );
    }
}

#[test]
fn body_routes_name_their_kind() {
    let cases = [
        (Method::POST, "/v1/schema", BodyKind::CreateClass),
        (
            Method::POST,
            "/v1/schema/Movie/properties",
            BodyKind::AddProperty,
        ),
        (
            Method::POST,
            "/v1/schema/Movie/tenants",
            BodyKind::Tenants(Action::CreateTenants),
        ),
        (
            Method::PUT,
            "/v1/schema/Movie/tenants",
            BodyKind::Tenants(Action::UpdateTenants),
        ),
        (
            Method::DELETE,
            "/v1/schema/Movie/tenants",
            BodyKind::Tenants(Action::DeleteTenants),
        ),
        (Method::POST, "/v1/aliases", BodyKind::CreateAlias),
        (Method::PUT, "/v1/aliases/Film", BodyKind::UpdateAlias),
        (Method::POST, "/v1/objects", BodyKind::CreateObject),
        (
            Method::POST,
            "/v1/objects/validate",
            BodyKind::ValidateObject,
        ),
        (
            Method::POST,
            "/v1/objects/Movie/1/references/p",
            BodyKind::ReferenceTargets,
        ),
        (Method::POST, "/v1/batch/objects", BodyKind::BatchObjects),
        (Method::DELETE, "/v1/batch/objects", BodyKind::BatchDelete),
        (
            Method::POST,
            "/v1/batch/references",
            BodyKind::BatchReferences,
        ),
        (Method::POST, "/v1/graphql", BodyKind::Graphql),
        (Method::POST, "/v1/backups/fs", BodyKind::Backup),
        (Method::POST, "/v1/backups/fs/b1/restore", BodyKind::Backup),
        (
            Method::POST,
            "/v1/replication/replicate",
            BodyKind::Replicate,
        ),
        (
            Method::POST,
            "/v1/classifications",
            BodyKind::Classification,
        ),
    ];
    for (method, path, kind) in cases {
        match plan(&method, path, "") {
            Plan::Body { kind: got, .. } => assert_eq!(got, kind, "{method} {path}"),
            other => panic!("{method} {path}: {other:?}"),
        }
    }
    match plan(&Method::POST, "/v1/graphql", "") {
        Plan::Body { needs, .. } => {
            assert_eq!(needs.as_slice().len(), 1);
            assert_eq!(needs.as_slice()[0].action, Action::ReadCollections);
            assert_eq!(needs.as_slice()[0].request().values[0], "*");
        }
        other => panic!("{other:?}"),
    }
}

fn body_needs(kind: BodyKind, name: &str, query: &str, body: serde_json::Value) -> Vec<String> {
    let bytes = serde_json::to_vec(&body).unwrap();
    needs(kind, name, query, &bytes)
        .unwrap()
        .iter()
        .map(|n| show(n.action, n.request().values))
        .collect()
}

#[test]
fn batch_objects_need_create_and_update_per_class_and_tenant_once() {
    let body = json!({"objects": [
        {"class": "Movie", "properties": {}},
        {"class": "movie", "tenant": "t1"},
        {"class": "Book"},
        {"class": "Movie"},
    ]});
    assert_eq!(
        body_needs(BodyKind::BatchObjects, "*", "", body),
        [
            "create_data Movie,*,*",
            "update_data Movie,*,*",
            "create_data Movie,t1,*",
            "update_data Movie,t1,*",
            "create_data Book,*,*",
            "update_data Book,*,*",
        ]
    );
    let err = needs(
        BodyKind::BatchObjects,
        "*",
        "",
        br#"{"objects":[{"properties":{}}]}"#,
    );
    assert_eq!(err, Err(BodyError::NoClass("an object of the batch")));
    assert!(matches!(
        needs(BodyKind::BatchObjects, "*", "", b"{\"objects\": [}"),
        Err(BodyError::Json(_))
    ));
    assert!(matches!(
        needs(BodyKind::BatchObjects, "*", "", b"[]"),
        Err(BodyError::Json(_))
    ));
}

#[test]
fn batch_references_need_update_on_sources_and_read_on_targets() {
    let body = json!([
        {"from": "weaviate://localhost/Movie/1/hasActor", "to": "weaviate://localhost/Actor/2"},
        {"from": "weaviate://localhost/Movie/3/hasActor", "to": "weaviate://localhost/8f5a3a6e-0000-4000-8000-000000000001", "tenant": "t"},
    ]);
    assert_eq!(
        body_needs(BodyKind::BatchReferences, "*", "", body),
        [
            "update_data Movie,*,*",
            "read_data Actor,*,*",
            "update_data Movie,t,*",
            "read_data *,t,*",
        ]
    );
    assert_eq!(
        needs(
            BodyKind::BatchReferences,
            "*",
            "",
            br#"[{"from":"weaviate://localhost/8f5a3a6e-0000-4000-8000-000000000001/p","to":"x"}]"#
        ),
        Err(BodyError::NoClass("a reference's source"))
    );
}

#[test]
fn graphql_needs_every_class_of_get_and_aggregate() {
    let query = r#"{
        Get { Movie(tenant: "t1", where: {path: ["hasActor", "Actor", "name"], operator: Equal, valueText: "x"}) {
                title hasActor { ... on Person { name } } }
              b: book { title } }
        Aggregate { Series { meta { count } } }
    }"#;
    assert_eq!(
        body_needs(BodyKind::Graphql, "*", "", json!({"query": query})),
        [
            "read_data Actor,*,*",
            "read_collections Actor",
            "read_data Movie,t1,*",
            "read_data Person,*,*",
            "read_collections Person",
            "read_data Book,*,*",
            "read_data Series,*,*",
        ]
    );
    let with_variable = r#"query Q($t: String) { Get { Movie(tenant: $t) { title } } }"#;
    assert_eq!(
        body_needs(
            BodyKind::Graphql,
            "*",
            "",
            json!({"query": with_variable, "variables": {"t": "t9"}})
        ),
        ["read_data Movie,t9,*"]
    );
    assert_eq!(
        body_needs(
            BodyKind::Graphql,
            "*",
            "",
            json!({"query": "{ Explore(concepts: [\"x\"]) { beacon } }"})
        ),
        ["read_data *,*,*"]
    );
    assert!(body_needs(
        BodyKind::Graphql,
        "*",
        "",
        json!({"query": "{ __schema { types { name } } }"})
    )
    .is_empty());
}

#[test]
fn graphql_that_cannot_be_checked_is_refused() {
    let refused = |query: &str| {
        let body = serde_json::to_vec(&json!({ "query": query })).unwrap();
        needs(BodyKind::Graphql, "*", "", &body).unwrap_err()
    };
    assert!(matches!(
        refused("{ Get { Movie { title }"),
        BodyError::Graphql(_)
    ));
    assert_eq!(
        refused("{ Get { ...F } } fragment F on GetObjectsObj { Movie { title } }"),
        BodyError::Unsupported("a fragment in Get or Aggregate")
    );
    assert_eq!(
        refused("fragment F on GetObjectsObj { Movie { title } }"),
        BodyError::Unsupported("a fragment")
    );
    assert_eq!(
        refused("{ Get { Movie { ...F } } }"),
        BodyError::Unsupported("a fragment spread")
    );
    assert_eq!(
        refused("mutation { Get { Movie { x } } }"),
        BodyError::Unsupported("a mutation")
    );
    assert_eq!(
        refused("{ Other { Movie { x } } }"),
        BodyError::Unsupported("a root field other than Get, Aggregate or Explore")
    );
    // Deep nesting is refused by the parser's recursion limit, not a stack overflow.
    let deep = format!(
        "{{ Get {{ Movie {}{}}} }}",
        "{ a ".repeat(200),
        "} ".repeat(200)
    );
    assert!(matches!(refused(&deep), BodyError::Graphql(_)));
    assert!(matches!(
        needs(BodyKind::Graphql, "*", "", b"{\"query\": 5}"),
        Err(BodyError::Json(_))
    ));
}

#[test]
fn smaller_bodies_name_their_resources() {
    assert_eq!(
        body_needs(
            BodyKind::CreateClass,
            "*",
            "",
            json!({"class": "movie", "properties": [{"name": "a", "dataType": ["text"]}, {"name": "b", "dataType": ["Actor"]}]})
        ),
        ["create_collections Movie", "read_collections Actor"]
    );
    assert_eq!(
        body_needs(
            BodyKind::Tenants(Action::CreateTenants),
            "Movie",
            "",
            json!([{"name": "t1"}, {"name": "t2"}])
        ),
        ["create_tenants Movie,t1", "create_tenants Movie,t2"]
    );
    assert_eq!(
        body_needs(
            BodyKind::Tenants(Action::DeleteTenants),
            "Movie",
            "",
            json!(["t1"])
        ),
        ["delete_tenants Movie,t1"]
    );
    assert_eq!(
        body_needs(
            BodyKind::CreateAlias,
            "*",
            "",
            json!({"class": "Movie", "alias": "film"})
        ),
        ["create_aliases Movie,Film"]
    );
    assert_eq!(
        body_needs(BodyKind::UpdateAlias, "Film", "", json!({"class": "Book"})),
        ["update_aliases Book,Film"]
    );
    assert_eq!(
        body_needs(
            BodyKind::CreateObject,
            "*",
            "tenant=q",
            json!({"class": "Movie"})
        ),
        ["create_data Movie,q,*"]
    );
    assert_eq!(
        body_needs(
            BodyKind::ValidateObject,
            "*",
            "",
            json!({"class": "Movie", "id": "1", "tenant": "t"})
        ),
        ["read_data Movie,t,1"]
    );
    assert_eq!(
        body_needs(
            BodyKind::ReferenceTargets,
            "*",
            "",
            json!([{"beacon": "weaviate://localhost/Actor/1"}])
        ),
        ["read_data Actor,*,*"]
    );
    assert_eq!(
        body_needs(
            BodyKind::BatchDelete,
            "*",
            "tenant=t",
            json!({"match": {"class": "Movie", "where": {}}})
        ),
        ["delete_data Movie,t,*"]
    );
    // Classes the filter reaches through references, in nested operands too, are read.
    assert_eq!(
        body_needs(
            BodyKind::BatchDelete,
            "*",
            "",
            json!({"match": {"class": "Movie", "where": {"operator": "Or", "operands": [
                {"path": ["title"], "operator": "Equal", "valueText": "x"},
                {"operator": "And", "operands": [
                    {"path": ["hasActor", "actor", "hasAgent", "Agent", "name"], "operator": "Like", "valueText": "a*"}
                ]}
            ]}}})
        ),
        [
            "delete_data Movie,*,*",
            "read_data Actor,*,*",
            "read_collections Actor",
            "read_data Agent,*,*",
            "read_collections Agent"
        ]
    );
    assert!(matches!(
        needs(
            BodyKind::BatchDelete,
            "*",
            "",
            br#"{"match": {"class": "Movie", "where": {"path": "title"}}}"#
        ),
        Err(BodyError::Json(_))
    ));
    let mut deep = json!({"path": ["hasActor", "Actor", "name"]});
    for _ in 0..100 {
        deep = json!({"operator": "And", "operands": [deep]});
    }
    // Too deep for the JSON reader: refused, never walked.
    assert!(matches!(
        needs(
            BodyKind::BatchDelete,
            "*",
            "",
            json!({"match": {"class": "Movie", "where": deep}})
                .to_string()
                .as_bytes()
        ),
        Err(BodyError::Json(_))
    ));
    assert_eq!(
        body_needs(
            BodyKind::Backup,
            "*",
            "",
            json!({"id": "b", "include": ["Movie", "book"]})
        ),
        ["manage_backups Movie", "manage_backups Book"]
    );
    assert_eq!(
        body_needs(BodyKind::Backup, "*", "", json!({"id": "b"})),
        ["manage_backups *"]
    );
    assert_eq!(
        body_needs(
            BodyKind::Replicate,
            "*",
            "",
            json!({"collection": "Movie", "shard": "s1"})
        ),
        ["create_replicate Movie,s1"]
    );
    assert_eq!(
        body_needs(BodyKind::Classification, "*", "", json!({"class": "Movie"})),
        ["update_collections Movie", "read_data Movie,*,*"]
    );
    assert_eq!(
        needs(BodyKind::CreateObject, "*", "", b"{}"),
        Err(BodyError::NoClass("the object"))
    );
}

// ---------------------------------------------------------------------------------------------
// Proxy mode: aliases resolved to their collection, auto-schema needs create_collections.

use super::resolve::{auto_schema, names, resolve};
use crate::proxy::Snapshot;

/// The upstream of these tests: collections Movie and Book, alias Film of Movie.
fn upstream() -> Snapshot {
    Snapshot::new(["Movie", "Book"], [("Film", "Movie")])
}

/// The needs of a path-only route once resolved by [`upstream`].
fn resolved_checks(method: Method, path: &str, query: &str) -> Vec<String> {
    let Plan::Check(mut needs) = plan(&method, path, query) else {
        panic!("{method} {path}: expected checks");
    };
    resolve(&upstream(), needs.as_mut_slice());
    assert!(auto_schema(&upstream(), needs.as_slice()).is_empty());
    needs
        .as_slice()
        .iter()
        .map(|n| show(n.action, n.request().values))
        .collect()
}

/// The needs of a body route once resolved by [`upstream`], auto-schema's included.
fn resolved_body(kind: BodyKind, body: serde_json::Value) -> Vec<String> {
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut found = needs(kind, "*", "", &bytes).unwrap();
    resolve(&upstream(), &mut found);
    let created = auto_schema(&upstream(), &found);
    found.extend(created);
    found
        .iter()
        .map(|n| show(n.action, n.request().values))
        .collect()
}

#[test]
fn an_alias_in_the_path_is_checked_as_its_collection() {
    let id = "8f5a3a6e-0000-4000-8000-000000000001";
    assert_eq!(
        resolved_checks(Method::GET, &format!("/v1/objects/Film/{id}"), "tenant=t"),
        [format!("read_data Movie,t,{id}")]
    );
    // Lower-case as sent: upper-cased first, then resolved.
    assert_eq!(
        resolved_checks(Method::DELETE, &format!("/v1/objects/film/{id}"), ""),
        [format!("delete_data Movie,*,{id}")]
    );
    assert_eq!(
        resolved_checks(Method::GET, "/v1/objects", "class=Film"),
        ["read_data Movie,*,*"]
    );
    assert_eq!(
        resolved_checks(Method::PUT, "/v1/schema/Film", ""),
        ["update_collections Movie"]
    );
    assert_eq!(
        resolved_checks(Method::GET, "/v1/schema/Film/tenants/t1", ""),
        ["read_tenants Movie,t1"]
    );
    // A collection is itself; a name that is neither stays as sent; all stays all.
    assert_eq!(
        resolved_checks(Method::GET, "/v1/schema/Book", ""),
        ["read_collections Book"]
    );
    assert_eq!(
        resolved_checks(Method::GET, "/v1/schema/Poem", ""),
        ["read_collections Poem"]
    );
    assert_eq!(
        resolved_checks(Method::GET, "/v1/objects", ""),
        ["read_data *,*,*"]
    );
    // Nodes, replication and backups name collections, not aliases: as sent.
    assert_eq!(
        resolved_checks(Method::GET, "/v1/nodes/Film", "output=verbose"),
        ["read_nodes verbose,Film"]
    );
}

#[test]
fn reading_or_deleting_an_alias_needs_it_on_its_target() {
    assert_eq!(
        resolved_checks(Method::GET, "/v1/aliases/Film", ""),
        ["read_aliases Movie,Film"]
    );
    assert_eq!(
        resolved_checks(Method::DELETE, "/v1/aliases/film", ""),
        ["delete_aliases Movie,Film"]
    );
    // No such alias: all collections, as before (only a grant on all allows it).
    assert_eq!(
        resolved_checks(Method::GET, "/v1/aliases/Poem", ""),
        ["read_aliases *,Poem"]
    );
    // Create and update name their collection: as sent.
    assert_eq!(
        resolved_body(
            BodyKind::CreateAlias,
            json!({"class": "Book", "alias": "Film"})
        ),
        ["create_aliases Book,Film"]
    );
}

#[test]
fn an_alias_in_a_body_is_checked_as_its_collection() {
    assert_eq!(
        resolved_body(
            BodyKind::BatchObjects,
            json!({"objects": [{"class": "Film"}, {"class": "Movie"}]})
        ),
        // Film and Movie are one collection: checked as Movie (twice is harmless).
        [
            "create_data Movie,*,*",
            "update_data Movie,*,*",
            "create_data Movie,*,*",
            "update_data Movie,*,*",
        ]
    );
    assert_eq!(
        resolved_body(
            BodyKind::Graphql,
            json!({"query": "{ Get { Film(where: {path: [\"hasBook\", \"Book\", \"title\"], operator: Equal, valueText: \"x\"}) { title } } }"})
        ),
        [
            "read_data Book,*,*",
            "read_collections Book",
            "read_data Movie,*,*"
        ]
    );
    assert_eq!(
        resolved_body(
            BodyKind::BatchDelete,
            json!({"match": {"class": "Film", "where": {"path": ["hasFilm", "Film", "title"]}}})
        ),
        [
            "delete_data Movie,*,*",
            "read_data Movie,*,*",
            "read_collections Movie"
        ]
    );
    // A class being created is no alias.
    assert_eq!(
        resolved_body(BodyKind::CreateClass, json!({"class": "Film"})),
        ["create_collections Film"]
    );
}

#[test]
fn writing_to_a_collection_the_upstream_lacks_also_needs_create_collections() {
    assert_eq!(
        resolved_body(BodyKind::CreateObject, json!({"class": "poem"})),
        ["create_data Poem,*,*", "create_collections Poem"]
    );
    assert_eq!(
        resolved_body(
            BodyKind::BatchObjects,
            json!({"objects": [
                {"class": "Poem", "tenant": "a"},
                {"class": "Poem", "tenant": "b"},
                {"class": "Film"},
                {"class": "Song"},
            ]})
        ),
        [
            "create_data Poem,a,*",
            "update_data Poem,a,*",
            "create_data Poem,b,*",
            "update_data Poem,b,*",
            "create_data Movie,*,*",
            "update_data Movie,*,*",
            "create_data Song,*,*",
            "update_data Song,*,*",
            "create_collections Poem",
            "create_collections Song",
        ]
    );
    // Existing collections, through an alias or not: nothing more.
    assert_eq!(
        resolved_body(BodyKind::CreateObject, json!({"class": "Film"})),
        ["create_data Movie,*,*"]
    );
    // Validation creates nothing.
    assert_eq!(
        resolved_body(BodyKind::ValidateObject, json!({"class": "Poem"})),
        ["read_data Poem,*,*"]
    );
}

#[test]
fn only_names_that_can_be_aliases_are_looked_up() {
    let lookups = |method: Method, path: &str| -> Vec<String> {
        let Plan::Check(needs) = plan(&method, path, "") else {
            panic!("{path}")
        };
        names(needs.as_slice()).map(str::to_owned).collect()
    };
    assert_eq!(lookups(Method::GET, "/v1/objects/Film/x"), ["Film"]);
    assert_eq!(lookups(Method::GET, "/v1/aliases/Film"), ["Film"]);
    assert!(lookups(Method::GET, "/v1/objects").is_empty());
    assert!(lookups(Method::GET, "/v1/nodes").is_empty());
    assert!(lookups(Method::GET, "/v1/cluster/statistics").is_empty());
    assert!(lookups(Method::GET, "/v1/users/db/alice").is_empty());
}

#[test]
fn a_role_on_the_alias_name_does_not_reach_its_collection() {
    use super::enforce::Enforcer;
    use portcullis_auth::rbac::{CompiledRole, Grant, Namespace, Permission, Policies};
    use portcullis_auth::{Principal, PrincipalKind};
    use std::sync::Arc;

    let policies = Policies::new();
    for (role, collection) in [("films", "Film"), ("movies", "Movie")] {
        let permission: Permission = serde_json::from_value(
            json!({"action": "read_data", "data": {"collection": collection}}),
        )
        .unwrap();
        policies.set_role(
            role,
            CompiledRole::new([Grant::from_wire(&permission).unwrap()]),
        );
    }
    policies.set_assignments(Namespace::Db, "f", ["films"]);
    policies.set_assignments(Namespace::Db, "m", ["movies"]);
    let enforcer = Enforcer::new(Arc::new(policies), portcullis_config::AuditLog::Off, true);
    let client = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let path = "/v1/objects/Film/8f5a3a6e-0000-4000-8000-000000000001";
    let Plan::Check(mut needs) = plan(&Method::GET, path, "") else {
        panic!()
    };
    resolve(&upstream(), needs.as_mut_slice());
    let user = |name: &str| Principal::new(name, Vec::new(), PrincipalKind::DbUser);
    assert_eq!(
        enforcer.decide(&user("m"), needs.as_slice(), client),
        Ok(())
    );
    assert_eq!(
        enforcer
            .decide(&user("f"), needs.as_slice(), client)
            .unwrap_err()
            .0,
        "rbac: authorization, forbidden action: user 'f' has insufficient permissions to read_data [[Domain: data, Collection: Movie, Tenant: *, Object: 8f5a3a6e-0000-4000-8000-000000000001]]"
    );
}
