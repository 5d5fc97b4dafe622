//! A role's permissions compiled ([`CompiledRole`]: checked once merged with the other held roles',
//! [`super::effective`]), the request side of a check ([`Request`]) and the four built-in roles.

use super::action::Action;
use super::permission::Grant;

/// What one request asks: an action on concrete names, in the domain's filter order (see
/// [`super::permission`]). A name of `*` asks for "all", which only a grant on `*` allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The action.
    pub action: Action,
    /// The names, unused ones empty.
    pub values: [&'a str; 3],
}

impl<'a> Request<'a> {
    /// An action on one collection (collections, backups).
    pub fn collection(action: Action, collection: &'a str) -> Self {
        Request {
            action,
            values: [collection, "", ""],
        }
    }

    /// A tenants action.
    pub fn tenant(action: Action, collection: &'a str, tenant: &'a str) -> Self {
        Request {
            action,
            values: [collection, tenant, ""],
        }
    }

    /// A data action.
    pub fn data(action: Action, collection: &'a str, tenant: &'a str, object: &'a str) -> Self {
        Request {
            action,
            values: [collection, tenant, object],
        }
    }

    /// `read_nodes` with minimal output.
    pub fn nodes_minimal() -> Self {
        Request {
            action: Action::ReadNodes,
            values: ["minimal", "", ""],
        }
    }

    /// `read_nodes` with verbose output for a collection (`*` for all).
    pub fn nodes_verbose(collection: &'a str) -> Self {
        Request {
            action: Action::ReadNodes,
            values: ["verbose", collection, ""],
        }
    }

    /// `read_cluster`.
    pub fn cluster() -> Self {
        Request {
            action: Action::ReadCluster,
            values: ["", "", ""],
        }
    }

    /// An action on one name: a role, user or group (or `*`).
    pub fn named(action: Action, name: &'a str) -> Self {
        Request {
            action,
            values: [name, "", ""],
        }
    }

    /// An action on two names: replicate (collection, shard) or aliases (collection, alias).
    pub fn pair(action: Action, first: &'a str, second: &'a str) -> Self {
        Request {
            action,
            values: [first, second, ""],
        }
    }
}

impl Grant {
    /// Whether this grant allows the request (same action, every filter matching).
    pub fn allows(&self, request: &Request<'_>) -> bool {
        self.action == request.action
            && self
                .filters
                .iter()
                .zip(request.values)
                .all(|(filter, value)| filter.matches(value))
    }
}

/// A role's grants, deduplicated and grouped by action. Checks are made on the merged sets of
/// every role a subject holds ([`super::effective::Effective`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledRole {
    grants: Box<[Grant]>,
}

impl CompiledRole {
    /// Compiles grants: duplicates dropped, grouped by action, order within an action kept.
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Self {
        let mut unique: Vec<Grant> = Vec::new();
        for grant in grants {
            if !unique.contains(&grant) {
                unique.push(grant);
            }
        }
        unique.sort_by_key(|g| g.action.index());
        CompiledRole {
            grants: unique.into_boxed_slice(),
        }
    }

    /// A role without permissions (what a deleted role's holders are left with).
    pub fn empty() -> Self {
        Self::new([])
    }

    /// Every grant, by action.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// How many grants.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether the role has no grant.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

/// Weaviate's four built-in roles. They cannot be created, changed or deleted; `root` and
/// `read-only` are assigned only by the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltInRole {
    /// Everything; assigned by `AUTHORIZATION_RBAC_ROOT_USERS` / `_ROOT_GROUPS` only.
    Root,
    /// Everything; assignable.
    Admin,
    /// Every `read_*` action; assignable.
    Viewer,
    /// Every `read_*` action; assigned by `AUTHORIZATION_RBAC_READONLY_GROUPS` only.
    ReadOnly,
}

impl BuiltInRole {
    /// All four.
    pub const ALL: [BuiltInRole; 4] = [
        BuiltInRole::Root,
        BuiltInRole::Admin,
        BuiltInRole::Viewer,
        BuiltInRole::ReadOnly,
    ];

