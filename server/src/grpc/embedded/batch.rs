//! `BatchObjects` over the embedded store: each object is written as REST's
//! `POST /v1/batch/objects` writes it (same checks, same transaction, an existing id replaced),
//! and each one that fails is reported by its index in `BatchObjectsReply.errors`, as Weaviate
//! reports them. Batches over `PORTCULLIS_MAX_BATCH_OBJECTS` are refused whole, as in REST.

use std::time::Instant;

use prost_types::value::Kind as StructKind;
use serde_json::{Map, Number, Value};
use tonic::Status;

use super::pb;
use super::status::{from_store, unsupported};
use crate::store::batch::BatchRefusal;
use crate::store::objects::{canonical_id, ObjectInput};
use crate::store::schema::class_name;
use crate::store::Store;

/// Answers a `BatchObjectsRequest`; `max_objects` is `PORTCULLIS_MAX_BATCH_OBJECTS`.
pub(crate) async fn batch_objects(
    store: &Store,
    max_objects: usize,
    request: pb::BatchObjectsRequest,
) -> Result<pb::BatchObjectsReply, Status> {
    let started = Instant::now();
    if request.objects.len() > max_objects {
        let refusal = BatchRefusal::TooMany { limit: max_objects };
        return Err(Status::invalid_argument(refusal.to_string()));
    }
    let has_references = request.objects.iter().any(|o| {
        o.properties.as_ref().is_some_and(|p| {
            !p.single_target_ref_props.is_empty() || !p.multi_target_ref_props.is_empty()
        })
    });
    if has_references {
        return Err(unsupported("writing cross-references"));
    }
    let inputs = request.objects.into_iter().map(object_input).collect();
    let outcomes = store.batch_objects(inputs).await.map_err(from_store)?;
    let errors = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(index, outcome)| {
            let error = outcome.err()?;
            Some(pb::batch_objects_reply::BatchError {
                index: i32::try_from(index).unwrap_or(i32::MAX),
                error,
            })
        })
        .collect();
    Ok(pb::BatchObjectsReply {
        took: started.elapsed().as_secs_f32(),
        errors,
    })
}

/// One object of the batch as the store's input, or the message for its error entry (the
/// same messages REST's batch gives).
fn object_input(object: pb::BatchObject) -> Result<ObjectInput, String> {
    if !object.tenant.is_empty() {
        return Err(
            "invalid object: multi-tenancy is not supported by the embedded document store".into(),
        );
    }
    let class = Some(object.collection.as_str())
        .filter(|c| !c.is_empty())
        .map(class_name);
    let id = match object.uuid.as_str() {
        "" => None,
        raw => Some(
            canonical_id(raw).ok_or_else(|| format!("invalid object: id {raw:?} is not a UUID"))?,
        ),
    };
    // Older clients send the vector as repeated floats, current ones as bytes.
    #[allow(deprecated)]
    let legacy_vector = &object.vector;
    let vector = if !object.vector_bytes.is_empty() {
        Some(f32_vector(&object.vector_bytes)?)
    } else if !legacy_vector.is_empty() {
        Some(Value::Array(
            legacy_vector.iter().map(|x| float(f64::from(*x))).collect(),
        ))
    } else {
        None
    };
    let vectors = if object.vectors.is_empty() {
        None
    } else {
        let mut named = Map::new();
        for v in &object.vectors {
            named.insert(v.name.clone(), named_vector(v)?);
        }
        Some(Value::Object(named))
    };
    let properties = match object.properties {
        Some(p) => properties(p)?,
        None => Map::new(),
    };
    Ok(ObjectInput {
        class,
        id,
        properties,
        vector,
        vectors,
    })
}

fn properties(p: pb::batch_object::Properties) -> Result<Map<String, Value>, String> {
    nested(pb::ObjectPropertiesValue {
        non_ref_properties: p.non_ref_properties,
        number_array_properties: p.number_array_properties,
        int_array_properties: p.int_array_properties,
        text_array_properties: p.text_array_properties,
        boolean_array_properties: p.boolean_array_properties,
        object_properties: p.object_properties,
        object_array_properties: p.object_array_properties,
        empty_list_props: p.empty_list_props,
    })
}

