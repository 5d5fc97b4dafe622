//! Authentication: which methods are on, static API keys, and the first-start bootstrap of
//! database users. OIDC's own variables are read in `oidc.rs`.

use std::collections::HashMap;

use super::{Field, Parser};
use crate::secret::Secret;
use crate::settings::{AuthenticationSettings, StaticApiKeys};
use crate::vars;

impl Parser<'_> {
    pub(super) fn authentication(&mut self) -> AuthenticationSettings {
        let apikey_enabled = self.boolean(vars::APIKEY_ENABLED);
        let api_key = self.static_keys(&apikey_enabled);
        let db_users = self.boolean(vars::DB_USERS_ENABLED);
        let oidc = self.boolean(vars::OIDC_ENABLED);
        let oidc_settings = self.oidc(&oidc);

        let anonymous = self.boolean(vars::ANONYMOUS_ACCESS_ENABLED);
        let methods = [&apikey_enabled, &db_users, &oidc];
        let methods_known = !methods.iter().any(|m| m.is_invalid());
        let any_method = methods.iter().any(|m| m.is_true());
        // Weaviate opens the database to everyone when no method is enabled. Portcullis
        // instead enables database users and has the server create an `admin` user with a
        // generated key on first start, unless anonymous access was explicitly chosen.
        let bootstrap = methods_known && !any_method && !anonymous.is_true();
        if bootstrap {
            self.report.notice(format!(
                "no authentication method is enabled: database users are turned on and an \
                 `admin` user is created on first start (set {}=true to serve every request \
                 without a credential instead)",
                vars::ANONYMOUS_ACCESS_ENABLED
            ));
        }

        let bootstrap_admin_key = self.bootstrap_admin_key(bootstrap);

        AuthenticationSettings {
            anonymous_access: anonymous.unwrap_or(false),
            api_key,
            db_users_enabled: db_users.unwrap_or(false) || bootstrap,
            bootstrap_admin: bootstrap,
            bootstrap_admin_key,
            oidc: oidc_settings,
        }
    }

    /// The operator's key for the bootstrap admin, when the bootstrap applies; otherwise a
    /// notice that it is ignored.
    fn bootstrap_admin_key(&mut self, bootstrap: bool) -> Option<Secret<String>> {
        if !bootstrap {
            let file = format!("{}{}", vars::BOOTSTRAP_ADMIN_KEY, vars::FILE_SUFFIX);
            self.notice_ignored(
                &[vars::BOOTSTRAP_ADMIN_KEY, &file],
                "an authentication method or anonymous access is configured, so no bootstrap \
                 admin is created",
            );
            return None;
        }
        match self.secret(vars::BOOTSTRAP_ADMIN_KEY) {
            Field::Set((key, from)) if key.trim().is_empty() => {
                self.report.problem(
                    &from,
                    "is empty".to_owned(),
                    "set it to a key printed by `portcullis generate-key`, or unset it to have \
                     one generated and printed at first start",
                );
                None
            }
            Field::Set((key, _)) => Some(Secret::new(key.trim().to_owned())),
            Field::Unset | Field::Invalid => None,
        }
    }

    fn static_keys(&mut self, enabled: &Field<bool>) -> Option<StaticApiKeys> {
        let keys_file = format!("{}{}", vars::APIKEY_ALLOWED_KEYS, vars::FILE_SUFFIX);
        match enabled {
            Field::Set(true) => {}
            Field::Set(false) | Field::Unset => {
                self.notice_ignored(
                    &[vars::APIKEY_ALLOWED_KEYS, &keys_file, vars::APIKEY_USERS],
                    "AUTHENTICATION_APIKEY_ENABLED is not true",
                );
                return None;
            }
            Field::Invalid => return None,
        }

        // The key count is known even when a key is invalid, so the user count is still checked.
        let (keys, key_count) = match self.secret(vars::APIKEY_ALLOWED_KEYS) {
            Field::Set((raw, from)) => self.keys(&raw, &from),
            Field::Unset => {
                self.report.problem(
                    vars::APIKEY_ALLOWED_KEYS,
                    "at least one key is required when AUTHENTICATION_APIKEY_ENABLED is true",
                    format!(
                        "set {}=<key>[,<key>...] or {keys_file}=<path of a file holding them>",
                        vars::APIKEY_ALLOWED_KEYS
                    ),
                );
                (None, None)
            }
            Field::Invalid => (None, None),
        };

        let users = match self.list(vars::APIKEY_USERS) {
            Field::Set(users) => Some(users),
            Field::Unset => {
                self.report.problem(
                    vars::APIKEY_USERS,
                    "at least one user is required when AUTHENTICATION_APIKEY_ENABLED is true",
                    format!(
                        "set {}=<user> for all keys, or one user per key in key order",
                        vars::APIKEY_USERS
                    ),
                );
                None
            }
            Field::Invalid => None,
        };

        if let (Some(key_count), Some(users)) = (key_count, &users) {
            if users.len() != 1 && users.len() != key_count {
                self.report.problem(
                    vars::APIKEY_USERS,
                    format!(
                        "length of users and keys must match, alternatively provide single user \
                         for all keys ({} users, {} keys)",
                        users.len(),
                        key_count
                    ),
                    "list one user per key in the same order, or a single user for all keys",
                );
            }
        }

        Some(StaticApiKeys {
            keys: keys.unwrap_or_default(),
            users: users.unwrap_or_default(),
        })
    }

    /// Validates static keys: the keys if all are valid, and the count if the list splits.
    /// Problems name keys by position only, never by value.
    fn keys(&mut self, raw: &str, from: &str) -> (Option<Vec<Secret<String>>>, Option<usize>) {
        let Field::Set(keys) = self.split(from, raw) else {
            return (None, None);
        };
        let count = keys.len();
        let mut valid = true;
        let with_control: Vec<String> = keys
            .iter()
            .enumerate()
            .filter(|(_, key)| key.chars().any(char::is_control))
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        if !with_control.is_empty() {
            valid = false;
            self.report.problem(
                from,
                format!(
                    "key {} contains a control character such as a line break",
                    with_control.join(", ")
                ),
                "separate keys with ',' only; a key file holds one comma-separated line",
            );
        }
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        let mut repeats = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(first) = first_seen.get(key.as_str()) {
                repeats.push(format!("key {} repeats key {}", i + 1, first + 1));
            } else {
                first_seen.insert(key, i);
            }
        }
        if !repeats.is_empty() {
            valid = false;
            self.report.problem(
                from,
                format!("keys must be unique: {}", repeats.join(", ")),
                "remove the repeated keys (keys are counted from 1, left to right)",
            );
        }
        (
            valid.then(|| keys.into_iter().map(Secret::new).collect()),
            Some(count),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::tests::*;
    use crate::vars::*;

    #[test]
    fn maps_one_user_to_every_key() {
        let keys = format!("{KEY_A},{KEY_B},{KEY_C}");
        let settings = ok(&keyed(&keys, "alice", &[]));
        let api_key = settings.authentication.api_key.expect("static keys");
        let expected = pairs(&[(KEY_A, "alice"), (KEY_B, "alice"), (KEY_C, "alice")]);
        assert!(
            exposed(&api_key) == expected,
            "keys do not all map to alice"
        );
        assert!(!settings.authentication.anonymous_access);
    }

    #[test]
    fn maps_n_users_to_n_keys_in_order() {
        let keys = format!("{KEY_A}, {KEY_B} ,{KEY_C}");
        let settings = ok(&keyed(&keys, "alice,bob,carol", &[]));
        let api_key = settings.authentication.api_key.expect("static keys");
        let expected = pairs(&[(KEY_A, "alice"), (KEY_B, "bob"), (KEY_C, "carol")]);
        assert!(
            exposed(&api_key) == expected,
            "key i does not map to user i"
        );
    }

    #[test]
    fn rejects_two_users_for_three_keys() {
        let keys = format!("{KEY_A},{KEY_B},{KEY_C}");
        let problem = only_problem(&keyed(&keys, "alice,bob", &[]), APIKEY_USERS);
        assert!(
            problem.message.contains(
                "length of users and keys must match, alternatively provide single user for all keys"
            ),
            "{problem}"
        );
    }

    #[test]
    fn rejects_duplicate_keys() {
        let keys = format!("{KEY_A},{KEY_B},{KEY_A}");
        let problem = only_problem(&keyed(&keys, "alice", &[]), APIKEY_ALLOWED_KEYS);
        assert_eq!(problem.message, "keys must be unique: key 3 repeats key 1");
    }

    #[test]
    fn rejects_an_empty_key() {
        let keys = format!("{KEY_A},,{KEY_B}");
        let problem = only_problem(&keyed(&keys, "alice", &[]), APIKEY_ALLOWED_KEYS);
        assert_eq!(problem.message, "item 2 is empty");
    }

    #[test]
    fn rejects_an_empty_user() {
        let keys = format!("{KEY_A},{KEY_B}");
        only_problem(&keyed(&keys, "alice, ", &[]), APIKEY_USERS);
    }

    #[test]
    fn rejects_a_key_with_a_control_character() {
        let keys = format!("{KEY_A}\n{KEY_B}");
        let problem = only_problem(&keyed(&keys, "alice", &[]), APIKEY_ALLOWED_KEYS);
        assert!(problem.message.contains("key 1"), "{problem}");
    }

    #[test]
    fn rejects_enabled_static_keys_without_keys_or_users() {
        let problems = problems(&[(APIKEY_ENABLED, "true")]);
        assert_eq!(variables(&problems), [APIKEY_ALLOWED_KEYS, APIKEY_USERS]);
    }

    #[test]
    fn ignores_static_key_variables_with_a_notice_when_disabled() {
        for enabled in [None, Some("false")] {
            let mut vars = open(&[(APIKEY_ALLOWED_KEYS, KEY_A), (APIKEY_USERS, "alice")]);
            if let Some(enabled) = enabled {
                vars.push((APIKEY_ENABLED, enabled));
            }
            let settings = ok(&vars);
            assert_eq!(settings.authentication.api_key, None);
            assert_eq!(settings.notices.len(), 2, "{:?}", settings.notices);
            assert!(settings.notices[0].starts_with(APIKEY_ALLOWED_KEYS));
            assert!(settings.notices[1].starts_with(APIKEY_USERS));
            assert_no_key_in(&settings.notices.join("\n"));
        }
    }

    #[test]
    fn bootstraps_database_users_when_no_method_is_enabled() {
        for vars in [
            &[][..],
            &[(ANONYMOUS_ACCESS_ENABLED, "false")][..],
            &[(APIKEY_ENABLED, "false"), (DB_USERS_ENABLED, "false")][..],
        ] {
            let settings = ok(vars);
            let auth = &settings.authentication;
            assert!(auth.bootstrap_admin, "{vars:?}");
            assert!(auth.db_users_enabled, "{vars:?}");
            assert!(!auth.anonymous_access, "{vars:?}");
            assert!(
                settings.notices.iter().any(|n| n.contains("admin")),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn does_not_bootstrap_when_a_method_or_anonymous_is_chosen() {
        assert!(!ok(&open(&[])).authentication.bootstrap_admin);
        assert!(
            !ok(&keyed(KEY_A, "alice", &[]))
                .authentication
                .bootstrap_admin
        );
        assert!(
            !ok(&[(DB_USERS_ENABLED, "true")])
                .authentication
                .bootstrap_admin
        );
    }

    #[test]
    fn reads_the_bootstrap_admin_key_from_the_variable_or_its_file() {
        const KEY: &str = "pcu_AbCdEfGhIjKl_supplied-by-the-operator";
        let settings = ok(&[(BOOTSTRAP_ADMIN_KEY, KEY)]);
        let key = settings.authentication.bootstrap_admin_key.as_ref();
        assert_eq!(key.map(|k| k.expose().as_str()), Some(KEY));

        let file = temp_file(".key", &format!("{KEY}\n"));
        let from_file = "PORTCULLIS_BOOTSTRAP_ADMIN_KEY_FILE";
        let settings = ok(&[(from_file, path_of(&file))]);
        let key = settings.authentication.bootstrap_admin_key.as_ref();
        assert_eq!(key.map(|k| k.expose().as_str()), Some(KEY));
        assert!(
            !format!("{settings:?}").contains(KEY),
            "the key is in Debug"
        );

        let problem = only_problem(&[(BOOTSTRAP_ADMIN_KEY, " ")], BOOTSTRAP_ADMIN_KEY);
        assert!(problem.to_string().contains("generate-key"), "{problem}");
    }

    #[test]
    fn ignores_the_bootstrap_admin_key_with_a_notice_when_no_bootstrap_happens() {
        const KEY: &str = "pcu_AbCdEfGhIjKl_supplied-by-the-operator";
        let settings = ok(&keyed(KEY_A, "alice", &[(BOOTSTRAP_ADMIN_KEY, KEY)]));
        assert_eq!(settings.authentication.bootstrap_admin_key, None);
        assert!(
            settings
                .notices
                .iter()
                .any(|n| n.starts_with(BOOTSTRAP_ADMIN_KEY) && !n.contains(KEY)),
            "{:?}",
            settings.notices
        );
    }

    #[test]
    fn allows_anonymous_on_without_a_method() {
        assert!(ok(&open(&[])).authentication.anonymous_access);
    }

    #[test]
    fn leaves_anonymous_off_when_a_method_is_enabled() {
        let settings = ok(&keyed(KEY_A, "alice", &[]));
        assert!(!settings.authentication.anonymous_access);
        let settings = ok(&[(DB_USERS_ENABLED, "true")]);
        assert!(settings.authentication.db_users_enabled);
        assert!(!settings.authentication.anonymous_access);
        let both = ok(&keyed(
            KEY_A,
            "alice",
            &[(ANONYMOUS_ACCESS_ENABLED, "true")],
        ));
        assert!(both.authentication.anonymous_access);
    }

    #[test]
    fn settings_debug_does_not_contain_keys() {
        let keys = format!("{KEY_A},{KEY_B}");
        let settings = ok(&keyed(&keys, "alice", &[]));
        assert_no_key_in(&format!("{settings:?}"));
        assert_no_key_in(&format!("{settings:#?}"));
        assert!(format!("{settings:?}").contains(crate::REDACTED));
    }

    #[test]
    fn config_error_display_never_contains_key_values() {
        // Duplicates, a control character, an empty item and a count mismatch at once.
        let keys = format!("{KEY_A},{KEY_A},{KEY_B}\t");
        let err =
            parse(&keyed(&keys, "alice,bob", &[(LOG_LEVEL, "loud")])).expect_err("invalid keys");
        assert_no_key_in(&err.to_string());
        assert_no_key_in(&format!("{err:?}"));
        let keys = format!("{KEY_A},,{KEY_C}");
        let err = parse(&keyed(&keys, "alice", &[])).expect_err("invalid keys");
        assert_no_key_in(&err.to_string());
    }

    #[test]
    fn describe_masks_keys() {
        let keys = format!("{KEY_A},{KEY_B},{KEY_C}");
        let settings = ok(&keyed(&keys, "alice", &[]));
        let lines = settings.describe();
        let text = format!("{lines:?}");
        assert_no_key_in(&text);
        assert!(
            lines.contains(&(APIKEY_ALLOWED_KEYS, "3 keys".to_owned())),
            "{lines:?}"
        );
        assert!(
            lines.contains(&(APIKEY_USERS, "alice".to_owned())),
            "{lines:?}"
        );
        assert!(lines.contains(&(HTTP_ADDR, "127.0.0.1:8080".to_owned())));
    }
}
