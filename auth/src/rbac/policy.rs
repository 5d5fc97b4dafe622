//! The published policies: every subject's effective permissions, read by the request path
//! without messaging or allocation (the same rule as the key map: the owner publishes a change
//! before it answers the API call that made it).
//!
//! Subjects holding the same roles share one [`Effective`] set (the roles' grants merged and
//! indexed, see [`super::effective`]), in a cell every holder points to. Changing a role's
//! permissions rebuilds the sets of the role combinations that include it, one swap each,
//! whatever the number of holders; changing a subject's assignments re-points that subject only.
//!
//! Every role created gets a new number, and combinations are sets of numbers: deleting a role
//! rebuilds its combinations without it, so a holder the owner has not yet re-published is left
//! with nothing of it rather than with the old permissions, and a new role of the same name is
//! not inherited by the old holders.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use arc_swap::ArcSwap;
use dashmap::DashMap;

use super::action::Action;
use super::effective::Effective;
use super::permission::{Grant, RoleScope};
use super::role::{BuiltInRole, CompiledRole, Request};
use crate::{Principal, PrincipalKind};

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

/// A role's number: unique for the life of the process, never reused.
type RoleId = u64;

/// One combination of roles (their numbers, sorted) and its merged permissions, shared by every
/// subject holding exactly these roles.
struct Combination {
    roles: Box<[RoleId]>,
    effective: ArcSwap<Effective>,
}

/// The writer's side: roles by name and number, and the live combinations.
#[derive(Default)]
struct Roles {
    next_id: RoleId,
    by_name: HashMap<Arc<str>, (RoleId, Arc<CompiledRole>)>,
    by_id: HashMap<RoleId, Arc<CompiledRole>>,
    /// Held weakly: a combination no subject points to any more is dropped.
    combinations: HashMap<Box<[RoleId]>, Weak<Combination>>,
}

impl Roles {
    fn effective(&self, roles: &[RoleId]) -> Effective {
        Effective::new(
            roles
                .iter()
                .filter_map(|id| self.by_id.get(id))
                .flat_map(|role| role.grants()),
        )
    }

    /// Rebuilds every live combination that includes `id`, and forgets dead ones.
    fn rebuild_holding(&mut self, id: RoleId) {
        let mut live = Vec::new();
        self.combinations.retain(|_, weak| match weak.upgrade() {
            Some(combination) => {
                if combination.roles.binary_search(&id).is_ok() {
                    live.push(combination);
                }
                true
            }
            None => false,
        });
        for combination in live {
            combination
                .effective
                .store(Arc::new(self.effective(&combination.roles)));
        }
    }
}

/// Every role and every subject's roles, as the request path sees them.
pub struct Policies {
    roles: Mutex<Roles>,
    subjects: [DashMap<Box<str>, Arc<Combination>>; 3],
    /// False while the stored roles could not be read yet (a replica that started while the
    /// shared store was down): only the settings' holders are published meanwhile.
    loaded: AtomicBool,
}

