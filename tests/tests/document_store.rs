//! The embedded document store through the real binary: Weaviate's schema, object and batch
//! REST shapes, paging, type checks, body limits, durability across a graceful restart and a
//! `kill -9`, a damaged store refusing start-up, and who may do what.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_config::vars;
use portcullis_testkit::eventually;
use portcullis_tests::api::Reply;
use portcullis_tests::assert::{forbidden_body as forbidden, INVALID_MESSAGE};
use portcullis_tests::{Server, ServerBuilder};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN_KEY: &str = "ds-admin-key-5c1e9a7f3b";
const READER_KEY: &str = "ds-reader-key-0d8b2e6a41";

const ID_A: &str = "00000000-0000-4000-8000-00000000000a";
const ID_B: &str = "00000000-0000-4000-8000-00000000000b";
const ID_MISSING: &str = "00000000-0000-4000-8000-0000000000ff";

/// A server that serves everyone (anonymous on, no authorization list).
fn open_server() -> ServerBuilder {
    ServerBuilder::new().env(vars::ANONYMOUS_ACCESS_ENABLED, "true")
}

/// `method path` as `key` (anonymous without one), with a JSON body. Every store answer is
/// JSON or empty, so that is checked on every call, whether the test reads the body or not.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = server.request(method, path);
    if let Some(key) = key {
        request = request.bearer(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let reply = request.send().await;
    let _ = reply.json();
    reply
}

async fn get(server: &Server, path: &str) -> Reply {
    call(server, Method::GET, path, None, None).await
}

async fn post(server: &Server, path: &str, body: Value) -> Reply {
    call(server, Method::POST, path, None, Some(&body)).await
}

async fn put(server: &Server, path: &str, body: Value) -> Reply {
    call(server, Method::PUT, path, None, Some(&body)).await
}

async fn patch(server: &Server, path: &str, body: Value) -> Reply {
    call(server, Method::PATCH, path, None, Some(&body)).await
}

async fn delete(server: &Server, path: &str) -> Reply {
    call(server, Method::DELETE, path, None, None).await
}

async fn head(server: &Server, path: &str) -> Reply {
    call(server, Method::HEAD, path, None, None).await
}

/// Weaviate's handler-error body.
fn error(message: &str) -> Value {
    json!({"error": [{"message": message}]})
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Every checked type, as the official Python client sends a collection (`vectorConfig` with
/// the `none` vectorizer, extra property fields).
fn article_class() -> Value {
    json!({
        "class": "Article",
        "description": "news articles",
        "properties": [
            {"name": "title", "dataType": ["text"], "tokenization": "word",
             "indexFilterable": true, "indexSearchable": true, "description": "headline"},
            {"name": "tags", "dataType": ["text[]"]},
            {"name": "wordCount", "dataType": ["int"], "indexRangeFilters": false},
            {"name": "ratings", "dataType": ["int[]"]},
            {"name": "score", "dataType": ["number"]},
            {"name": "scores", "dataType": ["number[]"]},
            {"name": "draft", "dataType": ["boolean"]},
            {"name": "flags", "dataType": ["boolean[]"]},
            {"name": "published", "dataType": ["date"]},
            {"name": "revised", "dataType": ["date[]"]},
            {"name": "author", "dataType": ["uuid"]},
            {"name": "related", "dataType": ["uuid[]"]},
            {"name": "meta", "dataType": ["object"],
             "nestedProperties": [{"name": "source", "dataType": ["text"]}]},
            {"name": "location", "dataType": ["geoCoordinates"]}
        ],
        "vectorConfig": {
            "default": {
                "vectorizer": {"none": {}},
                "vectorIndexType": "hnsw",
                "vectorIndexConfig": {"distance": "cosine"}
            }
        },
        "invertedIndexConfig": {"bm25": {"b": 0.75, "k1": 1.2}},
        "replicationConfig": {"factor": 1}
    })
}

/// A valid value for every property of [`article_class`].
fn article_properties() -> Value {
    json!({
        "title": "Portcullis ships",
        "tags": ["release", "rust"],
        "wordCount": 812,
        "ratings": [4, 5],
        "score": 0.93,
        "scores": [1, 2.5],
        "draft": false,
        "flags": [true, false],
        "published": "2024-02-29T13:45:00Z",
        "revised": ["2024-03-01T08:00:00.5+01:00"],
        "author": "5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a",
        "related": [],
        "meta": {"source": "wire", "nested": {"depth": 2}},
        "location": {"latitude": 52.37, "longitude": 4.89}
    })
}

async fn create_article_class(server: &Server) {
    let answer = post(server, "/v1/schema", article_class()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json());
}

fn assert_uuid_v4(id: &str) {
    let b = id.as_bytes();
    assert_eq!(b.len(), 36, "{id}");
    for (i, c) in id.chars().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(c, '-', "{id}");
        } else {
            assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{id}");
        }
    }
    assert_eq!(b[14], b'4', "version nibble of {id}");
    assert!(
        matches!(b[19], b'8' | b'9' | b'a' | b'b'),
        "variant of {id}"
    );
}

#[tokio::test]
async fn schema_crud_through_the_api() {
    let server = open_server().start().await;
    assert_eq!(
        get(&server, "/v1/schema").await.json(),
        json!({"classes": []})
    );

    // Created as sent, name capitalized, the client's extra fields kept.
    let mut sent = article_class();
    sent["class"] = json!("article");
    let created = post(&server, "/v1/schema", sent).await;
    assert_eq!(created.status, 200);
    assert_eq!(created.json(), article_class());

    let duplicate = post(&server, "/v1/schema", article_class()).await;
    assert_eq!(duplicate.status, 422);
    assert_eq!(
        duplicate.json(),
        error("class name \"Article\" already exists")
    );

    for path in ["/v1/schema/Article", "/v1/schema/article"] {
        let answer = get(&server, path).await;
        assert_eq!(
            (answer.status.as_u16(), &answer.json()),
            (200, &article_class()),
            "{path}"
        );
    }
    let minimal = post(&server, "/v1/schema", json!({"class": "Note"})).await;
    assert_eq!(minimal.status, 200);
    assert_eq!(
        minimal.json(),
        json!({"class": "Note", "properties": [], "vectorizer": "none"})
    );
    assert_eq!(
        get(&server, "/v1/schema").await.json(),
        json!({"classes": [article_class(), minimal.json()]})
    );

    let missing = get(&server, "/v1/schema/Missing").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        error("class 'Missing' not found in the schema")
    );

    // Update: everything but the name and the properties' names and types may change.
    let mut updated = article_class();
    updated["description"] = json!("all the news");
    let answer = put(&server, "/v1/schema/Article", updated.clone()).await;
    assert_eq!((answer.status.as_u16(), &answer.json()), (200, &updated));
    assert_eq!(get(&server, "/v1/schema/Article").await.json(), updated);

    let mut retyped = updated.clone();
    retyped["properties"][2]["dataType"] = json!(["text"]);
    let answer = put(&server, "/v1/schema/Article", retyped).await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("properties cannot be updated through updating the class. Use the add property feature (e.g. \"POST /v1/schema/{className}/properties\") to add additional properties")
    );
    let answer = put(&server, "/v1/schema/Note", updated.clone()).await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("class name is immutable: attempted change from \"Note\" to \"Article\"")
    );
    let answer = put(&server, "/v1/schema/Missing", json!({"class": "Missing"})).await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.json(),
        error("class 'Missing' not found in the schema")
    );

    let answer = post(
        &server,
        "/v1/schema/Note/properties",
        json!({"name": "Body", "dataType": ["text"]}),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"name": "body", "dataType": ["text"]}));
    assert_eq!(
        get(&server, "/v1/schema/Note").await.json()["properties"],
        json!([{"name": "body", "dataType": ["text"]}])
    );

    // Refused definitions.
    let cases = [
        (
            json!({"class": "bad-name"}),
            "'Bad-name' is not a valid class name: class names start with a letter and contain only letters, digits and '_' (at most 255)",
        ),
        (
            json!({"class": "Vec", "vectorizer": "text2vec-openai"}),
            "vectorizer: no module with name \"text2vec-openai\" present: the embedded document store has no modules, use \"none\" and send vectors",
        ),
        (
            json!({"class": "Typeless", "properties": [{"name": "p"}]}),
            "property 'p': 'dataType' must be a non-empty list of type names, such as [\"text\"]",
        ),
    ];
    for (body, message) in cases {
        let answer = post(&server, "/v1/schema", body).await;
        assert_eq!(
            (answer.status.as_u16(), &answer.json()),
            (422, &error(message))
        );
    }

    // Deleting a class deletes its objects; deleting a missing class succeeds, as in Weaviate.
    let answer = post(
        &server,
        "/v1/objects",
        json!({"class": "Note", "id": ID_A, "properties": {"body": "x"}}),
    )
    .await;
    assert_eq!(answer.status, 200);
    let answer = delete(&server, "/v1/schema/Note").await;
    assert_eq!((answer.status.as_u16(), answer.json()), (200, Value::Null));
    assert_eq!(get(&server, "/v1/schema/Note").await.status, 404);
    assert_eq!(delete(&server, "/v1/schema/Note").await.status, 200);
    assert_eq!(
        post(&server, "/v1/schema", json!({"class": "Note"}))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&server, &format!("/v1/objects/Note/{ID_A}"))
            .await
            .status,
        404
    );
    assert_eq!(
        get(&server, "/v1/schema").await.json(),
        json!({"classes": [updated, {"class": "Note", "properties": [], "vectorizer": "none"}]})
    );
}

