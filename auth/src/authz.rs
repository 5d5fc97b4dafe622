//! Authorization by admin list: admins may do everything, read-only subjects may only read.

use std::collections::HashSet;

use portcullis_config::AuthorizationSettings;

use crate::Principal;

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

#[derive(Debug, Default)]
struct AdminListSets {
    users: HashSet<String>,
    readonly_users: HashSet<String>,
    groups: HashSet<String>,
    readonly_groups: HashSet<String>,
}

/// Decides whether a principal may perform a verb.
#[derive(Debug)]
pub struct Authorizer {
    admin_list: Option<AdminListSets>,
}

impl Authorizer {
    /// Builds the authorizer from settings. With the admin list off, everyone authenticated may
    /// do everything (Weaviate's default).
    pub fn from_settings(settings: &AuthorizationSettings) -> Self {
        let admin_list = settings.admin_list.as_ref().map(|list| AdminListSets {
            users: list.users.iter().cloned().collect(),
            readonly_users: list.readonly_users.iter().cloned().collect(),
            groups: list.groups.iter().cloned().collect(),
            readonly_groups: list.readonly_groups.iter().cloned().collect(),
        });
        Authorizer { admin_list }
    }

    /// Whether the admin list is on.
    pub fn admin_list_enabled(&self) -> bool {
        self.admin_list.is_some()
    }

    /// Whether `principal` is an admin: on the admin user or group list, or anyone when the
    /// admin list is off.
    pub fn is_admin(&self, principal: &Principal) -> bool {
        match &self.admin_list {
            None => true,
            Some(list) => {
                list.users.contains(principal.username())
                    || principal.groups().iter().any(|g| list.groups.contains(g))
            }
        }
    }

    /// Whether `principal` may manage database users (and see static users and key
    /// prefixes): an admin, and never the anonymous caller, even with the admin list off.
    pub fn manages_users(&self, principal: &Principal) -> bool {
        !principal.is_anonymous() && self.is_admin(principal)
    }

    /// Whether `principal` may perform `verb`.
    pub fn allows(&self, principal: &Principal, verb: Verb) -> bool {
        let Some(list) = &self.admin_list else {
            return true;
        };
        if self.is_admin(principal) {
            return true;
        }
        verb == Verb::Read
            && (list.readonly_users.contains(principal.username())
                || principal
                    .groups()
                    .iter()
                    .any(|g| list.readonly_groups.contains(g)))
    }
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
        });
        assert!(!az.allows(&Principal::anonymous(), Verb::Read));
    }

    #[test]
    fn anonymous_never_manages_users() {
        let open = Authorizer::from_settings(&AuthorizationSettings { admin_list: None });
        assert!(open.manages_users(&user("anyone", &[])));
        assert!(!open.manages_users(&Principal::anonymous()));
        let listed = Authorizer::from_settings(&AuthorizationSettings {
            admin_list: Some(AdminList {
                users: vec!["root".into(), "anonymous".into()],
                readonly_users: vec![],
                groups: vec![],
                readonly_groups: vec![],
            }),
        });
        assert!(listed.manages_users(&user("root", &[])));
        assert!(!listed.manages_users(&user("reader", &[])));
        assert!(!listed.manages_users(&Principal::anonymous()));
    }

    #[test]
    fn without_admin_list_everyone_may_do_everything() {
        let az = Authorizer::from_settings(&AuthorizationSettings { admin_list: None });
        assert!(az.allows(&user("anyone", &[]), Verb::Write));
        assert!(az.allows(&Principal::anonymous(), Verb::Write));
        assert!(az.is_admin(&user("anyone", &[])));
    }
}
