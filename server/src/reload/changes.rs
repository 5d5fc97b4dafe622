//! What a new configuration changes, compared with the one running: the parts a reload
//! applies, and the settings that need a restart. Pure functions of two [`Settings`], named
//! by their variables; never a value (secrets included).

use portcullis_config::{vars, OidcSettings, Settings};

/// The parts of a new configuration that a reload applies, when they changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Applicable {
    /// The static API keys or their users (`AUTHENTICATION_APIKEY_*`).
    pub(crate) static_keys: bool,
    /// The admin list, including turning it on or off (`AUTHORIZATION_ADMINLIST_*`).
    pub(crate) admin_list: bool,
    /// OpenID Connect settings that the JwksRefresher or the token rules use: a new
    /// refresher starts. Only while OIDC stays on (turning it on or off needs a restart).
    pub(crate) oidc_refresher: bool,
    /// What `/v1/.well-known/openid-configuration` advertises (issuer, client id, scopes).
    pub(crate) oidc_well_known: bool,
    /// `LOG_LEVEL`.
    pub(crate) log_level: bool,
}

impl Applicable {
    /// What `new` changes that a reload applies.
    pub(crate) fn between(old: &Settings, new: &Settings) -> Self {
        let (old_auth, new_auth) = (&old.authentication, &new.authentication);
        let (oidc_refresher, oidc_well_known) = match (&old_auth.oidc, &new_auth.oidc) {
            (Some(old), Some(new)) => (
                !same_refresher(old, new),
                old.issuer != new.issuer
                    || old.client_id != new.client_id
                    || old.scopes != new.scopes,
            ),
            _ => (false, false),
        };
        Applicable {
            static_keys: old_auth.api_key != new_auth.api_key,
            // Roles are set up at start (routes, stored assignments); while the RBAC settings
            // stay as they are, the admin list applies.
            admin_list: old.authorization.rbac == new.authorization.rbac
                && old.authorization.admin_list != new.authorization.admin_list,
            oidc_refresher,
            oidc_well_known,
            log_level: old.log.level != new.log.level,
        }
    }

    /// The names of what changed, for the log line.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.static_keys {
            names.push("static API keys");
        }
        if self.admin_list {
            names.push("admin list");
        }
        if self.oidc_refresher {
            names.push("OpenID Connect settings");
        } else if self.oidc_well_known {
            names.push("OpenID Connect scopes");
        }
        if self.log_level {
            names.push(vars::LOG_LEVEL);
        }
        names
    }
}

/// Whether two OIDC configurations can share one JwksRefresher and its verified tokens:
/// everything but the advertised scopes counts.
fn same_refresher(old: &OidcSettings, new: &OidcSettings) -> bool {
    OidcSettings {
        scopes: Vec::new(),
        ..old.clone()
    } == OidcSettings {
        scopes: Vec::new(),
        ..new.clone()
    }
}

