//! Aliases and auto-schema in proxy mode: what a call's needs become once the upstream's
//! schema ([`Snapshot`]) is known. As Weaviate's data and schema use cases (`resolveAlias`), a
//! collection name that is an alias is checked as its target collection; `GET`/`DELETE
//! /v1/aliases/{A}` are checked on A's target (Weaviate >= 1.32.6); and an object created in
//! a collection that does not exist, which the upstream's auto-schema would create, also
//! needs `create_collections` on it.
//!
//! Pure functions over a snapshot: fetching it is [`crate::proxy::UpstreamSchema`]'s job.

use std::borrow::Cow;

use portcullis_auth::rbac::{Action, Domain};

use super::need::Need;
use crate::proxy::{Lookup, Snapshot};

const ALL: &str = "*";

/// The name of `need` to look up, if any: the collection of a data, collections or tenants
/// need (not `*`; not a collection being created, which is no alias), or the alias of an
/// aliases need whose collection is `*` (read or delete by the alias's name).
fn name<'n>(need: &'n Need<'_>) -> Option<&'n str> {
    let [first, second, _] = &need.values;
    let name = match need.action.domain() {
        Domain::Data | Domain::Tenants => first,
        Domain::Collections if need.action != Action::CreateCollections => first,
        Domain::Aliases if first == ALL => second,
        _ => return None,
    };
    (name != ALL && !name.is_empty()).then_some(name)
}

/// The names the needs ask to look up (an iterator that can be cloned, for the snapshot to
/// check it knows them all).
pub fn names<'n, 'a>(needs: &'n [Need<'a>]) -> impl Iterator<Item = &'n str> + Clone + use<'n, 'a> {
    needs.iter().filter_map(name)
}

/// Rewrites `needs` by `snapshot`: a collection named by an alias becomes the alias's target,
/// and an alias read or deleted by name is checked on its target collection (a name that is
/// no alias stays on `*`, which only a grant on all collections allows).
pub fn resolve(snapshot: &Snapshot, needs: &mut [Need<'_>]) {
    for need in needs.iter_mut() {
        let Some(name) = name(need) else { continue };
        if let Lookup::Alias(target) = snapshot.lookup(name) {
            need.values[0] = Cow::Owned(target.to_owned());
        }
    }
}

/// What auto-schema adds to (resolved) `needs`: `create_collections` on each collection an
/// object is created in (`create_data`) that the upstream does not have, since writing to it
/// makes Weaviate create it. Each collection once, after the needs it follows.
pub fn auto_schema(snapshot: &Snapshot, needs: &[Need<'_>]) -> Vec<Need<'static>> {
    let mut out: Vec<Need<'static>> = Vec::new();
    for need in needs {
        if need.action != Action::CreateData {
            continue;
        }
        let class = &need.values[0];
        if class == ALL || snapshot.lookup(class) != Lookup::Unknown {
            continue;
        }
        let create = Need::collection(Action::CreateCollections, Cow::Owned(class.to_string()));
        if !out.contains(&create) && !needs.contains(&create) {
            out.push(create);
        }
    }
    out
}
