//! Queries over one class's objects, free of any protocol: equality filters on text, int,
//! number and boolean properties and on the id, combined with and/or; a cursor, an offset and
//! a limit in id order (the order REST's listing uses); and counts. gRPC's `Search` and
//! `Aggregate` translate into these. What the store cannot answer exactly is refused with
//! [`QueryError::Unsupported`], never approximated.

use futures_util::TryStreamExt;
use serde_json::Value;

use super::db::Store;
use super::objects::{canonical_id, Page, StoredObject, COLUMNS};
use super::schema::{class_not_found, load_class, ClassDef};
use super::validation::{Kind, PropertyType};
use super::StoreError;

/// Why a query is not answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The store cannot answer this exactly. The message names what (a filter operator, a
    /// property type, a tokenization).
    #[error("{0}")]
    Unsupported(String),
    /// The query is wrong (an unknown class or property, a value of the wrong type), or the
    /// store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A filter's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A string: text properties and the id.
    Text(String),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Number(f64),
    /// A boolean.
    Boolean(bool),
}

impl Operand {
    fn kind(&self) -> &'static str {
        match self {
            Operand::Text(_) => "text",
            Operand::Int(_) => "int",
            Operand::Number(_) => "number",
            Operand::Boolean(_) => "boolean",
        }
    }
}

/// What a filter compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The object's id (Weaviate's `_id`).
    Id,
    /// A top-level property, by name.
    Property(String),
}

/// A filter: equality, and/or.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// The target equals the value (for tokenized text: contains every token of the value).
    Equal(Target, Operand),
    /// Every operand matches.
    And(Vec<Filter>),
    /// At least one operand matches.
    Or(Vec<Filter>),
}

/// A query over one class.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The class, capitalized.
    pub class: String,
    /// Only objects that match.
    pub filter: Option<Filter>,
    /// The cursor: objects with a greater id (not with a filter or an offset).
    pub after: Option<String>,
    /// Matching objects to skip.
    pub offset: i64,
    /// At most this many objects.
    pub limit: i64,
}

impl Query {
    /// Checks the parameters as REST's listing does (limits, cursor rules), plus Weaviate's
    /// rule that the cursor takes no filter. `None` takes the default.
    pub fn new(
        class: &str,
        filter: Option<Filter>,
        after: Option<&str>,
        offset: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Query, StoreError> {
        let page = Page::new(Some(class), after, offset, limit)?;
        let Some(class) = page.class else {
            return Err(StoreError::Invalid(
                "a query needs a collection name".into(),
            ));
        };
        if page.after.is_some() && filter.is_some() {
            return Err(StoreError::Invalid(
                "the 'after' cursor cannot be combined with filters".into(),
            ));
        }
        Ok(Query {
            class,
            filter,
            after: page.after,
            offset: page.offset,
            limit: page.limit,
        })
    }
}

/// What a query found: the objects, with their class (its property types say how to encode
/// them).
#[derive(Clone, Debug)]
pub struct Found {
    /// The class queried.
    pub class: ClassDef,
    /// The objects, in id order.
    pub objects: Vec<StoredObject>,
}

/// How a text property is split into the tokens filters compare (Weaviate's `tokenization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tokenization {
    /// Runs of letters and digits, lower-cased (Weaviate's default).
    Word,
    /// Whitespace-separated, lower-cased.
    Lowercase,
    /// Whitespace-separated, as written.
    Whitespace,
    /// The whole value, trimmed.
    Field,
}

impl Tokenization {
    fn from_property(class: &ClassDef, property: &str) -> Result<Tokenization, QueryError> {
        match class.property_tokenization(property) {
            None | Some("word") => Ok(Tokenization::Word),
            Some("lowercase") => Ok(Tokenization::Lowercase),
            Some("whitespace") => Ok(Tokenization::Whitespace),
            Some("field") => Ok(Tokenization::Field),
            Some(other) => Err(QueryError::Unsupported(format!(
                "filters on text properties with the '{other}' tokenization are not supported by the embedded store"
            ))),
        }
    }

