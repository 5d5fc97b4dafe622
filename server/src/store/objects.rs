//! Objects: what a request may carry, what is stored, and the reads and writes (single,
//! paged, batched) against the class's property types.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

use super::db::Store;
use super::schema::{class_name, class_not_found, load_class, ClassDef};
use super::validation::{check_properties, json_kind};
use super::{now_ms, StoreError};

/// Weaviate's `QUERY_MAXIMUM_RESULTS` default: `offset + limit` may not exceed it.
pub const MAX_RESULTS: i64 = 10_000;

/// Weaviate's `QUERY_DEFAULTS_LIMIT`.
pub const DEFAULT_LIMIT: i64 = 25;

/// An object as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredObject {
    /// The class name.
    pub class: String,
    /// Canonical (lower-case, hyphenated) UUID.
    pub id: String,
    /// The property values, checked against the class.
    pub properties: Map<String, Value>,
    /// The object's vector, as sent.
    pub vector: Option<Value>,
    /// Named vectors, as sent.
    pub vectors: Option<Value>,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// Last update time, ms since the epoch.
    pub updated_ms: i64,
}

impl StoredObject {
    /// A new object created now from checked input: the client's id if it gave one, else a
    /// fresh v4 UUID.
    fn created(
        class: String,
        id: Option<String>,
        properties: Map<String, Value>,
        vector: Option<Value>,
        vectors: Option<Value>,
    ) -> Self {
        let now = now_ms();
        StoredObject {
            class,
            id: id.unwrap_or_else(|| Uuid::new_v4().hyphenated().to_string()),
            properties,
            vector,
            vectors,
            created_ms: now,
            updated_ms: now,
        }
    }

    /// The object in Weaviate's shape. Vectors are included when asked for
    /// (`include=vector`) and in the answers to writes.
    pub fn to_json(&self, with_vector: bool) -> Value {
        let mut out = Map::new();
        out.insert("class".into(), Value::String(self.class.clone()));
        out.insert("id".into(), Value::String(self.id.clone()));
        out.insert("properties".into(), Value::Object(self.properties.clone()));
        out.insert("creationTimeUnix".into(), json!(self.created_ms));
        out.insert("lastUpdateTimeUnix".into(), json!(self.updated_ms));
        if with_vector {
            if let Some(vector) = &self.vector {
                out.insert("vector".into(), vector.clone());
            }
            if let Some(vectors) = &self.vectors {
                out.insert("vectors".into(), vectors.clone());
            }
        }
        Value::Object(out)
    }

    /// Reads an object from a row selected with [`COLUMNS`].
    pub(crate) fn from_row(row: &SqliteRow) -> Result<StoredObject, StoreError> {
        let class: String = row.try_get("class")?;
        let id: String = row.try_get("id")?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("object {class}/{id}: {what}"));
        let properties = match serde_json::from_str(&row.try_get::<String, _>("properties")?) {
            Ok(Value::Object(map)) => map,
            _ => return Err(corrupt("properties are not a JSON object")),
        };
        let parse_optional = |column: &str| -> Result<Option<Value>, StoreError> {
            match row.try_get::<Option<String>, _>(column)? {
                None => Ok(None),
                Some(text) => serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|_| corrupt("a vector is not JSON")),
            }
        };
        let vector = parse_optional("vector")?;
        let vectors = parse_optional("vectors")?;
        Ok(StoredObject {
            properties,
            vector,
            vectors,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
            class,
            id,
        })
    }
}

/// What a create, replace, merge or batch request carries. Fields Weaviate computes
/// (`creationTimeUnix`, `additional`, ...) are ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectInput {
    /// The class, capitalized; `None` when absent.
    pub class: Option<String>,
    /// The canonical id; `None` when absent.
    pub id: Option<String>,
    /// The property values, not yet checked.
    pub properties: Map<String, Value>,
    /// An array of numbers.
    pub vector: Option<Value>,
    /// Named vectors: an object.
    pub vectors: Option<Value>,
}