    /// The role's name.
    pub const fn name(self) -> &'static str {
        match self {
            BuiltInRole::Root => "root",
            BuiltInRole::Admin => "admin",
            BuiltInRole::Viewer => "viewer",
            BuiltInRole::ReadOnly => "read-only",
        }
    }

    /// The built-in role of this name.
    pub fn parse(name: &str) -> Option<BuiltInRole> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the API may assign and revoke it (not `root` nor `read-only`).
    pub fn assignable(self) -> bool {
        matches!(self, BuiltInRole::Admin | BuiltInRole::Viewer)
    }

    /// Its grants: every action (or every read action) on everything, roles with scope all.
    pub fn compile(self) -> CompiledRole {
        let reads_only = matches!(self, BuiltInRole::Viewer | BuiltInRole::ReadOnly);
        CompiledRole::new(
            Action::ALL
                .iter()
                .filter(|a| !reads_only || a.is_read())
                .map(|&a| Grant::everything(a)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::action::ACTION_COUNT;
    use crate::rbac::effective::Effective;
    use crate::rbac::permission::{Permission, RoleScope};
    use serde_json::json;

    fn checked(role: CompiledRole) -> Effective {
        Effective::new(role.grants())
    }

    fn grant(value: serde_json::Value) -> Grant {
        let permission: Permission = serde_json::from_value(value).unwrap();
        Grant::from_wire(&permission).unwrap()
    }

    /// A role's grants, checkable as a subject holding only this role checks them.
    fn role(values: Vec<serde_json::Value>) -> Effective {
        Effective::new(CompiledRole::new(values.into_iter().map(grant)).grants())
    }

    #[test]
    fn a_role_allows_what_its_grants_match_and_nothing_else() {
        let r = role(vec![
            json!({"action": "read_data", "data": {"collection": "Movie*"}}),
            json!({"action": "update_data", "data": {"collection": "Movie", "tenant": "t1"}}),
        ]);
        assert!(r.allows(&Request::data(Action::ReadData, "Movie", "*", "*")));
        assert!(r.allows(&Request::data(Action::ReadData, "MovieNight", "t", "x")));
        assert!(!r.allows(&Request::data(Action::ReadData, "Book", "*", "*")));
        // An "all" request needs a grant on `*`.
        assert!(!r.allows(&Request::data(Action::ReadData, "*", "*", "*")));
        assert!(r.allows(&Request::data(Action::UpdateData, "Movie", "t1", "id")));
        assert!(!r.allows(&Request::data(Action::UpdateData, "Movie", "t2", "id")));
        // The tenant filter is literal: all tenants is not one tenant.
        assert!(!r.allows(&Request::data(Action::UpdateData, "Movie", "*", "*")));
        assert!(!r.allows(&Request::data(Action::DeleteData, "Movie", "t1", "id")));
    }

    #[test]
    fn a_tenant_grant_never_grants_the_collection() {
        let r = role(vec![
            json!({"action": "read_tenants", "tenants": {"collection": "*"}}),
        ]);
        assert!(r.allows(&Request::tenant(Action::ReadTenants, "Movie", "t1")));
        assert!(!r.allows(&Request::collection(Action::ReadCollections, "Movie")));
    }

    #[test]
    fn verbose_and_minimal_nodes_are_separate() {
        let minimal = role(vec![json!({"action": "read_nodes"})]);
        let verbose = role(vec![
            json!({"action": "read_nodes", "nodes": {"verbosity": "verbose", "collection": "Movie"}}),
        ]);
        assert!(minimal.allows(&Request::nodes_minimal()));
        assert!(!minimal.allows(&Request::nodes_verbose("Movie")));
        assert!(verbose.allows(&Request::nodes_verbose("Movie")));
        assert!(!verbose.allows(&Request::nodes_verbose("*")));
        assert!(!verbose.allows(&Request::nodes_minimal()));
        let viewer = checked(BuiltInRole::Viewer.compile());
        assert!(viewer.allows(&Request::nodes_minimal()));
        assert!(viewer.allows(&Request::nodes_verbose("*")));
    }

    #[test]
    fn role_scope_is_the_widest_matching_grant() {
        let r = role(vec![
            json!({"action": "update_roles", "roles": {"role": "team-*", "scope": "match"}}),
            json!({"action": "update_roles", "roles": {"role": "team-a", "scope": "all"}}),
        ]);
        assert_eq!(
            r.role_scope(Action::UpdateRoles, "team-a"),
            Some(RoleScope::All)
        );
        assert_eq!(
            r.role_scope(Action::UpdateRoles, "team-b"),
            Some(RoleScope::Match)
        );
        assert_eq!(r.role_scope(Action::UpdateRoles, "other"), None);
        assert_eq!(r.role_scope(Action::DeleteRoles, "team-a"), None);
    }

    #[test]
    fn built_in_roles_hold_everything_or_every_read() {
        assert_eq!(BuiltInRole::Admin.compile().len(), ACTION_COUNT);
        let admin = checked(BuiltInRole::Admin.compile());
        for action in Action::ALL {
            assert!(
                admin.allows(&Request::data(*action, "*", "*", "*")),
                "{action:?}"
            );
        }
        assert_eq!(BuiltInRole::Viewer.compile().len(), 10);
        let viewer = checked(BuiltInRole::Viewer.compile());
        assert!(viewer.allows(&Request::data(Action::ReadData, "*", "*", "*")));
        assert!(!viewer.allows(&Request::data(Action::CreateData, "Movie", "", "")));
        assert_eq!(
            viewer.role_scope(Action::ReadRoles, "anything"),
            Some(RoleScope::All)
        );
        assert_eq!(BuiltInRole::parse("read-only"), Some(BuiltInRole::ReadOnly));
        assert!(!BuiltInRole::Root.assignable());
        assert!(BuiltInRole::Viewer.assignable());
    }

    #[test]
    fn duplicates_collapse_and_coverage_uses_the_action_s_grants() {
        let compiled = CompiledRole::new(
            [
                json!({"action": "read_data", "data": {"collection": "Movie"}}),
                json!({"action": "read_data", "data": {"collection": "Movie"}}),
                json!({"action": "read_data", "data": {"collection": "Book*"}}),
            ]
            .map(grant),
        );
        assert_eq!(compiled.len(), 2);
        let r = checked(compiled);
        assert!(r.covers(&grant(
            json!({"action": "read_data", "data": {"collection": "BookX"}})
        )));
        assert!(!r.covers(&grant(json!({"action": "read_data"}))));
        assert!(!r.covers(&grant(
            json!({"action": "update_data", "data": {"collection": "Movie"}})
        )));
    }
}
