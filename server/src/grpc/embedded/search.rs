//! `Search` over the embedded store: what the clients' `fetch_objects` and
//! `fetch_object_by_id` send (limit, offset, the `after` cursor, equality filters, a property
//! projection, the uuid and timestamps), answered in the reply shape the clients parse
//! (`id_as_bytes`, `non_ref_props` typed by the class's schema). Vector and keyword searches,
//! grouping, sorting, generation, reranking, references and tenants are UNIMPLEMENTED by name.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;
use tonic::Status;

use super::filter;
use super::pb;
use super::status::{from_query, from_store, unsupported};
use crate::store::query::{Found, Query};
use crate::store::schema::ClassDef;
use crate::store::validation::{Kind, PropertyType};
use crate::store::{Store, StoreError};

/// Answers a `SearchRequest`.
pub(crate) async fn search(
    store: &Store,
    request: pb::SearchRequest,
) -> Result<pb::SearchReply, Status> {
    let started = Instant::now();
    refuse_unsupported(&request)?;
    let filter = request
        .filters
        .as_ref()
        .map(filter::from_proto)
        .transpose()?;
    let positive = |n: u32| (n > 0).then_some(i64::from(n));
    let after = Some(request.after.as_str()).filter(|a| !a.is_empty());
    let query = Query::new(
        &request.collection,
        filter,
        after,
        positive(request.offset),
        positive(request.limit),
    )
    .map_err(from_store)?;
    let found = store.query(&query).await.map_err(from_query)?;
    let projection = Projection::new(&found.class, request.properties.as_ref())?;
    let metadata = request.metadata.unwrap_or_default();
    let results = found_results(&found, &projection, &metadata)?;
    Ok(pb::SearchReply {
        took: started.elapsed().as_secs_f32(),
        results,
        ..Default::default()
    })
}

/// Everything in a request the store cannot honour, refused before any work.
// `uses_125_api` is deprecated because every current client sets it; one that does not
// expects the older reply format.
#[allow(deprecated)]
fn refuse_unsupported(request: &pb::SearchRequest) -> Result<(), Status> {
    let searches = [
        (request.hybrid_search.is_some(), "hybrid search"),
        (request.bm25_search.is_some(), "bm25 search"),
        (request.near_vector.is_some(), "near_vector search"),
        (request.near_object.is_some(), "near_object search"),
        (request.near_text.is_some(), "near_text search"),
        (request.near_image.is_some(), "near_image search"),
        (request.near_audio.is_some(), "near_audio search"),
        (request.near_video.is_some(), "near_video search"),
        (request.near_depth.is_some(), "near_depth search"),
        (request.near_thermal.is_some(), "near_thermal search"),
        (request.near_imu.is_some(), "near_imu search"),
        (request.group_by.is_some(), "group_by"),
        (!request.sort_by.is_empty(), "sorting"),
        (request.autocut != 0, "autocut"),
        (request.generative.is_some(), "generative search"),
        (request.rerank.is_some(), "reranking"),
        (request.boost.is_some(), "boosting"),
        (!request.tenant.is_empty(), "multi-tenancy"),
        (
            !request.uses_125_api,
            "the reply format of clients older than Weaviate 1.25",
        ),
    ];
    if let Some((_, feature)) = searches.iter().find(|(asked, _)| *asked) {
        return Err(unsupported(feature));
    }
    if let Some(properties) = &request.properties {
        if !properties.ref_properties.is_empty() {
            return Err(unsupported("returning cross-references"));
        }
        if !properties.object_properties.is_empty() {
            return Err(unsupported("returning nested object properties"));
        }
    }
    if let Some(metadata) = &request.metadata {
        if metadata.query_profile {
            return Err(unsupported("query profiling"));
        }
    }
    Ok(())
}

/// Which properties each result carries.
struct Projection {
    /// Name and type, in the class's order.
    properties: Vec<(String, PropertyType)>,
}

impl Projection {
    /// All the class's properties when the request names none (or asks for all), else those
    /// named. A property the store cannot encode is refused when it would be returned.
    fn new(
        class: &ClassDef,
        request: Option<&pb::PropertiesRequest>,
    ) -> Result<Projection, Status> {
        let names: Vec<String> = match request {
            None => class.property_names(),
            Some(r) if r.return_all_nonref_properties => class.property_names(),
            Some(r) => r.non_ref_properties.clone(),
        };
        let mut properties = Vec::with_capacity(names.len());
        for name in names {
            let Some(ty) = class.property_type(&name) else {
                return Err(Status::invalid_argument(format!(
                    "no such prop with name '{name}' found in class '{}' in the schema",
                    class.name()
                )));
            };
            if matches!(ty.kind, Kind::Object | Kind::Unchecked) {
                return Err(unsupported(&format!(
                    "returning the property '{name}' (its type is not text, int, number, boolean, date, uuid or an array of them)"
                )));
            }
            properties.push((name, *ty));
        }
        Ok(Projection { properties })
    }
}

