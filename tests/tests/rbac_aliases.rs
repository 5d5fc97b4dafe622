//! RBAC in proxy mode for what the request does not name (issue 13, the reference's
//! "Mapping"): a call through an alias is checked on the alias's collection, `GET`/`DELETE
//! /v1/aliases/{A}` on A's collection, and a write to a collection the upstream does not have
//! (Weaviate's auto-schema creates it) also needs `create_collections`. The mapping comes from
//! the upstream (`GET /v1/schema`, `GET /v1/aliases`), cached, refetched on an unknown name,
//! forgotten when an alias or class change passes through; a call is refused (502) when it
//! cannot be had.
//!
//! Auto-schema runs against a real peer: a second Portcullis on its embedded store. Aliases
//! need a stand-in written here, since the embedded store has none; gRPC a stand-in upstream
//! that answers every call with an empty reply.

#![allow(deprecated)] // SearchRequest.uses_125_api: deprecated, and what every client sends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use portcullis_config::vars;
use portcullis_tests::rbac::{call, forbidden, user_with};
use portcullis_tests::{Server, ServerBuilder};
use reqwest::Method;
use serde_json::{json, Value};

const ID: &str = "00000000-0000-4000-8000-000000000001";

fn object(class: &str) -> String {
    format!("[Domain: data, Collection: {class}, Tenant: *, Object: {ID}]")
}

/// Portcullis with RBAC in front of `upstream`; the bootstrap admin (root) and its key.
async fn proxy_to(upstream: &str) -> (Server, String) {
    proxy_with(upstream, &[]).await
}

/// [`proxy_to`] with more variables.
async fn proxy_with(upstream: &str, extra: &[(&str, &str)]) -> (Server, String) {
    let admin = portcullis_tests::generated_key();
    let mut builder = ServerBuilder::new();
    for (name, value) in extra {
        builder = builder.env(name, *value);
    }
    let server = builder
        .env(vars::UPSTREAM_URL, upstream)
        .env(vars::BOOTSTRAP_ADMIN_KEY, &admin)
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "admin")
        .start()
        .await;
    (server, admin)
}

// ---------------------------------------------------------------------------------------------
// Aliases, against a stand-in for Weaviate's alias API.

/// What the stand-in holds: collections, aliases (alias -> collection), how often each list
/// was read, and whether the alias list fails.
#[derive(Default)]
struct Upstream {
    classes: Vec<String>,
    aliases: Mutex<BTreeMap<String, String>>,
    schema_reads: AtomicUsize,
    alias_reads: AtomicUsize,
    failing: AtomicBool,
    /// When set, the two lists answer 401 without `Authorization: Bearer <key>`.
    key: Option<String>,
    /// The `Authorization` header of every call that is not a list read (`-` when absent).
    forwarded_authorization: Mutex<Vec<String>>,
}

