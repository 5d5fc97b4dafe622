//! Class definitions: checking and normalizing what clients send (names, properties, data
//! types, the vectorizer), keeping every other field as sent, and storing them.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use sqlx::Row;

use super::db::Store;
use super::validation::PropertyType;
use super::{now_ms, StoreError};

/// Property names Weaviate reserves.
const RESERVED_PROPERTY_NAMES: &[&str] = &["_additional", "_id", "id"];

/// A class as stored: the definition as the client sent it, with the class name capitalized,
/// property names starting lower-case and defaults filled in, plus the checked types.
#[derive(Clone, Debug)]
pub struct ClassDef {
    name: String,
    definition: Map<String, Value>,
    types: HashMap<String, PropertyType>,
}

impl ClassDef {
    /// Checks and normalizes a class definition from a request (`POST /v1/schema`,
    /// `PUT /v1/schema/{class}`).
    pub fn from_request(body: Value) -> Result<ClassDef, StoreError> {
        let Value::Object(mut definition) = body else {
            return Err(invalid("the class definition must be a JSON object"));
        };
        let name = match definition.get("class") {
            Some(Value::String(name)) if !name.is_empty() => class_name(name),
            _ => {
                return Err(invalid(
                    "the class definition needs a non-empty 'class' name",
                ))
            }
        };
        if !is_valid_class_name(&name) {
            return Err(invalid(format!(
                "'{name}' is not a valid class name: class names start with a letter and contain only letters, digits and '_' (at most 255)"
            )));
        }
        definition.insert("class".into(), Value::String(name.clone()));

        let properties = match definition.remove("properties") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(invalid("'properties' must be an array")),
        };
        let mut normalized = Vec::with_capacity(properties.len());
        let mut seen: Vec<String> = Vec::new();
        for property in properties {
            let property = normalize_property(property)?;
            let prop_name = property_name(&property).to_owned();
            if seen.iter().any(|s| s.eq_ignore_ascii_case(&prop_name)) {
                return Err(invalid(format!(
                    "class '{name}': conflict for property '{prop_name}': already in use or provided multiple times"
                )));
            }
            seen.push(prop_name);
            normalized.push(property);
        }
        definition.insert("properties".into(), Value::Array(normalized));

        check_vectorizers(&mut definition)?;
        let multi_tenant = definition
            .get("multiTenancyConfig")
            .and_then(|c| c.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if multi_tenant {
            return Err(invalid(
                "multi-tenancy is not supported by the embedded document store",
            ));
        }
        Ok(Self::with_types(name, definition))
    }

    /// A definition read back from the store.
    fn from_stored(name: &str, text: &str) -> Result<ClassDef, StoreError> {
        match serde_json::from_str(text) {
            Ok(Value::Object(definition)) => Ok(Self::with_types(name.to_owned(), definition)),
            _ => Err(StoreError::Corrupt(format!(
                "the definition of class {name} is not a JSON object"
            ))),
        }
    }

    fn with_types(name: String, definition: Map<String, Value>) -> ClassDef {
        let types = properties_of(&definition)
            .iter()
            .map(|p| {
                (
                    property_name(p).to_owned(),
                    PropertyType::from_data_type(&data_type(p)),
                )
            })
            .collect();
        ClassDef {
            name,
            definition,
            types,
        }
    }

    /// The class name (capitalized).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checked type of a property, `None` when the class has no such property.
    pub fn property_type(&self, name: &str) -> Option<&PropertyType> {
        self.types.get(name)
    }

    /// The property names, in the order the class declares them.
    pub fn property_names(&self) -> Vec<String> {
        properties_of(&self.definition)
            .iter()
            .map(|p| property_name(p).to_owned())
            .collect()
    }

    /// The `tokenization` a property declares, `None` when it declares none or the class has
    /// no such property. Filters on text compare tokens made this way.
    pub fn property_tokenization(&self, name: &str) -> Option<&str> {
        properties_of(&self.definition)
            .iter()
            .find(|p| property_name(p) == name)
            .and_then(|p| p.get("tokenization"))
            .and_then(Value::as_str)
    }

