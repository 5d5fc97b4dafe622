//! The RoleRegistry: the single writer of roles and assignments. Every change is committed to
//! the role tables first ([`RoleStore`], one transaction), then applied to the registry's own
//! view and published to the shared [`Policies`] before the call returns, so a request that
//! starts after the API call's reply is judged by the new roles (the key map's rule).
//!
//! Writers hold the registry's write lock for the whole change, which serialises them as an
//! actor's mailbox would; readers (the listings) take the read lock. The request path never
//! takes either: it reads only [`Policies`].
//!
//! At every start the settings' holders are written first: `root` and `read-only` exactly as
//! the settings name them (any other holder of theirs is removed), `admin` and `viewer` added.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;

use portcullis_config::RbacSettings;
use tokio::sync::RwLock;

use super::permission::{Grant, Permission};
use super::policy::{Namespace, Policies};
use super::role::{BuiltInRole, CompiledRole};
use super::store::{Assignment, RoleStore, RoleStoreError};

/// Why a role change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// A role of that name exists (built-in roles included).
    #[error("role with name {0} already exists")]
    Exists(String),
    /// No role of that name.
    #[error("role {0} not found")]
    NotFound(String),
    /// An assignment named a role that does not exist.
    #[error("one or more of the roles requested doesn't exist")]
    UnknownRoles,
    /// The subject was refused by the caller's check (run under the write lock).
    #[error("{0:?}")]
    Subject(SubjectRefusal),
    /// The stored roles were not read yet (the store shared by replicas was down at start
    /// and has not been read since); nothing was changed.
    #[error("the roles have not been read from the user store yet")]
    NotRead,
    /// The role tables failed; nothing was changed.
    #[error("{0}")]
    Store(#[from] RoleStoreError),
}

/// Why a subject may not be given or lose roles (decided by the API, which knows the users).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectRefusal {
    /// An OIDC user was named while OpenID Connect is off.
    OidcDisabled,
    /// No such user.
    Missing,
}

/// Which user namespaces exist in this configuration: the settings' root, admin and viewer
/// users are given their role in each.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserKinds {
    /// Static API keys or database users are on (namespace `db`).
    pub db: bool,
    /// OpenID Connect is on (namespace `oidc`).
    pub oidc: bool,
}

/// The registry's own view: custom roles' grants and every subject's roles.
#[derive(Debug, Default)]
struct State {
    roles: BTreeMap<String, Vec<Grant>>,
    /// Indexed by [`slot`].
    held: [BTreeMap<String, BTreeSet<String>>; 3],
    /// The settings' holders (exact, additive) not written yet: the store shared by replicas
    /// could not be reached at start. Until the first reload writes them and reads every role,
    /// only they are published and changes are refused.
    unwritten: Option<(SettingsHolders, SettingsHolders)>,
}

fn slot(ns: Namespace) -> usize {
    match ns {
        Namespace::Db => 0,
        Namespace::Oidc => 1,
        Namespace::Group => 2,
    }
}

const NAMESPACES: [Namespace; 3] = [Namespace::Db, Namespace::Oidc, Namespace::Group];

impl State {
    fn exists(&self, role: &str) -> bool {
        BuiltInRole::parse(role).is_some() || self.roles.contains_key(role)
    }
}

/// The owner of roles and assignments. Share it in an `Arc`.
#[derive(Debug)]
pub struct RoleRegistry {
    policies: Arc<Policies>,
    store: Option<RoleStore>,
    state: RwLock<State>,
}

/// The built-in roles whose holders are exactly the settings' ones.
const MIRRORED: [&str; 2] = [BuiltInRole::Root.name(), BuiltInRole::ReadOnly.name()];

/// Assignments the settings make: (namespace, subject, built-in role).
type SettingsHolders = Vec<(Namespace, String, &'static str)>;

/// The settings' holders: (exact `root`/`read-only` ones, additive `admin`/`viewer` ones).
fn settings_holders(
    settings: &RbacSettings,
    kinds: UserKinds,
) -> (SettingsHolders, SettingsHolders) {
    let user_spaces: Vec<Namespace> = [(kinds.db, Namespace::Db), (kinds.oidc, Namespace::Oidc)]
        .into_iter()
        .filter_map(|(on, ns)| on.then_some(ns))
        .collect();
    let users = |names: &[String], role: &'static str| -> SettingsHolders {
        names
            .iter()
            .flat_map(|name| user_spaces.iter().map(move |ns| (*ns, name.clone(), role)))
            .collect()
    };
    let groups = |names: &[String], role: &'static str| -> SettingsHolders {
        names
            .iter()
            .map(|name| (Namespace::Group, name.clone(), role))
            .collect()
    };
    let mut exact = users(&settings.root_users, BuiltInRole::Root.name());
    exact.extend(groups(&settings.root_groups, BuiltInRole::Root.name()));
    exact.extend(groups(
        &settings.readonly_groups,
        BuiltInRole::ReadOnly.name(),
    ));
    let mut additive = users(&settings.admin_users, BuiltInRole::Admin.name());
    additive.extend(users(&settings.viewer_users, BuiltInRole::Viewer.name()));
    (exact, additive)
}