/// A Weaviate stand-in: `GET /v1/schema` and `GET /v1/aliases` list what it holds (the alias
/// list answers 500 while failing), `PUT /v1/aliases/{A}` retargets, `DELETE` removes, `GET
/// /v1/aliases/{A}` and `GET /v1/objects/{C}/{id}` answer what they were asked for, `GET
/// /v1/schema/{C}/tenants` two tenants of a collection (through an alias too).
fn alias_upstream(state: Arc<Upstream>) -> (String, ServerHandle) {
    async fn answer(
        req: HttpRequest,
        body: web::Bytes,
        state: web::Data<Arc<Upstream>>,
    ) -> HttpResponse {
        let segments: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
        let method = req.method().as_str();
        let authorization = req
            .headers()
            .get("authorization")
            .map_or("-", |v| v.to_str().unwrap_or("?"));
        let list = method == "GET" && matches!(segments.as_slice(), ["v1", "schema" | "aliases"]);
        if !list {
            state
                .forwarded_authorization
                .lock()
                .unwrap()
                .push(authorization.to_owned());
        } else if let Some(key) = &state.key {
            if authorization != format!("Bearer {key}") {
                return HttpResponse::Unauthorized().finish();
            }
        }
        match (method, segments.as_slice()) {
            ("GET", ["v1", "schema"]) => {
                state.schema_reads.fetch_add(1, Ordering::SeqCst);
                let classes: Vec<Value> = state
                    .classes
                    .iter()
                    .map(|c| json!({"class": c, "properties": []}))
                    .collect();
                HttpResponse::Ok().json(json!({ "classes": classes }))
            }
            ("GET", ["v1", "aliases"]) => {
                state.alias_reads.fetch_add(1, Ordering::SeqCst);
                if state.failing.load(Ordering::SeqCst) {
                    return HttpResponse::InternalServerError().finish();
                }
                let aliases: Vec<Value> = state
                    .aliases
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(a, c)| json!({"alias": a, "class": c}))
                    .collect();
                HttpResponse::Ok().json(json!({ "aliases": aliases }))
            }
            ("GET", ["v1", "aliases", alias]) => match state.aliases.lock().unwrap().get(*alias) {
                Some(class) => HttpResponse::Ok().json(json!({"alias": alias, "class": class})),
                None => HttpResponse::NotFound().finish(),
            },
            ("PUT", ["v1", "aliases", alias]) => {
                let update: Value = serde_json::from_slice(&body).expect("alias update");
                let class = update["class"].as_str().expect("class").to_owned();
                state
                    .aliases
                    .lock()
                    .unwrap()
                    .insert(alias.to_string(), class.clone());
                HttpResponse::Ok().json(json!({"alias": alias, "class": class}))
            }
            ("DELETE", ["v1", "aliases", alias]) => {
                state.aliases.lock().unwrap().remove(*alias);
                HttpResponse::NoContent().finish()
            }
            ("GET", ["v1", "schema", class, "tenants"]) => {
                let aliases = state.aliases.lock().unwrap();
                let class = aliases.get(*class).map_or(*class, String::as_str);
                if !state.classes.iter().any(|c| c == class) {
                    return HttpResponse::NotFound().finish();
                }
                HttpResponse::Ok().json(json!([{"name": "t1"}, {"name": "u1"}]))
            }
            ("GET", ["v1", "objects", class, id]) => {
                HttpResponse::Ok().json(json!({"class": class, "id": id}))
            }
            _ => HttpResponse::NotFound().finish(),
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let data = web::Data::new(state);
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(answer))
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind the upstream");
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle()))
                .expect("report the upstream");
            server.await.expect("upstream server");
        });
    });
    let (addr, handle) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the upstream started");
    (format!("http://{addr}"), handle)
}

