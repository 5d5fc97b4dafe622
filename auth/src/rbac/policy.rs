//! The published policies: every role's compiled grants, and every subject's roles, read by
//! the request path without messaging or allocation (the same rule as the key map: the owner
//! publishes a change before it answers the API call that made it).
//!
//! Each role lives in one cell that every holder shares, so changing a role's permissions swaps
//! one pointer whatever the number of holders; changing a subject's assignments re-publishes
//! that subject only. Deleting a role empties its cell, so a holder the owner has not yet
//! re-published is left with nothing rather than with the old permissions, and a new role of
//! the same name gets a new cell.

use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;

use super::action::Action;
use super::permission::{Grant, RoleScope};
use super::role::{BuiltInRole, CompiledRole, Request};
use crate::{Principal, PrincipalKind};

/// One role's current grants, shared by all its holders.
pub type RoleCell = ArcSwap<CompiledRole>;

/// Whose roles: Weaviate's subject prefixes `db:`, `oidc:` and `group:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Static API-key users and database users (`db:`), which share names.
    Db,
    /// OIDC users (`oidc:`).
    Oidc,
    /// OIDC groups (`group:`).
    Group,
}

impl Namespace {
    /// The subject prefix without its colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Db => "db",
            Namespace::Oidc => "oidc",
            Namespace::Group => "group",
        }
    }

    fn index(self) -> usize {
        match self {
            Namespace::Db => 0,
            Namespace::Oidc => 1,
            Namespace::Group => 2,
        }
    }
}

type Held = Arc<[Arc<RoleCell>]>;

/// Every role and every subject's roles, as the request path sees them.
pub struct Policies {
    roles: DashMap<Arc<str>, Arc<RoleCell>>,
    subjects: [DashMap<Box<str>, Held>; 3],
}

impl Default for Policies {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("roles", &self.roles.len())
            .field(
                "subjects",
                &self.subjects.iter().map(DashMap::len).sum::<usize>(),
            )
            .finish()
    }
}

impl Policies {
    /// Policies holding only the built-in roles, assigned to no one.
    pub fn new() -> Self {
        let policies = Policies {
            roles: DashMap::new(),
            subjects: [DashMap::new(), DashMap::new(), DashMap::new()],
        };
        for built_in in BuiltInRole::ALL {
            policies.set_role(built_in.name(), built_in.compile());
        }
        policies
    }

    /// Publishes a role's grants: a new role gets a new cell; an existing one's cell is swapped,
    /// which every holder sees at once.
    pub fn set_role(&self, name: &str, role: CompiledRole) {
        if let Some(cell) = self.roles.get(name) {
            cell.store(Arc::new(role));
            return;
        }
        self.roles
            .insert(Arc::from(name), Arc::new(ArcSwap::from_pointee(role)));
    }

    /// Withdraws a role: its cell is emptied (holders keep nothing of it) and forgotten.
    pub fn remove_role(&self, name: &str) {
        if let Some((_, cell)) = self.roles.remove(name) {
            cell.store(Arc::new(CompiledRole::empty()));
        }
    }

    /// The role's current grants, if it exists.
    pub fn role(&self, name: &str) -> Option<Arc<CompiledRole>> {
        self.roles.get(name).map(|cell| cell.load_full())
    }

    /// How many roles exist, built-in ones included.
    pub fn role_count(&self) -> usize {
        self.roles.len()
    }

