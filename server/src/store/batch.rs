//! Reading a batch body (`{"objects": [...]}`) element by element, so that what a batch costs
//! is bounded before it is built: past `PORTCULLIS_MAX_BATCH_OBJECTS` elements, or at the first
//! element that is not a JSON object, reading stops and the whole batch is refused with one
//! message. Refusing a non-object element outright, rather than answering it with its own
//! error entry, keeps the answer from growing faster than the body (two bytes, `0,`, used to
//! cost about a hundred bytes of answer and far more of memory).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::validation::json_kind;
use portcullis_config::vars;

/// Why a batch body is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchRefusal {
    /// The body is not JSON at all (400).
    #[error("{0}")]
    NotJson(String),
    /// The body is JSON but not `{"objects": [...]}`.
    #[error("the batch body must be {{\"objects\": [...]}}")]
    NotABatch,
    /// More elements than the cap.
    #[error("a batch may hold at most {limit} objects ({var}); send them in smaller batches", var = vars::MAX_BATCH_OBJECTS)]
    TooMany {
        /// The cap.
        limit: usize,
    },
    /// An element that is not a JSON object.
    #[error(
        "invalid batch: objects[{index}] is not a JSON object (got {kind}); nothing was written"
    )]
    NotAnObject {
        /// Its position, from 0.
        index: usize,
        /// What it is.
        kind: &'static str,
    },
}

/// The batch's objects, each a `Value::Object`, or why the body is refused. Other top-level
/// fields (`fields`, `consistency_level`) are skipped without being built.
pub fn parse(body: &[u8], limit: usize) -> Result<Vec<Value>, BatchRefusal> {
    // Members skipped unbuilt are not checked for UTF-8 by serde_json, so check the whole body
    // first: JSON is UTF-8 (RFC 8259 §8.1), and a body that is not is not JSON (found by the
    // `store_json` fuzz target).
    if let Err(err) = std::str::from_utf8(body) {
        return Err(BatchRefusal::NotJson(format!(
            "the body is not UTF-8 (at byte {})",
            err.valid_up_to()
        )));
    }
    let refusal = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed {
        limit,
        refusal: &refusal,
    }
    .deserialize(&mut deserializer)
    .and_then(|objects| deserializer.end().map(|()| objects));
    match parsed {
        Ok(Some(objects)) => Ok(objects),
        Ok(None) => Err(BatchRefusal::NotABatch),
        Err(err) => Err(match refusal.take() {
            Some(refusal) => refusal,
            None if err.is_data() => BatchRefusal::NotABatch,
            None => BatchRefusal::NotJson(err.to_string()),
        }),
    }
}

/// The top level: an object whose `objects` member is read by [`ObjectsSeed`].
struct BodySeed<'a> {
    limit: usize,
    refusal: &'a Cell<Option<BatchRefusal>>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Option<Vec<Value>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Option<Vec<Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut objects = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "objects" {
                // A repeated member replaces the earlier one, as a JSON map would.
                objects = Some(map.next_value_seed(ObjectsSeed {
                    limit: self.limit,
                    refusal: self.refusal,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(objects)
    }
}

/// The `objects` array, read one element at a time.
struct ObjectsSeed<'a> {
    limit: usize,
    refusal: &'a Cell<Option<BatchRefusal>>,
}

impl<'de> DeserializeSeed<'de> for ObjectsSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ObjectsSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The hint is the client's claim: never reserve more than the cap for it.
        let mut objects = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.limit));
        while let Some(element) = seq.next_element::<Value>()? {
            let index = objects.len();
            if index == self.limit {
                return Err(self.refuse(BatchRefusal::TooMany { limit: self.limit }));
            }
            if !element.is_object() {
                let kind = json_kind(&element);
                return Err(self.refuse(BatchRefusal::NotAnObject { index, kind }));
            }
            objects.push(element);
        }
        Ok(objects)
    }
}

impl ObjectsSeed<'_> {
    fn refuse<E: de::Error>(&self, refusal: BatchRefusal) -> E {
        let message = refusal.to_string();
        self.refusal.set(Some(refusal));
        E::custom(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_objects_and_skips_other_members() {
        let body = br#"{"fields": ["ALL"], "objects": [{"class": "A"}, {}], "x": {"y": [1]}}"#;
        assert_eq!(parse(body, 10), Ok(vec![json!({"class": "A"}), json!({})]));
        assert_eq!(parse(br#"{"objects": []}"#, 1), Ok(vec![]));
    }

    #[test]
    fn refuses_more_objects_than_the_cap_naming_it() {
        assert_eq!(
            parse(br#"{"objects": [{}, {}]}"#, 2).map(|o| o.len()),
            Ok(2)
        );
        let refusal = parse(br#"{"objects": [{}, {}, {}]}"#, 2).unwrap_err();
        assert_eq!(refusal, BatchRefusal::TooMany { limit: 2 });
        assert_eq!(
            refusal.to_string(),
            "a batch may hold at most 2 objects (PORTCULLIS_MAX_BATCH_OBJECTS); send them in smaller batches"
        );
    }

    #[test]
    fn refuses_the_whole_batch_at_the_first_non_object() {
        for (body, index, kind) in [
            (&br#"{"objects": [{}, "x", 0]}"#[..], 1, "a string"),
            (br#"{"objects": [0]}"#, 0, "a number"),
            (br#"{"objects": [{}, {}, [], {}]}"#, 2, "an array"),
            (br#"{"objects": [null]}"#, 0, "null"),
        ] {
            assert_eq!(
                parse(body, 10),
                Err(BatchRefusal::NotAnObject { index, kind })
            );
        }
    }

    #[test]
    fn a_body_that_is_not_a_batch_or_not_json_is_told_apart() {
        for body in [
            &br#"{"items": []}"#[..],
            br#"{"objects": 5}"#,
            br#"{"objects": {}}"#,
            br#"[]"#,
            br#""objects""#,
        ] {
            assert_eq!(parse(body, 10), Err(BatchRefusal::NotABatch), "{body:?}");
        }
        for body in [&b"{"[..], b"{\"objects\": [}", b"", b"{} x"] {
            assert!(
                matches!(parse(body, 10), Err(BatchRefusal::NotJson(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_in_a_skipped_member_is_not_json() {
        // Found by the store_json fuzz target: before, this batch was accepted.
        let body = b"{\"fields\": [\"LA\xb5\"], \"objects\": [{\"class\": \"A\"}, {}]}";
        assert_eq!(
            parse(body, 10),
            Err(BatchRefusal::NotJson(
                "the body is not UTF-8 (at byte 15)".to_owned()
            ))
        );
    }

    #[test]
    fn the_last_objects_member_wins() {
        let body = br#"{"objects": [{"a": 1}], "objects": [{"b": 2}]}"#;
        assert_eq!(parse(body, 10), Ok(vec![json!({"b": 2})]));
    }
}
