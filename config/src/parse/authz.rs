//! Authorization: Weaviate's admin list, or its role-based access control (RBAC) with the
//! built-in role holders named by the settings, and the refusals of the two together or of
//! RBAC with anonymous access.

use super::values::parse_bool;
use super::{Field, Parser};
use crate::settings::{AdminList, AuthorizationSettings, RbacSettings};
use crate::vars;

impl Parser<'_> {
    pub(super) fn authorization(&mut self) -> AuthorizationSettings {
        let enabled = self.boolean(vars::ADMINLIST_ENABLED);
        let mut rbac_on = None;
        let mut rbac_invalid = false;
        for name in [vars::RBAC_ENABLED, vars::ENABLE_RBAC] {
            match self.boolean(name) {
                Field::Set(true) => {
                    rbac_on.get_or_insert(name);
                }
                Field::Invalid => rbac_invalid = true,
                Field::Set(false) | Field::Unset => {}
            }
        }
        if let (true, Some(rbac)) = (enabled.is_true(), rbac_on) {
            self.report.problem(
                vars::ADMINLIST_ENABLED,
                format!("cannot enable adminlist and rbac at the same time ({rbac} is also true)"),
                format!(
                    "enable only one of them: unset {} or {rbac}",
                    vars::ADMINLIST_ENABLED
                ),
            );
        }
        // Read again without reporting: authentication() has reported a bad value already.
        let anonymous = self
            .get(vars::ANONYMOUS_ACCESS_ENABLED)
            .and_then(parse_bool)
            .unwrap_or(false);
        if let (true, Some(rbac)) = (anonymous, rbac_on) {
            self.report.problem(
                rbac,
                format!(
                    "cannot enable anonymous access and rbac authorization ({} is also true)",
                    vars::ANONYMOUS_ACCESS_ENABLED
                ),
                format!(
                    "set {}=false and authenticate callers with API keys, database users or \
                     OpenID Connect; roles are assigned to them",
                    vars::ANONYMOUS_ACCESS_ENABLED
                ),
            );
        }
        let rbac = match rbac_on {
            Some(_) => Some(self.rbac()),
            None => {
                if !rbac_invalid {
                    self.notice_ignored(
                        vars::RBAC_SETTINGS,
                        "AUTHORIZATION_RBAC_ENABLED is not true",
                    );
                }
                None
            }
        };

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
                return AuthorizationSettings {
                    admin_list: None,
                    rbac,
                };
            }
            Field::Invalid => {
                return AuthorizationSettings {
                    admin_list: None,
                    rbac,
                }
            }
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
            rbac,
        }
    }

    /// The RBAC variables, read when RBAC is on. As in Weaviate, nothing checks that a name is
    /// on only one list: the holder gets every role it is named for.
    fn rbac(&mut self) -> RbacSettings {
        let root_users =
            self.list_or_fallback(vars::RBAC_ROOT_USERS, vars::RBAC_ADMIN_USERS_FALLBACK);
        let root_groups = self.list(vars::RBAC_ROOT_GROUPS).unwrap_or(Vec::new());
        if root_users.is_empty() && root_groups.is_empty() {
            self.report.notice(format!(
                "RBAC is on but neither {} nor {} names anyone: no caller holds the `root` role, \
                 so only holders of roles granted earlier can manage roles",
                vars::RBAC_ROOT_USERS,
                vars::RBAC_ROOT_GROUPS
            ));
        }
        RbacSettings {
            root_users,
            root_groups,
            readonly_groups: self.list_or_fallback(
                vars::RBAC_READONLY_GROUPS,
                vars::RBAC_READONLY_ROOT_GROUPS_FALLBACK,
            ),
            viewer_users: self.list(vars::RBAC_VIEWER_USERS).unwrap_or(Vec::new()),
            admin_users: self.list(vars::RBAC_ADMIN_USERS).unwrap_or(Vec::new()),
            ip_in_audit_log_disabled: self
                .boolean(vars::RBAC_IP_IN_AUDIT_LOG_DISABLED)
                .unwrap_or(false),
        }
    }

    /// The list in `name`, else (only when `name` is unset, as Weaviate reads it) in `fallback`.
    fn list_or_fallback(&mut self, name: &str, fallback: &str) -> Vec<String> {
        if self.is_set(name) {
            self.notice_ignored(&[fallback], &format!("{name} is set"));
            self.list(name).unwrap_or(Vec::new())
        } else {
            self.list(fallback).unwrap_or(Vec::new())
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

    /// Static keys for alice and bob (an authentication method, so anonymous access is off).
    fn keyed_rbac(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        keyed("pk-test-alpha-91c3,pk-test-bravo-27d8", "alice,bob", extra)
    }

    fn rbac_settings(vars: &[(&str, &str)]) -> crate::settings::RbacSettings {
        ok(vars).authorization.rbac.expect("rbac on")
    }

    #[test]
    fn rbac_is_on_with_either_name_and_off_by_default() {
        for name in [RBAC_ENABLED, ENABLE_RBAC] {
            let settings = ok(&keyed_rbac(&[(name, "true"), (RBAC_ROOT_USERS, "alice")]));
            assert!(settings.authorization.rbac.is_some(), "{name}");
            assert_eq!(settings.authorization.admin_list, None);
        }
        assert_eq!(ok(&keyed_rbac(&[])).authorization.rbac, None);
        let off = ok(&keyed_rbac(&[
            (RBAC_ENABLED, "false"),
            (ENABLE_RBAC, "off"),
        ]));
        assert_eq!(off.authorization.rbac, None);
        // One of the two true is enough, whatever the other says.
        let on = ok(&keyed_rbac(&[(RBAC_ENABLED, "false"), (ENABLE_RBAC, "on")]));
        assert!(on.authorization.rbac.is_some());
    }

    #[test]
    fn rbac_reads_every_list_and_the_audit_switch() {
        let rbac = rbac_settings(&keyed_rbac(&[
            (RBAC_ENABLED, "true"),
            (RBAC_ROOT_USERS, "alice, carol"),
            (RBAC_ROOT_GROUPS, "admins"),
            (RBAC_READONLY_GROUPS, "readers,auditors"),
            (RBAC_VIEWER_USERS, "bob"),
            (RBAC_ADMIN_USERS, "dave"),
            (RBAC_IP_IN_AUDIT_LOG_DISABLED, "true"),
        ]));
        assert_eq!(rbac.root_users, ["alice", "carol"]);
        assert_eq!(rbac.root_groups, ["admins"]);
        assert_eq!(rbac.readonly_groups, ["readers", "auditors"]);
        assert_eq!(rbac.viewer_users, ["bob"]);
        assert_eq!(rbac.admin_users, ["dave"]);
        assert!(rbac.ip_in_audit_log_disabled);
        assert!(rbac.is_root_user("carol") && !rbac.is_root_user("bob"));
        assert!(rbac.is_settings_group("auditors") && !rbac.is_settings_group("bob"));
        let defaults = rbac_settings(&keyed_rbac(&[
            (RBAC_ENABLED, "true"),
            (RBAC_ROOT_USERS, "alice"),
        ]));
        assert!(!defaults.ip_in_audit_log_disabled);
        assert!(defaults.viewer_users.is_empty() && defaults.readonly_groups.is_empty());
    }

    #[test]
    fn root_users_fall_back_to_admin_users_only_when_unset() {
        let rbac = rbac_settings(&keyed_rbac(&[
            (RBAC_ENABLED, "true"),
            (RBAC_ADMIN_USERS_FALLBACK, "alice"),
        ]));
        assert_eq!(rbac.root_users, ["alice"]);
        let settings = ok(&keyed_rbac(&[
            (RBAC_ENABLED, "true"),
            (RBAC_ROOT_USERS, "bob"),
            (RBAC_ADMIN_USERS_FALLBACK, "alice"),
        ]));
        let root = settings.authorization.rbac.expect("rbac").root_users;
        assert_eq!(root, ["bob"]);
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with(RBAC_ADMIN_USERS_FALLBACK));
    }

    #[test]
    fn readonly_groups_fall_back_to_the_experimental_name() {
        let rbac = rbac_settings(&keyed_rbac(&[
            (RBAC_ENABLED, "true"),
            (RBAC_ROOT_USERS, "alice"),
            (RBAC_READONLY_ROOT_GROUPS_FALLBACK, "readers"),
        ]));
        assert_eq!(rbac.readonly_groups, ["readers"]);
        let rbac = rbac_settings(&keyed_rbac(&[
            (RBAC_ENABLED, "true"),
            (RBAC_ROOT_USERS, "alice"),
            (RBAC_READONLY_GROUPS, "auditors"),
            (RBAC_READONLY_ROOT_GROUPS_FALLBACK, "readers"),
        ]));
        assert_eq!(rbac.readonly_groups, ["auditors"]);
    }

    #[test]
    fn rejects_bad_rbac_values_naming_the_variable() {
        for (name, value) in [
            (RBAC_ROOT_USERS, "alice,,bob"),
            (RBAC_ROOT_GROUPS, " "),
            (RBAC_READONLY_GROUPS, "a,"),
            (RBAC_VIEWER_USERS, ","),
            (RBAC_ADMIN_USERS, ""),
            (RBAC_IP_IN_AUDIT_LOG_DISABLED, "maybe"),
        ] {
            let vars = keyed_rbac(&[
                (RBAC_ENABLED, "true"),
                (RBAC_ROOT_GROUPS, "g"),
                (name, value),
            ]);
            only_problem(&vars, name);
        }
        only_problem(&keyed_rbac(&[(RBAC_ENABLED, "yes")]), RBAC_ENABLED);
        only_problem(&keyed_rbac(&[(ENABLE_RBAC, "2")]), ENABLE_RBAC);
    }

    #[test]
    fn rejects_rbac_with_anonymous_access() {
        for name in [RBAC_ENABLED, ENABLE_RBAC] {
            let problem = only_problem(&open(&[(name, "true"), (RBAC_ROOT_USERS, "root")]), name);
            assert!(
                problem
                    .message
                    .starts_with("cannot enable anonymous access and rbac authorization"),
                "{problem}"
            );
        }
    }

    #[test]
    fn rejects_rbac_and_adminlist_together() {
        let problems = problems(&keyed_rbac(&[
            (ADMINLIST_ENABLED, "true"),
            (ADMINLIST_USERS, "alice"),
            (RBAC_ENABLED, "on"),
            (RBAC_ROOT_USERS, "alice"),
        ]));
        assert_eq!(variables(&problems), [ADMINLIST_ENABLED]);
        assert!(
            problems[0]
                .message
                .contains("cannot enable adminlist and rbac at the same time"),
            "{problems:#?}"
        );
    }

    #[test]
    fn rbac_settings_without_the_switch_give_notices() {
        let settings = ok(&open(&[
            (RBAC_ROOT_USERS, "root"),
            (RBAC_IP_IN_AUDIT_LOG_DISABLED, "true"),
        ]));
        assert_eq!(settings.authorization.rbac, None);
        assert_eq!(settings.notices.len(), 2, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with(RBAC_ROOT_USERS));
        assert!(settings.notices[0].contains("AUTHORIZATION_RBAC_ENABLED is not true"));
    }

    #[test]
    fn rbac_without_any_root_gives_a_notice() {
        let settings = ok(&keyed_rbac(&[(RBAC_ENABLED, "true")]));
        assert!(settings.authorization.rbac.is_some());
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].contains("no caller holds the `root` role"));
    }

    #[test]
    fn rbac_settings_are_described() {
        let settings = ok(&keyed_rbac(&[
            (RBAC_ENABLED, "true"),
            (RBAC_ROOT_USERS, "alice"),
            (RBAC_READONLY_GROUPS, "readers"),
        ]));
        let lines = settings.describe();
        assert!(lines.contains(&(RBAC_ENABLED, "true".to_owned())));
        assert!(lines.contains(&(RBAC_ROOT_USERS, "alice".to_owned())));
        assert!(lines.contains(&(RBAC_READONLY_GROUPS, "readers".to_owned())));
    }
}
