//! The needs a request body names ([`needs`]): batch objects' classes and tenants, batch
//! references' sources and targets, the classes of a GraphQL query's `Get` and `Aggregate`,
//! and the smaller bodies of the schema, alias, backup, replication and classification routes.
//! A body that cannot be read is refused ([`BodyError`]) and never forwarded: what Portcullis
//! cannot check, it does not pass on.
//!
//! The body is already bounded by the body limit when it gets here; every collection named is
//! checked, each (collection, tenant) pair once.

use std::borrow::Cow;
use std::collections::BTreeMap;

use graphql_parser::query::{
    parse_query, Definition, OperationDefinition, Selection, SelectionSet, TypeCondition, Value,
};
use portcullis_auth::rbac::filter::upper_first;
use portcullis_auth::rbac::Action;
use serde::Deserialize;
use serde_json::Value as Json;

use super::need::Need;
use super::routes::{query_param, BodyKind};

/// Why a body's needs could not be read: answered 422 with this message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON of the route's shape.
    #[error("the request body is not valid for this route: {0}")]
    Json(String),
    /// The GraphQL query does not parse.
    #[error("the GraphQL query does not parse: {0}")]
    Graphql(String),
    /// Something the check cannot follow (a fragment in `Get`, a mutation, an unknown root).
    #[error("the GraphQL query uses {0}, which authorization cannot check")]
    Unsupported(&'static str),
    /// An object or reference without the class it belongs to.
    #[error("{0} names no class; authorization needs it")]
    NoClass(&'static str),
}

const ALL: &str = "*";

/// Collects needs, each once.
#[derive(Default)]
struct Collector(Vec<Need<'static>>);

impl Collector {
    fn push(&mut self, need: Need<'static>) {
        if !self.0.contains(&need) {
            self.0.push(need);
        }
    }

    fn data(&mut self, action: Action, class: &str, tenant: &str, object: &str) {
        self.push(Need::data(
            action,
            Cow::Owned(upper_first(class)),
            owned(tenant),
            owned(object),
        ));
    }

    fn collection(&mut self, action: Action, class: &str) {
        self.push(Need::collection(action, Cow::Owned(upper_first(class))));
    }
}

fn owned(value: &str) -> Cow<'static, str> {
    Cow::Owned(if value.is_empty() { ALL } else { value }.to_owned())
}

fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, BodyError> {
    serde_json::from_slice(body).map_err(|err| BodyError::Json(err.to_string()))
}

/// The needs the body of a `kind` request names. `name` is the collection (or alias) its path
/// names (`*` if none), `query` its query string (a tenant there counts for every object).
pub fn needs(
    kind: BodyKind,
    name: &str,
    query: &str,
    body: &[u8],
) -> Result<Vec<Need<'static>>, BodyError> {
    let mut out = Collector::default();
    let query_tenant = query_param(query, "tenant").filter(|t| !t.is_empty());
    match kind {
        BodyKind::CreateClass => {
            let class: ClassBody = parse(body)?;
            let Some(name) = class.class.filter(|c| !c.is_empty()) else {
                return Err(BodyError::NoClass("the class"));
            };
            out.collection(Action::CreateCollections, &name);
            for property in &class.properties {
                reference_targets(&mut out, property);
            }
        }
        BodyKind::AddProperty => {
            let property: PropertyBody = parse(body)?;
            reference_targets(&mut out, &property);
        }
        BodyKind::Tenants(action) => {
            // Create and update send tenant objects, delete sends their names.
            let tenants: Vec<Json> = parse(body)?;
            for tenant in &tenants {
                let tenant_name = match tenant {
                    Json::String(s) => s.as_str(),
                    Json::Object(o) => match o.get("name") {
                        Some(Json::String(s)) => s.as_str(),
                        _ => return Err(BodyError::Json("a tenant without a name".into())),
                    },
                    _ => {
                        return Err(BodyError::Json(
                            "a tenant is neither a name nor an object".into(),
                        ))
                    }
                };
                out.push(Need::tenant(
                    action,
                    Cow::Owned(name.to_owned()),
                    Cow::Owned(tenant_name.to_owned()),
                ));
            }
        }
        BodyKind::CreateAlias => {
            let alias: AliasBody = parse(body)?;
            let (Some(class), Some(alias)) = (alias.class, alias.alias) else {
                return Err(BodyError::NoClass("the alias"));
            };
            out.push(Need::pair(
                Action::CreateAliases,
                Cow::Owned(upper_first(&class)),
                Cow::Owned(upper_first(&alias)),
            ));
        }
        BodyKind::UpdateAlias => {
            let alias: AliasBody = parse(body)?;
            let Some(class) = alias.class else {
                return Err(BodyError::NoClass("the alias"));
            };
            out.push(Need::pair(
                Action::UpdateAliases,
                Cow::Owned(upper_first(&class)),
                Cow::Owned(name.to_owned()),
            ));
        }
        BodyKind::CreateObject | BodyKind::ValidateObject => {
            let object: ObjectBody = parse(body)?;
            let Some(class) = object.class.filter(|c| !c.is_empty()) else {
                return Err(BodyError::NoClass("the object"));
            };
            let tenant = object.tenant.as_deref().or(query_tenant).unwrap_or(ALL);
            if kind == BodyKind::CreateObject {
                out.data(Action::CreateData, &class, tenant, ALL);
            } else {
                let id = object.id.as_deref().unwrap_or(ALL);
                out.data(Action::ReadData, &class, tenant, id);
            }
        }
        BodyKind::ReferenceTargets => {
            // One reference (POST, DELETE) or a list of them (PUT).
            let value: Json = parse(body)?;
            let beacons: Vec<&Json> = match &value {
                Json::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            let tenant = query_tenant.unwrap_or(ALL);
            for reference in beacons {
                let Some(Json::String(beacon)) = reference.get("beacon") else {
                    return Err(BodyError::Json("a reference without a beacon".into()));
                };
                let target = beacon_class(beacon).unwrap_or(ALL);
                out.data(Action::ReadData, target, tenant, ALL);
            }
        }
        BodyKind::BatchObjects => {
            let batch: BatchObjects = parse(body)?;
            for object in &batch.objects {
                let Some(class) = object.class.as_deref().filter(|c| !c.is_empty()) else {
                    return Err(BodyError::NoClass("an object of the batch"));
                };
                let tenant = object.tenant.as_deref().or(query_tenant).unwrap_or(ALL);
                // Weaviate's batch may create or replace: it needs both.
                out.data(Action::CreateData, class, tenant, ALL);
                out.data(Action::UpdateData, class, tenant, ALL);
            }
        }
        BodyKind::BatchDelete => {
            let batch: BatchDelete = parse(body)?;
            let Some((class, filter)) = batch
                .matcher
                .and_then(|m| Some((m.class.filter(|c| !c.is_empty())?, m.filter)))
            else {
                return Err(BodyError::NoClass("the batch delete's match"));
            };
            let tenant = batch.tenant.as_deref().or(query_tenant).unwrap_or(ALL);
            out.data(Action::DeleteData, &class, tenant, ALL);
            if let Some(filter) = &filter {
                where_paths(&mut out, filter)?;
            }
        }
        BodyKind::BatchReferences => {
            let references: Vec<BatchReference> = parse(body)?;
            for reference in &references {
                let (Some(from), Some(to)) = (&reference.from, &reference.to) else {
                    return Err(BodyError::Json("a reference without from or to".into()));
                };
                let Some(source) = beacon_class(from) else {
                    return Err(BodyError::NoClass("a reference's source"));
                };
                let tenant = reference.tenant.as_deref().or(query_tenant).unwrap_or(ALL);
                out.data(Action::UpdateData, source, tenant, ALL);
                out.data(
                    Action::ReadData,
                    beacon_class(to).unwrap_or(ALL),
                    tenant,
                    ALL,
                );
            }
        }
        BodyKind::Graphql => {
            let request: GraphqlBody = parse(body)?;
            graphql(&mut out, &request.query, request.variables.as_ref())?;
        }
        BodyKind::Backup => {
            let backup: BackupBody = parse(body)?;
            if backup.include.is_empty() {
                out.collection(Action::ManageBackups, ALL);
            }
            for class in &backup.include {
                out.collection(Action::ManageBackups, class);
            }
        }
        BodyKind::Replicate => {
            let replicate: ReplicateBody = parse(body)?;
            let (Some(class), Some(shard)) = (replicate.collection, replicate.shard) else {
                return Err(BodyError::NoClass("the replication"));
            };
            out.push(Need::pair(
                Action::CreateReplicate,
                Cow::Owned(upper_first(&class)),
                Cow::Owned(shard),
            ));
        }
        BodyKind::Classification => {
            let classification: ClassBody = parse(body)?;
            let Some(class) = classification.class.filter(|c| !c.is_empty()) else {
                return Err(BodyError::NoClass("the classification"));
            };
            out.collection(Action::UpdateCollections, &class);
            out.data(Action::ReadData, &class, ALL, ALL);
        }
    }
    Ok(out.0)
}

/// The class of a beacon `weaviate://localhost/Class/uuid[/prop]`; none for the deprecated
/// form without a class (`weaviate://localhost/uuid[/prop]`), whose first part is the uuid (a
/// class name never holds `-`, so it never reads as one).
fn beacon_class(beacon: &str) -> Option<&str> {
    let rest = beacon.strip_prefix("weaviate://")?;
    let first = rest.split('/').nth(1)?;
    if first.is_empty() || uuid::Uuid::try_parse(first).is_ok() {
        return None;
    }
    Some(first)
}

/// Reference targets in a property's `dataType` (class names start with a capital letter;
/// primitive types do not) need `read_collections`.
fn reference_targets(out: &mut Collector, property: &PropertyBody) {
    for data_type in &property.data_type {
        if data_type.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.collection(Action::ReadCollections, data_type);
        }
    }
}