#[tokio::test]
async fn object_crud_through_the_api() {
    let server = open_server().start().await;
    create_article_class(&server).await;

    // Created with a generated v4 id, times in ms.
    let before = now_ms();
    let created = post(
        &server,
        "/v1/objects",
        json!({"class": "Article", "properties": article_properties()}),
    )
    .await;
    let after = now_ms();
    assert_eq!(created.status, 200, "{:?}", created.json());
    let id = created.json()["id"].as_str().expect("id").to_owned();
    assert_uuid_v4(&id);
    let created_at = created.json()["creationTimeUnix"]
        .as_i64()
        .expect("creationTimeUnix");
    assert!(
        (before..=after).contains(&created_at),
        "{created_at} not in {before}..={after}"
    );
    assert_eq!(
        created.json(),
        json!({
            "class": "Article",
            "id": id,
            "properties": article_properties(),
            "creationTimeUnix": created_at,
            "lastUpdateTimeUnix": created_at
        })
    );
    let fetched = get(&server, &format!("/v1/objects/Article/{id}")).await;
    assert_eq!(
        (fetched.status.as_u16(), &fetched.json()),
        (200, &created.json())
    );

    // A client-supplied id is honoured (in canonical form), and the vector kept.
    let created = post(
        &server,
        "/v1/objects",
        json!({
            "class": "article",
            "id": ID_B.to_uppercase(),
            "properties": {"title": "second", "draft": true},
            "vector": [0.25, -1, 3]
        }),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.json());
    let t = created.json()["creationTimeUnix"].clone();
    assert_eq!(
        created.json(),
        json!({
            "class": "Article",
            "id": ID_B,
            "properties": {"title": "second", "draft": true},
            "vector": [0.25, -1, 3],
            "creationTimeUnix": t,
            "lastUpdateTimeUnix": t
        })
    );
    let duplicate = post(
        &server,
        "/v1/objects",
        json!({"class": "Article", "id": ID_B, "properties": {}}),
    )
    .await;
    assert_eq!(duplicate.status, 422);
    assert_eq!(
        duplicate.json(),
        error(&format!("id '{ID_B}' already exists"))
    );

    // GET leaves the vector out unless asked; HEAD answers 204 or 404 without a body.
    let path_b = format!("/v1/objects/Article/{ID_B}");
    let plain = get(&server, &path_b).await;
    assert_eq!(
        plain.json(),
        json!({
            "class": "Article",
            "id": ID_B,
            "properties": {"title": "second", "draft": true},
            "creationTimeUnix": t,
            "lastUpdateTimeUnix": t
        })
    );
    let with_vector = get(&server, &format!("{path_b}?include=vector")).await;
    assert_eq!(with_vector.json(), created.json());
    let lower_class = get(&server, &format!("/v1/objects/article/{ID_B}")).await;
    assert_eq!(
        (lower_class.status.as_u16(), &lower_class.json()),
        (200, &plain.json())
    );
    let answer = head(&server, &path_b).await;
    assert_eq!((answer.status.as_u16(), answer.json()), (204, Value::Null));
    let answer = head(&server, &format!("/v1/objects/Article/{ID_MISSING}")).await;
    assert_eq!((answer.status.as_u16(), answer.json()), (404, Value::Null));

    // PUT replaces properties and vector, keeps the creation time.
    let replaced = put(
        &server,
        &path_b,
        json!({"class": "Article", "id": ID_B, "properties": {"title": "replaced", "wordCount": 3}}),
    )
    .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.json());
    let updated_at = replaced.json()["lastUpdateTimeUnix"]
        .as_i64()
        .expect("lastUpdateTimeUnix");
    assert!(updated_at >= t.as_i64().expect("time"));
    let expected = json!({
        "class": "Article",
        "id": ID_B,
        "properties": {"title": "replaced", "wordCount": 3},
        "creationTimeUnix": t,
        "lastUpdateTimeUnix": updated_at
    });
    assert_eq!(replaced.json(), expected);
    assert_eq!(
        get(&server, &format!("{path_b}?include=vector"))
            .await
            .json(),
        expected
    );

    // PATCH merges properties and answers 204.
    let answer = patch(
        &server,
        &path_b,
        json!({"properties": {"wordCount": 7, "draft": true}}),
    )
    .await;
    assert_eq!((answer.status.as_u16(), answer.json()), (204, Value::Null));
    let merged = get(&server, &path_b).await.json();
    assert_eq!(
        merged["properties"],
        json!({"title": "replaced", "wordCount": 7, "draft": true})
    );
    assert_eq!(merged["creationTimeUnix"], t);

    // Mismatched body, bad types, missing objects.
    let answer = put(
        &server,
        &path_b,
        json!({"class": "Other", "properties": {}}),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("invalid update: field 'class' is immutable: the path names \"Article\", the body \"Other\"")
    );
    let answer = patch(
        &server,
        &path_b,
        json!({"properties": {"wordCount": "many"}}),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("invalid int property 'wordCount' on class 'Article': expected an integer, got the string \"many\"")
    );
    let missing = format!("/v1/objects/Article/{ID_MISSING}");
    let not_found = error(&format!("object Article/{ID_MISSING} not found"));
    for answer in [
        get(&server, &missing).await,
        put(&server, &missing, json!({"properties": {}})).await,
        patch(&server, &missing, json!({"properties": {}})).await,
        delete(&server, &missing).await,
    ] {
        assert_eq!((answer.status.as_u16(), &answer.json()), (404, &not_found));
    }
    let answer = get(&server, "/v1/objects/Article/not-a-uuid").await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("id in path must be of type uuid: \"not-a-uuid\"")
    );

    // DELETE answers 204, then the object is gone.
    let answer = delete(&server, &path_b).await;
    assert_eq!((answer.status.as_u16(), answer.json()), (204, Value::Null));
    assert_eq!(get(&server, &path_b).await.status, 404);
    assert_eq!(head(&server, &path_b).await.status, 404);
    let answer = delete(&server, &path_b).await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn paging_with_after_across_three_pages() {
    let server = open_server().start().await;
    for class in ["Page", "Other"] {
        let answer = post(
            &server,
            "/v1/schema",
            json!({"class": class, "properties": [{"name": "n", "dataType": ["int"]}]}),
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    // 30 objects with known ids, sent out of order; 2 in another class.
    let ids: Vec<String> = (0..30)
        .map(|i| format!("00000000-0000-4000-8000-{:012x}", i + 1))
        .collect();
    let mut objects: Vec<Value> = ids
        .iter()
        .enumerate()
        .rev()
        .map(|(i, id)| json!({"class": "Page", "id": id, "properties": {"n": i}}))
        .collect();
    objects.push(json!({"class": "Other", "id": ids[0], "properties": {"n": 100}}));
    objects.push(json!({"class": "Other", "id": ID_MISSING, "properties": {"n": 101}}));
    let answer = post(&server, "/v1/batch/objects", json!({"objects": objects})).await;
    assert_eq!(answer.status, 200);

    let page_ids = |body: &Value| -> Vec<String> {
        body["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .map(|o| o["id"].as_str().expect("id").to_owned())
            .collect()
    };
    // Three pages of 12, 12 and 6, then an empty one.
    let mut after = String::new();
    let mut seen = Vec::new();
    for expected in [12, 12, 6, 0] {
        let answer = get(
            &server,
            &format!("/v1/objects?class=Page&limit=12&after={after}"),
        )
        .await;
        assert_eq!(answer.status, 200);
        let got = page_ids(&answer.json());
        assert_eq!(got.len(), expected);
        assert_eq!(answer.json()["totalResults"], json!(expected));
        assert!(answer.json()["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .all(|o| o["class"] == "Page"));
        if let Some(last) = got.last() {
            after = last.clone();
        }
        seen.extend(got);
    }
    assert_eq!(seen, ids);

    // The page's objects in full.
    let answer = get(
        &server,
        &format!("/v1/objects?class=Page&limit=1&after={}", ids[28]),
    )
    .await;
    let t = answer.json()["objects"][0]["creationTimeUnix"].clone();
    assert_eq!(
        answer.json(),
        json!({
            "objects": [{
                "class": "Page",
                "id": ids[29],
                "properties": {"n": 29},
                "creationTimeUnix": t,
                "lastUpdateTimeUnix": t
            }],
            "totalResults": 1,
            "deprecations": null
        })
    );

    // Default limit 25; without a class, every class by id.
    let answer = get(&server, "/v1/objects?class=Page").await;
    assert_eq!(page_ids(&answer.json()), ids[..25].to_vec());
    let answer = get(&server, "/v1/objects?limit=3").await;
    let all: Vec<(String, String)> = answer.json()["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            (
                o["class"].as_str().unwrap_or("").to_owned(),
                o["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        all,
        vec![
            ("Other".to_owned(), ids[0].clone()),
            ("Page".to_owned(), ids[0].clone()),
            ("Page".to_owned(), ids[1].clone())
        ]
    );
    let answer = get(&server, "/v1/objects?class=Page&offset=28&limit=5").await;
    assert_eq!(page_ids(&answer.json()), ids[28..].to_vec());

    // Weaviate's refusals.
    let cases = [
        (
            "/v1/objects?limit=10001".to_owned(),
            422,
            error("query maximum results exceeded: offset + limit may be at most 10000"),
        ),
        (
            format!("/v1/objects?after={}", ids[0]),
            422,
            error("the 'after' parameter requires the 'class' parameter"),
        ),
        (
            format!("/v1/objects?class=Page&offset=1&after={}", ids[0]),
            422,
            error("the 'after' parameter cannot be combined with 'offset'"),
        ),
        (
            "/v1/objects?class=Page&after=zzz".to_owned(),
            422,
            error("'after' must be an object id (a UUID), got \"zzz\""),
        ),
        (
            "/v1/objects?limit=many".to_owned(),
            422,
            error(
                "invalid query parameters: Query deserialize error: invalid digit found in string",
            ),
        ),
        (
            "/v1/objects?class=Nope".to_owned(),
            404,
            error("class 'Nope' not found in the schema"),
        ),
    ];
    for (path, status, body) in cases {
        let answer = get(&server, &path).await;
        assert_eq!(
            (answer.status.as_u16(), &answer.json()),
            (status, &body),
            "{path}"
        );
    }
    assert_eq!(get(&server, "/v1/objects?limit=10000").await.status, 200);
}

#[tokio::test]
async fn type_errors_are_422_naming_the_property() {
    let server = open_server().start().await;
    create_article_class(&server).await;
    let cases = [
        ("title", json!(5), "invalid text property 'title' on class 'Article': expected a string, got a number 5"),
        ("tags", json!("solo"), "invalid text array property 'tags' on class 'Article': expected an array, got a string"),
        ("tags", json!(["a", false]), "invalid text array property 'tags' on class 'Article': element 1: expected a string, got a boolean"),
        ("wordCount", json!(2.5), "invalid int property 'wordCount' on class 'Article': expected an integer, got a number 2.5"),
        ("ratings", json!([1, "2"]), "invalid int array property 'ratings' on class 'Article': element 1: expected an integer, got the string \"2\""),
        ("score", json!("high"), "invalid number property 'score' on class 'Article': expected a number, got the string \"high\""),
        ("scores", json!([null]), "invalid number array property 'scores' on class 'Article': element 0: expected a number, got null"),
        ("draft", json!("no"), "invalid boolean property 'draft' on class 'Article': expected a boolean, got the string \"no\""),
        ("flags", json!([1]), "invalid boolean array property 'flags' on class 'Article': element 0: expected a boolean, got a number 1"),
        ("published", json!("2024-02-30T00:00:00Z"), "invalid date property 'published' on class 'Article': expected an RFC 3339 date-time string, got the string \"2024-02-30T00:00:00Z\""),
        ("revised", json!(["yesterday"]), "invalid date array property 'revised' on class 'Article': element 0: expected an RFC 3339 date-time string, got the string \"yesterday\""),
        ("author", json!("someone"), "invalid uuid property 'author' on class 'Article': expected a UUID string, got the string \"someone\""),
        ("related", json!([42]), "invalid uuid array property 'related' on class 'Article': element 0: expected a UUID string, got a number 42"),
        ("meta", json!([1, 2]), "invalid object property 'meta' on class 'Article': expected a JSON object, got an array"),
        ("unknown", json!(1), "invalid object: no such prop with name 'unknown' found in class 'Article' in the schema. Check your schema files for which properties in this class are available"),
    ];
    for (property, value, message) in cases {
        let body = json!({"class": "Article", "id": ID_A, "properties": {property: value}});
        let answer = post(&server, "/v1/objects", body).await;
        assert_eq!(
            (answer.status.as_u16(), &answer.json()),
            (422, &error(message)),
            "{property}"
        );
    }
    // Nothing was stored by the refused requests; nulls are accepted and dropped.
    assert_eq!(
        get(&server, &format!("/v1/objects/Article/{ID_A}"))
            .await
            .status,
        404
    );
    let answer = post(
        &server,
        "/v1/objects",
        json!({"class": "Article", "id": ID_A, "properties": {"title": "t", "score": null}}),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["properties"], json!({"title": "t"}));

    // Malformed bodies.
    let answer = post(
        &server,
        "/v1/objects",
        json!({"class": "Article", "properties": [1]}),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("invalid object: 'properties' must be a JSON object, got an array")
    );
    let reply = server
        .post("/v1/objects")
        .header(CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        error("the request body is not valid JSON: key must be a string at line 1 column 2")
    );
}

#[tokio::test]
async fn unknown_class_is_404_or_422_as_weaviate() {
    let server = open_server().start().await;
    let answer = post(
        &server,
        "/v1/objects",
        json!({"class": "Nope", "properties": {}}),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("invalid object: class \"Nope\" not found in schema")
    );
    let answer = post(&server, "/v1/objects", json!({"properties": {}})).await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("invalid object: the given class is empty")
    );

    let path = format!("/v1/objects/Nope/{ID_A}");
    let not_found = error(&format!("object Nope/{ID_A} not found"));
    for answer in [
        get(&server, &path).await,
        put(&server, &path, json!({"properties": {}})).await,
        patch(&server, &path, json!({"properties": {}})).await,
        delete(&server, &path).await,
    ] {
        assert_eq!((answer.status.as_u16(), &answer.json()), (404, &not_found));
    }
    assert_eq!(head(&server, &path).await.status, 404);
    let answer = get(&server, "/v1/schema/Nope").await;
    assert_eq!(
        (answer.status.as_u16(), answer.json()),
        (404, error("class 'Nope' not found in the schema"))
    );
    let answer = post(
        &server,
        "/v1/schema/Nope/properties",
        json!({"name": "p", "dataType": ["text"]}),
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), answer.json()),
        (404, error("class 'Nope' not found in the schema"))
    );
}

#[tokio::test]
async fn batch_reports_a_result_per_object() {
    let server = open_server().start().await;
    create_article_class(&server).await;
    let answer = post(
        &server,
        "/v1/batch/objects",
        json!({
            "fields": ["ALL"],
            "objects": [
                {"class": "Article", "id": ID_A, "properties": {"title": "one"}, "vector": [1, 2]},
                {"class": "Article", "id": ID_B, "properties": {"wordCount": "x"}},
                {"class": "Ghost", "properties": {"title": "boo"}},
                {"class": "Article", "properties": {"title": "generated"}}
            ]
        }),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.json());
    let results = answer.json().as_array().expect("array").clone();
    assert_eq!(results.len(), 4);
    let t = results[0]["creationTimeUnix"].clone();
    assert_eq!(
        results[0],
        json!({
            "class": "Article", "id": ID_A, "properties": {"title": "one"}, "vector": [1, 2],
            "creationTimeUnix": t, "lastUpdateTimeUnix": t, "result": {}
        })
    );
    let failed = |object: Value, message: &str| {
        let mut object = object;
        object["result"] = json!({"errors": {"error": [{"message": message}]}});
        object
    };
    assert_eq!(
        results[1],
        failed(
            json!({"class": "Article", "id": ID_B, "properties": {"wordCount": "x"}}),
            "invalid int property 'wordCount' on class 'Article': expected an integer, got the string \"x\""
        )
    );
    assert_eq!(
        results[2],
        failed(
            json!({"class": "Ghost", "properties": {"title": "boo"}}),
            "invalid object: class \"Ghost\" not found in schema"
        )
    );
    let generated = results[3]["id"].as_str().expect("generated id").to_owned();
    assert_uuid_v4(&generated);
    assert_eq!(results[3]["result"], json!({}));
    // An element that is not an object refuses the whole batch (docs/hostile-inputs.md): see
    // tests/hardening.rs.

    // What succeeded is stored, what failed is not.
    assert_eq!(
        get(&server, &format!("/v1/objects/Article/{ID_A}"))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&server, &format!("/v1/objects/Article/{generated}"))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&server, &format!("/v1/objects/Article/{ID_B}"))
            .await
            .status,
        404
    );

    // A batch replaces an object with the same id (Weaviate's batch upserts).
    let answer = post(
        &server,
        "/v1/batch/objects",
        json!({"objects": [{"class": "Article", "id": ID_A, "properties": {"title": "two"}}]}),
    )
    .await;
    assert_eq!(answer.json()[0]["result"], json!({}));
    let stored = get(
        &server,
        &format!("/v1/objects/Article/{ID_A}?include=vector"),
    )
    .await
    .json();
    assert_eq!(stored["properties"], json!({"title": "two"}));
    assert_eq!(stored.get("vector"), None);

    let answer = post(&server, "/v1/batch/objects", json!({"items": []})).await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json(),
        error("the batch body must be {\"objects\": [...]}")
    );
    let answer = post(&server, "/v1/batch/objects", json!({"objects": []})).await;
    assert_eq!((answer.status.as_u16(), answer.json()), (200, json!([])));
}