fn found_results(
    found: &Found,
    projection: &Projection,
    metadata: &pb::MetadataRequest,
) -> Result<Vec<pb::SearchResult>, Status> {
    found
        .objects
        .iter()
        .map(|object| {
            let mut fields = HashMap::with_capacity(projection.properties.len());
            for (name, ty) in &projection.properties {
                if let Some(value) = object.properties.get(name) {
                    let encoded = encode(ty, value).ok_or_else(|| {
                        from_store(StoreError::Corrupt(format!(
                            "object {}/{}: property {name} does not have its declared type",
                            object.class, object.id
                        )))
                    })?;
                    fields.insert(name.clone(), encoded);
                }
            }
            let id = uuid::Uuid::parse_str(&object.id).map_err(|_| {
                from_store(StoreError::Corrupt(format!(
                    "object {}/{}: the id is not a UUID",
                    object.class, object.id
                )))
            })?;
            let mut meta = pb::MetadataResult {
                id: object.id.clone(),
                id_as_bytes: id.as_bytes().to_vec(),
                ..Default::default()
            };
            if metadata.creation_time_unix {
                meta.creation_time_unix = object.created_ms;
                meta.creation_time_unix_present = true;
            }
            if metadata.last_update_time_unix {
                meta.last_update_time_unix = object.updated_ms;
                meta.last_update_time_unix_present = true;
            }
            if metadata.is_consistent {
                // One node holds every object: every answer is consistent.
                meta.is_consistent = Some(true);
                meta.is_consistent_present = true;
            }
            if metadata.vector {
                if let Some(vector) = object.vector.as_ref().and_then(f32_bytes) {
                    meta.vector_bytes = vector;
                }
            }
            for name in &metadata.vectors {
                if let Some(vector) = object.vectors.as_ref().and_then(|v| v.get(name)) {
                    meta.vectors.push(named_vector(name, vector).ok_or_else(|| {
                        unsupported(&format!("returning the named vector '{name}' as stored"))
                    })?);
                }
            }
            Ok(pb::SearchResult {
                properties: Some(pb::PropertiesResult {
                    non_ref_props: Some(pb::Properties { fields }),
                    target_collection: object.class.clone(),
                    ..Default::default()
                }),
                metadata: Some(meta),
                ..Default::default()
            })
        })
        .collect()
}