    fn tokens(self, text: &str) -> Vec<String> {
        match self {
            Tokenization::Word => text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase)
                .collect(),
            Tokenization::Lowercase => text.split_whitespace().map(str::to_lowercase).collect(),
            Tokenization::Whitespace => text.split_whitespace().map(str::to_owned).collect(),
            Tokenization::Field => {
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    Vec::new()
                } else {
                    vec![trimmed.to_owned()]
                }
            }
        }
    }
}

/// Weaviate's `en` stopword preset. Weaviate may leave these out of a text filter's tokens;
/// rather than guess how a filter that contains one would be answered, the store refuses it.
const ENGLISH_STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// A filter checked against the class, ready to test objects.
#[derive(Clone, Debug, PartialEq)]
enum Predicate {
    All(Vec<Predicate>),
    Any(Vec<Predicate>),
    Id(String),
    Text {
        property: String,
        tokenization: Tokenization,
        tokens: Vec<String>,
    },
    Int {
        property: String,
        value: i64,
    },
    Number {
        property: String,
        value: f64,
    },
    Boolean {
        property: String,
        value: bool,
    },
    /// An int property compared with a number that has a fraction: nothing matches.
    Nothing,
}

fn invalid(message: String) -> QueryError {
    QueryError::Store(StoreError::Invalid(message))
}

fn compile(class: &ClassDef, filter: &Filter) -> Result<Predicate, QueryError> {
    match filter {
        Filter::And(operands) | Filter::Or(operands) => {
            if operands.is_empty() {
                return Err(invalid(
                    "an 'and' or 'or' filter needs at least one operand".into(),
                ));
            }
            let compiled = operands
                .iter()
                .map(|f| compile(class, f))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match filter {
                Filter::And(_) => Predicate::All(compiled),
                _ => Predicate::Any(compiled),
            })
        }
        Filter::Equal(Target::Id, Operand::Text(raw)) => canonical_id(raw)
            .map(Predicate::Id)
            .ok_or_else(|| invalid(format!("a filter on the id needs a UUID, got {raw:?}"))),
        Filter::Equal(Target::Id, other) => Err(invalid(format!(
            "a filter on the id needs a UUID text value, got a {} value",
            other.kind()
        ))),
        Filter::Equal(Target::Property(name), operand) => compile_property(class, name, operand),
    }
}

fn compile_property(
    class: &ClassDef,
    name: &str,
    operand: &Operand,
) -> Result<Predicate, QueryError> {
    let Some(ty) = class.property_type(name) else {
        return Err(invalid(format!(
            "no such prop with name '{name}' found in class '{}' in the schema",
            class.name()
        )));
    };
    let PropertyType { kind, array } = *ty;
    let supported = !array && matches!(kind, Kind::Text | Kind::Int | Kind::Number | Kind::Boolean);
    if !supported {
        return Err(QueryError::Unsupported(format!(
            "filters on {} properties ('{name}') are not supported by the embedded store",
            ty.describe()
        )));
    }
    let property = name.to_owned();
    let mismatch = || {
        invalid(format!(
            "the filter on property '{name}' of type {} cannot use a {} value",
            ty.describe(),
            operand.kind()
        ))
    };
    match (kind, operand) {
        (Kind::Text, Operand::Text(text)) => {
            let tokenization = Tokenization::from_property(class, name)?;
            let tokens = tokenization.tokens(text);
            if tokens.is_empty() {
                return Err(QueryError::Unsupported(format!(
                    "a filter on '{name}' whose value has no tokens is not supported by the embedded store"
                )));
            }
            if tokenization != Tokenization::Field {
                if let Some(stopword) = tokens
                    .iter()
                    .find(|t| ENGLISH_STOPWORDS.contains(&t.to_lowercase().as_str()))
                {
                    return Err(QueryError::Unsupported(format!(
                        "a filter on '{name}' containing the stopword '{stopword}' is not supported by the embedded store"
                    )));
                }
            }
            Ok(Predicate::Text {
                property,
                tokenization,
                tokens,
            })
        }
        (Kind::Int, Operand::Int(value)) => Ok(Predicate::Int {
            property,
            value: *value,
        }),
        (Kind::Int, Operand::Number(value)) => {
            // An int equals a number only when the number is that integer.
            let integral = value.fract() == 0.0 && value.abs() < 9.2e18;
            Ok(if integral {
                #[allow(clippy::cast_possible_truncation)]
                Predicate::Int {
                    property,
                    value: *value as i64,
                }
            } else {
                Predicate::Nothing
            })
        }
        // Weaviate keeps number properties as 64-bit floats and compares them so.
        #[allow(clippy::cast_precision_loss)]
        (Kind::Number, Operand::Int(value)) => Ok(Predicate::Number {
            property,
            value: *value as f64,
        }),
        (Kind::Number, Operand::Number(value)) => Ok(Predicate::Number {
            property,
            value: *value,
        }),
        (Kind::Boolean, Operand::Boolean(value)) => Ok(Predicate::Boolean {
            property,
            value: *value,
        }),
        _ => Err(mismatch()),
    }
}

