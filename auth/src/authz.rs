//! Authorization: the one decision of what a principal may do ([`Authorizer::allows`]), for
//! every protocol. The database follows the admin list: admins may do everything, read-only
//! subjects may only read, and with the list off everyone may do everything (Weaviate's
//! default). Database users are managed by an administrator only: an admin-list admin, or,
//! with the list off, the bootstrap admin (`docs/users.md`). A configuration reload replaces
//! the list in place ([`Authorizer::replace`]).

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use portcullis_config::AuthorizationSettings;

use crate::api_key::BOOTSTRAP_ADMIN;
use crate::{Principal, PrincipalKind};

/// What a route does to the database. The route table in the server assigns one to each route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Reads: GET and HEAD, and queries such as `POST /v1/graphql`.
    Read,
    /// Everything else.
    Write,
}

impl Verb {
    /// The word used in 403 messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
        }
    }
}

/// What a request does, and to what: the input of every authorization decision. The route
/// table in the server assigns one to each route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reads or writes the database.
    Data(Verb),
    /// Lists or reads database users ([`Verb::Read`]); creates, rotates, activates,
    /// deactivates or deletes them ([`Verb::Write`]).
    Users(Verb),
}

impl Action {
    /// The verb, for 403 messages.
    pub fn verb(self) -> Verb {
        match self {
            Action::Data(verb) | Action::Users(verb) => verb,
        }
    }
}

impl From<Verb> for Action {
    /// A verb alone is on the database.
    fn from(verb: Verb) -> Self {
        Action::Data(verb)
    }
}

#[derive(Debug, Default)]
struct AdminListSets {
    users: HashSet<String>,
    readonly_users: HashSet<String>,
    groups: HashSet<String>,
    readonly_groups: HashSet<String>,
}

/// Decides whether a principal may perform a verb. The admin list can be replaced while the
/// server runs ([`Authorizer::replace`], a configuration reload); each decision reads one
/// consistent list.
#[derive(Debug)]
pub struct Authorizer {
    /// Read once per decision: one atomic load, no lock.
    admin_list: ArcSwapOption<AdminListSets>,
}

fn sets_of(settings: &AuthorizationSettings) -> Option<Arc<AdminListSets>> {
    settings.admin_list.as_ref().map(|list| {
        Arc::new(AdminListSets {
            users: list.users.iter().cloned().collect(),
            readonly_users: list.readonly_users.iter().cloned().collect(),
            groups: list.groups.iter().cloned().collect(),
            readonly_groups: list.readonly_groups.iter().cloned().collect(),
        })
    })
}

impl Authorizer {
    /// Builds the authorizer from settings. With the admin list off, everyone authenticated may
    /// do everything (Weaviate's default).
    pub fn from_settings(settings: &AuthorizationSettings) -> Self {
        Authorizer {
            admin_list: ArcSwapOption::new(sets_of(settings)),
        }
    }

    /// Replaces the admin list (turning it on or off too): every decision that starts after
    /// this returns follows the new list.
    pub fn replace(&self, settings: &AuthorizationSettings) {
        self.admin_list.store(sets_of(settings));
    }

    /// Whether the admin list is on.
    pub fn admin_list_enabled(&self) -> bool {
        self.admin_list.load().is_some()
    }

    /// Whether `principal` is an admin: on the admin user or group list, or anyone when the
    /// admin list is off.
    pub fn is_admin(&self, principal: &Principal) -> bool {
        is_admin(self.admin_list.load().as_deref(), principal)
    }

    /// Whether `principal` administers database users (manages them, and sees static users
    /// and key prefixes): an admin-list admin when the list is on; with it off, only the
    /// bootstrap admin, the database user `admin` (a static or OIDC user of that name is not
    /// it, and no one else can create it: creating users takes an administrator). Never the
    /// anonymous caller. Any other rule let any database user rotate, deactivate or delete
    /// `admin` and take the server over.
    pub fn manages_users(&self, principal: &Principal) -> bool {
        manages_users(self.admin_list.load().as_deref(), principal)
    }

