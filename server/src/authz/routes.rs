//! The RBAC route table: for each route of Portcullis and of the Weaviate REST API it
//! fronts, what a call needs ([`plan`]), from the method, the path and the query alone. Where
//! the resources are in the body the plan says which body to read ([`BodyKind`]), and
//! [`super::body`] reads it. Follows the reference's per-route table
//! (`weaviate-rbac.md` §3 and §4); where Weaviate needs data the request does not hold (an
//! alias's target, the classes of a stored backup) the need is on `*`, which only a grant on
//! all allows: stricter, never looser. In proxy mode, names are then looked up in the
//! upstream's schema ([`super::resolve`]): an alias is checked as its collection.
//!
//! A pure function: no state, no pattern compiled, no allocation except a collection name
//! whose first letter must be upper-cased (Weaviate's `movie` is `Movie`).

use std::borrow::Cow;

use actix_web::http::Method;
use portcullis_auth::rbac::Action;

use super::need::{Need, Needs};

/// A body whose content names the resources to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /v1/schema`: the new class (and its reference targets).
    CreateClass,
    /// `POST /v1/schema/{C}/properties`: the property's reference targets.
    AddProperty,
    /// `POST|PUT|DELETE /v1/schema/{C}/tenants`: each tenant named, with this action.
    Tenants(Action),
    /// `POST /v1/aliases`: the alias and its collection.
    CreateAlias,
    /// `PUT /v1/aliases/{A}`: the new target collection.
    UpdateAlias,
    /// `POST /v1/objects`: the object's class and tenant.
    CreateObject,
    /// `POST /v1/objects/validate`: the object's class, tenant and id.
    ValidateObject,
    /// `…/references/{p}`: the targets' classes (read).
    ReferenceTargets,
    /// `POST /v1/batch/objects`: every object's class and tenant.
    BatchObjects,
    /// `DELETE /v1/batch/objects`: the class matched.
    BatchDelete,
    /// `POST /v1/batch/references`: sources (update) and targets (read).
    BatchReferences,
    /// `POST /v1/graphql`: the classes of every `Get` and `Aggregate`.
    Graphql,
    /// `POST /v1/backups/{backend}` and `…/{id}/restore`: the classes included.
    Backup,
    /// `POST /v1/replication/replicate`: the collection and shard.
    Replicate,
    /// `POST /v1/classifications`: the class classified.
    Classification,
}