impl Predicate {
    fn matches(&self, object: &StoredObject) -> bool {
        let get = |property: &str| object.properties.get(property);
        match self {
            Predicate::All(operands) => operands.iter().all(|p| p.matches(object)),
            Predicate::Any(operands) => operands.iter().any(|p| p.matches(object)),
            Predicate::Id(id) => object.id == *id,
            Predicate::Text {
                property,
                tokenization,
                tokens,
            } => match get(property) {
                Some(Value::String(text)) => {
                    let have = tokenization.tokens(text);
                    tokens.iter().all(|t| have.contains(t))
                }
                _ => false,
            },
            Predicate::Int { property, value } => {
                get(property).and_then(Value::as_i64) == Some(*value)
            }
            Predicate::Number { property, value } => {
                get(property).and_then(Value::as_f64) == Some(*value)
            }
            Predicate::Boolean { property, value } => {
                get(property).and_then(Value::as_bool) == Some(*value)
            }
            Predicate::Nothing => false,
        }
    }

    /// The one id every match must have, when the predicate pins one: the query then reads
    /// that row instead of scanning the class.
    fn pinned_id(&self) -> Option<&str> {
        match self {
            Predicate::Id(id) => Some(id),
            Predicate::All(operands) => operands.iter().find_map(Predicate::pinned_id),
            _ => None,
        }
    }
}

