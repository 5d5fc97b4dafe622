//! Property values checked against a class's data types, with messages that name the property.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The scalar kinds the store checks. Anything else (cross-references, `geoCoordinates`,
/// `phoneNumber`, `blob`, types of later Weaviate versions) is kept and not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `text` (and the deprecated `string`): a JSON string.
    Text,
    /// `int`: a JSON number without a fraction that fits in 64 bits.
    Int,
    /// `number`: any JSON number.
    Number,
    /// `boolean`: `true` or `false`.
    Boolean,
    /// `date`: an RFC 3339 date-time string.
    Date,
    /// `uuid`: a UUID string.
    Uuid,
    /// `object`: any JSON object.
    Object,
    /// Not checked.
    Unchecked,
}

/// A property's checked type: a kind, alone or as an array (`text[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PropertyType {
    /// The element kind.
    pub kind: Kind,
    /// Whether the value is an array of `kind`.
    pub array: bool,
}

impl PropertyType {
    /// The type of a property from its `dataType` list. A list of more than one entry is a
    /// cross-reference to several classes, and is not checked.
    pub fn from_data_type(data_type: &[String]) -> PropertyType {
        let unchecked = PropertyType {
            kind: Kind::Unchecked,
            array: false,
        };
        let [name] = data_type else {
            return unchecked;
        };
        let (base, array) = match name.strip_suffix("[]") {
            Some(base) => (base, true),
            None => (name.as_str(), false),
        };
        let kind = match base {
            "text" | "string" => Kind::Text,
            "int" => Kind::Int,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "date" => Kind::Date,
            "uuid" => Kind::Uuid,
            "object" => Kind::Object,
            _ => return unchecked,
        };
        PropertyType { kind, array }
    }

    /// The type's name in messages (`text`, `int array`, ...).
    pub(crate) fn describe(&self) -> &'static str {
        match (self.kind, self.array) {
            (Kind::Text, false) => "text",
            (Kind::Text, true) => "text array",
            (Kind::Int, false) => "int",
            (Kind::Int, true) => "int array",
            (Kind::Number, false) => "number",
            (Kind::Number, true) => "number array",
            (Kind::Boolean, false) => "boolean",
            (Kind::Boolean, true) => "boolean array",
            (Kind::Date, false) => "date",
            (Kind::Date, true) => "date array",
            (Kind::Uuid, false) => "uuid",
            (Kind::Uuid, true) => "uuid array",
            (Kind::Object, false) => "object",
            (Kind::Object, true) => "object array",
            (Kind::Unchecked, _) => "unchecked",
        }
    }

    /// Checks one value. The error names the property, its type and the class.
    pub fn check(&self, class: &str, property: &str, value: &Value) -> Result<(), String> {
        let problem = if self.kind == Kind::Unchecked {
            None
        } else if self.array {
            match value {
                Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                    check_scalar(self.kind, item).map(|p| format!("element {i}: {p}"))
                }),
                other => Some(format!("expected an array, got {}", json_kind(other))),
            }
        } else {
            check_scalar(self.kind, value)
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(format!(
                "invalid {} property '{property}' on class '{class}': {problem}",
                self.describe()
            )),
        }
    }
}

/// Checks every property of an object against the class's types, in place: `null` values are
/// dropped (Weaviate stores no nulls), and a property the class does not declare is refused
/// (there is no auto-schema).
pub fn check_properties<'a>(
    class: &str,
    types: impl Fn(&str) -> Option<&'a PropertyType>,
    properties: &mut Map<String, Value>,
) -> Result<(), String> {
    properties.retain(|_, v| !v.is_null());
    for (name, value) in properties.iter() {
        let Some(ty) = types(name) else {
            return Err(format!(
                "invalid object: no such prop with name '{name}' found in class '{class}' in the schema. Check your schema files for which properties in this class are available"
            ));
        };
        ty.check(class, name, value)?;
    }
    Ok(())
}

fn check_scalar(kind: Kind, value: &Value) -> Option<String> {
    let ok = match kind {
        Kind::Text => value.is_string(),
        Kind::Int => value.is_i64(),
        Kind::Number => value.is_number(),
        Kind::Boolean => value.is_boolean(),
        Kind::Date => value.as_str().is_some_and(is_rfc3339),
        Kind::Uuid => value
            .as_str()
            .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        Kind::Object => value.is_object(),
        Kind::Unchecked => true,
    };
    if ok {
        return None;
    }
    let expected = match kind {
        Kind::Text => "a string",
        Kind::Int => "an integer",
        Kind::Number => "a number",
        Kind::Boolean => "a boolean",
        Kind::Date => "an RFC 3339 date-time string",
        Kind::Uuid => "a UUID string",
        Kind::Object => "a JSON object",
        Kind::Unchecked => "anything",
    };
    Some(format!("expected {expected}, got {}", shown(value)))
}