impl ObjectInput {
    /// Reads an object from a request body. The error is the client's message.
    pub fn from_json(value: &Value) -> Result<ObjectInput, String> {
        let Value::Object(object) = value else {
            return Err(format!(
                "invalid object: expected a JSON object, got {}",
                json_kind(value)
            ));
        };
        let class = match object.get("class") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.is_empty() => None,
            Some(Value::String(c)) => Some(class_name(c)),
            Some(other) => {
                return Err(format!(
                    "invalid object: 'class' must be a string, got {}",
                    json_kind(other)
                ))
            }
        };
        let id = match object.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(
                canonical_id(s).ok_or_else(|| format!("invalid object: id {s:?} is not a UUID"))?,
            ),
            Some(other) => {
                return Err(format!(
                    "invalid object: 'id' must be a UUID string, got {}",
                    json_kind(other)
                ))
            }
        };
        let properties = match object.get("properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(other) => {
                return Err(format!(
                    "invalid object: 'properties' must be a JSON object, got {}",
                    json_kind(other)
                ))
            }
        };
        let vector = match object.get("vector") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
                Some(Value::Array(items.clone()))
            }
            Some(_) => return Err("invalid object: 'vector' must be an array of numbers".into()),
        };
        let vectors = match object.get("vectors") {
            None | Some(Value::Null) => None,
            Some(Value::Object(named)) => Some(Value::Object(named.clone())),
            Some(_) => return Err("invalid object: 'vectors' must be a JSON object".into()),
        };
        match object.get("tenant") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t.is_empty() => {}
            Some(_) => {
                return Err(
                    "invalid object: multi-tenancy is not supported by the embedded document store"
                        .into(),
                )
            }
        }
        Ok(ObjectInput {
            class,
            id,
            properties,
            vector,
            vectors,
        })
    }
}

/// The canonical form of a UUID (lower-case, hyphenated), `None` when `s` is not one.
pub fn canonical_id(s: &str) -> Option<String> {
    Uuid::parse_str(s).ok().map(|u| u.hyphenated().to_string())
}

/// A page request for `GET /v1/objects`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Only this class (required with `after`).
    pub class: Option<String>,
    /// The cursor: objects with a greater id.
    pub after: Option<String>,
    /// Objects to skip (not with `after`).
    pub offset: i64,
    /// At most this many objects.
    pub limit: i64,
}

impl Page {
    /// Checks the parameters as Weaviate does. `class` is capitalized, `after` canonical.
    pub fn new(
        class: Option<&str>,
        after: Option<&str>,
        offset: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Page, StoreError> {
        let class = class.filter(|c| !c.is_empty()).map(class_name);
        let after = match after.filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(canonical_id(a).ok_or_else(|| {
                StoreError::Invalid(format!("'after' must be an object id (a UUID), got {a:?}"))
            })?),
        };
        let offset = offset.unwrap_or(0);
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if offset < 0 || limit < 0 {
            return Err(StoreError::Invalid(
                "'offset' and 'limit' must not be negative".into(),
            ));
        }
        if after.is_some() && class.is_none() {
            return Err(StoreError::Invalid(
                "the 'after' parameter requires the 'class' parameter".into(),
            ));
        }
        if after.is_some() && offset > 0 {
            return Err(StoreError::Invalid(
                "the 'after' parameter cannot be combined with 'offset'".into(),
            ));
        }
        if offset.saturating_add(limit) > MAX_RESULTS {
            return Err(StoreError::Invalid(format!(
                "query maximum results exceeded: offset + limit may be at most {MAX_RESULTS}"
            )));
        }
        Ok(Page {
            class,
            after,
            offset,
            limit,
        })
    }
}

/// The result of one object in a batch: the object as stored, or the client's message.
pub type BatchOutcome = Result<StoredObject, String>;

pub(super) fn object_not_found(class: &str, id: &str) -> StoreError {
    StoreError::NotFound(format!("object {class}/{id} not found"))
}

/// Checks the input against the class: the class in the body (if any) must be the path's,
/// and every property must have the declared type. Returns the checked properties.
fn checked_properties(
    class: &ClassDef,
    mut properties: Map<String, Value>,
) -> Result<Map<String, Value>, StoreError> {
    check_properties(class.name(), |n| class.property_type(n), &mut properties)
        .map_err(StoreError::Invalid)?;
    Ok(properties)
}

fn json_text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(Value::to_string)
}

/// The columns [`StoredObject::from_row`] reads, in a `SELECT`.
pub(crate) const COLUMNS: &str = "class, id, properties, vector, vectors, created_ms, updated_ms";