impl Store {
    /// The objects of `query.class` that match its filter, in id order, after the cursor,
    /// skipping `offset`, at most `limit`. Without a filter this is exactly REST's listing.
    pub async fn query(&self, query: &Query) -> Result<Found, QueryError> {
        let class = self.class_for_query(&query.class).await?;
        let predicate = query
            .filter
            .as_ref()
            .map(|f| compile(&class, f))
            .transpose()?;
        let Some(predicate) = predicate else {
            let page = Page {
                class: Some(query.class.clone()),
                after: query.after.clone(),
                offset: query.offset,
                limit: query.limit,
            };
            let objects = self.list_objects(&page).await?;
            return Ok(Found { class, objects });
        };
        let limit = usize::try_from(query.limit).unwrap_or(0);
        let mut to_skip = usize::try_from(query.offset).unwrap_or(0);
        let mut objects = Vec::new();
        if limit == 0 {
            return Ok(Found { class, objects });
        }
        let mut take = |object: StoredObject| {
            if !predicate.matches(&object) {
                return true;
            }
            if to_skip > 0 {
                to_skip -= 1;
                return true;
            }
            objects.push(object);
            objects.len() < limit
        };
        if let Some(id) = predicate.pinned_id() {
            if let Some(object) = self.get_object(&query.class, id).await? {
                take(object);
            }
        } else {
            let sql = format!("SELECT {COLUMNS} FROM objects WHERE class = ? ORDER BY id");
            let mut rows = sqlx::query(&sql).bind(&query.class).fetch(self.reader());
            while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
                if !take(StoredObject::from_row(&row)?) {
                    break;
                }
            }
        }
        Ok(Found { class, objects })
    }

    /// How many objects of `class` match `filter` (all of them without one).
    pub async fn count(&self, class: &str, filter: Option<&Filter>) -> Result<u64, QueryError> {
        let class_def = self.class_for_query(class).await?;
        let predicate = filter.map(|f| compile(&class_def, f)).transpose()?;
        let Some(predicate) = predicate else {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM objects WHERE class = ?")
                .bind(class)
                .fetch_one(self.reader())
                .await
                .map_err(StoreError::from)?;
            return Ok(u64::try_from(count).unwrap_or(0));
        };
        if let Some(id) = predicate.pinned_id() {
            let object = self.get_object(class, id).await?;
            return Ok(u64::from(object.is_some_and(|o| predicate.matches(&o))));
        }
        let sql = format!("SELECT {COLUMNS} FROM objects WHERE class = ?");
        let mut rows = sqlx::query(&sql).bind(class).fetch(self.reader());
        let mut count = 0;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            if predicate.matches(&StoredObject::from_row(&row)?) {
                count += 1;
            }
        }
        Ok(count)
    }

    async fn class_for_query(&self, class: &str) -> Result<ClassDef, QueryError> {
        match load_class(self.reader(), class).await? {
            Some(class) => Ok(class),
            None => Err(class_not_found(class).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::objects::ObjectInput;
    use serde_json::json;

    fn class() -> ClassDef {
        ClassDef::from_request(json!({
            "class": "Article",
            "properties": [
                {"name": "title", "dataType": ["text"]},
                {"name": "code", "dataType": ["text"], "tokenization": "field"},
                {"name": "shout", "dataType": ["text"], "tokenization": "whitespace"},
                {"name": "low", "dataType": ["text"], "tokenization": "lowercase"},
                {"name": "fancy", "dataType": ["text"], "tokenization": "trigram"},
                {"name": "count", "dataType": ["int"]},
                {"name": "price", "dataType": ["number"]},
                {"name": "done", "dataType": ["boolean"]},
                {"name": "at", "dataType": ["date"]},
                {"name": "tags", "dataType": ["text[]"]}
            ]
        }))
        .unwrap()
    }

    fn object(id: &str, properties: Value) -> StoredObject {
        StoredObject {
            class: "Article".into(),
            id: id.into(),
            properties: properties.as_object().cloned().unwrap(),
            vector: None,
            vectors: None,
            created_ms: 1,
            updated_ms: 1,
        }
    }

    fn eq(property: &str, operand: Operand) -> Filter {
        Filter::Equal(Target::Property(property.into()), operand)
    }

    fn text(s: &str) -> Operand {
        Operand::Text(s.into())
    }

    const ID: &str = "5f2b1c2e-8b7a-4c55-9a8f-3f9b2d1e0c4a";

    #[test]
    fn tokenizes_as_weaviate_does() {
        assert_eq!(
            Tokenization::Word.tokens("Hello, wörld! x_y 42"),
            ["hello", "wörld", "x", "y", "42"]
        );
        assert_eq!(
            Tokenization::Lowercase.tokens(" Hello, World "),
            ["hello,", "world"]
        );
        assert_eq!(
            Tokenization::Whitespace.tokens("Hello, World"),
            ["Hello,", "World"]
        );
        assert_eq!(Tokenization::Field.tokens("  a b  "), ["a b"]);
        assert!(Tokenization::Field.tokens("   ").is_empty());
    }

    #[test]
    fn equality_follows_the_property_type_and_tokenization() {
        let class = class();
        let o = object(
            ID,
            json!({"title": "Hello Big World", "code": "AB-1", "shout": "Hello World",
                   "low": "Hello World", "count": 7, "price": 2.5, "done": true}),
        );
        let cases = [
            (eq("title", text("hello")), true),
            (eq("title", text("WORLD hello")), true),
            (eq("title", text("hello mars")), false),
            (eq("code", text("AB-1")), true),
            (eq("code", text(" AB-1 ")), true),
            (eq("code", text("ab-1")), false),
            (eq("code", text("AB")), false),
            (eq("shout", text("Hello")), true),
            (eq("shout", text("hello")), false),
            (eq("low", text("HELLO")), true),
            (eq("count", Operand::Int(7)), true),
            (eq("count", Operand::Int(8)), false),
            (eq("count", Operand::Number(7.0)), true),
            (eq("count", Operand::Number(7.5)), false),
            (eq("price", Operand::Number(2.5)), true),
            (eq("price", Operand::Int(2)), false),
            (eq("done", Operand::Boolean(true)), true),
            (eq("done", Operand::Boolean(false)), false),
            (Filter::Equal(Target::Id, text(&ID.to_uppercase())), true),
            (
                Filter::Equal(Target::Id, text("00000000-0000-0000-0000-000000000000")),
                false,
            ),
            (
                Filter::And(vec![
                    eq("count", Operand::Int(7)),
                    eq("done", Operand::Boolean(true)),
                ]),
                true,
            ),
            (
                Filter::And(vec![
                    eq("count", Operand::Int(7)),
                    eq("done", Operand::Boolean(false)),
                ]),
                false,
            ),
            (
                Filter::Or(vec![
                    eq("count", Operand::Int(1)),
                    eq("done", Operand::Boolean(true)),
                ]),
                true,
            ),
            (
                Filter::Or(vec![
                    eq("count", Operand::Int(1)),
                    eq("done", Operand::Boolean(false)),
                ]),
                false,
            ),
        ];
        for (filter, expected) in cases {
            let predicate = compile(&class, &filter).unwrap();
            assert_eq!(predicate.matches(&o), expected, "{filter:?}");
        }
        // A missing property matches no equality.
        let empty = object(ID, json!({}));
        assert!(!compile(&class, &eq("count", Operand::Int(7)))
            .unwrap()
            .matches(&empty));
    }

    #[test]
    fn refuses_what_it_cannot_answer_naming_it() {
        let class = class();
        let unsupported = [
            (
                eq("at", text("2024-01-01T00:00:00Z")),
                "filters on date properties ('at')",
            ),
            (
                eq("tags", text("x")),
                "filters on text array properties ('tags')",
            ),
            (eq("fancy", text("abc")), "the 'trigram' tokenization"),
            (eq("title", text("the cat")), "the stopword 'the'"),
            (eq("title", text("!!")), "has no tokens"),
        ];
        for (filter, expected) in unsupported {
            match compile(&class, &filter) {
                Err(QueryError::Unsupported(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("{filter:?}: expected Unsupported, got {other:?}"),
            }
        }
        let invalid = [
            (eq("nope", text("x")), "no such prop with name 'nope'"),
            (eq("count", text("7")), "type int cannot use a text value"),
            (
                eq("done", Operand::Int(1)),
                "type boolean cannot use a int value",
            ),
            (
                eq("title", Operand::Boolean(true)),
                "type text cannot use a boolean",
            ),
            (Filter::Equal(Target::Id, text("nope")), "needs a UUID"),
            (
                Filter::Equal(Target::Id, Operand::Int(1)),
                "needs a UUID text value",
            ),
            (Filter::And(vec![]), "at least one operand"),
        ];
        for (filter, expected) in invalid {
            match compile(&class, &filter) {
                Err(QueryError::Store(StoreError::Invalid(m))) => {
                    assert!(m.contains(expected), "{m}")
                }
                other => panic!("{filter:?}: expected Invalid, got {other:?}"),
            }
        }
        // "the" is no stopword to a field-tokenized property.
        assert!(compile(&class, &eq("code", text("the"))).is_ok());
    }

    #[test]
    fn the_cursor_takes_no_filter_and_follows_rest_rules() {
        let filter = eq("count", Operand::Int(1));
        let err = Query::new("article", Some(filter.clone()), Some(ID), None, None).unwrap_err();
        assert!(
            err.to_string().contains("cannot be combined with filters"),
            "{err}"
        );
        assert!(Query::new("Article", None, Some(ID), Some(1), None).is_err());
        assert!(Query::new("", None, None, None, None).is_err());
        let q = Query::new("article", Some(filter), None, Some(2), Some(3)).unwrap();
        assert_eq!((q.class.as_str(), q.offset, q.limit), ("Article", 2, 3));
    }

    async fn store_with_objects(n: usize) -> (tempfile::TempDir, Store, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.create_class(class()).await.unwrap();
        let inputs = (0..n)
            .map(|i| {
                ObjectInput::from_json(&json!({
                    "class": "Article",
                    "properties": {"title": format!("item {i}"), "count": i % 3, "done": i % 2 == 0}
                }))
            })
            .collect();
        let outcomes = store.batch_objects(inputs).await.unwrap();
        let mut ids: Vec<String> = outcomes.into_iter().map(|o| o.unwrap().id).collect();
        ids.sort();
        (dir, store, ids)
    }

    fn ids(found: &Found) -> Vec<String> {
        found.objects.iter().map(|o| o.id.clone()).collect()
    }

    #[tokio::test]
    async fn pages_filters_and_counts_over_the_store() {
        let (_dir, store, all) = store_with_objects(12).await;
        let q = |filter, after: Option<&str>, offset, limit| {
            Query::new("Article", filter, after, offset, limit).unwrap()
        };
        // No filter: REST's listing, page by page.
        let page = store.query(&q(None, None, Some(2), Some(4))).await.unwrap();
        assert_eq!(ids(&page), all[2..6]);
        let next = store
            .query(&q(None, Some(&all[5]), None, Some(100)))
            .await
            .unwrap();
        assert_eq!(ids(&next), all[6..]);
        let listed = store
            .list_objects(&Page::new(Some("Article"), None, Some(2), Some(4)).unwrap())
            .await
            .unwrap();
        assert_eq!(page.objects, listed);

        // A filter, then offset and limit over the matches, in id order.
        let zero = eq("count", Operand::Int(0));
        let matching: Vec<String> = store
            .query(&q(Some(zero.clone()), None, None, Some(100)))
            .await
            .unwrap()
            .objects
            .iter()
            .map(|o| {
                assert_eq!(o.properties["count"], json!(0));
                o.id.clone()
            })
            .collect();
        assert_eq!(matching.len(), 4);
        let mut sorted = matching.clone();
        sorted.sort();
        assert_eq!(matching, sorted);
        let paged = store
            .query(&q(Some(zero.clone()), None, Some(1), Some(2)))
            .await
            .unwrap();
        assert_eq!(ids(&paged), matching[1..3]);
        assert_eq!(store.count("Article", Some(&zero)).await.unwrap(), 4);
        assert_eq!(store.count("Article", None).await.unwrap(), 12);
        let either = Filter::Or(vec![zero, eq("count", Operand::Int(1))]);
        assert_eq!(store.count("Article", Some(&either)).await.unwrap(), 8);

        // By id: that object, or nothing when the rest of the filter rejects it.
        let by_id = Filter::Equal(Target::Id, text(&all[3]));
        let found = store
            .query(&q(Some(by_id.clone()), None, None, Some(1)))
            .await
            .unwrap();
        assert_eq!(ids(&found), [all[3].clone()]);
        assert_eq!(store.count("Article", Some(&by_id)).await.unwrap(), 1);
        let count = found.objects[0].properties["count"].as_i64().unwrap();
        let contradiction = Filter::And(vec![by_id, eq("count", Operand::Int(count + 1))]);
        let none = store
            .query(&q(Some(contradiction.clone()), None, None, Some(1)))
            .await
            .unwrap();
        assert!(none.objects.is_empty());
        assert_eq!(
            store.count("Article", Some(&contradiction)).await.unwrap(),
            0
        );

        // Text tokens.
        let item_7 = eq("title", text("7 ITEM"));
        let found = store
            .query(&q(Some(item_7), None, None, None))
            .await
            .unwrap();
        assert_eq!(found.objects.len(), 1);
        assert_eq!(found.objects[0].properties["title"], json!("item 7"));
    }

    #[tokio::test]
    async fn an_unknown_class_is_not_found() {
        let (_dir, store, _) = store_with_objects(0).await;
        let q = Query::new("Missing", None, None, None, None).unwrap();
        assert!(matches!(
            store.query(&q).await,
            Err(QueryError::Store(StoreError::NotFound(_)))
        ));
        assert!(matches!(
            store.count("Missing", None).await,
            Err(QueryError::Store(StoreError::NotFound(_)))
        ));
    }
}