    /// Whether `principal` may perform `action` (a bare [`Verb`] is on the database).
    /// Database users: administrators do everything ([`Authorizer::manages_users`]); with the
    /// admin list on, its read-only subjects may also list and read them, as in Weaviate; the
    /// anonymous caller never may.
    pub fn allows(&self, principal: &Principal, action: impl Into<Action>) -> bool {
        let guard = self.admin_list.load();
        let list = guard.as_deref();
        match action.into() {
            Action::Data(verb) => allows_data(list, principal, verb),
            Action::Users(Verb::Write) => manages_users(list, principal),
            Action::Users(Verb::Read) => {
                manages_users(list, principal)
                    || (list.is_some()
                        && !principal.is_anonymous()
                        && allows_data(list, principal, Verb::Read))
            }
        }
    }
}

fn is_admin(list: Option<&AdminListSets>, principal: &Principal) -> bool {
    match list {
        None => true,
        Some(list) => {
            list.users.contains(principal.username())
                || principal.groups().iter().any(|g| list.groups.contains(g))
        }
    }
}

fn manages_users(list: Option<&AdminListSets>, principal: &Principal) -> bool {
    if principal.is_anonymous() {
        return false;
    }
    match list {
        Some(_) => is_admin(list, principal),
        None => {
            principal.kind() == PrincipalKind::DbUser && principal.username() == BOOTSTRAP_ADMIN
        }
    }
}