/// The properties of an object (top level or nested) from their typed parts: the scalar
/// `Struct` and the arrays the clients send apart.
fn nested(p: pb::ObjectPropertiesValue) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    if let Some(scalars) = p.non_ref_properties {
        for (name, value) in scalars.fields {
            out.insert(name, struct_value(value));
        }
    }
    for a in p.text_array_properties {
        out.insert(
            a.prop_name,
            Value::Array(a.values.into_iter().map(Value::String).collect()),
        );
    }
    for a in p.int_array_properties {
        out.insert(
            a.prop_name,
            Value::Array(a.values.into_iter().map(Value::from).collect()),
        );
    }
    for a in p.boolean_array_properties {
        out.insert(
            a.prop_name,
            Value::Array(a.values.into_iter().map(Value::Bool).collect()),
        );
    }
    for a in p.number_array_properties {
        // Older clients send the values as repeated doubles, current ones as bytes.
        #[allow(deprecated)]
        let values = if a.values_bytes.is_empty() {
            a.values
        } else {
            f64_values(&a.values_bytes).ok_or_else(|| {
                format!(
                    "invalid object: the number array '{}' is not a whole number of 64-bit floats",
                    a.prop_name
                )
            })?
        };
        out.insert(
            a.prop_name,
            Value::Array(values.into_iter().map(float).collect()),
        );
    }
    for o in p.object_properties {
        let value = o.value.map(nested).transpose()?.unwrap_or_default();
        out.insert(o.prop_name, Value::Object(value));
    }
    for a in p.object_array_properties {
        let values = a
            .values
            .into_iter()
            .map(|v| nested(v).map(Value::Object))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(a.prop_name, Value::Array(values));
    }
    for name in p.empty_list_props {
        out.insert(name, Value::Array(Vec::new()));
    }
    Ok(out)
}

/// A `google.protobuf.Value` as JSON. Its numbers are all doubles, so one that is a whole
/// number becomes a JSON integer: an `int` property accepts it, and a `number` property
/// accepts either, as REST accepts `3` for both.
fn struct_value(value: prost_types::Value) -> Value {
    match value.kind {
        None | Some(StructKind::NullValue(_)) => Value::Null,
        Some(StructKind::BoolValue(b)) => Value::Bool(b),
        Some(StructKind::StringValue(s)) => Value::String(s),
        Some(StructKind::NumberValue(n)) => number(n),
        Some(StructKind::StructValue(s)) => Value::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| (k, struct_value(v)))
                .collect(),
        ),
        Some(StructKind::ListValue(l)) => {
            Value::Array(l.values.into_iter().map(struct_value).collect())
        }
    }
}

/// Below 2^53 every whole double is exactly an integer.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

#[allow(clippy::cast_possible_truncation)]
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < EXACT_INTEGER {
        Value::from(n as i64)
    } else {
        float(n)
    }
}

/// A JSON number for a double; NaN and infinities, which JSON cannot hold, become null (and
/// so are dropped, as Weaviate stores no nulls).
fn float(n: f64) -> Value {
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

fn f64_values(bytes: &[u8]) -> Option<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    )
}