    /// The definition as served by `GET /v1/schema/{class}`.
    pub fn to_json(&self) -> Value {
        Value::Object(self.definition.clone())
    }

    /// Property name -> data type, to tell whether an update changes properties.
    fn property_signature(&self) -> BTreeMap<String, Vec<String>> {
        properties_of(&self.definition)
            .iter()
            .map(|p| (property_name(p).to_owned(), data_type(p)))
            .collect()
    }
}

/// Capitalizes the first letter, as Weaviate does with class names everywhere.
pub fn class_name(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn lower_first(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `/^[A-Z][_0-9A-Za-z]{0,254}$/`.
fn is_valid_class_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_uppercase()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `/^[_A-Za-z][_0-9A-Za-z]{0,230}$/`, GraphQL's rule, as Weaviate's.
fn is_valid_property_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 231
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Checks one property definition; keeps its extra fields (`tokenization`, index flags,
/// `nestedProperties`, ...).
fn normalize_property(property: Value) -> Result<Value, StoreError> {
    let Value::Object(mut property) = property else {
        return Err(invalid("each property must be a JSON object"));
    };
    let name = match property.get("name") {
        Some(Value::String(name)) if !name.is_empty() => lower_first(name),
        _ => return Err(invalid("each property needs a non-empty 'name'")),
    };
    if !is_valid_property_name(&name) {
        return Err(invalid(format!(
            "'{name}' is not a valid property name: property names start with a letter or '_' and contain only letters, digits and '_' (at most 231)"
        )));
    }
    if RESERVED_PROPERTY_NAMES.contains(&name.as_str()) {
        return Err(invalid(format!("'{name}' is a reserved property name")));
    }
    let types_ok = match property.get("dataType") {
        Some(Value::Array(types)) => {
            !types.is_empty()
                && types
                    .iter()
                    .all(|t| t.as_str().is_some_and(|t| !t.is_empty()))
        }
        _ => false,
    };
    if !types_ok {
        return Err(invalid(format!(
            "property '{name}': 'dataType' must be a non-empty list of type names, such as [\"text\"]"
        )));
    }
    property.insert("name".into(), Value::String(name));
    Ok(Value::Object(property))
}

/// Only the `none` vectorizer exists here: vectors are whatever the client sends.
fn check_vectorizers(definition: &mut Map<String, Value>) -> Result<(), StoreError> {
    let no_module = |name: &str| {
        invalid(format!(
            "vectorizer: no module with name \"{name}\" present: the embedded document store has no modules, use \"none\" and send vectors"
        ))
    };
    match definition.get("vectorizer") {
        None | Some(Value::Null) => {
            if !definition.contains_key("vectorConfig") {
                definition.insert("vectorizer".into(), Value::String("none".into()));
            }
        }
        Some(Value::String(v)) if v == "none" => {}
        Some(Value::String(v)) => return Err(no_module(v)),
        Some(_) => return Err(invalid("'vectorizer' must be a string")),
    }
    match definition.get("vectorConfig") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(named)) => {
            for (vector_name, config) in named {
                match config.get("vectorizer") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(modules)) => {
                        if let Some(other) = modules.keys().find(|k| *k != "none") {
                            return Err(no_module(other));
                        }
                    }
                    Some(_) => {
                        return Err(invalid(format!(
                            "vectorConfig '{vector_name}': 'vectorizer' must be an object such as {{\"none\": {{}}}}"
                        )))
                    }
                }
            }
            Ok(())
        }
        Some(_) => Err(invalid("'vectorConfig' must be an object")),
    }
}

fn properties_of(definition: &Map<String, Value>) -> &[Value] {
    definition
        .get("properties")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn property_name(property: &Value) -> &str {
    property.get("name").and_then(Value::as_str).unwrap_or("")
}

fn data_type(property: &Value) -> Vec<String> {
    property
        .get("dataType")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

pub(super) fn class_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("class '{name}' not found in the schema"))
}