impl Store {
    /// Creates an object (`POST /v1/objects`). An unknown class, a bad property and an id
    /// that already exists in the class are 422s, as in Weaviate.
    pub async fn create_object(&self, input: ObjectInput) -> Result<StoredObject, StoreError> {
        let Some(class_name) = input.class else {
            return Err(StoreError::Invalid(
                "invalid object: the given class is empty".into(),
            ));
        };
        let mut tx = self.write().await?;
        let Some(class) = load_class(&mut *tx, &class_name).await? else {
            return Err(StoreError::Invalid(format!(
                "invalid object: class \"{class_name}\" not found in schema"
            )));
        };
        let properties = checked_properties(&class, input.properties)?;
        let object = StoredObject::created(
            class_name,
            input.id,
            properties,
            input.vector,
            input.vectors,
        );
        let inserted = sqlx::query(
            "INSERT INTO objects (class, id, properties, vector, vectors, created_ms, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (class, id) DO NOTHING",
        )
        .bind(&object.class)
        .bind(&object.id)
        .bind(Value::Object(object.properties.clone()).to_string())
        .bind(json_text(&object.vector))
        .bind(json_text(&object.vectors))
        .bind(object.created_ms)
        .bind(object.updated_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "id '{}' already exists",
                object.id
            )));
        }
        tx.commit().await?;
        Ok(object)
    }

    /// One object, `None` when it (or its class) does not exist.
    pub async fn get_object(
        &self,
        class: &str,
        id: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM objects WHERE class = ? AND id = ?"
        ))
        .bind(class)
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(StoredObject::from_row).transpose()
    }

    /// Whether the object exists.
    pub async fn object_exists(&self, class: &str, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM objects WHERE class = ? AND id = ?")
            .bind(class)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.is_some())
    }

    /// A page of objects ordered by id. An unknown class is a 404, as in Weaviate.
    pub async fn list_objects(&self, page: &Page) -> Result<Vec<StoredObject>, StoreError> {
        let rows = match &page.class {
            Some(class) => {
                if load_class(self.reader(), class).await?.is_none() {
                    return Err(class_not_found(class));
                }
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM objects WHERE class = ? AND id > ?
                     ORDER BY id LIMIT ? OFFSET ?"
                ))
                .bind(class)
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM objects ORDER BY id, class LIMIT ? OFFSET ?"
                ))
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(StoredObject::from_row).collect()
    }

    /// Replaces an object's properties and vectors (`PUT`). 404 when the class or object
    /// does not exist; the creation time is kept.
    pub async fn replace_object(
        &self,
        class_name: &str,
        id: &str,
        input: ObjectInput,
    ) -> Result<StoredObject, StoreError> {
        check_path_matches(class_name, id, &input)?;
        let mut tx = self.write().await?;
        let Some(class) = load_class(&mut *tx, class_name).await? else {
            return Err(object_not_found(class_name, id));
        };
        let row = sqlx::query("SELECT created_ms FROM objects WHERE class = ? AND id = ?")
            .bind(class_name)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(object_not_found(class_name, id));
        };
        let properties = checked_properties(&class, input.properties)?;
        let object = StoredObject {
            class: class_name.to_owned(),
            id: id.to_owned(),
            properties,
            vector: input.vector,
            vectors: input.vectors,
            created_ms: row.try_get("created_ms")?,
            updated_ms: now_ms(),
        };
        write_object(&mut tx, &object).await?;
        tx.commit().await?;
        Ok(object)
    }

    /// Merges properties into an object (`PATCH`): the given properties replace the stored
    /// ones of the same name, others stay; vectors are replaced when given.
    pub async fn merge_object(
        &self,
        class_name: &str,
        id: &str,
        input: ObjectInput,
    ) -> Result<(), StoreError> {
        check_path_matches(class_name, id, &input)?;
        let mut tx = self.write().await?;
        let Some(class) = load_class(&mut *tx, class_name).await? else {
            return Err(object_not_found(class_name, id));
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM objects WHERE class = ? AND id = ?"
        ))
        .bind(class_name)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(object_not_found(class_name, id));
        };
        let mut object = StoredObject::from_row(&row)?;
        let mut properties = object.properties;
        properties.extend(input.properties);
        object.properties = checked_properties(&class, properties)?;
        if input.vector.is_some() {
            object.vector = input.vector;
        }
        if input.vectors.is_some() {
            object.vectors = input.vectors;
        }
        object.updated_ms = now_ms();
        write_object(&mut tx, &object).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an object; `false` when there was none.
    pub async fn delete_object(&self, class: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM objects WHERE class = ? AND id = ?")
            .bind(class)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Writes a batch in one transaction (`POST /v1/batch/objects`). Each object is created,
    /// or replaced when its id exists (Weaviate's batch upserts); one that fails its checks
    /// is reported and the others are written.
    pub async fn batch_objects(
        &self,
        inputs: Vec<Result<ObjectInput, String>>,
    ) -> Result<Vec<BatchOutcome>, StoreError> {
        let mut tx = self.write().await?;
        let mut classes: HashMap<String, Option<ClassDef>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(inputs.len());
        for input in inputs {
            let input = match input {
                Ok(input) => input,
                Err(message) => {
                    outcomes.push(Err(message));
                    continue;
                }
            };
            let Some(class_name) = input.class else {
                outcomes.push(Err("invalid object: the given class is empty".into()));
                continue;
            };
            if !classes.contains_key(&class_name) {
                let class = load_class(&mut *tx, &class_name).await?;
                classes.insert(class_name.clone(), class);
            }
            let Some(Some(class)) = classes.get(&class_name) else {
                outcomes.push(Err(format!(
                    "invalid object: class \"{class_name}\" not found in schema"
                )));
                continue;
            };
            let properties = match checked_properties(class, input.properties) {
                Ok(p) => p,
                Err(err) => {
                    outcomes.push(Err(err.to_string()));
                    continue;
                }
            };
            let object = StoredObject::created(
                class_name,
                input.id,
                properties,
                input.vector,
                input.vectors,
            );
            write_object(&mut tx, &object).await?;
            outcomes.push(Ok(object));
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// A body that names a class or id must name the path's.
fn check_path_matches(class: &str, id: &str, input: &ObjectInput) -> Result<(), StoreError> {
    if let Some(body_class) = &input.class {
        if body_class != class {
            return Err(StoreError::Invalid(format!(
                "invalid update: field 'class' is immutable: the path names \"{class}\", the body \"{body_class}\""
            )));
        }
    }
    if let Some(body_id) = &input.id {
        if body_id != id {
            return Err(StoreError::Invalid(format!(
                "invalid update: field 'id' is immutable: the path names \"{id}\", the body \"{body_id}\""
            )));
        }
    }
    Ok(())
}

/// Inserts or replaces one object.
async fn write_object(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    object: &StoredObject,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO objects (class, id, properties, vector, vectors, created_ms, updated_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (class, id) DO UPDATE SET
            properties = excluded.properties,
            vector = excluded.vector,
            vectors = excluded.vectors,
            created_ms = excluded.created_ms,
            updated_ms = excluded.updated_ms",
    )
    .bind(&object.class)
    .bind(&object.id)
    .bind(Value::Object(object.properties.clone()).to_string())
    .bind(json_text(&object.vector))
    .bind(json_text(&object.vectors))
    .bind(object.created_ms)
    .bind(object.updated_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_object_inputs() {
        let id = "5F2B1C2E-8B7A-4C55-9A8F-3F9B2D1E0C4A";
        let input = ObjectInput::from_json(&json!({
            "class": "article",
            "id": id,
            "properties": {"title": "x"},
            "vector": [0.1, 2],
            "creationTimeUnix": 5,
            "tenant": ""
        }))
        .unwrap();
        assert_eq!(input.class.as_deref(), Some("Article"));
        assert_eq!(
            input.id.as_deref(),
            Some("5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a")
        );
        assert_eq!(
            input.properties,
            json!({"title": "x"}).as_object().cloned().unwrap()
        );
        assert_eq!(input.vector, Some(json!([0.1, 2])));
        assert_eq!(
            ObjectInput::from_json(&json!({})).unwrap(),
            ObjectInput::default()
        );
    }

    #[test]
    fn refuses_malformed_object_inputs() {
        let cases = [
            (json!([]), "expected a JSON object, got an array"),
            (json!({"class": 3}), "'class' must be a string"),
            (json!({"id": "abc"}), "id \"abc\" is not a UUID"),
            (json!({"id": 7}), "'id' must be a UUID string"),
            (
                json!({"properties": [1]}),
                "'properties' must be a JSON object",
            ),
            (
                json!({"vector": [1, "a"]}),
                "'vector' must be an array of numbers",
            ),
            (
                json!({"vector": "a"}),
                "'vector' must be an array of numbers",
            ),
            (json!({"vectors": []}), "'vectors' must be a JSON object"),
            (json!({"tenant": "t1"}), "multi-tenancy is not supported"),
        ];
        for (body, expected) in cases {
            let err = ObjectInput::from_json(&body).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn checks_page_parameters_as_weaviate() {
        let id = "5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a";
        let ok = Page::new(Some("article"), Some(id), None, Some(10)).unwrap();
        assert_eq!(
            ok,
            Page {
                class: Some("Article".into()),
                after: Some(id.into()),
                offset: 0,
                limit: 10
            }
        );
        assert_eq!(
            Page::new(None, Some(""), None, None).unwrap().limit,
            DEFAULT_LIMIT
        );
        assert!(Page::new(None, None, None, Some(MAX_RESULTS)).is_ok());
        let errors = [
            (
                Page::new(None, None, None, Some(MAX_RESULTS + 1)),
                "maximum results",
            ),
            (
                Page::new(None, None, Some(9_999), Some(2)),
                "maximum results",
            ),
            (
                Page::new(None, None, None, Some(-1)),
                "must not be negative",
            ),
            (
                Page::new(None, Some(id), None, None),
                "requires the 'class'",
            ),
            (
                Page::new(Some("A"), Some(id), Some(1), None),
                "cannot be combined",
            ),
            (
                Page::new(Some("A"), Some("nope"), None, None),
                "must be an object id",
            ),
        ];
        for (result, expected) in errors {
            match result {
                Err(StoreError::Invalid(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("expected Invalid({expected}), got {other:?}"),
            }
        }
    }
}