/// The needs of a GraphQL query beyond `read_collections` on all (the route's own): each
/// class of `Get` and `Aggregate` needs `read_data` on its tenant, `Explore` on all, and every
/// class reached by a reference (`... on Class`) or named in a filter's path needs `read_data`
/// and `read_collections`.
fn graphql(
    out: &mut Collector,
    query: &str,
    variables: Option<&BTreeMap<String, Json>>,
) -> Result<(), BodyError> {
    let document = parse_query::<&str>(query).map_err(|err| BodyError::Graphql(err.to_string()))?;
    for definition in &document.definitions {
        let selection_set = match definition {
            Definition::Operation(OperationDefinition::SelectionSet(set)) => set,
            Definition::Operation(OperationDefinition::Query(query)) => &query.selection_set,
            Definition::Operation(OperationDefinition::Mutation(_)) => {
                return Err(BodyError::Unsupported("a mutation"))
            }
            Definition::Operation(OperationDefinition::Subscription(_)) => {
                return Err(BodyError::Unsupported("a subscription"))
            }
            Definition::Fragment(_) => return Err(BodyError::Unsupported("a fragment")),
        };
        for selection in &selection_set.items {
            let Selection::Field(root) = selection else {
                return Err(BodyError::Unsupported("a fragment at the root"));
            };
            match root.name {
                "Get" | "Aggregate" => {
                    for item in &root.selection_set.items {
                        let Selection::Field(class) = item else {
                            return Err(BodyError::Unsupported("a fragment in Get or Aggregate"));
                        };
                        if class.name.starts_with("__") {
                            continue;
                        }
                        let mut tenant = ALL.to_owned();
                        for (argument, value) in &class.arguments {
                            if *argument == "tenant" {
                                tenant = match value {
                                    Value::String(t) => t.clone(),
                                    Value::Variable(v) => {
                                        match variables.and_then(|vars| vars.get(*v)) {
                                            Some(Json::String(t)) => t.clone(),
                                            _ => ALL.to_owned(),
                                        }
                                    }
                                    _ => ALL.to_owned(),
                                };
                            }
                            filter_paths(out, value);
                        }
                        out.data(Action::ReadData, class.name, &tenant, ALL);
                        referenced(out, &class.selection_set)?;
                    }
                }
                "Explore" => out.data(Action::ReadData, ALL, ALL, ALL),
                // Introspection: read_collections on all, the route's own need.
                name if name.starts_with("__") => {}
                _ => {
                    return Err(BodyError::Unsupported(
                        "a root field other than Get, Aggregate or Explore",
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Classes reached through references (`... on Class { }`) in a class's selection.
fn referenced<'a>(out: &mut Collector, set: &SelectionSet<'a, &'a str>) -> Result<(), BodyError> {
    for item in &set.items {
        match item {
            Selection::Field(field) => {
                for (_, value) in &field.arguments {
                    filter_paths(out, value);
                }
                referenced(out, &field.selection_set)?;
            }
            Selection::InlineFragment(fragment) => {
                if let Some(TypeCondition::On(class)) = &fragment.type_condition {
                    out.data(Action::ReadData, class, ALL, ALL);
                    out.collection(Action::ReadCollections, class);
                }
                referenced(out, &fragment.selection_set)?;
            }
            Selection::FragmentSpread(_) => {
                return Err(BodyError::Unsupported("a fragment spread"));
            }
        }
    }
    Ok(())
}

/// Classes named in filter paths (`path: ["hasAuthor", "Author", "name"]`: every second
/// element is a class).
fn filter_paths<'a>(out: &mut Collector, value: &Value<'a, &'a str>) {
    match value {
        Value::Object(fields) => {
            for (key, inner) in fields {
                if *key == "path" {
                    if let Value::List(items) = inner {
                        for item in items.iter().skip(1).step_by(2) {
                            if let Value::String(class) = item {
                                out.data(Action::ReadData, class, ALL, ALL);
                                out.collection(Action::ReadCollections, class);
                            }
                        }
                    }
                }
                filter_paths(out, inner);
            }
        }
        Value::List(items) => {
            for item in items {
                filter_paths(out, item);
            }
        }
        _ => {}
    }
}

/// Classes a REST `where` filter reaches through references (`"path": ["hasAuthor",
/// "Author", "name"]`: every second element is a class), in every nested operand: each needs
/// `read_data` and `read_collections`, as Weaviate's batch delete checks them. The depth is
/// bounded by serde_json's nesting limit, which refused a deeper body already.
fn where_paths(out: &mut Collector, filter: &Json) -> Result<(), BodyError> {
    let Json::Object(fields) = filter else {
        return Err(BodyError::Json("a where filter is not an object".into()));
    };
    match fields.get("path") {
        None | Some(Json::Null) => {}
        Some(Json::Array(items)) => {
            for item in items.iter().skip(1).step_by(2) {
                let Json::String(class) = item else {
                    return Err(BodyError::Json("a where path holds a non-string".into()));
                };
                out.data(Action::ReadData, class, ALL, ALL);
                out.collection(Action::ReadCollections, class);
            }
        }
        Some(_) => return Err(BodyError::Json("a where path is not a list".into())),
    }
    match fields.get("operands") {
        None | Some(Json::Null) => Ok(()),
        Some(Json::Array(operands)) => operands
            .iter()
            .try_for_each(|operand| where_paths(out, operand)),
        Some(_) => Err(BodyError::Json("where operands are not a list".into())),
    }
}

#[derive(Deserialize)]
struct ClassBody {
    class: Option<String>,
    #[serde(default)]
    properties: Vec<PropertyBody>,
}

#[derive(Deserialize)]
struct PropertyBody {
    #[serde(default, rename = "dataType")]
    data_type: Vec<String>,
}

#[derive(Deserialize)]
struct AliasBody {
    class: Option<String>,
    alias: Option<String>,
}

#[derive(Deserialize)]
struct ObjectBody {
    class: Option<String>,
    tenant: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
struct BatchObjects {
    objects: Vec<ObjectBody>,
}

#[derive(Deserialize)]
struct BatchDelete {
    #[serde(rename = "match")]
    matcher: Option<DeleteMatch>,
    tenant: Option<String>,
}

#[derive(Deserialize)]
struct DeleteMatch {
    class: Option<String>,
    #[serde(rename = "where")]
    filter: Option<Json>,
}

#[derive(Deserialize)]
struct BatchReference {
    from: Option<String>,
    to: Option<String>,
    tenant: Option<String>,
}

#[derive(Deserialize)]
struct GraphqlBody {
    query: String,
    variables: Option<BTreeMap<String, Json>>,
}

#[derive(Deserialize)]
struct BackupBody {
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Deserialize)]
struct ReplicateBody {
    collection: Option<String>,
    shard: Option<String>,
}