    /// Publishes the full list of a subject's roles (unknown names are skipped: the owner
    /// checks existence before it writes an assignment).
    pub fn set_assignments<'a>(
        &self,
        namespace: Namespace,
        subject: &str,
        roles: impl IntoIterator<Item = &'a str>,
    ) {
        let held: Vec<Arc<RoleCell>> = roles
            .into_iter()
            .filter_map(|name| self.roles.get(name).map(|cell| Arc::clone(&cell)))
            .collect();
        let map = &self.subjects[namespace.index()];
        if held.is_empty() {
            map.remove(subject);
        } else {
            map.insert(subject.into(), held.into());
        }
    }

    /// Each of the principal's subjects' held roles: its groups (OIDC principals only), then
    /// the user.
    fn for_each_held(
        &self,
        principal: &Principal,
        mut visit: impl FnMut(&CompiledRole) -> bool,
    ) -> bool {
        let user_namespace = match principal.kind() {
            PrincipalKind::StaticKey | PrincipalKind::DbUser => Namespace::Db,
            PrincipalKind::Oidc => Namespace::Oidc,
            PrincipalKind::Anonymous => return false,
        };
        let visit_subject =
            |namespace: Namespace, name: &str, visit: &mut dyn FnMut(&CompiledRole) -> bool| {
                self.subjects[namespace.index()]
                    .get(name)
                    .is_some_and(|held| held.iter().any(|cell| visit(&cell.load())))
            };
        if user_namespace == Namespace::Oidc
            && principal
                .groups()
                .iter()
                .any(|group| visit_subject(Namespace::Group, group, &mut visit))
        {
            return true;
        }
        visit_subject(user_namespace, principal.username(), &mut visit)
    }

    /// Whether any of the principal's roles allows the request. Allow-only: any grant wins.
    pub fn allows(&self, principal: &Principal, request: &Request<'_>) -> bool {
        self.for_each_held(principal, |role| role.allows(request))
    }

    /// The widest scope with which the principal may perform a role action on `role`.
    pub fn role_scope(
        &self,
        principal: &Principal,
        action: Action,
        role: &str,
    ) -> Option<RoleScope> {
        let mut best = None;
        self.for_each_held(principal, |held| {
            best = best.max(held.role_scope(action, role));
            best == Some(RoleScope::All)
        });
        best
    }

    /// Whether the principal's roles cover `asked` (what a `match`-scoped role manager must
    /// hold for every permission it grants or removes).
    pub fn covers(&self, principal: &Principal, asked: &Grant) -> bool {
        self.for_each_held(principal, |role| role.covers(asked))
    }

    /// How many roles a subject holds right now.
    pub fn held_count(&self, namespace: Namespace, subject: &str) -> usize {
        self.subjects[namespace.index()]
            .get(subject)
            .map_or(0, |held| held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::permission::Permission;
    use serde_json::json;

    fn role(values: Vec<serde_json::Value>) -> CompiledRole {
        CompiledRole::new(values.into_iter().map(|v| {
            let p: Permission = serde_json::from_value(v).unwrap();
            Grant::from_wire(&p).unwrap()
        }))
    }

    fn oidc(name: &str, groups: &[&str]) -> Principal {
        Principal::new(
            name,
            groups.iter().map(|g| g.to_string()).collect(),
            PrincipalKind::Oidc,
        )
    }

    fn db(name: &str) -> Principal {
        Principal::new(name, Vec::new(), PrincipalKind::DbUser)
    }

    const READ_MOVIE: Request<'static> = Request {
        action: Action::ReadData,
        values: ["Movie", "*", "*"],
    };

    #[test]
    fn subjects_get_what_their_roles_and_groups_hold() {
        let p = Policies::new();
        p.set_role(
            "movies",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Movie"}}),
            ]),
        );
        p.set_assignments(Namespace::Db, "alice", ["movies"]);
        p.set_assignments(Namespace::Group, "film", ["movies"]);
        assert!(p.allows(&db("alice"), &READ_MOVIE));
        assert!(!p.allows(&db("bob"), &READ_MOVIE));
        // Namespaces are separate: an OIDC user named alice is not the database user.
        assert!(!p.allows(&oidc("alice", &[]), &READ_MOVIE));
        assert!(p.allows(&oidc("carol", &["other", "film"]), &READ_MOVIE));
        // Groups count for OIDC principals only.
        assert!(!p.allows(
            &Principal::new("film", vec!["film".into()], PrincipalKind::StaticKey),
            &READ_MOVIE
        ));
        assert!(!p.allows(&Principal::anonymous(), &READ_MOVIE));
    }

    #[test]
    fn changing_a_role_reaches_every_holder_at_once() {
        let p = Policies::new();
        p.set_role(
            "r",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Book"}}),
            ]),
        );
        for i in 0..1000 {
            p.set_assignments(Namespace::Db, &format!("u{i}"), ["r"]);
        }
        assert!(!p.allows(&db("u999"), &READ_MOVIE));
        p.set_role(
            "r",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Movie"}}),
            ]),
        );
        assert!(p.allows(&db("u0"), &READ_MOVIE));
        assert!(p.allows(&db("u999"), &READ_MOVIE));
    }

    #[test]
    fn a_deleted_role_grants_nothing_and_a_new_one_of_its_name_is_not_inherited() {
        let p = Policies::new();
        p.set_role("r", role(vec![json!({"action": "read_data"})]));
        p.set_assignments(Namespace::Db, "alice", ["r"]);
        p.remove_role("r");
        assert!(!p.allows(&db("alice"), &READ_MOVIE));
        p.set_role("r", role(vec![json!({"action": "read_data"})]));
        assert!(!p.allows(&db("alice"), &READ_MOVIE));
        assert!(p.role("r").is_some());
        p.set_assignments(Namespace::Db, "alice", ["r"]);
        assert!(p.allows(&db("alice"), &READ_MOVIE));
    }

    #[test]
    fn revoking_every_role_removes_the_subject() {
        let p = Policies::new();
        p.set_assignments(Namespace::Oidc, "alice", ["viewer", "no-such-role"]);
        assert_eq!(p.held_count(Namespace::Oidc, "alice"), 1);
        assert!(p.allows(&oidc("alice", &[]), &READ_MOVIE));
        p.set_assignments(Namespace::Oidc, "alice", []);
        assert_eq!(p.held_count(Namespace::Oidc, "alice"), 0);
        assert!(!p.allows(&oidc("alice", &[]), &READ_MOVIE));
    }

    #[test]
    fn scope_and_coverage_combine_all_held_roles() {
        let p = Policies::new();
        p.set_role(
            "a",
            role(vec![
                json!({"action": "update_roles", "roles": {"role": "team-*"}}),
            ]),
        );
        p.set_role(
            "b",
            role(vec![
                json!({"action": "update_roles", "roles": {"role": "team-x", "scope": "all"}}),
            ]),
        );
        p.set_role(
            "c",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Movie*"}}),
            ]),
        );
        p.set_assignments(Namespace::Db, "mgr", ["a", "b", "c"]);
        let mgr = db("mgr");
        assert_eq!(
            p.role_scope(&mgr, Action::UpdateRoles, "team-x"),
            Some(RoleScope::All)
        );
        assert_eq!(
            p.role_scope(&mgr, Action::UpdateRoles, "team-y"),
            Some(RoleScope::Match)
        );
        assert_eq!(p.role_scope(&mgr, Action::UpdateRoles, "ops"), None);
        let asked =
            |v| Grant::from_wire(&serde_json::from_value::<Permission>(v).unwrap()).unwrap();
        assert!(p.covers(
            &mgr,
            &asked(json!({"action": "read_data", "data": {"collection": "MovieA"}}))
        ));
        assert!(!p.covers(&mgr, &asked(json!({"action": "read_data"}))));
        assert_eq!(p.role_count(), 4 + 3);
    }
}