impl Default for Policies {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("roles", &self.role_count())
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
            roles: Mutex::new(Roles::default()),
            subjects: [DashMap::new(), DashMap::new(), DashMap::new()],
            loaded: AtomicBool::new(true),
        };
        for built_in in BuiltInRole::ALL {
            policies.set_role(built_in.name(), built_in.compile());
        }
        policies
    }

    /// Whether the stored roles and assignments are published (false only while a replica
    /// that started with the shared store down has not read them yet). A denial is then no
    /// answer: the caller may hold a role not read yet.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub(crate) fn set_loaded(&self, loaded: bool) {
        self.loaded.store(loaded, Ordering::Release);
    }

    fn roles(&self) -> MutexGuard<'_, Roles> {
        // The state stays consistent through a panic (each step replaces whole values).
        self.roles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes a role's grants: a new role gets a new number; an existing one's holders see
    /// the new grants at once (their combinations are rebuilt).
    pub fn set_role(&self, name: &str, role: CompiledRole) {
        let role = Arc::new(role);
        let mut roles = self.roles();
        if let Some((id, current)) = roles.by_name.get_mut(name) {
            let id = *id;
            *current = Arc::clone(&role);
            roles.by_id.insert(id, role);
            roles.rebuild_holding(id);
            return;
        }
        let id = roles.next_id;
        roles.next_id += 1;
        roles
            .by_name
            .insert(Arc::from(name), (id, Arc::clone(&role)));
        roles.by_id.insert(id, role);
    }

    /// Withdraws a role: its holders keep nothing of it, and it is forgotten.
    pub fn remove_role(&self, name: &str) {
        let mut roles = self.roles();
        if let Some((id, _)) = roles.by_name.remove(name) {
            roles.by_id.remove(&id);
            roles.rebuild_holding(id);
        }
    }

    /// The role's current grants, if it exists.
    pub fn role(&self, name: &str) -> Option<Arc<CompiledRole>> {
        self.roles()
            .by_name
            .get(name)
            .map(|(_, role)| Arc::clone(role))
    }

    /// How many roles exist, built-in ones included.
    pub fn role_count(&self) -> usize {
        self.roles().by_name.len()
    }

    /// Publishes the full list of a subject's roles (unknown names are skipped: the owner
    /// checks existence before it writes an assignment).
    pub fn set_assignments<'a>(
        &self,
        namespace: Namespace,
        subject: &str,
        roles: impl IntoIterator<Item = &'a str>,
    ) {
        let mut state = self.roles();
        let mut ids: Vec<RoleId> = roles
            .into_iter()
            .filter_map(|name| state.by_name.get(name).map(|(id, _)| *id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let map = &self.subjects[namespace.index()];
        let previous = if ids.is_empty() {
            map.remove(subject).map(|(_, combination)| combination)
        } else {
            let live = state
                .combinations
                .get(ids.as_slice())
                .and_then(Weak::upgrade);
            let combination = live.unwrap_or_else(|| {
                let combination = Arc::new(Combination {
                    effective: ArcSwap::from_pointee(state.effective(&ids)),
                    roles: ids.into_boxed_slice(),
                });
                state
                    .combinations
                    .insert(combination.roles.clone(), Arc::downgrade(&combination));
                combination
            });
            map.insert(subject.into(), combination)
        };
        // The last holder of the previous combination gone: forget it.
        if let Some(previous) = previous {
            let roles = previous.roles.clone();
            drop(previous);
            if state
                .combinations
                .get(&roles)
                .is_some_and(|weak| weak.strong_count() == 0)
            {
                state.combinations.remove(&roles);
            }
        }
    }

    /// Each of the principal's subjects' effective permissions: its groups' (OIDC principals
    /// only), then the user's.
    fn for_each_held(
        &self,
        principal: &Principal,
        mut visit: impl FnMut(&Effective) -> bool,
    ) -> bool {
        let user_namespace = match principal.kind() {
            PrincipalKind::StaticKey | PrincipalKind::DbUser => Namespace::Db,
            PrincipalKind::Oidc => Namespace::Oidc,
            PrincipalKind::Anonymous => return false,
        };
        let visit_subject =
            |namespace: Namespace, name: &str, visit: &mut dyn FnMut(&Effective) -> bool| {
                self.subjects[namespace.index()]
                    .get(name)
                    .is_some_and(|held| visit(&held.effective.load()))
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
        self.for_each_held(principal, |held| held.allows(request))
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
        self.for_each_held(principal, |held| held.covers(asked))
    }

    /// How many roles a subject holds right now.
    pub fn held_count(&self, namespace: Namespace, subject: &str) -> usize {
        self.subjects[namespace.index()]
            .get(subject)
            .map_or(0, |held| held.roles.len())
    }

    /// How many distinct role combinations subjects hold (each has one shared permission set).
    pub fn combination_count(&self) -> usize {
        self.roles().combinations.len()
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
    fn holders_of_the_same_roles_share_one_set_and_unheld_sets_are_dropped() {
        let p = Policies::new();
        p.set_role(
            "movies",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Movie"}}),
            ]),
        );
        p.set_role(
            "books",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Book*"}}),
            ]),
        );
        for i in 0..100 {
            // The order and repetition of names do not make another combination.
            if i % 2 == 0 {
                p.set_assignments(Namespace::Db, &format!("u{i}"), ["movies", "books"]);
            } else {
                p.set_assignments(
                    Namespace::Db,
                    &format!("u{i}"),
                    ["books", "movies", "books"],
                );
            }
        }
        p.set_assignments(Namespace::Group, "film", ["movies"]);
        assert_eq!(p.combination_count(), 2);
        assert_eq!(p.held_count(Namespace::Db, "u7"), 2);
        // Moving every holder away drops the combination; the other one stays.
        for i in 0..100 {
            p.set_assignments(Namespace::Db, &format!("u{i}"), ["movies"]);
        }
        assert_eq!(p.combination_count(), 1);
        assert!(p.allows(&db("u3"), &READ_MOVIE));
        p.set_assignments(Namespace::Group, "film", []);
        for i in 0..100 {
            p.set_assignments(Namespace::Db, &format!("u{i}"), []);
        }
        assert_eq!(p.combination_count(), 0);
    }

    #[test]
    fn a_role_change_reaches_every_combination_that_holds_it_and_no_other() {
        let p = Policies::new();
        p.set_role("r", role(vec![]));
        p.set_role(
            "s",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Book"}}),
            ]),
        );
        p.set_assignments(Namespace::Db, "only-r", ["r"]);
        p.set_assignments(Namespace::Db, "r-and-s", ["r", "s"]);
        p.set_assignments(Namespace::Db, "only-s", ["s"]);
        p.set_assignments(Namespace::Oidc, "viewer", ["viewer"]);
        assert!(!p.allows(&db("only-r"), &READ_MOVIE));
        p.set_role(
            "r",
            role(vec![
                json!({"action": "read_data", "data": {"collection": "Mov*"}}),
            ]),
        );
        assert!(p.allows(&db("only-r"), &READ_MOVIE));
        assert!(p.allows(&db("r-and-s"), &READ_MOVIE));
        assert!(!p.allows(&db("only-s"), &READ_MOVIE));
        p.remove_role("r");
        assert!(!p.allows(&db("only-r"), &READ_MOVIE));
        assert!(!p.allows(&db("r-and-s"), &READ_MOVIE));
        let read_book = Request::data(Action::ReadData, "Book", "*", "*");
        assert!(p.allows(&db("r-and-s"), &read_book));
        assert!(p.allows(&oidc("viewer", &[]), &READ_MOVIE));
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