#[tokio::test]
async fn bodies_over_portcullis_max_body_are_413() {
    let server = open_server().env(vars::MAX_BODY, "1024").start().await;
    assert_eq!(
        post(
            &server,
            "/v1/schema",
            json!({"class": "Blob", "properties": [
                {"name": "text", "dataType": ["text"]}
            ]})
        )
        .await
        .status,
        200
    );
    let small = json!({"class": "Blob", "properties": {"text": "x".repeat(500)}});
    assert_eq!(post(&server, "/v1/objects", small).await.status, 200);

    let large = json!({"class": "Blob", "properties": {"text": "x".repeat(4096)}});
    let too_large = error("request body exceeds the limit of 1024 bytes");
    for (method, path, body) in [
        (Method::POST, "/v1/objects".to_owned(), large.clone()),
        (
            Method::PUT,
            format!("/v1/objects/Blob/{ID_A}"),
            large.clone(),
        ),
        (
            Method::PATCH,
            format!("/v1/objects/Blob/{ID_A}"),
            large.clone(),
        ),
        (
            Method::POST,
            "/v1/batch/objects".to_owned(),
            json!({"objects": [large.clone()]}),
        ),
        (
            Method::POST,
            "/v1/schema".to_owned(),
            json!({"class": "Big", "description": "d".repeat(2048)}),
        ),
    ] {
        let answer = call(&server, method.clone(), &path, None, Some(&body)).await;
        assert_eq!(
            (answer.status.as_u16(), answer.json()),
            (413, too_large.clone()),
            "{method} {path}"
        );
    }
    assert_eq!(
        get(&server, "/v1/objects?class=Blob").await.json()["totalResults"],
        json!(1)
    );
}

