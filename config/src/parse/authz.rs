//! Authorization: Weaviate's admin list, and RBAC refused as not supported yet.

use super::{Field, Parser};
use crate::settings::{AdminList, AuthorizationSettings};
use crate::vars;

impl Parser<'_> {
    pub(super) fn authorization(&mut self) -> AuthorizationSettings {
        let enabled = self.boolean(vars::ADMINLIST_ENABLED);
        let mut rbac_on = None;
        for name in [vars::RBAC_ENABLED, vars::ENABLE_RBAC] {
            if self.boolean(name).is_true() {
                rbac_on.get_or_insert(name);
                self.report.problem(
                    name,
                    "RBAC is not supported yet; use AUTHORIZATION_ADMINLIST_*",
                    format!(
                        "set {name}=false (or unset it) and use {}=true with {} and {}",
                        vars::ADMINLIST_ENABLED,
                        vars::ADMINLIST_USERS,
                        vars::ADMINLIST_READONLY_USERS
                    ),
                );
            }
        }
        if let (true, Some(rbac)) = (enabled.is_true(), rbac_on) {
            self.report.problem(
                vars::ADMINLIST_ENABLED,
                format!("cannot enable adminlist and rbac at the same time ({rbac} is also true)"),
                "enable only one of them; Portcullis supports only the admin list",
            );
        }

        let lists = [
            vars::ADMINLIST_USERS,
            vars::ADMINLIST_READONLY_USERS,
            vars::ADMINLIST_GROUPS,
            vars::ADMINLIST_READONLY_GROUPS,
        ];
        match enabled {
            Field::Set(true) => {}
            Field::Set(false) | Field::Unset => {
                self.notice_ignored(&lists, "AUTHORIZATION_ADMINLIST_ENABLED is not true");
                return AuthorizationSettings { admin_list: None };
            }
            Field::Invalid => return AuthorizationSettings { admin_list: None },
        }

        let admin_list = AdminList {
            users: self.list(vars::ADMINLIST_USERS).unwrap_or(Vec::new()),
            readonly_users: self
                .list(vars::ADMINLIST_READONLY_USERS)
                .unwrap_or(Vec::new()),
            groups: self.list(vars::ADMINLIST_GROUPS).unwrap_or(Vec::new()),
            readonly_groups: self
                .list(vars::ADMINLIST_READONLY_GROUPS)
                .unwrap_or(Vec::new()),
        };
        self.reject_overlap(
            "user",
            (vars::ADMINLIST_USERS, &admin_list.users),
            (vars::ADMINLIST_READONLY_USERS, &admin_list.readonly_users),
        );
        self.reject_overlap(
            "group",
            (vars::ADMINLIST_GROUPS, &admin_list.groups),
            (vars::ADMINLIST_READONLY_GROUPS, &admin_list.readonly_groups),
        );
        AuthorizationSettings {
            admin_list: Some(admin_list),
        }
    }

    /// A subject on both an admin list and its read-only list is a problem naming the subject.
    fn reject_overlap(
        &mut self,
        kind: &str,
        (admins_var, admins): (&str, &[String]),
        (readonly_var, readonly): (&str, &[String]),
    ) {
        let mut reported: Vec<&String> = Vec::new();
        for subject in readonly.iter().filter(|s| admins.contains(s)) {
            if reported.contains(&subject) {
                continue;
            }
            reported.push(subject);
            self.report.problem(
                readonly_var,
                format!("{kind} {subject:?} is on both {admins_var} and {readonly_var}"),
                format!("remove {subject:?} from one of the two lists"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::tests::*;
    use crate::vars::*;

    #[test]
    fn rejects_a_user_on_both_admin_and_readonly_lists() {
        let vars = open(&[
            (ADMINLIST_ENABLED, "true"),
            (ADMINLIST_USERS, "alice,bob"),
            (ADMINLIST_READONLY_USERS, "bob,carol"),
        ]);
        let problem = only_problem(&vars, ADMINLIST_READONLY_USERS);
        assert!(problem.message.contains("\"bob\""), "{problem}");
    }

    #[test]
    fn rejects_a_group_on_both_group_lists() {
        let vars = open(&[
            (ADMINLIST_ENABLED, "true"),
            (ADMINLIST_GROUPS, "ops"),
            (ADMINLIST_READONLY_GROUPS, "ops,readers"),
        ]);
        let problem = only_problem(&vars, ADMINLIST_READONLY_GROUPS);
        assert!(problem.message.contains("\"ops\""), "{problem}");
    }

    #[test]
    fn admin_list_accepts_anonymous_as_a_user() {
        let vars = open(&[
            (ADMINLIST_ENABLED, "true"),
            (ADMINLIST_USERS, "alice"),
            (ADMINLIST_READONLY_USERS, "anonymous"),
        ]);
        let admin = ok(&vars).authorization.admin_list.expect("admin list");
        assert_eq!(admin.readonly_users, ["anonymous"]);
    }

    #[test]
    fn admin_list_variables_without_the_switch_give_notices() {
        let settings = ok(&open(&[
            (ADMINLIST_USERS, "alice"),
            (ADMINLIST_READONLY_GROUPS, "readers"),
        ]));
        assert_eq!(settings.authorization.admin_list, None);
        assert_eq!(settings.notices.len(), 2, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with(ADMINLIST_USERS));
        assert!(settings.notices[1].starts_with(ADMINLIST_READONLY_GROUPS));
    }

    #[test]
    fn rejects_rbac_as_unsupported() {
        for name in [RBAC_ENABLED, ENABLE_RBAC] {
            let problem = only_problem(&open(&[(name, "true")]), name);
            assert_eq!(
                problem.message,
                "RBAC is not supported yet; use AUTHORIZATION_ADMINLIST_*"
            );
        }
        ok(&open(&[(RBAC_ENABLED, "false"), (ENABLE_RBAC, "off")]));
    }

    #[test]
    fn rejects_rbac_and_adminlist_together() {
        let problems = problems(&open(&[(ADMINLIST_ENABLED, "true"), (RBAC_ENABLED, "on")]));
        assert_eq!(variables(&problems), [RBAC_ENABLED, ADMINLIST_ENABLED]);
        assert!(
            problems[1]
                .message
                .contains("cannot enable adminlist and rbac at the same time"),
            "{problems:#?}"
        );
    }

    #[test]
    fn rbac_settings_give_a_notice() {
        let settings = ok(&open(&[("AUTHORIZATION_RBAC_ROOT_USERS", "root")]));
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].contains("RBAC is not supported yet"));
    }
}