/// What a call needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan<'a> {
    /// Any authenticated principal (meta, own-info, backup status): no RBAC check, as in
    /// Weaviate.
    Open,
    /// The handler checks (the `/v1/authz` API, whose rules depend on the body and the
    /// caller's scope).
    Handler,
    /// Every need must be allowed.
    Check(Needs<'a>),
    /// A list filtered per item with `action` (one audit line per request): by Portcullis'
    /// own handler, or, for an upstream's list, by the proxy on the upstream's answer.
    Filtered {
        /// The per-item action.
        action: Action,
        /// The collection whose items are listed (tenants), if the list is of one.
        collection: Option<Cow<'a, str>>,
    },
    /// The needs of the path, and those of the body of this kind.
    Body {
        /// Which body.
        kind: BodyKind,
        /// What the path alone needs.
        needs: Needs<'a>,
        /// The collection (or alias) the path names, for bodies that name only the rest
        /// (`*` when the path names none).
        name: Cow<'a, str>,
    },
    /// A name that cannot be checked as sent (percent-encoded): refused with this message.
    Refuse(&'static str),
    /// A path no rule covers: allowed only to a principal allowed everything
    /// ([`UNMAPPED`]).
    Unmapped,
}

/// What a call to a route no rule covers needs: every kind of change on all of everything,
/// which only `root`, `admin` and roles like them hold. A newer Weaviate's route is refused to
/// everyone else rather than let through unchecked.
pub const UNMAPPED: [(Action, [&str; 3]); 4] = [
    (Action::UpdateCollections, ["*", "", ""]),
    (Action::DeleteData, ["*", "*", "*"]),
    (Action::UpdateUsers, ["*", "", ""]),
    (Action::UpdateRoles, ["*", "", ""]),
];

/// The refusal message of a percent-encoded name.
pub const ENCODED_NAME: &str =
    "a collection, tenant or object name in the path or query is percent-encoded; send it as is";

const ALL: Cow<'static, str> = Cow::Borrowed("*");

/// A collection name as Weaviate checks it: the first letter upper-cased.
fn collection(name: &str) -> Result<Cow<'_, str>, &'static str> {
    if name.contains('%') {
        return Err(ENCODED_NAME);
    }
    Ok(match name.as_bytes().first() {
        Some(b) if b.is_ascii_lowercase() => {
            Cow::Owned(portcullis_auth::rbac::filter::upper_first(name))
        }
        _ => Cow::Borrowed(name),
    })
}

/// A tenant, object, shard or user name as sent.
fn plain(name: &str) -> Result<Cow<'_, str>, &'static str> {
    if name.contains('%') {
        return Err(ENCODED_NAME);
    }
    Ok(Cow::Borrowed(name))
}

/// The first value of a query parameter (raw; an encoded value is refused by its caller).
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// The tenant of the query (`*` when absent or empty).
fn tenant(query: &str) -> Result<Cow<'_, str>, &'static str> {
    match query_param(query, "tenant") {
        None | Some("") => Ok(ALL),
        Some(t) => plain(t),
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// The action of a create/read/update/delete family by method: POST creates, GET and HEAD
/// read, PUT and PATCH update, DELETE deletes; any other method is refused as unmapped.
fn crud(method: &Method, actions: [Action; 4]) -> Option<Action> {
    let [create, read, update, delete] = actions;
    match *method {
        Method::POST => Some(create),
        Method::GET | Method::HEAD => Some(read),
        Method::PUT | Method::PATCH => Some(update),
        Method::DELETE => Some(delete),
        _ => None,
    }
}

const DATA: [Action; 4] = [
    Action::CreateData,
    Action::ReadData,
    Action::UpdateData,
    Action::DeleteData,
];
const COLLECTIONS: [Action; 4] = [
    Action::CreateCollections,
    Action::ReadCollections,
    Action::UpdateCollections,
    Action::DeleteCollections,
];
const TENANTS: [Action; 4] = [
    Action::CreateTenants,
    Action::ReadTenants,
    Action::UpdateTenants,
    Action::DeleteTenants,
];
const REPLICATE: [Action; 4] = [
    Action::CreateReplicate,
    Action::ReadReplicate,
    Action::UpdateReplicate,
    Action::DeleteReplicate,
];
const ALIASES: [Action; 4] = [
    Action::CreateAliases,
    Action::ReadAliases,
    Action::UpdateAliases,
    Action::DeleteAliases,
];

/// What a call of `method` on `path` (without the query) with `query` needs.
pub fn plan<'a>(method: &Method, path: &'a str, query: &'a str) -> Plan<'a> {
    match plan_inner(method, path, query) {
        Ok(plan) => plan,
        Err(message) => Plan::Refuse(message),
    }
}

fn plan_inner<'a>(
    method: &Method,
    path: &'a str,
    query: &'a str,
) -> Result<Plan<'a>, &'static str> {
    let Some(rest) = path.strip_prefix("/v1") else {
        // `/`: the health and landing page.
        return Ok(if path == "/" && is_read(method) {
            Plan::Open
        } else {
            Plan::Unmapped
        });
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments = [""; 6];
    let mut count = 0;
    for segment in rest.split('/') {
        if count == segments.len() {
            return Ok(Plan::Unmapped);
        }
        segments[count] = segment;
        count += 1;
    }
    if segments[..count].iter().any(|s| s.is_empty()) && !rest.is_empty() {
        return Ok(Plan::Unmapped);
    }
    let s = &segments[..if rest.is_empty() { 0 } else { count }];
    let read = is_read(method);
    let post = method == Method::POST;
    let one = |need| Ok(Plan::Check(Needs::one(need)));
    Ok(match s {
        [] | ["meta"] | ["users", "own-info"] | [".well-known", ..] if read => Plan::Open,

        // Database users (Portcullis' own API).
        ["users", "db"] if read => Plan::Filtered {
            action: Action::ReadUsers,
            collection: None,
        },
        ["users", "db", id] => {
            let action = match *method {
                Method::GET | Method::HEAD => Action::ReadUsers,
                Method::POST => Action::CreateUsers,
                Method::DELETE => Action::DeleteUsers,
                _ => return Ok(Plan::Unmapped),
            };
            return one(Need::named(action, plain(id)?));
        }
        ["users", "db", id, "rotate-key" | "activate" | "deactivate"] if post => {
            return one(Need::named(Action::UpdateUsers, plain(id)?));
        }

        // Roles, assignments and groups: their handlers check, scope included.
        ["authz", ..] => Plan::Handler,

        // Schema.
        ["schema"] if read => Plan::Filtered {
            action: Action::ReadCollections,
            collection: None,
        },
        ["schema"] if post => body(BodyKind::CreateClass),
        ["schema", class] => match crud(method, COLLECTIONS) {
            Some(Action::CreateCollections) | None => Plan::Unmapped,
            Some(action) => return one(Need::collection(action, collection(class)?)),
        },
        ["schema", class, "properties"] if post => {
            let class = collection(class)?;
            Plan::Body {
                kind: BodyKind::AddProperty,
                needs: Needs::one(Need::collection(Action::UpdateCollections, class.clone()))
                    .with(Need::collection(Action::ReadCollections, class.clone())),
                name: class,
            }
        }
        ["schema", class, "shards"] if read => {
            let shard = match query_param(query, "tenant") {
                None | Some("") => ALL,
                Some(t) => plain(t)?,
            };
            return one(Need::tenant(Action::ReadTenants, collection(class)?, shard));
        }
        ["schema", class, "shards", shard] if method == Method::PUT => {
            return one(Need::tenant(
                Action::UpdateTenants,
                collection(class)?,
                plain(shard)?,
            ));
        }
        ["schema", class, "tenants"] => match crud(method, TENANTS) {
            // Filtered per tenant, as Weaviate does.
            Some(Action::ReadTenants) => Plan::Filtered {
                action: Action::ReadTenants,
                collection: Some(collection(class)?),
            },
            Some(action) => Plan::Body {
                kind: BodyKind::Tenants(action),
                needs: Needs::new(),
                name: collection(class)?,
            },
            None => Plan::Unmapped,
        },
        ["schema", class, "tenants", t] if read => {
            return one(Need::tenant(
                Action::ReadTenants,
                collection(class)?,
                plain(t)?,
            ));
        }

        // Aliases. The list is filtered per alias and its collection; read and delete by name
        // need all collections here, narrowed to the alias's target in proxy mode.
        ["aliases"] if read => Plan::Filtered {
            action: Action::ReadAliases,
            collection: None,
        },
        ["aliases"] if post => body(BodyKind::CreateAlias),
        ["aliases", alias] => match crud(method, ALIASES) {
            Some(Action::UpdateAliases) => Plan::Body {
                kind: BodyKind::UpdateAlias,
                needs: Needs::new(),
                name: collection(alias)?,
            },
            Some(Action::CreateAliases) | None => Plan::Unmapped,
            Some(action) => return one(Need::pair(action, ALL, collection(alias)?)),
        },

        // Objects.
        ["objects"] if read => match query_param(query, "class") {
            // By class the tenant is ignored, as in Weaviate.
            Some(class) if !class.is_empty() => {
                return one(Need::data(Action::ReadData, collection(class)?, ALL, ALL))
            }
            _ => return one(Need::data(Action::ReadData, ALL, tenant(query)?, ALL)),
        },
        ["objects"] if post => body(BodyKind::CreateObject),
        ["objects", "validate"] if post => body(BodyKind::ValidateObject),
        // The deprecated form without a class: the object may be in any collection.
        ["objects", id] => match crud(method, DATA) {
            Some(Action::CreateData) | None => Plan::Unmapped,
            Some(action) => return one(Need::data(action, ALL, tenant(query)?, plain(id)?)),
        },
        ["objects", class, id] => match crud(method, DATA) {
            Some(Action::CreateData) | None => Plan::Unmapped,
            Some(action) => {
                return one(Need::data(
                    action,
                    collection(class)?,
                    tenant(query)?,
                    plain(id)?,
                ))
            }
        },
        ["objects", class, _id, "references", _property]
            if matches!(*method, Method::POST | Method::PUT | Method::DELETE) =>
        {
            Plan::Body {
                kind: BodyKind::ReferenceTargets,
                needs: Needs::one(Need::data(
                    Action::UpdateData,
                    collection(class)?,
                    tenant(query)?,
                    ALL,
                )),
                name: ALL,
            }
        }
        ["objects", _id, "references", _property]
            if matches!(*method, Method::POST | Method::PUT | Method::DELETE) =>
        {
            return Ok(Plan::Check(
                Needs::one(Need::data(Action::UpdateData, ALL, tenant(query)?, ALL))
                    .with(Need::data(Action::ReadData, ALL, ALL, ALL))
                    .with(Need::collection(Action::ReadCollections, ALL)),
            ));
        }

        // Batches.
        ["batch", "objects"] if post => body(BodyKind::BatchObjects),
        ["batch", "objects"] if method == Method::DELETE => body(BodyKind::BatchDelete),
        ["batch", "references"] if post => body(BodyKind::BatchReferences),

        // GraphQL: introspection shows every collection, so all of them must be readable.
        ["graphql"] if post => Plan::Body {
            kind: BodyKind::Graphql,
            needs: Needs::one(Need::collection(Action::ReadCollections, ALL)),
            name: ALL,
        },
        ["graphql", "batch"] if post => {
            return Ok(Plan::Check(
                Needs::one(Need::collection(Action::ReadCollections, ALL)).with(Need::data(
                    Action::ReadData,
                    ALL,
                    ALL,
                    ALL,
                )),
            ));
        }

        // Nodes and cluster.
        ["nodes"] if read => return one(nodes(query, ALL)),
        ["nodes", class] if read => return one(nodes(query, collection(class)?)),
        ["cluster", "statistics"] | ["tasks"] if read => return one(Need::cluster()),

        // Backups: status and lists are open, as in Weaviate; a delete may touch any class.
        ["backups", _backend] if post => body(BodyKind::Backup),
        ["backups", _backend, _id, "restore"] if post => body(BodyKind::Backup),
        ["backups", _backend, _id] if method == Method::DELETE => {
            return one(Need::collection(Action::ManageBackups, ALL));
        }
        ["backups", ..] if read => Plan::Open,

        // Replication.
        ["replication", "replicate"] if post => body(BodyKind::Replicate),
        ["replication", "replicate", "list"] | ["replication", "sharding-state"] if read => {
            let class = match query_param(query, "collection") {
                None | Some("") => ALL,
                Some(c) => collection(c)?,
            };
            let shard = match query_param(query, "shard") {
                None | Some("") => ALL,
                Some(s) => plain(s)?,
            };
            return one(Need::pair(Action::ReadReplicate, class, shard));
        }
        ["replication", ..] => match crud(method, REPLICATE) {
            Some(action) => return one(Need::pair(action, ALL, ALL)),
            None => Plan::Unmapped,
        },

        // Classifications.
        ["classifications"] if post => body(BodyKind::Classification),
        ["classifications", _id] if read => {
            return one(Need::collection(Action::ReadCollections, ALL));
        }

        _ => Plan::Unmapped,
    })
}

/// A body-only plan.
fn body(kind: BodyKind) -> Plan<'static> {
    Plan::Body {
        kind,
        needs: Needs::new(),
        name: ALL,
    }
}

/// `read_nodes` as the `output` parameter asks: minimal by default.
fn nodes<'a>(query: &str, class: Cow<'a, str>) -> Need<'a> {
    match query_param(query, "output") {
        Some("verbose") => Need::nodes_verbose(class),
        _ => Need::nodes_minimal(),
    }
}