/// A stored value as the reply's typed `Value`, `None` when it does not have the type (the
/// store checked it on the way in, so that is a corrupt row).
fn encode(ty: &PropertyType, value: &Value) -> Option<pb::Value> {
    use pb::list_value::Kind as ListKind;
    use pb::value::Kind as ValueKind;
    let kind = if ty.array {
        let items = value.as_array()?;
        let strings = || -> Option<Vec<String>> {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let list = match ty.kind {
            Kind::Text => ListKind::TextValues(pb::TextValues { values: strings()? }),
            Kind::Date => ListKind::DateValues(pb::DateValues { values: strings()? }),
            Kind::Uuid => ListKind::UuidValues(pb::UuidValues { values: strings()? }),
            Kind::Boolean => ListKind::BoolValues(pb::BoolValues {
                values: items.iter().map(Value::as_bool).collect::<Option<_>>()?,
            }),
            Kind::Int => {
                let mut bytes = Vec::with_capacity(items.len() * 8);
                for item in items {
                    bytes.extend_from_slice(&item.as_i64()?.to_le_bytes());
                }
                ListKind::IntValues(pb::IntValues { values: bytes })
            }
            Kind::Number => {
                let mut bytes = Vec::with_capacity(items.len() * 8);
                for item in items {
                    bytes.extend_from_slice(&item.as_f64()?.to_le_bytes());
                }
                ListKind::NumberValues(pb::NumberValues { values: bytes })
            }
            Kind::Object | Kind::Unchecked => return None,
        };
        ValueKind::ListValue(pb::ListValue { kind: Some(list) })
    } else {
        match ty.kind {
            Kind::Text => ValueKind::TextValue(value.as_str()?.to_owned()),
            Kind::Date => ValueKind::DateValue(value.as_str()?.to_owned()),
            Kind::Uuid => ValueKind::UuidValue(value.as_str()?.to_owned()),
            Kind::Int => ValueKind::IntValue(value.as_i64()?),
            Kind::Number => ValueKind::NumberValue(value.as_f64()?),
            Kind::Boolean => ValueKind::BoolValue(value.as_bool()?),
            Kind::Object | Kind::Unchecked => return None,
        }
    };
    Some(pb::Value { kind: Some(kind) })
}

/// A JSON array of numbers as little-endian 32-bit floats, the clients' vector encoding.
#[allow(clippy::cast_possible_truncation)]
fn f32_bytes(vector: &Value) -> Option<Vec<u8>> {
    let items = vector.as_array()?;
    let mut bytes = Vec::with_capacity(items.len() * 4);
    for item in items {
        bytes.extend_from_slice(&(item.as_f64()? as f32).to_le_bytes());
    }
    Some(bytes)
}

/// A named vector: one vector, or a multi-vector (a little-endian `u16` dimension, then the
/// rows), as the clients decode them.
fn named_vector(name: &str, vector: &Value) -> Option<pb::Vectors> {
    let items = vector.as_array()?;
    let multi = items.first().is_some_and(Value::is_array);
    let (bytes, kind) = if multi {
        let dimension = u16::try_from(items[0].as_array()?.len()).ok()?;
        let mut bytes = dimension.to_le_bytes().to_vec();
        for row in items {
            let row = f32_bytes(row)?;
            if row.len() != usize::from(dimension) * 4 {
                return None;
            }
            bytes.extend_from_slice(&row);
        }
        (bytes, pb::vectors::VectorType::MultiFp32)
    } else {
        (f32_bytes(vector)?, pb::vectors::VectorType::SingleFp32)
    };
    Some(pb::Vectors {
        name: name.to_owned(),
        vector_bytes: bytes,
        r#type: kind as i32,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ty(kind: Kind, array: bool) -> PropertyType {
        PropertyType { kind, array }
    }

    #[test]
    fn encodes_values_as_the_clients_decode_them() {
        use pb::list_value::Kind as L;
        use pb::value::Kind as V;
        let kind = |t, v: Value| encode(&t, &v).and_then(|v| v.kind);
        assert_eq!(
            kind(ty(Kind::Text, false), json!("a")),
            Some(V::TextValue("a".into()))
        );
        assert_eq!(kind(ty(Kind::Int, false), json!(7)), Some(V::IntValue(7)));
        assert_eq!(
            kind(ty(Kind::Number, false), json!(7)),
            Some(V::NumberValue(7.0))
        );
        assert_eq!(
            kind(ty(Kind::Boolean, false), json!(true)),
            Some(V::BoolValue(true))
        );
        assert_eq!(
            kind(ty(Kind::Int, true), json!([1, -2])),
            Some(V::ListValue(pb::ListValue {
                kind: Some(L::IntValues(pb::IntValues {
                    values: [1i64.to_le_bytes(), (-2i64).to_le_bytes()].concat()
                }))
            }))
        );
        assert_eq!(
            kind(ty(Kind::Number, true), json!([0.5])),
            Some(V::ListValue(pb::ListValue {
                kind: Some(L::NumberValues(pb::NumberValues {
                    values: 0.5f64.to_le_bytes().to_vec()
                }))
            }))
        );
        // A value without its declared type is a corrupt row, not a guess.
        assert_eq!(kind(ty(Kind::Int, false), json!("7")), None);
        assert_eq!(kind(ty(Kind::Text, true), json!(["a", 1])), None);
    }

    #[test]
    fn encodes_vectors_single_and_multi() {
        assert_eq!(
            f32_bytes(&json!([1.0, 0.5])).unwrap(),
            [1.0f32.to_le_bytes(), 0.5f32.to_le_bytes()].concat()
        );
        let multi = named_vector("colbert", &json!([[1.0, 2.0], [3.0, 4.0]])).unwrap();
        assert_eq!(multi.r#type, pb::vectors::VectorType::MultiFp32 as i32);
        assert_eq!(&multi.vector_bytes[..2], &2u16.to_le_bytes());
        assert_eq!(multi.vector_bytes.len(), 2 + 16);
        assert!(named_vector("ragged", &json!([[1.0], [1.0, 2.0]])).is_none());
    }

    #[test]
    #[allow(deprecated)]
    fn refuses_searches_the_store_cannot_do_by_name() {
        let base = pb::SearchRequest {
            collection: "A".into(),
            uses_123_api: true,
            uses_125_api: true,
            uses_127_api: true,
            ..Default::default()
        };
        assert!(refuse_unsupported(&base).is_ok());
        let cases = [
            (
                pb::SearchRequest {
                    near_vector: Some(Default::default()),
                    ..base.clone()
                },
                "near_vector search",
            ),
            (
                pb::SearchRequest {
                    sort_by: vec![Default::default()],
                    ..base.clone()
                },
                "sorting",
            ),
            (
                pb::SearchRequest {
                    group_by: Some(Default::default()),
                    ..base.clone()
                },
                "group_by",
            ),
            (
                pb::SearchRequest {
                    tenant: "t1".into(),
                    ..base.clone()
                },
                "multi-tenancy",
            ),
            (
                pb::SearchRequest {
                    properties: Some(pb::PropertiesRequest {
                        ref_properties: vec![Default::default()],
                        ..Default::default()
                    }),
                    ..base.clone()
                },
                "returning cross-references",
            ),
        ];
        for (request, feature) in cases {
            let status = refuse_unsupported(&request).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unimplemented);
            assert_eq!(
                status.message(),
                format!("{feature} is not supported by the embedded store")
            );
        }
    }
}