/// Stops the server with SIGTERM and waits until the process has exited.
async fn stop_gracefully(server: Server) {
    let pid = server.pid().expect("server running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // The process stays a zombie until it is reaped on drop: wait for that state.
    let stat = format!("/proc/{pid}/stat");
    let exited = eventually(Duration::from_secs(20), || {
        let state = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.chars().next()))
            .flatten();
        matches!(state, None | Some('Z') | Some('X'))
    })
    .await;
    assert!(exited, "server did not stop on SIGTERM");
    drop(server);
}

/// A data directory owned by the test, so it outlives each server process.
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    (dir, data)
}

async fn write_sample(server: &Server) -> Value {
    let answer = post(
        server,
        "/v1/schema",
        json!({"class": "Kept", "properties": [
            {"name": "n", "dataType": ["int"]}
        ]}),
    )
    .await;
    assert_eq!(answer.status, 200);
    let answer = post(
        server,
        "/v1/objects",
        json!({"class": "Kept", "id": ID_A, "properties": {"n": 1}}),
    )
    .await;
    assert_eq!(answer.status, 200);
    answer.json()
}

#[tokio::test]
async fn data_survives_a_graceful_restart() {
    let (_dir, data) = data_dir();
    let server = open_server().data_dir(&data).start().await;
    let object = write_sample(&server).await;
    stop_gracefully(server).await;
    assert!(data.join("objects.db").exists());

    let server = open_server().data_dir(&data).start().await;
    let answer = get(&server, &format!("/v1/objects/Kept/{ID_A}")).await;
    assert_eq!((answer.status.as_u16(), &answer.json()), (200, &object));
    assert_eq!(
        get(&server, "/v1/schema").await.json()["classes"][0]["class"],
        "Kept"
    );
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let (_dir, data) = data_dir();
    let server = open_server().data_dir(&data).start().await;
    write_sample(&server).await;
    let answer = patch(
        &server,
        &format!("/v1/objects/Kept/{ID_A}"),
        json!({"properties": {"n": 2}}),
    )
    .await;
    assert_eq!(answer.status, 204);
    let answer = post(
        &server,
        "/v1/batch/objects",
        json!({"objects": [
            {"class": "Kept", "id": ID_B, "properties": {"n": 3}}
        ]}),
    )
    .await;
    assert_eq!(answer.json()[0]["result"], json!({}));
    // Killed right after the last acknowledgement: no shutdown, no checkpoint.
    let returned = server.kill9().await;
    assert_eq!(returned, data);

    let server = open_server().data_dir(&data).start().await;
    let a = get(&server, &format!("/v1/objects/Kept/{ID_A}")).await;
    assert_eq!(
        (a.status.as_u16(), &a.json()["properties"]),
        (200, &json!({"n": 2}))
    );
    let b = get(&server, &format!("/v1/objects/Kept/{ID_B}")).await;
    assert_eq!(
        (b.status.as_u16(), &b.json()["properties"]),
        (200, &json!({"n": 3}))
    );
    // And the store keeps working after recovery.
    let answer = delete(&server, &format!("/v1/objects/Kept/{ID_B}")).await;
    assert_eq!(answer.status, 204);
}