impl Store {
    /// Every class, ordered by name.
    pub async fn list_classes(&self) -> Result<Vec<Value>, StoreError> {
        let rows = sqlx::query("SELECT name, definition FROM classes ORDER BY name")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get("name")?;
                let text: String = row.try_get("definition")?;
                Ok(ClassDef::from_stored(&name, &text)?.to_json())
            })
            .collect()
    }

    /// One class, `None` when it does not exist.
    pub async fn get_class(&self, name: &str) -> Result<Option<ClassDef>, StoreError> {
        load_class(self.reader(), name).await
    }

    /// Adds a class. A class of the same name is a 422, as in Weaviate.
    pub async fn create_class(&self, class: ClassDef) -> Result<ClassDef, StoreError> {
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO classes (name, definition, created_ms) VALUES (?, ?, ?)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(class.name())
        .bind(class.to_json().to_string())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(invalid(format!(
                "class name \"{}\" already exists",
                class.name()
            )));
        }
        tx.commit().await?;
        Ok(class)
    }

    /// Replaces a class's definition. The name and the properties (names and data types)
    /// cannot change this way, as in Weaviate; everything else can.
    pub async fn update_class(&self, name: &str, class: ClassDef) -> Result<ClassDef, StoreError> {
        if class.name() != name {
            return Err(invalid(format!(
                "class name is immutable: attempted change from \"{name}\" to \"{}\"",
                class.name()
            )));
        }
        let mut tx = self.write().await?;
        let Some(current) = load_class(&mut *tx, name).await? else {
            return Err(class_not_found(name));
        };
        if current.property_signature() != class.property_signature() {
            return Err(invalid(
                "properties cannot be updated through updating the class. Use the add property feature (e.g. \"POST /v1/schema/{className}/properties\") to add additional properties",
            ));
        }
        sqlx::query("UPDATE classes SET definition = ? WHERE name = ?")
            .bind(class.to_json().to_string())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(class)
    }

    /// Adds one property to a class and returns it as stored.
    pub async fn add_property(&self, name: &str, property: Value) -> Result<Value, StoreError> {
        let property = normalize_property(property)?;
        let mut tx = self.write().await?;
        let Some(current) = load_class(&mut *tx, name).await? else {
            return Err(class_not_found(name));
        };
        let prop_name = property_name(&property).to_owned();
        if properties_of(&current.definition)
            .iter()
            .any(|p| property_name(p).eq_ignore_ascii_case(&prop_name))
        {
            return Err(invalid(format!(
                "class '{name}': conflict for property '{prop_name}': already in use or provided multiple times"
            )));
        }
        let mut definition = current.definition;
        let mut properties = properties_of(&definition).to_vec();
        properties.push(property.clone());
        definition.insert("properties".into(), Value::Array(properties));
        sqlx::query("UPDATE classes SET definition = ? WHERE name = ?")
            .bind(Value::Object(definition).to_string())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(property)
    }

    /// Deletes a class and all its objects. Deleting a class that does not exist succeeds,
    /// as in Weaviate (clients delete before they create).
    pub async fn delete_class(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM classes WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Reads one class through any executor (the reader pool or a write transaction).
pub(crate) async fn load_class<'e, E>(
    executor: E,
    name: &str,
) -> Result<Option<ClassDef>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row = sqlx::query("SELECT definition FROM classes WHERE name = ?")
        .bind(name)
        .fetch_optional(executor)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let text: String = row.try_get("definition")?;
            ClassDef::from_stored(name, &text).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(err: StoreError) -> String {
        match err {
            StoreError::Invalid(m) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn normalizes_names_and_keeps_extra_fields() {
        let class = ClassDef::from_request(json!({
            "class": "article",
            "description": "news",
            "properties": [
                {"name": "Title", "dataType": ["text"], "tokenization": "word", "indexFilterable": true},
                {"name": "tags", "dataType": ["text[]"]}
            ],
            "vectorConfig": {"default": {"vectorizer": {"none": {}}, "vectorIndexType": "hnsw"}},
            "invertedIndexConfig": {"bm25": {"b": 0.75, "k1": 1.2}}
        }))
        .unwrap();
        assert_eq!(class.name(), "Article");
        assert_eq!(
            class.to_json(),
            json!({
                "class": "Article",
                "description": "news",
                "properties": [
                    {"name": "title", "dataType": ["text"], "tokenization": "word", "indexFilterable": true},
                    {"name": "tags", "dataType": ["text[]"]}
                ],
                "vectorConfig": {"default": {"vectorizer": {"none": {}}, "vectorIndexType": "hnsw"}},
                "invertedIndexConfig": {"bm25": {"b": 0.75, "k1": 1.2}}
            })
        );
        assert!(class.property_type("title").is_some());
        assert!(class.property_type("Title").is_none());
    }

    #[test]
    fn fills_in_the_none_vectorizer_and_empty_properties() {
        let class = ClassDef::from_request(json!({"class": "Thing"})).unwrap();
        assert_eq!(
            class.to_json(),
            json!({"class": "Thing", "properties": [], "vectorizer": "none"})
        );
    }

    #[test]
    fn refuses_bad_definitions() {
        let cases = [
            (json!([]), "must be a JSON object"),
            (json!({}), "non-empty 'class'"),
            (json!({"class": ""}), "non-empty 'class'"),
            (
                json!({"class": "Bad-Name"}),
                "'Bad-Name' is not a valid class name",
            ),
            (json!({"class": "1abc"}), "'1abc' is not a valid class name"),
            (
                json!({"class": "A", "properties": {}}),
                "'properties' must be an array",
            ),
            (
                json!({"class": "A", "properties": [1]}),
                "must be a JSON object",
            ),
            (
                json!({"class": "A", "properties": [{"dataType": ["text"]}]}),
                "non-empty 'name'",
            ),
            (
                json!({"class": "A", "properties": [{"name": "a b", "dataType": ["text"]}]}),
                "'a b' is not a valid property name",
            ),
            (
                json!({"class": "A", "properties": [{"name": "id", "dataType": ["text"]}]}),
                "'id' is a reserved property name",
            ),
            (
                json!({"class": "A", "properties": [{"name": "p"}]}),
                "property 'p': 'dataType' must be a non-empty list",
            ),
            (
                json!({"class": "A", "properties": [{"name": "p", "dataType": []}]}),
                "property 'p': 'dataType' must be a non-empty list",
            ),
            (
                json!({"class": "A", "properties": [{"name": "p", "dataType": "text"}]}),
                "property 'p': 'dataType' must be a non-empty list",
            ),
            (
                json!({"class": "A", "properties": [
                    {"name": "p", "dataType": ["text"]},
                    {"name": "P", "dataType": ["int"]}
                ]}),
                "conflict for property 'p'",
            ),
            (
                json!({"class": "A", "vectorizer": "text2vec-openai"}),
                "no module with name \"text2vec-openai\"",
            ),
            (
                json!({"class": "A", "vectorConfig": {"v": {"vectorizer": {"text2vec-cohere": {}}}}}),
                "no module with name \"text2vec-cohere\"",
            ),
            (
                json!({"class": "A", "multiTenancyConfig": {"enabled": true}}),
                "multi-tenancy is not supported",
            ),
        ];
        for (body, expected) in cases {
            let shown = body.to_string();
            let got = message(ClassDef::from_request(body).unwrap_err());
            assert!(got.contains(expected), "{shown}: {got}");
        }
    }

    #[test]
    fn property_signature_ignores_fields_other_than_name_and_type() {
        let a = ClassDef::from_request(json!({"class": "A", "properties": [
            {"name": "p", "dataType": ["text"], "description": "one"}
        ]}))
        .unwrap();
        let b = ClassDef::from_request(json!({"class": "A", "properties": [
            {"name": "p", "dataType": ["text"], "description": "two"}
        ]}))
        .unwrap();
        let c = ClassDef::from_request(json!({"class": "A", "properties": [
            {"name": "p", "dataType": ["int"]}
        ]}))
        .unwrap();
        assert_eq!(a.property_signature(), b.property_signature());
        assert_ne!(a.property_signature(), c.property_signature());
    }
}