#[tokio::test]
async fn a_call_through_an_alias_is_checked_on_its_collection() {
    let state = Arc::new(Upstream {
        classes: vec!["Movie".into(), "Book".into()],
        ..Default::default()
    });
    state
        .aliases
        .lock()
        .unwrap()
        .insert("Film".into(), "Movie".into());
    let (url, handle) = alias_upstream(state.clone());
    let (server, admin) = proxy_to(&url).await;
    // A role on the collection, and one on the alias's name (which grants nothing).
    let movies = user_with(
        &server,
        &admin,
        "m",
        json!([
            {"action": "read_data", "data": {"collection": "Movie"}},
            {"action": "read_aliases", "aliases": {"collection": "Movie", "alias": "*"}},
            {"action": "delete_aliases", "aliases": {"collection": "Movie", "alias": "*"}},
            {"action": "read_tenants", "tenants": {"collection": "Movie", "tenant": "t*"}},
        ]),
    )
    .await;
    let films = user_with(
        &server,
        &admin,
        "f",
        json!([
            {"action": "read_data", "data": {"collection": "Film"}},
            {"action": "read_aliases", "aliases": {"collection": "Film", "alias": "*"}},
        ]),
    )
    .await;
    let film = format!("/v1/objects/Film/{ID}");

    // Through the alias, the collection's role reads; the alias's name grants nothing.
    let (status, body) = call(&server, Method::GET, &film, &movies, None).await;
    assert_eq!((status, body), (200, json!({"class": "Film", "id": ID})));
    let (status, body) = call(&server, Method::GET, &film, &films, None).await;
    assert_eq!(
        (status, body),
        (403, forbidden("f", "read_data", &object("Movie")))
    );
    // Lower-case, as a client may send it: the same collection.
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/v1/objects/film/{ID}"),
        &films,
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Reading an alias by name needs read_aliases on its collection (Weaviate >= 1.32.6).
    let (status, body) = call(&server, Method::GET, "/v1/aliases/Film", &movies, None).await;
    assert_eq!(
        (status, body),
        (200, json!({"alias": "Film", "class": "Movie"}))
    );
    let (status, body) = call(&server, Method::GET, "/v1/aliases/Film", &films, None).await;
    assert_eq!(
        (status, body),
        (
            403,
            forbidden(
                "f",
                "read_aliases",
                "[Domain: aliases, Collection: Movie, Alias: Film]"
            )
        )
    );
    // A tenant list through the alias is filtered by the collection's tenant grants.
    let (status, body) = call(
        &server,
        Method::GET,
        "/v1/schema/Film/tenants",
        &movies,
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!([{"name": "t1"}])));
    let (status, body) = call(
        &server,
        Method::GET,
        "/v1/schema/Film/tenants",
        &films,
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!([])));
    // One fetch served all of that: cached.
    assert_eq!(state.alias_reads.load(Ordering::SeqCst), 1);
    assert_eq!(state.schema_reads.load(Ordering::SeqCst), 1);

    // Retargeted through the proxy: forgotten at once, the next call is checked on Book.
    let (status, _) = call(
        &server,
        Method::PUT,
        "/v1/aliases/Film",
        &admin,
        Some(json!({"class": "Book"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&server, Method::GET, &film, &movies, None).await;
    assert_eq!(
        (status, body),
        (403, forbidden("m", "read_data", &object("Book")))
    );
    assert_eq!(state.alias_reads.load(Ordering::SeqCst), 2);

    // An alias made behind Portcullis' back: its name is unknown, so the list is read again
    // (once the snapshot is older than the miss interval, 500 ms).
    state
        .aliases
        .lock()
        .unwrap()
        .insert("Cinema".into(), "Movie".into());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Cinema/{ID}"),
        &films,
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (403, forbidden("f", "read_data", &object("Movie")))
    );
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Cinema/{ID}"),
        &movies,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state.alias_reads.load(Ordering::SeqCst), 3);

    // Deleting an alias needs delete_aliases on its collection, and forgets the mapping.
    let (status, _) = call(&server, Method::DELETE, "/v1/aliases/Cinema", &movies, None).await;
    assert_eq!(status, 204);

    // When the mapping cannot be had, calls that name a collection are refused, not guessed.
    state.failing.store(true, Ordering::SeqCst);
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Movie/{ID}"),
        &movies,
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            502,
            json!({"code": 502, "message": "upstream unavailable: the upstream's collections and aliases could not be read to check the call"})
        )
    );
    // Calls that name none are judged as before (the stand-in has no such route: 404).
    let (status, _) = call(&server, Method::GET, "/v1/objects", &admin, None).await;
    assert_eq!(status, 404);
    // And once the upstream answers again, so does Portcullis.
    state.failing.store(false, Ordering::SeqCst);
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Movie/{ID}"),
        &movies,
        None,
    )
    .await;
    assert_eq!(status, 200);
    handle.stop(false).await;
}

/// A gRPC upstream stand-in: answers every call with an empty message and status OK.
async fn grpc_upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use bytes::Bytes;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gRPC stand-in");
    let addr = listener.local_addr().expect("address");
    let acceptor = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                        }
                        let response = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .body(())
                            .expect("response");
                        let Ok(mut stream) = respond.send_response(response, false) else {
                            return;
                        };
                        let _ = stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = stream.send_trailers(trailers);
                    });
                }
            });
        }
    });
    (addr, acceptor)
}