#[tokio::test]
async fn an_unreadable_store_stops_start_up_and_is_left_alone() {
    let (_dir, data) = data_dir();
    std::fs::create_dir_all(&data).expect("data dir");
    let file = data.join("objects.db");
    let garbage = "this is not a SQLite database\n".repeat(200);
    std::fs::write(&file, &garbage).expect("write garbage");

    let failure = open_server().data_dir(&data).start_expect_failure().await;
    assert_eq!(failure.code, Some(1), "stderr: {}", failure.stderr);
    assert!(
        failure.stderr.contains("while opening the document store")
            && failure.stderr.contains(&file.display().to_string())
            && failure
                .stderr
                .contains("could not be opened as a SQLite database")
            && failure.stderr.contains("left untouched"),
        "{}",
        failure.stderr
    );
    assert!(!failure.stdout.contains("listening"), "{}", failure.stdout);
    assert_eq!(std::fs::read_to_string(&file).expect("read back"), garbage);
}

#[tokio::test]
async fn a_missing_data_directory_is_created() {
    let (_dir, data) = data_dir();
    let nested = data.join("deeper").join("still");
    let server = open_server().data_dir(&nested).start().await;
    write_sample(&server).await;
    assert!(Path::new(&nested).join("objects.db").exists());
}

/// One request of every verb on every store route.
fn every_route() -> Vec<(Method, String, Option<Value>, bool)> {
    let object = format!("/v1/objects/Article/{ID_A}");
    vec![
        (Method::GET, "/v1/schema".into(), None, false),
        (Method::GET, "/v1/schema/Article".into(), None, false),
        (Method::GET, "/v1/objects?class=Article".into(), None, false),
        (Method::GET, object.clone(), None, false),
        (Method::HEAD, object.clone(), None, false),
        (
            Method::POST,
            "/v1/schema".into(),
            Some(json!({"class": "Fresh"})),
            true,
        ),
        (
            Method::PUT,
            "/v1/schema/Article".into(),
            Some(article_class()),
            true,
        ),
        (
            Method::POST,
            "/v1/schema/Article/properties".into(),
            Some(json!({"name": "extra", "dataType": ["text"]})),
            true,
        ),
        (
            Method::POST,
            "/v1/objects".into(),
            Some(json!({"class": "Article", "id": ID_B, "properties": {"title": "b"}})),
            true,
        ),
        (
            Method::PUT,
            object.clone(),
            Some(json!({"properties": {"title": "put"}})),
            true,
        ),
        (
            Method::PATCH,
            object.clone(),
            Some(json!({"properties": {"title": "patched"}})),
            true,
        ),
        (
            Method::POST,
            "/v1/batch/objects".into(),
            Some(json!({"objects": [{"class": "Article", "properties": {"title": "c"}}]})),
            true,
        ),
        (Method::DELETE, object, None, true),
        (Method::DELETE, "/v1/schema/Fresh".into(), None, true),
    ]
}