/// Whether `principal` may perform `verb` on the database.
fn allows_data(list: Option<&AdminListSets>, principal: &Principal, verb: Verb) -> bool {
    let Some(sets) = list else {
        return true;
    };
    if is_admin(list, principal) {
        return true;
    }
    verb == Verb::Read
        && (sets.readonly_users.contains(principal.username())
            || principal
                .groups()
                .iter()
                .any(|g| sets.readonly_groups.contains(g)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrincipalKind;
    use portcullis_config::{AdminList, AuthorizationSettings};

    fn authorizer() -> Authorizer {
        Authorizer::from_settings(&AuthorizationSettings {
            admin_list: Some(AdminList {
                users: vec!["root".into()],
                readonly_users: vec!["reader".into(), "anonymous".into()],
                groups: vec!["admins".into()],
                readonly_groups: vec!["viewers".into()],
            }),
            rbac: None,
        })
    }

    fn user(name: &str, groups: &[&str]) -> Principal {
        Principal::new(
            name,
            groups.iter().map(|g| g.to_string()).collect(),
            PrincipalKind::Oidc,
        )
    }

    #[test]
    fn admin_list_decides_each_subject_and_verb() {
        let az = authorizer();
        let cases = [
            (user("root", &[]), true, true),
            (user("reader", &[]), true, false),
            (user("stranger", &[]), false, false),
            (user("stranger", &["admins"]), true, true),
            (user("stranger", &["viewers"]), true, false),
            (user("stranger", &["other", "viewers"]), true, false),
            (user("", &[]), false, false),
            (Principal::anonymous(), true, false),
        ];
        for (p, read, write) in cases {
            assert_eq!(az.allows(&p, Verb::Read), read, "{} read", p.username());
            assert_eq!(az.allows(&p, Verb::Write), write, "{} write", p.username());
        }
    }

    #[test]
    fn anonymous_is_denied_when_not_listed() {
        let az = Authorizer::from_settings(&AuthorizationSettings {
            admin_list: Some(AdminList {
                users: vec!["root".into()],
                readonly_users: vec![],
                groups: vec![],
                readonly_groups: vec![],
            }),
            rbac: None,
        });
        assert!(!az.allows(&Principal::anonymous(), Verb::Read));
    }

    #[test]
    fn anonymous_never_manages_users() {
        let open = Authorizer::from_settings(&AuthorizationSettings::default());
        assert!(open.manages_users(&db_user(BOOTSTRAP_ADMIN)));
        assert!(!open.manages_users(&Principal::anonymous()));
        let listed = Authorizer::from_settings(&AuthorizationSettings {
            admin_list: Some(AdminList {
                users: vec!["root".into(), "anonymous".into()],
                readonly_users: vec![],
                groups: vec![],
                readonly_groups: vec![],
            }),
            rbac: None,
        });
        assert!(listed.manages_users(&user("root", &[])));
        assert!(!listed.manages_users(&user("reader", &[])));
        assert!(!listed.manages_users(&Principal::anonymous()));
    }

    fn db_user(name: &str) -> Principal {
        Principal::new(name, Vec::new(), PrincipalKind::DbUser)
    }

    /// Issue 11, item 2: with no authorization configured, any database user could rotate,
    /// deactivate or delete `admin` and take it over.
    #[test]
    fn without_admin_list_only_the_bootstrap_admin_administers_users() {
        let az = Authorizer::from_settings(&AuthorizationSettings::default());
        let cases = [
            (db_user(BOOTSTRAP_ADMIN), true),
            (db_user("mallory"), false),
            (db_user("Admin"), false),
            (
                Principal::new(BOOTSTRAP_ADMIN, Vec::new(), PrincipalKind::StaticKey),
                false,
            ),
            (user(BOOTSTRAP_ADMIN, &["admins"]), false),
            (Principal::anonymous(), false),
        ];
        for (p, admin) in cases {
            let who = format!("{} ({})", p.username(), p.kind().as_str());
            assert_eq!(az.manages_users(&p), admin, "{who}");
            assert_eq!(az.allows(&p, Action::Users(Verb::Write)), admin, "{who}");
            assert_eq!(az.allows(&p, Action::Users(Verb::Read)), admin, "{who}");
            // The database stays open to everyone without the admin list.
            assert!(az.allows(&p, Verb::Write), "{who}");
        }
    }

    #[test]
    fn with_admin_list_admins_manage_users_and_readers_read_them() {
        let az = authorizer();
        let cases = [
            (user("root", &[]), true, true),
            (user("stranger", &["admins"]), true, true),
            (user("reader", &[]), true, false),
            (user("stranger", &["viewers"]), true, false),
            (user("stranger", &[]), false, false),
            // The bootstrap admin is not special when the list is on.
            (db_user(BOOTSTRAP_ADMIN), false, false),
            // Anonymous is on the read-only list, but never reads users.
            (Principal::anonymous(), false, false),
        ];
        for (p, read, write) in cases {
            let who = p.username().to_owned();
            assert_eq!(az.allows(&p, Action::Users(Verb::Read)), read, "{who} read");
            assert_eq!(
                az.allows(&p, Action::Users(Verb::Write)),
                write,
                "{who} write"
            );
        }
    }

    #[test]
    fn without_admin_list_everyone_may_do_everything() {
        let az = Authorizer::from_settings(&AuthorizationSettings::default());
        assert!(az.allows(&user("anyone", &[]), Verb::Write));
        assert!(az.allows(&Principal::anonymous(), Verb::Write));
        assert!(az.is_admin(&user("anyone", &[])));
        assert!(az.allows(&user("anyone", &[]), Action::Data(Verb::Write)));
    }

    #[test]
    fn replaced_admin_list_decides_the_next_check() {
        let az = authorizer();
        let alice = user("alice", &[]);
        assert!(!az.allows(&alice, Action::Users(Verb::Write)));
        let with_alice = AuthorizationSettings {
            admin_list: Some(AdminList {
                users: vec!["alice".into()],
                readonly_users: vec![],
                groups: vec![],
                readonly_groups: vec![],
            }),
            rbac: None,
        };
        az.replace(&with_alice);
        assert!(az.allows(&alice, Action::Users(Verb::Write)));
        assert!(az.allows(&alice, Verb::Write));
        // root was on the old list only.
        assert!(!az.allows(&user("root", &[]), Verb::Read));
        az.replace(&AuthorizationSettings {
            admin_list: None,
            rbac: None,
        });
        assert!(!az.admin_list_enabled());
        assert!(!az.allows(&alice, Action::Users(Verb::Write)));
        assert!(az.allows(&user("root", &[]), Verb::Write));
    }
}