#[tokio::test]
async fn a_grpc_search_through_an_alias_is_checked_on_its_collection() {
    use portcullis_server::grpc::pb;
    use portcullis_server::grpc::pb::weaviate_client::WeaviateClient;
    use tonic::Code;

    let state = Arc::new(Upstream {
        classes: vec!["Movie".into(), "Book".into()],
        ..Default::default()
    });
    state
        .aliases
        .lock()
        .unwrap()
        .insert("Film".into(), "Movie".into());
    let (url, handle) = alias_upstream(state.clone());
    let (grpc, acceptor) = grpc_upstream().await;
    let admin = portcullis_tests::generated_key();
    let server = ServerBuilder::new()
        .env(vars::UPSTREAM_URL, &url)
        .env(vars::UPSTREAM_GRPC_ADDR, grpc.to_string())
        .env(vars::BOOTSTRAP_ADMIN_KEY, &admin)
        .env(vars::RBAC_ENABLED, "true")
        .env(vars::RBAC_ROOT_USERS, "admin")
        .start()
        .await;
    let movies = user_with(
        &server,
        &admin,
        "gm",
        json!([{"action": "read_data", "data": {"collection": "Movie"}}]),
    )
    .await;
    let films = user_with(
        &server,
        &admin,
        "gf",
        json!([{"action": "read_data", "data": {"collection": "Film"}}]),
    )
    .await;
    let channel = tonic::transport::Channel::from_shared(format!(
        "http://{}",
        server.grpc.expect("the gRPC address")
    ))
    .expect("endpoint")
    .connect()
    .await
    .expect("connect to the gRPC port");
    let mut client = WeaviateClient::new(channel);
    let search = |collection: &str, key: &str| {
        let mut request = tonic::Request::new(pb::SearchRequest {
            collection: collection.into(),
            limit: 10,
            uses_123_api: true,
            uses_125_api: true,
            uses_127_api: true,
            ..Default::default()
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("metadata value"),
        );
        request
    };
    let reply = client.search(search("Film", &movies)).await;
    assert!(reply.is_ok(), "{:?}", reply.err());
    let status = client
        .search(search("Film", &films))
        .await
        .expect_err("a role on the alias's name grants nothing");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "rbac: authorization, forbidden action: user 'gf' has insufficient permissions to read_data [[Domain: data, Collection: Movie, Tenant: *, Object: *]]"
    );
    // The mapping forgotten (an alias change through REST), then unreadable: refused.
    let (status, _) = call(&server, Method::DELETE, "/v1/aliases/Gone", &admin, None).await;
    assert_eq!(status, 204);
    state.failing.store(true, Ordering::SeqCst);
    let status = client
        .search(search("Movie", &movies))
        .await
        .expect_err("no mapping, no guess");
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::Unavailable,
            "upstream unavailable: the upstream's collections and aliases could not be read to check the call"
        )
    );
    acceptor.abort();
    handle.stop(false).await;
}

// ---------------------------------------------------------------------------------------------
// Auto-schema, against a real peer.