/// The admin's status for a request in [`every_route`] order.
fn admin_status(method: &Method, path: &str) -> u16 {
    match (method.as_str(), path) {
        ("HEAD", _) | ("PATCH", _) => 204,
        ("DELETE", p) if p.starts_with("/v1/objects/") => 204,
        _ => 200,
    }
}

fn authorized_server(anonymous: bool) -> ServerBuilder {
    ServerBuilder::new()
        .env(vars::ANONYMOUS_ACCESS_ENABLED, anonymous.to_string())
        .env(vars::APIKEY_ENABLED, "true")
        .env(
            vars::APIKEY_ALLOWED_KEYS,
            format!("{ADMIN_KEY},{READER_KEY}"),
        )
        .env(vars::APIKEY_USERS, "admin,reader")
        .env(vars::ADMINLIST_ENABLED, "true")
        .env(vars::ADMINLIST_USERS, "admin")
        // Anonymous callers read, as the read-only list allows them to.
        .env(vars::ADMINLIST_READONLY_USERS, "reader,anonymous")
}

async fn seed(server: &Server) {
    let answer = call(
        server,
        Method::POST,
        "/v1/schema",
        Some(ADMIN_KEY),
        Some(&article_class()),
    )
    .await;
    assert_eq!(answer.status, 200);
    let body = json!({"class": "Article", "id": ID_A, "properties": {"title": "a"}});
    let answer = call(
        server,
        Method::POST,
        "/v1/objects",
        Some(ADMIN_KEY),
        Some(&body),
    )
    .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn admin_reader_and_anonymous_on_every_verb() {
    let server = authorized_server(true).start().await;
    seed(&server).await;

    // The read-only user and anonymous callers read, and are refused every write before any
    // handler runs (nothing changes).
    for (user, key) in [("reader", Some(READER_KEY)), ("anonymous", None)] {
        for (method, path, body, write) in every_route() {
            let answer = call(&server, method.clone(), &path, key, body.as_ref()).await;
            if write {
                assert_eq!(
                    (answer.status.as_u16(), &answer.json()),
                    (403, &forbidden(user, "write", &path)),
                    "{user} {method} {path}"
                );
            } else {
                assert_eq!(
                    answer.status,
                    admin_status(&method, &path),
                    "{user} {method} {path}: {:?}",
                    answer.json()
                );
            }
        }
    }
    let answer = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Article/{ID_A}"),
        Some(READER_KEY),
        None,
    )
    .await;
    assert_eq!(answer.json()["properties"], json!({"title": "a"}));
    let answer = call(&server, Method::GET, "/v1/schema", Some(READER_KEY), None).await;
    assert_eq!(answer.json(), json!({"classes": [article_class()]}));

    // The admin may do everything, in order.
    for (method, path, body, _) in every_route() {
        let answer = call(
            &server,
            method.clone(),
            &path,
            Some(ADMIN_KEY),
            body.as_ref(),
        )
        .await;
        assert_eq!(
            answer.status,
            admin_status(&method, &path),
            "admin {method} {path}: {:?}",
            answer.json()
        );
    }
    let answer = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Article/{ID_B}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(answer.json()["properties"], json!({"title": "b"}));
    let answer = call(
        &server,
        Method::GET,
        &format!("/v1/objects/Article/{ID_A}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn without_anonymous_access_every_store_route_needs_a_key() {
    let server = authorized_server(false).start().await;
    seed(&server).await;
    for (method, path, body, _) in every_route() {
        for key in [None, Some("not-a-key")] {
            let answer = call(&server, method.clone(), &path, key, body.as_ref()).await;
            assert_eq!(answer.status, 401, "{key:?} {method} {path}");
            if method != Method::HEAD {
                let body = answer.json();
                assert_eq!(body["code"], json!(401), "{method} {path}");
                let message = body["message"].as_str().unwrap_or("");
                match key {
                    None => assert!(
                        message.starts_with("unauthorized: anonymous access not enabled"),
                        "{message}"
                    ),
                    Some(_) => assert_eq!(message, INVALID_MESSAGE),
                }
            }
        }
    }
    // Nothing changed, and the reader still reads.
    let answer = call(&server, Method::GET, "/v1/schema", Some(READER_KEY), None).await;
    assert_eq!(answer.json(), json!({"classes": [article_class()]}));
}