/// The JSON type of a value, for messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value for a message: numbers and short strings verbatim, the rest by kind.
fn shown(value: &Value) -> String {
    const MAX: usize = 64;
    match value {
        Value::Number(n) => format!("{} {n}", json_kind(value)),
        Value::String(s) if s.chars().count() <= MAX => format!("the string {s:?}"),
        Value::String(s) => {
            let head: String = s.chars().take(MAX).collect();
            format!("the string {head:?}...")
        }
        other => json_kind(other).to_owned(),
    }
}

/// Whether `s` is an RFC 3339 date-time (`2024-02-29T13:45:00Z`, optional fraction, `Z` or a
/// `+hh:mm`/`-hh:mm` offset), the format Weaviate's `date` accepts. Go's parser is stricter
/// than the RFC in two ways the `time` crate is not, checked first: `T` (or `t`) between date
/// and time, and seconds stop at 59 (no leap second).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.get(10), Some(b'T' | b't'))
        && b.get(17..19) != Some(b"60".as_slice())
        && OffsetDateTime::parse(s, &Rfc3339).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ty(data_type: &str) -> PropertyType {
        PropertyType::from_data_type(&[data_type.to_owned()])
    }

    #[test]
    fn accepts_and_rejects_values_by_type() {
        let cases: &[(&str, Value, bool)] = &[
            ("text", json!("hello"), true),
            ("text", json!(""), true),
            ("text", json!(3), false),
            ("string", json!("legacy"), true),
            ("text[]", json!(["a", "b"]), true),
            ("text[]", json!([]), true),
            ("text[]", json!("a"), false),
            ("text[]", json!(["a", 1]), false),
            ("int", json!(42), true),
            ("int", json!(-7), true),
            ("int", json!(i64::MAX), true),
            ("int", json!(u64::MAX), false),
            ("int", json!(1.5), false),
            ("int", json!(2.0), false),
            ("int", json!("1"), false),
            ("int[]", json!([1, 2, 3]), true),
            ("int[]", json!([1, 2.5]), false),
            ("number", json!(1.5), true),
            ("number", json!(3), true),
            ("number", json!("1.5"), false),
            ("number[]", json!([1, 2.5]), true),
            ("number[]", json!([true]), false),
            ("boolean", json!(true), true),
            ("boolean", json!("true"), false),
            ("boolean", json!(0), false),
            ("boolean[]", json!([true, false]), true),
            ("boolean[]", json!([true, null]), false),
            ("date", json!("2024-02-29T13:45:00Z"), true),
            ("date", json!("2024-02-29T13:45:00.123456+02:00"), true),
            ("date", json!("2024-02-29"), false),
            ("date", json!(1_700_000_000), false),
            ("date[]", json!(["2024-01-01T00:00:00Z"]), true),
            ("date[]", json!(["2024-01-01T00:00:00Z", "soon"]), false),
            ("uuid", json!("5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a"), true),
            ("uuid", json!("not-a-uuid"), false),
            ("uuid", json!(7), false),
            (
                "uuid[]",
                json!(["5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a"]),
                true,
            ),
            ("uuid[]", json!(["5f2b1c2e"]), false),
            ("object", json!({"a": {"b": 1}}), true),
            ("object", json!([{"a": 1}]), false),
            ("object", json!("{}"), false),
            ("object[]", json!([{"a": 1}, {}]), true),
            ("object[]", json!([{"a": 1}, 2]), false),
            ("geoCoordinates", json!({"latitude": 1.0}), true),
            (
                "Article",
                json!([{"beacon": "weaviate://localhost/x"}]),
                true,
            ),
            ("blob", json!(12), true),
        ];
        for (data_type, value, ok) in cases {
            let result = ty(data_type).check("C", "p", value);
            assert_eq!(result.is_ok(), *ok, "{data_type} {value}: {result:?}");
        }
    }

    #[test]
    fn messages_name_the_property_type_and_class() {
        let cases: &[(&str, Value, &str)] = &[
            (
                "int",
                json!(1.5),
                "invalid int property 'count' on class 'Article': expected an integer, got a number 1.5",
            ),
            (
                "text",
                json!(true),
                "invalid text property 'count' on class 'Article': expected a string, got a boolean",
            ),
            (
                "text[]",
                json!(["a", 2]),
                "invalid text array property 'count' on class 'Article': element 1: expected a string, got a number 2",
            ),
            (
                "date",
                json!("tomorrow"),
                "invalid date property 'count' on class 'Article': expected an RFC 3339 date-time string, got the string \"tomorrow\"",
            ),
            (
                "boolean[]",
                json!({"a": 1}),
                "invalid boolean array property 'count' on class 'Article': expected an array, got an object",
            ),
        ];
        for (data_type, value, message) in cases {
            assert_eq!(
                ty(data_type).check("Article", "count", value),
                Err((*message).to_owned()),
                "{data_type}"
            );
        }
    }

    #[test]
    fn long_strings_are_cut_in_messages() {
        let long = "x".repeat(1000);
        let err = ty("int").check("C", "p", &json!(long)).unwrap_err();
        assert!(err.len() < 200, "{err}");
        assert!(err.ends_with("\"..."), "{err}");
    }

    #[test]
    fn multi_class_references_are_not_checked() {
        let t = PropertyType::from_data_type(&["A".to_owned(), "B".to_owned()]);
        assert_eq!(t.kind, Kind::Unchecked);
        assert_eq!(t.check("C", "p", &json!(1)), Ok(()));
    }

    #[test]
    fn rfc3339_table() {
        let cases = [
            ("2024-02-29T13:45:00Z", true),
            ("2023-02-28T00:00:00z", true),
            ("2024-12-31t23:59:59.999999999-11:30", true),
            ("1970-01-01T00:00:00+00:00", true),
            ("2000-02-29T00:00:00Z", true),
            ("1900-02-29T00:00:00Z", false),
            ("2023-02-29T00:00:00Z", false),
            ("2024-04-31T00:00:00Z", false),
            ("2024-13-01T00:00:00Z", false),
            ("2024-00-01T00:00:00Z", false),
            ("2024-01-00T00:00:00Z", false),
            ("2024-01-01T24:00:00Z", false),
            ("2024-01-01T00:60:00Z", false),
            ("2024-01-01T00:00:60Z", false),
            ("2016-12-31T23:59:60Z", false),
            ("2024-01-01T00:00:61Z", false),
            ("2024-01-01x00:00:00Z", false),
            ("0000-01-01T00:00:00Z", true),
            ("2024-01-01 00:00:00Z", false),
            ("2024-01-01T00:00:00", false),
            ("2024-01-01T00:00:00.Z", false),
            ("2024-01-01T00:00:00+0100", false),
            ("2024-01-01T00:00:00+24:00", false),
            ("2024-01-01T00:00:00+01:60", false),
            ("2024-01-01T00:00:00Zjunk", false),
            ("24-01-01T00:00:00Z", false),
            ("2024-1-01T00:00:00Z", false),
            ("+024-01-01T00:00:00Z", false),
            ("2024-01-01T00:00:00+01:00 ", false),
            ("", false),
        ];
        for (s, ok) in cases {
            assert_eq!(is_rfc3339(s), ok, "{s}");
        }
    }

    #[test]
    fn seconds_stop_at_59_as_in_weaviate() {
        assert!(is_rfc3339("2016-12-31T23:59:59Z"));
        // RFC 3339 allows this leap second and the `time` crate parses it; Go's parser, and
        // so Weaviate, refuses it.
        assert!(!is_rfc3339("2016-12-31T23:59:60Z"));
        assert!(!is_rfc3339("2024-01-01T00:00:60Z"));
    }

    #[test]
    fn check_properties_drops_nulls_and_refuses_unknown_names() {
        let text = ty("text");
        let types = |name: &str| (name == "title").then_some(&text);
        let mut props = json!({"title": "x", "gone": null})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(check_properties("Article", types, &mut props), Ok(()));
        assert_eq!(Value::Object(props), json!({"title": "x"}));

        let mut props = json!({"title": "x", "extra": 1})
            .as_object()
            .cloned()
            .unwrap();
        let err = check_properties("Article", types, &mut props).unwrap_err();
        assert!(err.contains("no such prop with name 'extra'"), "{err}");
        assert!(err.contains("class 'Article'"), "{err}");
    }
}
