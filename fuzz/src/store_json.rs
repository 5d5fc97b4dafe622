//! The embedded store's JSON validation (`server/src/store/`): the batch parser
//! (`batch.rs`), property values against their types (`validation.rs`), and class definitions
//! (`schema.rs`).
//!
//! Input: a selector byte (mode in its low two bits; the rest a batch cap or a data type),
//! then a JSON body.
//!
//! What must hold:
//! - batch: with one `objects` member, the parser agrees with a plain model over
//!   `serde_json::Value` (not a batch, the first non-object element and its index and kind,
//!   past the cap, or every element in order); with several, an accepted batch is the last
//!   member's; a body that is not JSON is never accepted, and one that is JSON is never called
//!   "not JSON";
//! - a property value: accepted exactly when its JSON type fits the kind; a refusal names the
//!   property and the class and stays short whatever the value's size; an accepted date has
//!   RFC 3339's shape;
//! - a class definition: an accepted one has a valid name, and its normalized form (what
//!   `GET /v1/schema/{class}` serves) is accepted again unchanged.

use std::fmt;

use portcullis_server::store::batch::{self, BatchRefusal};
use portcullis_server::store::schema::ClassDef;
use portcullis_server::store::validation::{json_kind, Kind, PropertyType};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The data types a selector picks from.
pub const DATA_TYPES: [&str; 16] = [
    "text",
    "int",
    "number",
    "boolean",
    "date",
    "uuid",
    "object",
    "string",
    "text[]",
    "int[]",
    "number[]",
    "boolean[]",
    "date[]",
    "uuid[]",
    "object[]",
    "geoCoordinates",
];

/// How many top-level `objects` members a JSON body has (`None` when it is not an object).
struct ObjectsMembers;

impl<'de> Visitor<'de> for ObjectsMembers {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<usize>, A::Error> {
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            count += usize::from(key == "objects");
            map.next_value::<IgnoredAny>()?;
        }
        Ok(Some(count))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Option<usize>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<usize>, E> {
        Ok(None)
    }
}

fn objects_members(body: &[u8]) -> Option<usize> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    deserializer.deserialize_any(ObjectsMembers).ok().flatten()
}

/// The batch rules, over a parsed body with exactly one `objects` member.
fn batch_model(body: &Value, limit: usize) -> Result<Vec<Value>, BatchRefusal> {
    let Some(Value::Array(items)) = body.get("objects") else {
        return Err(BatchRefusal::NotABatch);
    };
    for (index, item) in items.iter().enumerate() {
        if index == limit {
            return Err(BatchRefusal::TooMany { limit });
        }
        if !item.is_object() {
            let kind = json_kind(item);
            return Err(BatchRefusal::NotAnObject { index, kind });
        }
    }
    Ok(items.clone())
}

fn check_batch(body: &[u8], limit: usize) {
    let got = batch::parse(body, limit);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        assert!(got.is_err(), "accepted a body that is not JSON");
        return;
    };
    assert!(
        !matches!(got, Err(BatchRefusal::NotJson(_))),
        "called JSON not JSON: {got:?}"
    );
    if let Ok(objects) = &got {
        assert!(objects.len() <= limit);
        assert_eq!(
            Some(objects),
            value.get("objects").and_then(Value::as_array)
        );
    }
    match objects_members(body) {
        None | Some(0) => assert_eq!(got, Err(BatchRefusal::NotABatch)),
        Some(1) => assert_eq!(got, batch_model(&value, limit), "parser and model disagree"),
        Some(_) => {}
    }
}

/// RFC 3339's shape: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)`.
fn rfc3339_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    let is = |i: usize, c: u8| b.get(i) == Some(&c);
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let head = digits(0..4)
        && is(4, b'-')
        && digits(5..7)
        && is(7, b'-')
        && digits(8..10)
        && (is(10, b'T') || is(10, b't'))
        && digits(11..13)
        && is(13, b':')
        && digits(14..16)
        && is(16, b':')
        && digits(17..19);
    if !head {
        return false;
    }
    let mut at = 19;
    if is(at, b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return false;
        }
    }
    match b.get(at) {
        Some(b'Z' | b'z') => at + 1 == b.len(),
        Some(b'+' | b'-') => {
            at + 6 == b.len()
                && digits(at + 1..at + 3)
                && is(at + 3, b':')
                && digits(at + 4..at + 6)
        }
        _ => false,
    }
}

fn fits(kind: Kind, value: &Value) -> bool {
    match kind {
        Kind::Text => value.is_string(),
        Kind::Int => value.is_i64(),
        Kind::Number => value.is_number(),
        Kind::Boolean => value.is_boolean(),
        Kind::Date => value.as_str().is_some_and(rfc3339_shaped),
        Kind::Uuid => value.is_string(),
        Kind::Object => value.is_object(),
        Kind::Unchecked => true,
    }
}

fn check_property(selector: u8, value: &Value) {
    let data_type = DATA_TYPES[usize::from(selector >> 2) % DATA_TYPES.len()];
    let ty = PropertyType::from_data_type(&[data_type.to_owned()]);
    let (class, property) = ("FuzzClass", "fuzzProperty");
    let result = ty.check(class, property, value);
    let elements: Vec<&Value> = match (ty.array, value) {
        (true, Value::Array(items)) => items.iter().collect(),
        (true, _) => {
            assert!(
                result.is_err() || ty.kind == Kind::Unchecked,
                "a scalar passed as an array"
            );
            Vec::new()
        }
        (false, one) => vec![one],
    };
    match &result {
        Ok(()) => {
            for element in elements {
                assert!(fits(ty.kind, element), "{data_type} accepted {element}");
            }
        }
        Err(message) => {
            assert!(ty.kind != Kind::Unchecked);
            assert!(message.contains(class) && message.contains(property));
            // 64 characters of the value at most, each escaped in at most 10 bytes.
            assert!(
                message.len() <= 64 * 10 + 300,
                "a message of {} bytes",
                message.len()
            );
            // Strictness of the kinds that need no parsing: a refusal means a misfit.
            if !matches!(ty.kind, Kind::Date | Kind::Uuid) {
                assert!(elements.iter().any(|e| !fits(ty.kind, e)) || elements.is_empty());
            }
        }
    }
}

fn check_class(body: Value) {
    let Ok(class) = ClassDef::from_request(body) else {
        return;
    };
    let name = class.name();
    assert!(name.len() <= 255 && name.as_bytes()[0].is_ascii_uppercase());
    assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    let served = class.to_json();
    let again = ClassDef::from_request(served.clone())
        .unwrap_or_else(|e| panic!("the served definition is refused: {e}"));
    assert_eq!(again.name(), name);
    assert_eq!(
        again.to_json(),
        served,
        "normalizing twice changed the definition"
    );
}

/// The target.
pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector & 3 {
        0 | 1 => check_batch(body, usize::from(selector >> 2) % 8),
        2 => {
            if let Ok(value) = serde_json::from_slice::<Value>(body) {
                check_property(selector, &value);
            }
        }
        _ => {
            if let Ok(value) = serde_json::from_slice::<Value>(body) {
                check_class(value);
            }
        }
    }
}
