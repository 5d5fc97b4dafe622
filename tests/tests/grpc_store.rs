//! The embedded store over gRPC (issue 12, docs/grpc-store.md), with a `tonic` client against
//! the real binary: BatchObjects with per-object errors and the batch cap, Search and
//! Aggregate results equal to what REST returns for the same data (pages, the cursor, filters,
//! timestamps), and UNIMPLEMENTED, with its message, for what the store cannot do.

#![allow(deprecated)] // SearchRequest.uses_125_api: deprecated, and what every client sends.

use portcullis_config::vars;
use portcullis_server::grpc::pb;
use portcullis_server::grpc::pb::weaviate_client::WeaviateClient;
use portcullis_tests::{Server, ServerBuilder};
use serde_json::{json, Value};
use tonic::transport::Channel;
use tonic::Code;

const KEY: &str = "grpc-store-admin-key-0123456789";
const CLASS: &str = "Doc";

async fn start(extra: &[(&str, &str)]) -> Server {
    let mut builder = ServerBuilder::new()
        .env(vars::APIKEY_ENABLED, "true")
        .env(vars::APIKEY_ALLOWED_KEYS, KEY)
        .env(vars::APIKEY_USERS, "admin");
    for (name, value) in extra {
        builder = builder.env(name, *value);
    }
    let server = builder.start().await;
    let reply = server
        .post("/v1/schema")
        .bearer(KEY)
        .json(&json!({"class": CLASS, "properties": [
            {"name": "title", "dataType": ["text"]},
            {"name": "count", "dataType": ["int"]},
            {"name": "price", "dataType": ["number"]},
            {"name": "done", "dataType": ["boolean"]},
            {"name": "tags", "dataType": ["text[]"]},
            {"name": "meta", "dataType": ["object"], "nestedProperties": [
                {"name": "a", "dataType": ["text"]}
            ]}
        ]}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    server
}

async fn client(server: &Server) -> WeaviateClient<Channel> {
    let addr = server.grpc.expect("the gRPC address");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the gRPC port");
    WeaviateClient::new(channel)
}

/// A request carrying the admin key.
fn authed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {KEY}").parse().expect("metadata value"),
    );
    request
}