#[tokio::test]
async fn a_write_that_would_create_a_collection_needs_create_collections() {
    // The peer: a second Portcullis on its embedded store, open to its one client.
    let peer = ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
        .start()
        .await;
    let (server, admin) = proxy_to(&peer.url("")).await;
    let (status, body) = call(
        &server,
        Method::POST,
        "/v1/schema",
        &admin,
        Some(json!({"class": "Movie", "properties": [{"name": "title", "dataType": ["text"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let writer = user_with(
        &server,
        &admin,
        "w",
        json!([
            {"action": "create_data", "data": {"collection": "*"}},
            {"action": "update_data", "data": {"collection": "*"}},
        ]),
    )
    .await;
    let creator = user_with(
        &server,
        &admin,
        "c",
        json!([
            {"action": "create_data", "data": {"collection": "*"}},
            {"action": "update_data", "data": {"collection": "*"}},
            {"action": "create_collections", "collections": {"collection": "Poem"}},
        ]),
    )
    .await;
    let movie = json!({"class": "Movie", "id": ID, "properties": {"title": "x"}});
    let poem = json!({"class": "Poem", "properties": {"title": "x"}});

    // An existing collection: data permissions suffice, and the peer stores it.
    let (status, body) = call(&server, Method::POST, "/v1/objects", &writer, Some(movie)).await;
    assert_eq!(status, 200, "{body}");
    // One the peer lacks: auto-schema would create it, so create_collections is needed too.
    let (status, body) = call(
        &server,
        Method::POST,
        "/v1/objects",
        &writer,
        Some(poem.clone()),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            forbidden(
                "w",
                "create_collections",
                "[Domain: collections, Collection: Poem]"
            )
        )
    );
    let (status, body) = call(
        &server,
        Method::POST,
        "/v1/batch/objects",
        &writer,
        Some(json!({"objects": [{"class": "Movie", "properties": {"title": "y"}}, poem.clone()]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            forbidden(
                "w",
                "create_collections",
                "[Domain: collections, Collection: Poem]"
            )
        )
    );
    // With it, the call passes on to the peer, which has no auto-schema: its own 422.
    let (status, _) = call(
        &server,
        Method::POST,
        "/v1/objects",
        &creator,
        Some(poem.clone()),
    )
    .await;
    assert_eq!(status, 422);

    // Once the class exists (created through Portcullis), data permissions suffice again.
    let (status, body) = call(
        &server,
        Method::POST,
        "/v1/schema",
        &admin,
        Some(json!({"class": "Poem", "properties": [{"name": "title", "dataType": ["text"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&server, Method::POST, "/v1/objects", &writer, Some(poem)).await;
    assert_eq!(status, 200, "{body}");
    // The peer has no alias API (404): no name is an alias, and a collection is itself.
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Movie/{ID}"),
        &admin,
        None,
    )
    .await;
    assert_eq!((status, body["class"].clone()), (200, json!("Movie")));
}

#[tokio::test]
async fn an_upstream_that_wants_a_key_gets_the_configured_one_on_the_lists_only() {
    let upstream_key = "upstream-list-key-7f3a";
    let state = Arc::new(Upstream {
        classes: vec!["Movie".into()],
        key: Some(upstream_key.into()),
        ..Default::default()
    });
    state
        .aliases
        .lock()
        .unwrap()
        .insert("Film".into(), "Movie".into());
    let (url, handle) = alias_upstream(state.clone());
    let film = format!("/v1/objects/Film/{ID}");
    let read_movies = json!([{"action": "read_data", "data": {"collection": "Movie"}}]);

    // Without the key the lists cannot be read: refused, never guessed.
    let (server, admin) = proxy_to(&url).await;
    let reader = user_with(&server, &admin, "r", read_movies.clone()).await;
    let (status, body) = call(&server, Method::GET, &film, &reader, None).await;
    assert_eq!(
        (status, body),
        (
            502,
            json!({"code": 502, "message": "upstream unavailable: the upstream's collections and aliases could not be read to check the call"})
        )
    );
    drop(server);

    // With it, the alias resolves; the forwarded call carries no credential (forwarding is
    // off) and never the upstream key.
    let (server, admin) = proxy_with(&url, &[(vars::UPSTREAM_API_KEY, upstream_key)]).await;
    let reader = user_with(&server, &admin, "r", read_movies).await;
    let (status, body) = call(&server, Method::GET, &film, &reader, None).await;
    assert_eq!((status, body), (200, json!({"class": "Film", "id": ID})));
    assert_eq!(
        *state.forwarded_authorization.lock().unwrap(),
        ["-"],
        "only the object read was forwarded, without a credential"
    );
    assert!(
        !server.stderr().contains(upstream_key) && !server.stdout().concat().contains(upstream_key),
        "the key was logged"
    );
    handle.stop(false).await;
}