/// The variables whose new values need a restart to take effect, in a fixed order. A reload
/// applies the rest and leaves these as they were at start.
pub(crate) fn restart_only(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut names = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            names.push(name);
        }
    };
    check(old.http_addr != new.http_addr, vars::HTTP_ADDR);
    check(old.workers != new.workers, vars::WORKERS);
    check(old.metrics != new.metrics, vars::METRICS_ADDR);
    check(old.log.format != new.log.format, vars::LOG_FORMAT);
    check(old.data_path != new.data_path, vars::PERSISTENCE_DATA_PATH);
    check(old.user_store != new.user_store, vars::USER_STORE_URL);
    check(old.grpc.addr != new.grpc.addr, vars::GRPC_ADDR);
    check(
        old.grpc.upstream != new.grpc.upstream,
        vars::UPSTREAM_GRPC_ADDR,
    );
    let (old_backend, new_backend) = (&old.backend, &new.backend);
    check(
        old_backend.upstream != new_backend.upstream,
        vars::UPSTREAM_URL,
    );
    check(old_backend.max_body != new_backend.max_body, vars::MAX_BODY);
    check(
        old_backend.body_timeout != new_backend.body_timeout,
        vars::BODY_TIMEOUT,
    );
    check(
        old_backend.max_batch_objects != new_backend.max_batch_objects,
        vars::MAX_BATCH_OBJECTS,
    );
    let (old_authz, new_authz) = (&old.authorization, &new.authorization);
    if old_authz.rbac != new_authz.rbac {
        check(true, vars::RBAC_ENABLED);
        check(
            old_authz.admin_list != new_authz.admin_list,
            vars::ADMINLIST_ENABLED,
        );
    }
    // New contents of the same certificate and key files are reloaded by the TLS module
    // (crate::tls); other files, client certificates or TLS on or off need a restart.
    check(old.tls != new.tls, vars::TLS_CERT_FILE);
    let (old_throttle, new_throttle) = (&old.throttle, &new.throttle);
    check(
        old_throttle.trusted_proxies != new_throttle.trusted_proxies,
        vars::TRUSTED_PROXIES,
    );
    check(
        old_throttle.failure_limit != new_throttle.failure_limit,
        vars::AUTH_FAILURE_LIMIT,
    );
    check(
        old_throttle.failure_window != new_throttle.failure_window,
        vars::AUTH_FAILURE_WINDOW,
    );
    let (old_auth, new_auth) = (&old.authentication, &new.authentication);
    check(
        old_auth.anonymous_access != new_auth.anonymous_access,
        vars::ANONYMOUS_ACCESS_ENABLED,
    );
    // The key set itself is applied (an empty one when static keys are turned off), but
    // whether API keys are a method at all is decided at start.
    check(
        old_auth.api_key.is_some() != new_auth.api_key.is_some(),
        vars::APIKEY_ENABLED,
    );
    check(
        old_auth.db_users_enabled != new_auth.db_users_enabled
            || old_auth.bootstrap_admin != new_auth.bootstrap_admin,
        vars::DB_USERS_ENABLED,
    );
    check(
        old_auth.bootstrap_admin_key != new_auth.bootstrap_admin_key,
        vars::BOOTSTRAP_ADMIN_KEY,
    );
    check(
        old_auth.oidc.is_some() != new_auth.oidc.is_some(),
        vars::OIDC_ENABLED,
    );
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let mut vars = vec![
            ("AUTHENTICATION_APIKEY_ENABLED", "true"),
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", "k-one,k-two"),
            ("AUTHENTICATION_APIKEY_USERS", "ann,bob"),
            ("AUTHENTICATION_OIDC_ENABLED", "true"),
            ("AUTHENTICATION_OIDC_ISSUER", "https://one.example"),
            ("AUTHENTICATION_OIDC_CLIENT_ID", "portcullis"),
            ("AUTHENTICATION_OIDC_USERNAME_CLAIM", "sub"),
            ("AUTHORIZATION_ADMINLIST_ENABLED", "true"),
            ("AUTHORIZATION_ADMINLIST_USERS", "ann"),
        ];
        for (name, value) in extra {
            vars.retain(|(n, _)| n != name);
            vars.push((name, value));
        }
        Settings::from_vars(vars).expect("valid settings")
    }

    #[test]
    fn the_same_configuration_changes_nothing() {
        let old = settings(&[]);
        assert_eq!(
            Applicable::between(&old, &old.clone()),
            Applicable::default()
        );
        assert!(restart_only(&old, &old.clone()).is_empty());
    }

    #[test]
    fn names_each_applicable_change_without_values() {
        let old = settings(&[]);
        let new = settings(&[
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", "k-one,k-three"),
            ("AUTHORIZATION_ADMINLIST_USERS", "bob"),
            ("AUTHENTICATION_OIDC_ISSUER", "https://two.example"),
            ("LOG_LEVEL", "debug"),
        ]);
        let changes = Applicable::between(&old, &new);
        assert!(changes.static_keys && changes.admin_list && changes.log_level);
        assert!(changes.oidc_refresher && changes.oidc_well_known);
        let names = changes.names().join(", ");
        assert_eq!(
            names,
            "static API keys, admin list, OpenID Connect settings, LOG_LEVEL"
        );
        assert!(!names.contains("k-three") && !names.contains("two.example"));
        assert!(restart_only(&old, &new).is_empty());
    }

    #[test]
    fn scopes_alone_keep_the_refresher() {
        let old = settings(&[]);
        let new = settings(&[("AUTHENTICATION_OIDC_SCOPES", "openid,email")]);
        let changes = Applicable::between(&old, &new);
        assert!(!changes.oidc_refresher, "{changes:?}");
        assert!(changes.oidc_well_known);
        assert_eq!(changes.names(), vec!["OpenID Connect scopes"]);
    }

    #[test]
    fn names_every_restart_only_setting() {
        let old = settings(&[]);
        let new = settings(&[
            ("PORTCULLIS_HTTP_ADDR", "127.0.0.1:9999"),
            ("PORTCULLIS_WORKERS", "3"),
            ("PERSISTENCE_DATA_PATH", "/elsewhere"),
            ("LOG_FORMAT", "json"),
            ("PORTCULLIS_AUTH_FAILURE_LIMIT", "5"),
            ("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "true"),
            ("AUTHENTICATION_OIDC_ENABLED", "false"),
            ("PORTCULLIS_TLS_CERT_FILE", "/etc/portcullis/cert.pem"),
            ("PORTCULLIS_TLS_KEY_FILE", "/etc/portcullis/key.pem"),
        ]);
        let names = restart_only(&old, &new);
        for name in [
            vars::TLS_CERT_FILE,
            vars::HTTP_ADDR,
            vars::WORKERS,
            vars::PERSISTENCE_DATA_PATH,
            vars::LOG_FORMAT,
            vars::AUTH_FAILURE_LIMIT,
            vars::ANONYMOUS_ACCESS_ENABLED,
            vars::OIDC_ENABLED,
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        // OIDC turned off is a restart, not a new refresher.
        assert!(!Applicable::between(&old, &new).oidc_refresher);
    }

    #[test]
    fn rbac_turned_on_needs_a_restart_and_keeps_the_admin_list() {
        let old = settings(&[]);
        let new = settings(&[
            ("AUTHORIZATION_ADMINLIST_ENABLED", "false"),
            ("AUTHORIZATION_RBAC_ENABLED", "true"),
            ("AUTHORIZATION_RBAC_ROOT_USERS", "ann"),
        ]);
        let names = restart_only(&old, &new);
        assert!(names.contains(&vars::RBAC_ENABLED), "{names:?}");
        assert!(names.contains(&vars::ADMINLIST_ENABLED), "{names:?}");
        assert!(!Applicable::between(&old, &new).admin_list);
        // The admin list alone still applies.
        let new = settings(&[("AUTHORIZATION_ADMINLIST_USERS", "bob")]);
        assert!(restart_only(&old, &new).is_empty());
        assert!(Applicable::between(&old, &new).admin_list);
    }
}