fn borrowed<'a>(list: &'a [(Namespace, String, &'static str)]) -> Vec<Assignment<'a>> {
    list.iter()
        .map(|(ns, subject, role)| (*ns, subject.as_str(), *role))
        .collect()
}

/// Compiles stored permissions; one that no longer compiles is left out (the role grants less,
/// never more) and logged.
fn compile_stored(role: &str, permissions: &[Permission]) -> Vec<Grant> {
    let mut grants: Vec<Grant> = Vec::with_capacity(permissions.len());
    for permission in permissions {
        match Grant::from_wire(permission) {
            Ok(grant) if !grants.contains(&grant) => grants.push(grant),
            Ok(_) => {}
            Err(err) => tracing::warn!(
                role = %role,
                error = %err,
                "a stored permission of this role is no longer valid and is left out"
            ),
        }
    }
    grants
}

/// The registry's view of what the role tables hold.
fn state_of(stored: super::store::StoredRoles) -> State {
    let mut state = State::default();
    for (name, permissions) in stored.roles {
        if BuiltInRole::parse(&name).is_some() {
            tracing::warn!(role = %name, "a stored role has a built-in role's name and is ignored");
            continue;
        }
        let grants = compile_stored(&name, &permissions);
        state.roles.insert(name, grants);
    }
    for (ns, subject, role) in stored.assignments {
        if state.exists(&role) {
            state.held[slot(ns)]
                .entry(subject)
                .or_default()
                .insert(role);
        }
    }
    state
}

impl RoleRegistry {
    /// Reads every role and assignment from the store again and publishes what changed (the
    /// store shared by replicas, after another replica changed roles). Without a store,
    /// nothing to do.
    pub async fn reload(&self) -> Result<(), RoleStoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let mut state = self.state.write().await;
        if let Some((exact, additive)) = &state.unwritten {
            store
                .apply_settings(&MIRRORED, &borrowed(exact), &borrowed(additive))
                .await?;
        }
        let new = state_of(store.load().await?);
        if state.unwritten.is_some() {
            tracing::info!("the roles were read from the user store; RBAC decides in full again");
        }
        for name in state.roles.keys() {
            if !new.roles.contains_key(name) {
                self.policies.remove_role(name);
            }
        }
        for (name, grants) in &new.roles {
            if state.roles.get(name) != Some(grants) {
                self.policies
                    .set_role(name, CompiledRole::new(grants.iter().cloned()));
            }
        }
        for ns in NAMESPACES {
            let (old, fresh) = (&state.held[slot(ns)], &new.held[slot(ns)]);
            for subject in old.keys() {
                if !fresh.contains_key(subject) {
                    self.policies
                        .set_assignments(ns, subject, std::iter::empty());
                }
            }
            for (subject, roles) in fresh {
                if old.get(subject) != Some(roles) {
                    self.policies
                        .set_assignments(ns, subject, roles.iter().map(String::as_str));
                }
            }
        }
        *state = new;
        self.policies.set_loaded(true);
        Ok(())
    }

    /// Opens the registry: writes the settings' holders, loads every role and assignment
    /// (from `store`, or none without one), and publishes them. When the store shared by
    /// replicas cannot be reached (within its bound), only the settings' holders are
    /// published and [`Policies::loaded`] is false until a [`RoleRegistry::reload`] succeeds
    /// (the KeyRegistry asks for one after its first read of the store).
    pub async fn open(
        settings: &RbacSettings,
        kinds: UserKinds,
        store: Option<RoleStore>,
    ) -> Result<Self, RoleStoreError> {
        let (exact, additive) = settings_holders(settings, kinds);
        let stored = match &store {
            Some(store) => {
                let read = async {
                    store
                        .apply_settings(&MIRRORED, &borrowed(&exact), &borrowed(&additive))
                        .await?;
                    store.load().await
                };
                let read = match store.shared_bound() {
                    Some(bound) => tokio::time::timeout(bound, read)
                        .await
                        .unwrap_or(Err(RoleStoreError::Timeout(bound))),
                    None => read.await,
                };
                match read {
                    Ok(stored) => Some(stored),
                    Err(err) if store.shared_bound().is_some() && err.is_unavailable() => {
                        tracing::warn!(
                            error = %err,
                            "the roles cannot be read from the user store; until they are, only \
                             the settings' root, admin, viewer and read-only holders are \
                             authorized, other callers get 503, and role changes are refused"
                        );
                        None
                    }
                    Err(err) => return Err(err),
                }
            }
            None => None,
        };
        let loaded = stored.is_some() || store.is_none();
        let state = match stored {
            Some(stored) => state_of(stored),
            None => {
                let mut state = State::default();
                for (ns, subject, role) in exact.iter().chain(&additive) {
                    state.held[slot(*ns)]
                        .entry(subject.clone())
                        .or_default()
                        .insert((*role).to_owned());
                }
                if !loaded {
                    state.unwritten = Some((exact, additive));
                }
                state
            }
        };
        let policies = Arc::new(Policies::new());
        policies.set_loaded(loaded);
        for (name, grants) in &state.roles {
            policies.set_role(name, CompiledRole::new(grants.iter().cloned()));
        }
        for ns in NAMESPACES {
            for (subject, roles) in &state.held[slot(ns)] {
                policies.set_assignments(ns, subject, roles.iter().map(String::as_str));
            }
        }
        Ok(RoleRegistry {
            policies,
            store,
            state: RwLock::new(state),
        })
    }

    /// The published policies the request path checks.
    pub fn policies(&self) -> &Arc<Policies> {
        &self.policies
    }

    /// Every role's name, built-in ones included, sorted.
    pub async fn role_names(&self) -> Vec<String> {
        let state = self.state.read().await;
        let mut names: Vec<String> = BuiltInRole::ALL
            .iter()
            .map(|r| r.name().to_owned())
            .chain(state.roles.keys().cloned())
            .collect();
        names.sort();
        names
    }

    /// A role's grants (a built-in role's too), or `None` when it does not exist.
    pub async fn role(&self, name: &str) -> Option<Vec<Grant>> {
        if let Some(built_in) = BuiltInRole::parse(name) {
            return Some(built_in.compile().grants().to_vec());
        }
        self.state.read().await.roles.get(name).cloned()
    }

    /// Whether a role of this name exists (built-in ones included).
    pub async fn exists(&self, name: &str) -> bool {
        self.state.read().await.exists(name)
    }

    /// A subject's roles, sorted.
    pub async fn roles_of(&self, ns: Namespace, subject: &str) -> Vec<String> {
        self.state.read().await.held[slot(ns)]
            .get(subject)
            .map(|roles| roles.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every holder of a role in `ns`, sorted.
    pub async fn holders(&self, ns: Namespace, role: &str) -> Vec<String> {
        self.state.read().await.held[slot(ns)]
            .iter()
            .filter(|(_, roles)| roles.contains(role))
            .map(|(subject, _)| subject.clone())
            .collect()
    }

    /// Up to `limit` holders of a role in `ns` after `after` (from the first without it), in
    /// order: a page of a listing, so a role held by a million users is never copied whole.
    /// The second value is where the next page starts, `None` after the last one.
    pub async fn holders_page(
        &self,
        ns: Namespace,
        role: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<String>, Option<String>) {
        let state = self.state.read().await;
        let held = &state.held[slot(ns)];
        let from = match after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        let mut page = Vec::new();
        let mut subjects = held
            .range::<str, _>((from, Bound::Unbounded))
            .filter(|(_, roles)| roles.contains(role))
            .map(|(subject, _)| subject);
        for subject in subjects.by_ref().take(limit.max(1)) {
            page.push(subject.clone());
        }
        let more = subjects.next().is_some();
        let next = if more { page.last().cloned() } else { None };
        (page, next)
    }

    /// The roles of each of `subjects` in `ns` (sorted; empty for a subject holding none),
    /// in their order: one read of the registry for a page of a user listing.
    pub async fn roles_of_each<'a>(
        &self,
        ns: Namespace,
        subjects: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Vec<String>> {
        let state = self.state.read().await;
        let held = &state.held[slot(ns)];
        subjects
            .into_iter()
            .map(|subject| {
                held.get(subject)
                    .map(|roles| roles.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Every group holding at least one role, sorted.
    pub async fn groups(&self) -> Vec<String> {
        self.state.read().await.held[slot(Namespace::Group)]
            .keys()
            .cloned()
            .collect()
    }

    /// How many custom roles exist.
    pub async fn custom_role_count(&self) -> usize {
        self.state.read().await.roles.len()
    }

    /// Stores and publishes a role's new grants.
    async fn write_role(
        &self,
        state: &mut State,
        name: &str,
        grants: Vec<Grant>,
    ) -> Result<(), RoleError> {
        if let Some(store) = &self.store {
            let wire: Vec<Permission> = grants.iter().map(Grant::to_wire).collect();
            store.put_role(name, &wire).await?;
        }
        self.policies
            .set_role(name, CompiledRole::new(grants.iter().cloned()));
        state.roles.insert(name.to_owned(), grants);
        Ok(())
    }

    /// The write lock, unless the stored roles were not read yet (a start with the store
    /// down): a change then is refused, since it would be judged against roles not read.
    async fn writable(&self) -> Result<tokio::sync::RwLockWriteGuard<'_, State>, RoleError> {
        let state = self.state.write().await;
        if state.unwritten.is_some() {
            return Err(RoleError::NotRead);
        }
        Ok(state)
    }

    /// Creates a role (`Exists` when the name is taken, built-in names included).
    pub async fn create_role(&self, name: &str, grants: Vec<Grant>) -> Result<(), RoleError> {
        let mut state = self.writable().await?;
        if state.exists(name) {
            return Err(RoleError::Exists(name.to_owned()));
        }
        let mut unique: Vec<Grant> = Vec::with_capacity(grants.len());
        for grant in grants {
            if !unique.contains(&grant) {
                unique.push(grant);
            }
        }
        self.write_role(&mut state, name, unique).await
    }

    /// Adds the grants a custom role does not hold yet.
    pub async fn add_permissions(&self, name: &str, grants: Vec<Grant>) -> Result<(), RoleError> {
        let mut state = self.writable().await?;
        let mut current = state
            .roles
            .get(name)
            .cloned()
            .ok_or_else(|| RoleError::NotFound(name.to_owned()))?;
        for grant in grants {
            if !current.contains(&grant) {
                current.push(grant);
            }
        }
        self.write_role(&mut state, name, current).await
    }

    /// Removes every listed grant the custom role holds (the role stays, even emptied).
    pub async fn remove_permissions(&self, name: &str, grants: &[Grant]) -> Result<(), RoleError> {
        let mut state = self.writable().await?;
        let mut current = state
            .roles
            .get(name)
            .cloned()
            .ok_or_else(|| RoleError::NotFound(name.to_owned()))?;
        current.retain(|grant| !grants.contains(grant));
        self.write_role(&mut state, name, current).await
    }

    /// Deletes a custom role and every assignment of it; `false` when there was none.
    pub async fn delete_role(&self, name: &str) -> Result<bool, RoleError> {
        let mut state = self.writable().await?;
        if !state.roles.contains_key(name) {
            return Ok(false);
        }
        if let Some(store) = &self.store {
            store.delete_role(name).await?;
        }
        state.roles.remove(name);
        self.policies.remove_role(name);
        for ns in NAMESPACES {
            let map = &mut state.held[slot(ns)];
            let holders: Vec<String> = map
                .iter()
                .filter(|(_, roles)| roles.contains(name))
                .map(|(subject, _)| subject.clone())
                .collect();
            for subject in holders {
                let now_empty = map.get_mut(&subject).is_some_and(|roles| {
                    roles.remove(name);
                    roles.is_empty()
                });
                if now_empty {
                    map.remove(&subject);
                }
                let roles = map.get(&subject).cloned().unwrap_or_default();
                self.policies
                    .set_assignments(ns, &subject, roles.iter().map(String::as_str));
            }
        }
        Ok(true)
    }

    /// Assigns (`assign`) or revokes `roles` for `subject` in each of `namespaces`, in one
    /// transaction; `UnknownRoles` when one of them does not exist. `subject_check` (whether
    /// the user exists) runs under the write lock, after the roles' check, so a user deleted
    /// meanwhile ([`RoleRegistry::delete_db_user`]) cannot be given a role.
    pub async fn change_assignments(
        &self,
        assign: bool,
        namespaces: &[Namespace],
        subject: &str,
        roles: &[String],
        subject_check: impl Future<Output = Result<(), SubjectRefusal>>,
    ) -> Result<(), RoleError> {
        let mut state = self.writable().await?;
        if !roles.iter().all(|role| state.exists(role)) {
            return Err(RoleError::UnknownRoles);
        }
        subject_check.await.map_err(RoleError::Subject)?;
        if let Some(store) = &self.store {
            let changes: Vec<Assignment<'_>> = namespaces
                .iter()
                .flat_map(|ns| roles.iter().map(move |role| (*ns, subject, role.as_str())))
                .collect();
            store.change_assignments(assign, &changes).await?;
        }
        for ns in namespaces {
            let map = &mut state.held[slot(*ns)];
            let held = map.entry(subject.to_owned()).or_default();
            for role in roles {
                if assign {
                    held.insert(role.clone());
                } else {
                    held.remove(role);
                }
            }
            let published: Vec<String> = held.iter().cloned().collect();
            if held.is_empty() {
                map.remove(subject);
            }
            self.policies
                .set_assignments(*ns, subject, published.iter().map(String::as_str));
        }
        Ok(())
    }

    /// Runs `delete` (the KeyRegistry's deletion of a database user, which removes its `db:`
    /// assignments in the user's transaction) under the write lock, then withdraws the user's
    /// published roles, so no assignment can slip in between.
    pub async fn delete_db_user<T, E>(
        &self,
        id: &str,
        delete: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let mut state = self.state.write().await;
        let result = delete.await;
        if result.is_ok() {
            state.held[slot(Namespace::Db)].remove(id);
            self.policies
                .set_assignments(Namespace::Db, id, std::iter::empty());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::action::Action;
    use crate::rbac::role::Request;
    use crate::{Principal, PrincipalKind};
    use serde_json::json;

    fn grant(value: serde_json::Value) -> Grant {
        Grant::from_wire(&serde_json::from_value(value).expect("permission")).expect("grant")
    }

    fn db(name: &str) -> Principal {
        Principal::new(name, Vec::new(), PrincipalKind::DbUser)
    }

    const READ_MOVIE: Request<'static> = Request {
        action: Action::ReadData,
        values: ["Movie", "*", "*"],
    };

    fn settings() -> RbacSettings {
        RbacSettings {
            root_users: vec!["root-user".into()],
            readonly_groups: vec!["readers".into()],
            ..RbacSettings::default()
        }
    }

    async fn open(dir: &std::path::Path, settings: &RbacSettings) -> RoleRegistry {
        let users = crate::api_key::UserStore::open(dir).await.expect("open");
        RoleRegistry::open(
            settings,
            UserKinds {
                db: true,
                oidc: true,
            },
            Some(RoleStore::new(users)),
        )
        .await
        .expect("registry")
    }

    #[actix::test]
    async fn changes_are_published_before_they_return_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open(dir.path(), &settings()).await;
        assert!(registry.policies().allows(&db("root-user"), &READ_MOVIE));
        assert_eq!(
            registry.roles_of(Namespace::Group, "readers").await,
            ["read-only"]
        );
        let read = grant(json!({"action": "read_data", "data": {"collection": "Movie"}}));
        registry
            .create_role("movies", vec![read.clone()])
            .await
            .expect("create");
        assert!(matches!(
            registry.create_role("movies", vec![]).await,
            Err(RoleError::Exists(_))
        ));
        assert!(matches!(
            registry.create_role("admin", vec![]).await,
            Err(RoleError::Exists(_))
        ));
        registry
            .change_assignments(true, &[Namespace::Db], "alice", &["movies".into()], async {
                Ok(())
            })
            .await
            .expect("assign");
        assert!(registry.policies().allows(&db("alice"), &READ_MOVIE));
        assert!(matches!(
            registry
                .change_assignments(true, &[Namespace::Db], "alice", &["nope".into()], async {
                    Ok(())
                })
                .await,
            Err(RoleError::UnknownRoles)
        ));
        drop(registry);

        // The settings changed: root-user is no longer root.
        let registry = open(dir.path(), &RbacSettings::default()).await;
        assert!(!registry.policies().allows(&db("root-user"), &READ_MOVIE));
        assert!(registry.policies().allows(&db("alice"), &READ_MOVIE));
        assert_eq!(registry.role("movies").await, Some(vec![read.clone()]));

        registry
            .remove_permissions("movies", &[read])
            .await
            .expect("remove");
        assert!(!registry.policies().allows(&db("alice"), &READ_MOVIE));
        assert_eq!(registry.role("movies").await, Some(vec![]));
        assert!(registry.delete_role("movies").await.expect("delete"));
        assert!(registry.roles_of(Namespace::Db, "alice").await.is_empty());
        assert!(!registry.delete_role("movies").await.expect("delete again"));
    }
}