fn f32_values(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

fn f32_vector(bytes: &[u8]) -> Result<Value, String> {
    let values = f32_values(bytes)
        .ok_or("invalid object: the vector is not a whole number of 32-bit floats")?;
    Ok(Value::Array(
        values.into_iter().map(|x| float(f64::from(x))).collect(),
    ))
}

/// A named vector, one or several (a multi-vector: a little-endian `u16` dimension, then the
/// rows).
fn named_vector(v: &pb::Vectors) -> Result<Value, String> {
    let multi = v.r#type == pb::vectors::VectorType::MultiFp32 as i32;
    if !multi {
        return f32_vector(&v.vector_bytes);
    }
    let bad = || format!("invalid object: the multi-vector '{}' is malformed", v.name);
    let (head, rows) = v.vector_bytes.split_at_checked(2).ok_or_else(bad)?;
    let dimension = usize::from(u16::from_le_bytes([head[0], head[1]]));
    let values = f32_values(rows).ok_or_else(bad)?;
    if dimension == 0 || !values.len().is_multiple_of(dimension) {
        return Err(bad());
    }
    Ok(Value::Array(
        values
            .chunks(dimension)
            .map(|row| Value::Array(row.iter().map(|x| float(f64::from(*x))).collect()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn scalars(fields: &[(&str, StructKind)]) -> Option<prost_types::Struct> {
        Some(prost_types::Struct {
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
                .collect::<BTreeMap<_, _>>(),
        })
    }

    #[test]
    fn reads_an_object_as_the_python_client_sends_it() {
        let object = pb::BatchObject {
            collection: "article".into(),
            uuid: "5F2B1C2E-8B7A-4C55-9A8F-3F9B2D1E0C4A".into(),
            vector_bytes: [1.0f32.to_le_bytes(), 0.5f32.to_le_bytes()].concat(),
            properties: Some(pb::batch_object::Properties {
                non_ref_properties: scalars(&[
                    ("title", StructKind::StringValue("x".into())),
                    ("count", StructKind::NumberValue(7.0)),
                    ("price", StructKind::NumberValue(2.5)),
                    ("done", StructKind::BoolValue(true)),
                    ("gone", StructKind::NullValue(0)),
                ]),
                int_array_properties: vec![pb::IntArrayProperties {
                    prop_name: "ints".into(),
                    values: vec![1, 2],
                }],
                number_array_properties: vec![pb::NumberArrayProperties {
                    prop_name: "floats".into(),
                    values_bytes: [0.5f64.to_le_bytes(), 1.0f64.to_le_bytes()].concat(),
                    ..Default::default()
                }],
                text_array_properties: vec![pb::TextArrayProperties {
                    prop_name: "tags".into(),
                    values: vec!["a".into()],
                }],
                empty_list_props: vec!["none".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let input = object_input(object).unwrap();
        assert_eq!(input.class.as_deref(), Some("Article"));
        assert_eq!(
            input.id.as_deref(),
            Some("5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a")
        );
        assert_eq!(input.vector, Some(json!([1.0, 0.5])));
        assert_eq!(
            Value::Object(input.properties),
            json!({"title": "x", "count": 7, "price": 2.5, "done": true, "gone": null,
                   "ints": [1, 2], "floats": [0.5, 1.0], "tags": ["a"], "none": []})
        );
    }

    #[test]
    fn reports_bad_objects_with_rest_messages() {
        let cases = [
            (
                pb::BatchObject {
                    uuid: "nope".into(),
                    ..Default::default()
                },
                "invalid object: id \"nope\" is not a UUID",
            ),
            (
                pb::BatchObject {
                    tenant: "t1".into(),
                    ..Default::default()
                },
                "multi-tenancy is not supported",
            ),
            (
                pb::BatchObject {
                    vector_bytes: vec![0, 0, 0],
                    ..Default::default()
                },
                "not a whole number of 32-bit floats",
            ),
        ];
        for (object, expected) in cases {
            let err = object_input(object).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn reads_named_and_multi_vectors() {
        let single = pb::Vectors {
            name: "a".into(),
            vector_bytes: 2.0f32.to_le_bytes().to_vec(),
            r#type: pb::vectors::VectorType::SingleFp32 as i32,
            ..Default::default()
        };
        assert_eq!(named_vector(&single).unwrap(), json!([2.0]));
        let mut bytes = 2u16.to_le_bytes().to_vec();
        for x in [1.0f32, 2.0, 3.0, 4.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let multi = pb::Vectors {
            name: "m".into(),
            vector_bytes: bytes,
            r#type: pb::vectors::VectorType::MultiFp32 as i32,
            ..Default::default()
        };
        assert_eq!(
            named_vector(&multi).unwrap(),
            json!([[1.0, 2.0], [3.0, 4.0]])
        );
        let ragged = pb::Vectors {
            vector_bytes: vec![3, 0, 0, 0, 128, 63],
            ..multi
        };
        assert!(named_vector(&ragged).unwrap_err().contains("malformed"));
    }

    #[test]
    fn whole_doubles_become_integers_only_where_exact() {
        assert_eq!(number(3.0), json!(3));
        assert_eq!(number(-0.0), json!(0));
        assert_eq!(number(2.5), json!(2.5));
        assert_eq!(number(1e300), json!(1e300));
        assert_eq!(number(f64::NAN), Value::Null);
    }
}