/// Writes `n` objects over REST's batch: object `i` has `count = i % 4`, `done = i % 3 == 0`.
async fn rest_batch(server: &Server, n: usize) {
    let objects: Vec<Value> = (0..n)
        .map(|i| json!({"class": CLASS, "properties": {
            "title": format!("doc {i}"), "count": i % 4, "price": i as f64 / 4.0, "done": i % 3 == 0
        }}))
        .collect();
    let reply = server
        .post("/v1/batch/objects")
        .bearer(KEY)
        .json(&json!({ "objects": objects }))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// REST's listing: the objects of the class with these query parameters.
async fn rest_list(server: &Server, query: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/v1/objects?class={CLASS}&{query}"))
        .bearer(KEY)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
    body["objects"].as_array().expect("objects").clone()
}

fn ids_of(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect()
}

fn search(limit: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: CLASS.into(),
        limit,
        uses_123_api: true,
        uses_125_api: true,
        uses_127_api: true,
        metadata: Some(pb::MetadataRequest {
            uuid: true,
            creation_time_unix: true,
            last_update_time_unix: true,
            ..Default::default()
        }),
        properties: Some(pb::PropertiesRequest {
            non_ref_properties: vec!["title".into(), "count".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn result_ids(reply: &pb::SearchReply) -> Vec<String> {
    reply
        .results
        .iter()
        .map(|r| {
            let meta = r.metadata.as_ref().expect("metadata");
            let from_bytes = uuid_from_bytes(&meta.id_as_bytes);
            assert_eq!(from_bytes, meta.id, "id and id_as_bytes agree");
            meta.id.clone()
        })
        .collect()
}

fn uuid_from_bytes(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn equal(property: &str, value: pb::filters::TestValue) -> pb::Filters {
    pb::Filters {
        operator: pb::filters::Operator::Equal as i32,
        target: Some(pb::FilterTarget {
            target: Some(pb::filter_target::Target::Property(property.into())),
        }),
        test_value: Some(value),
        ..Default::default()
    }
}

#[tokio::test]
async fn batch_reports_each_bad_object_by_index_and_writes_the_others() {
    let server = start(&[]).await;
    let mut grpc = client(&server).await;
    let id = "5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a";
    let object = |collection: &str, uuid: &str, count: prost_value::Kind| pb::BatchObject {
        collection: collection.into(),
        uuid: uuid.into(),
        properties: Some(pb::batch_object::Properties {
            non_ref_properties: Some(prost_value::object(&[
                ("title", prost_value::Kind::StringValue("one".into())),
                ("count", count),
            ])),
            text_array_properties: vec![pb::TextArrayProperties {
                prop_name: "tags".into(),
                values: vec!["x".into(), "y".into()],
            }],
            ..Default::default()
        }),
        vector_bytes: [0.5f32.to_le_bytes(), 1.0f32.to_le_bytes()].concat(),
        ..Default::default()
    };
    let request = pb::BatchObjectsRequest {
        objects: vec![
            object("doc", id, prost_value::Kind::NumberValue(3.0)),
            object(CLASS, "", prost_value::Kind::StringValue("three".into())),
            object("Missing", "", prost_value::Kind::NumberValue(1.0)),
            object(CLASS, "not-a-uuid", prost_value::Kind::NumberValue(1.0)),
        ],
        consistency_level: None,
    };
    let reply = grpc
        .batch_objects(authed(request))
        .await
        .expect("BatchObjects")
        .into_inner();
    let errors: Vec<(i32, &str)> = reply
        .errors
        .iter()
        .map(|e| (e.index, e.error.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (
                1,
                "invalid int property 'count' on class 'Doc': expected an integer, got the string \"three\""
            ),
            (2, "invalid object: class \"Missing\" not found in schema"),
            (3, "invalid object: id \"not-a-uuid\" is not a UUID"),
        ]
    );
    // The good object, as REST reads it: a whole double became an int, the vector as sent.
    let reply = server
        .get(&format!("/v1/objects/{CLASS}/{id}?include=vector"))
        .bearer(KEY)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let stored: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(
        stored["properties"],
        json!({"title": "one", "count": 3, "tags": ["x", "y"]})
    );
    assert_eq!(stored["vector"], json!([0.5, 1.0]));
    assert_eq!(rest_list(&server, "limit=100").await.len(), 1);
}

#[tokio::test]
async fn a_batch_over_the_cap_is_refused_whole() {
    let server = start(&[(vars::MAX_BATCH_OBJECTS, "2")]).await;
    let mut grpc = client(&server).await;
    let object = pb::BatchObject {
        collection: CLASS.into(),
        ..Default::default()
    };
    let request = pb::BatchObjectsRequest {
        objects: vec![object.clone(), object.clone(), object],
        consistency_level: None,
    };
    let status = grpc.batch_objects(authed(request)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "a batch may hold at most 2 objects (PORTCULLIS_MAX_BATCH_OBJECTS); send them in smaller batches"
    );
    assert!(rest_list(&server, "limit=100").await.is_empty());
}

#[tokio::test]
async fn search_pages_cursor_and_filters_agree_with_rest() {
    let server = start(&[]).await;
    rest_batch(&server, 40).await;
    let mut grpc = client(&server).await;
    let all = rest_list(&server, "limit=100").await;
    assert_eq!(all.len(), 40);

    // A page: the same ids, times and (projected) properties as REST's page.
    let mut request = search(7);
    request.offset = 3;
    let reply = grpc
        .search(authed(request))
        .await
        .expect("Search")
        .into_inner();
    let rest_page = rest_list(&server, "offset=3&limit=7").await;
    assert_eq!(result_ids(&reply), ids_of(&rest_page));
    for (result, rest) in reply.results.iter().zip(&rest_page) {
        let meta = result.metadata.as_ref().expect("metadata");
        assert!(meta.creation_time_unix_present && meta.last_update_time_unix_present);
        assert_eq!(json!(meta.creation_time_unix), rest["creationTimeUnix"]);
        assert_eq!(
            json!(meta.last_update_time_unix),
            rest["lastUpdateTimeUnix"]
        );
        let props = result.properties.as_ref().expect("properties");
        assert_eq!(props.target_collection, CLASS);
        let fields = &props.non_ref_props.as_ref().expect("non_ref_props").fields;
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        assert_eq!(names, ["count", "title"]);
        assert_eq!(
            fields["title"].kind,
            Some(pb::value::Kind::TextValue(
                rest["properties"]["title"].as_str().expect("title").into()
            ))
        );
        assert_eq!(
            fields["count"].kind,
            Some(pb::value::Kind::IntValue(
                rest["properties"]["count"].as_i64().expect("count")
            ))
        );
    }

    // The cursor: after the 10th id, as REST's `after`.
    let after = ids_of(&all)[9].clone();
    let mut request = search(5);
    request.after = after.clone();
    let reply = grpc
        .search(authed(request))
        .await
        .expect("Search")
        .into_inner();
    let rest_after = rest_list(&server, &format!("after={after}&limit=5")).await;
    assert_eq!(result_ids(&reply), ids_of(&rest_after));

    // Filters: what REST's objects say should match, in id order.
    let expected = |p: &dyn Fn(&Value) -> bool| -> Vec<String> {
        ids_of(
            &all.iter()
                .filter(|o| p(&o["properties"]))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    use pb::filters::TestValue;
    let count_2 = equal("count", TestValue::ValueInt(2));
    let not_done = equal("done", TestValue::ValueBoolean(false));
    let cases = [
        (count_2.clone(), expected(&|p| p["count"] == 2)),
        (
            pb::Filters {
                operator: pb::filters::Operator::And as i32,
                filters: vec![count_2.clone(), not_done.clone()],
                ..Default::default()
            },
            expected(&|p| p["count"] == 2 && p["done"] == false),
        ),
        (
            pb::Filters {
                operator: pb::filters::Operator::Or as i32,
                filters: vec![
                    count_2,
                    equal("title", TestValue::ValueText("doc 5".into())),
                ],
                ..Default::default()
            },
            expected(&|p| p["count"] == 2 || p["title"] == "doc 5"),
        ),
        (
            equal("price", TestValue::ValueNumber(2.25)),
            expected(&|p| p["price"].as_f64() == Some(2.25)),
        ),
        (
            equal("_id", TestValue::ValueText(ids_of(&all)[17].to_uppercase())),
            vec![ids_of(&all)[17].clone()],
        ),
    ];
    for (filter, want) in cases {
        assert!(!want.is_empty(), "{filter:?}");
        let mut request = search(100);
        request.filters = Some(filter.clone());
        let reply = grpc
            .search(authed(request))
            .await
            .expect("Search")
            .into_inner();
        assert_eq!(result_ids(&reply), want, "{filter:?}");
        let count = grpc
            .aggregate(authed(pb::AggregateRequest {
                collection: CLASS.into(),
                objects_count: true,
                filters: Some(filter),
                ..Default::default()
            }))
            .await
            .expect("Aggregate")
            .into_inner();
        let Some(pb::aggregate_reply::Result::SingleResult(single)) = count.result else {
            panic!("a single result: {count:?}");
        };
        assert_eq!(single.objects_count, Some(want.len() as i64));
    }

    // The total count.
    let count = grpc
        .aggregate(authed(pb::AggregateRequest {
            collection: CLASS.into(),
            objects_count: true,
            ..Default::default()
        }))
        .await
        .expect("Aggregate")
        .into_inner();
    let Some(pb::aggregate_reply::Result::SingleResult(single)) = count.result else {
        panic!("a single result: {count:?}");
    };
    assert_eq!(single.objects_count, Some(40));
}

#[tokio::test]
async fn what_the_store_cannot_do_is_unimplemented_by_name() {
    let server = start(&[]).await;
    rest_batch(&server, 3).await;
    let mut grpc = client(&server).await;
    let unsupported = |feature: &str| format!("{feature} is not supported by the embedded store");

    let mut near = search(1);
    near.near_vector = Some(Default::default());
    let mut sorted = search(1);
    sorted.sort_by = vec![pb::SortBy {
        ascending: true,
        path: vec!["title".into()],
    }];
    let mut not_equal = search(1);
    not_equal.filters = Some(pb::Filters {
        operator: pb::filters::Operator::NotEqual as i32,
        ..equal("count", pb::filters::TestValue::ValueInt(1))
    });
    let mut nested = search(1);
    nested.properties = Some(pb::PropertiesRequest {
        non_ref_properties: vec!["meta".into()],
        ..Default::default()
    });
    let cases = [
        (near, unsupported("near_vector search")),
        (sorted, unsupported("sorting")),
        (not_equal, unsupported("the NotEqual filter operator")),
        (
            nested,
            unsupported(
                "returning the property 'meta' (its type is not text, int, number, boolean, date, uuid or an array of them)",
            ),
        ),
    ];
    for (request, message) in cases {
        let status = grpc.search(authed(request)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{message}");
        assert_eq!(status.message(), message);
    }

    let grouped = pb::AggregateRequest {
        collection: CLASS.into(),
        objects_count: true,
        group_by: Some(Default::default()),
        ..Default::default()
    };
    let status = grpc.aggregate(authed(grouped)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unimplemented, unsupported("group_by").as_str())
    );
    let status = grpc
        .tenants_get(authed(pb::TenantsGetRequest {
            collection: CLASS.into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unimplemented, unsupported("TenantsGet").as_str())
    );

    // A wrong request is INVALID_ARGUMENT or NOT_FOUND, not UNIMPLEMENTED.
    let mut unknown_property = search(1);
    unknown_property.filters = Some(equal("nope", pb::filters::TestValue::ValueInt(1)));
    let status = grpc.search(authed(unknown_property)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "no such prop with name 'nope' found in class 'Doc' in the schema"
    );
    let mut missing = search(1);
    missing.collection = "Missing".into();
    let status = grpc.search(authed(missing)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "class 'Missing' not found in the schema")
    );
}

/// `google.protobuf.Struct` values for the batch's scalar properties.
mod prost_value {
    pub(crate) use prost_types::value::Kind;

    pub(crate) fn object(fields: &[(&str, Kind)]) -> prost_types::Struct {
        prost_types::Struct {
            fields: fields
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        prost_types::Value {
                            kind: Some(v.clone()),
                        },
                    )
                })
                .collect(),
        }
    }
}
