//! The typed, validated settings and their masked description for the start-up log.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::cidr::Cidr;
use crate::parse::redact_userinfo;
use crate::secret::Secret;
use crate::vars;

/// The HTTP listen address when `PORTCULLIS_HTTP_ADDR` is not set: `127.0.0.1:8080`.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The validated configuration of a Portcullis server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `PORTCULLIS_HTTP_ADDR`, default [`DEFAULT_HTTP_ADDR`] (`127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// `PORTCULLIS_WORKERS`, default the available parallelism (at least 1, at most 1024).
    pub workers: usize,
    /// The Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// Logging.
    pub log: LogSettings,
    /// `PERSISTENCE_DATA_PATH`, default `./data`.
    pub data_path: PathBuf,
    /// How requests prove who they are.
    pub authentication: AuthenticationSettings,
    /// What authenticated principals may do.
    pub authorization: AuthorizationSettings,
    /// The database behind the gate.
    pub backend: BackendSettings,
    /// Who the client is (trusted proxies) and its budget of failed credentials.
    pub throttle: ThrottleSettings,
    /// The gRPC listener and its upstream.
    pub grpc: GrpcSettings,
    /// TLS on the listeners; `None` when `PORTCULLIS_TLS_CERT_FILE` is not set (cleartext).
    pub tls: Option<crate::tls::TlsSettings>,
    /// The shared user store (replicas); `None`: the SQLite file under the data path.
    pub user_store: Option<UserStoreSettings>,
    /// Things worth a warning line at start-up (ignored variables, overrides). Never contains secrets.
    pub notices: Vec<String>,
}

/// Where and whether the Prometheus metrics endpoint is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `PROMETHEUS_MONITORING_ENABLED`, default true.
    pub enabled: bool,
    /// `PORTCULLIS_METRICS_ADDR`, else the HTTP address's IP with `PROMETHEUS_MONITORING_PORT`
    /// (default 2112). Read only when `enabled`; the default otherwise.
    pub addr: SocketAddr,
}

/// Where and whether the gRPC API is served, and where gRPC calls are forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcSettings {
    /// `PORTCULLIS_GRPC_ADDR`, else the HTTP address's IP with `GRPC_PORT` (default 50051);
    /// `None` when `PORTCULLIS_GRPC_ADDR=off`. Port 0 binds an ephemeral port.
    pub addr: Option<SocketAddr>,
    /// `PORTCULLIS_UPSTREAM_GRPC_ADDR` as `host:port`: gated calls are forwarded there. Only
    /// with `PORTCULLIS_UPSTREAM_URL`.
    pub upstream: Option<String>,
}

/// Log output settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `LOG_LEVEL`, default info.
    pub level: LogLevel,
    /// `LOG_FORMAT`, default text.
    pub format: LogFormat,
    /// `PORTCULLIS_AUDIT_LOG`, default all: which RBAC decisions get an audit line.
    pub audit: AuditLog,
}

/// Which RBAC authorization decisions are written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLog {
    /// Every decision: allows at info, denials at warn (the default, as Weaviate).
    All,
    /// Denials only.
    Denials,
    /// None.
    Off,
}

impl AuditLog {
    /// The lower-case name: `all`, `denials` or `off`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Denials => "denials",
            Self::Off => "off",
        }
    }
}

/// The least severe level that is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation (the default).
    Info,
    /// Warnings and errors (Weaviate's `warning`).
    Warn,
    /// Errors only (Weaviate's `error`, `fatal` and `panic`).
    Error,
}

impl LogLevel {
    /// The lower-case name, as `tracing` filters spell it: `trace` .. `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text (the default).
    Text,
}

impl LogFormat {
    /// The lower-case name: `json` or `text`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
        }
    }
}

/// The client address and the budget of failed credential checks per client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// `PORTCULLIS_TRUSTED_PROXIES`, default none: peers whose `X-Forwarded-For` is read to
    /// find the client address. With none, the client is always the peer.
    pub trusted_proxies: Vec<Cidr>,
    /// `PORTCULLIS_AUTH_FAILURE_LIMIT`, default 100: failed credential checks a client may
    /// cause per window (and at once); 0 turns the throttle off.
    pub failure_limit: u32,
    /// `PORTCULLIS_AUTH_FAILURE_WINDOW`, default 60 s: the time in which a client's budget
    /// refills completely (one failure back every window / limit).
    pub failure_window: Duration,
}

impl ThrottleSettings {
    /// Whether failed credentials are throttled at all.
    pub fn enabled(&self) -> bool {
        self.failure_limit > 0
    }
}

/// The database behind the gate: the embedded store, or an upstream HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSettings {
    /// `PORTCULLIS_MAX_BODY`, default 10 MiB: larger request bodies get 413.
    pub max_body: usize,
    /// `PORTCULLIS_BODY_TIMEOUT`, default 30 s: a body not fully received this long after the
    /// request's headers gets 408.
    pub body_timeout: Duration,
    /// `PORTCULLIS_MAX_BATCH_OBJECTS`, default 10,000: a larger batch gets 422.
    pub max_batch_objects: usize,
    /// `PORTCULLIS_UPSTREAM_URL`: when set, requests are proxied there instead of served by
    /// the embedded store.
    pub upstream: Option<UpstreamSettings>,
}

/// The user store shared by replicas (`PORTCULLIS_USER_STORE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStoreSettings {
    /// `postgres://...` (or `postgresql://`); may hold a password: show it only through
    /// [`UserStoreSettings::shown_url`].
    pub url: crate::Secret<String>,
    /// `PORTCULLIS_KEY_REVOCATION_BOUND`, default 5 s, from 200 ms to 300 s: database keys are
    /// answered only from a view of the store younger than this.
    pub revocation_bound: Duration,
    /// `PORTCULLIS_USER_STORE_READY_GRACE`, default 30 s, at most 1 h; `None` (`off`): the
    /// store never makes the replica unready. `ready` answers 503 once database keys have been
    /// refused (the store unreadable) for longer than this, counted from the start too.
    pub ready_grace: Option<Duration>,
    /// `PORTCULLIS_CHANGE_LOG_RETENTION`, default 10 min, at most 7 days: change-log entries
    /// every replica holding a live lease has applied are removed once this old.
    pub log_retention: Duration,
}

impl UserStoreSettings {
    /// The URL with any `user:password@` hidden, for messages and logs.
    pub fn shown_url(&self) -> String {
        redact_userinfo(self.url.expose())
    }
}

/// Where and how requests are proxied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// `http(s)://host[:port]`, without a trailing slash or path.
    pub url: String,
    /// `PORTCULLIS_UPSTREAM_FORWARD_AUTH`, default false.
    pub forward_auth: bool,
    /// `PORTCULLIS_UPSTREAM_API_KEY` (or `_FILE`): sent on Portcullis' own reads of the
    /// upstream only.
    pub api_key: Option<Secret<String>>,
    /// `PORTCULLIS_UPSTREAM_TIMEOUT`, default 60 s.
    pub timeout: Duration,
}

/// The enabled authentication methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationSettings {
    /// `AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED`: requests without a credential are served.
    pub anonymous_access: bool,
    /// Some iff `AUTHENTICATION_APIKEY_ENABLED` is true.
    pub api_key: Option<StaticApiKeys>,
    /// `AUTHENTICATION_DB_USERS_ENABLED`, or implied by `bootstrap_admin`.
    pub db_users_enabled: bool,
    /// No method was enabled and anonymous access was not turned on: database users are on,
    /// and the server creates an `admin` user with a generated key on first start.
    pub bootstrap_admin: bool,
    /// `PORTCULLIS_BOOTSTRAP_ADMIN_KEY` (or `_FILE`): the bootstrap admin's key, supplied by the
    /// operator instead of generated and printed. Read only when `bootstrap_admin` is set; its
    /// format (a `pcu_` database key) is checked by the server, which owns the format.
    pub bootstrap_admin_key: Option<Secret<String>>,
    /// Some iff `AUTHENTICATION_OIDC_ENABLED` is true.
    pub oidc: Option<OidcSettings>,
}

/// OpenID Connect bearer tokens: Weaviate's `AUTHENTICATION_OIDC_*` variables and ours.
///
/// Validated: an `http(s)://` issuer, a username claim, a client id unless its check is
/// skipped, and a certificate never together with skipping TLS verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// `AUTHENTICATION_OIDC_ISSUER`, kept exactly as given: the discovery document's `issuer`
    /// and the tokens' `iss` must equal it (a trailing `/` matters).
    pub issuer: String,
    /// `AUTHENTICATION_OIDC_CLIENT_ID`: expected in `aud` unless `skip_client_id_check`.
    pub client_id: Option<String>,
    /// `AUTHENTICATION_OIDC_SKIP_CLIENT_ID_CHECK`, default false.
    pub skip_client_id_check: bool,
    /// `AUTHENTICATION_OIDC_USERNAME_CLAIM` (required; Weaviate has no default).
    pub username_claim: String,
    /// `AUTHENTICATION_OIDC_GROUPS_CLAIM` (optional).
    pub groups_claim: Option<String>,
    /// `AUTHENTICATION_OIDC_SCOPES`: advertised to clients, never checked.
    pub scopes: Vec<String>,
    /// `AUTHENTICATION_OIDC_CERTIFICATE`: PEM text (read from the file when a path was given),
    /// trusted in addition to the system roots for the issuer's TLS.
    pub certificate: Option<String>,
    /// `AUTHENTICATION_OIDC_JWKS_URL`: when set, discovery is skipped and, as in Weaviate,
    /// only RS256 tokens are accepted.
    pub jwks_url: Option<String>,
    /// `AUTHENTICATION_OIDC_INSECURE_SKIP_TLS_VERIFY`, default false.
    pub insecure_skip_tls_verify: bool,
    /// `PORTCULLIS_OIDC_REFRESH_INTERVAL`, default 5 minutes.
    pub refresh_interval: Duration,
    /// `PORTCULLIS_OIDC_KID_MISS_COOLDOWN`, default 10 seconds.
    pub kid_miss_cooldown: Duration,
    /// `PORTCULLIS_OIDC_MAX_STALENESS`, default 24 hours.
    pub max_staleness: Duration,
    /// `PORTCULLIS_OIDC_LEEWAY`, default 60 seconds (zero allowed).
    pub leeway: Duration,
    /// `PORTCULLIS_OIDC_FETCH_TIMEOUT`, default 5 seconds.
    pub fetch_timeout: Duration,
}

impl OidcSettings {
    /// `<issuer>/.well-known/openid-configuration`, as Weaviate advertises and fetches it.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }
}

/// Static API keys from `AUTHENTICATION_APIKEY_ALLOWED_KEYS` and the users they stand for.
///
/// Validated: at least one key and one user, no empty or duplicate key, and either one user for
/// every key or one user per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticApiKeys {
    /// The keys, in the configured order.
    pub keys: Vec<Secret<String>>,
    /// The users: one for all keys, or one per key.
    pub users: Vec<String>,
}

impl StaticApiKeys {
    /// Each key with its user: key i -> `users[i]`, or `users[0]` when there is one user.
    pub fn pairs(&self) -> impl Iterator<Item = (&Secret<String>, &str)> {
        let single = if self.users.len() == 1 {
            self.users.first().map(String::as_str)
        } else {
            None
        };
        self.keys.iter().enumerate().filter_map(move |(i, key)| {
            single
                .or_else(|| self.users.get(i).map(String::as_str))
                .map(|user| (key, user))
        })
    }
}

/// The authorization mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationSettings {
    /// Some iff `AUTHORIZATION_ADMINLIST_ENABLED` is true.
    pub admin_list: Option<AdminList>,
    /// Some iff `AUTHORIZATION_RBAC_ENABLED` (or `AUTHORIZATION_ENABLE_RBAC`) is true. Never
    /// together with `admin_list`, nor with anonymous access.
    pub rbac: Option<RbacSettings>,
}

/// Weaviate's role-based access control: who holds the built-in roles from the settings.
///
/// `root_users`, `root_groups` and `readonly_groups` are mirrored exactly at every start (an
/// assignment of `root` or `read-only` made otherwise is removed); `admin_users` and
/// `viewer_users` are added at every start and never removed by the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RbacSettings {
    /// `AUTHORIZATION_RBAC_ROOT_USERS`, else `AUTHORIZATION_ADMIN_USERS`: role `root` for the
    /// static, database and OIDC users of these names.
    pub root_users: Vec<String>,
    /// `AUTHORIZATION_RBAC_ROOT_GROUPS`: role `root` for these OIDC groups.
    pub root_groups: Vec<String>,
    /// `AUTHORIZATION_RBAC_READONLY_GROUPS`, else
    /// `EXPERIMENTAL_AUTHORIZATION_RBAC_READONLY_ROOT_GROUPS`: role `read-only` for these
    /// OIDC groups.
    pub readonly_groups: Vec<String>,
    /// `EXPERIMENTAL_AUTHORIZATION_RBAC_READONLY_USERS`: role `viewer`.
    pub viewer_users: Vec<String>,
    /// `EXPERIMENTAL_AUTHORIZATION_RBAC_ADMIN_USERS`: role `admin`.
    pub admin_users: Vec<String>,
    /// `AUTHORIZATION_RBAC_IP_IN_AUDIT_LOG_DISABLED`, default false: audit lines leave out the
    /// client address.
    pub ip_in_audit_log_disabled: bool,
}

impl RbacSettings {
    /// Whether `user` is a root user by name (whatever its kind, as in Weaviate).
    pub fn is_root_user(&self, user: &str) -> bool {
        self.root_users.iter().any(|u| u == user)
    }

    /// Whether `group` is a root or read-only group (its assignments come from the settings
    /// only).
    pub fn is_settings_group(&self, group: &str) -> bool {
        self.root_groups.iter().any(|g| g == group)
            || self.readonly_groups.iter().any(|g| g == group)
    }
}

/// Weaviate's admin list: admins may use every verb, read-only subjects only reads.
///
/// No subject is on both its admin and its read-only list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminList {
    /// `AUTHORIZATION_ADMINLIST_USERS`.
    pub users: Vec<String>,
    /// `AUTHORIZATION_ADMINLIST_READONLY_USERS`.
    pub readonly_users: Vec<String>,
    /// `AUTHORIZATION_ADMINLIST_GROUPS`.
    pub groups: Vec<String>,
    /// `AUTHORIZATION_ADMINLIST_READONLY_GROUPS`.
    pub readonly_groups: Vec<String>,
}

impl Settings {
    /// The effective configuration as (name, value) lines for the start-up log.
    ///
    /// Secrets are masked: keys appear as a count ("3 keys"), never as text.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let auth = &self.authentication;
        let mut lines = vec![
            (vars::HTTP_ADDR, self.http_addr.to_string()),
            (vars::WORKERS, self.workers.to_string()),
            (
                vars::PROMETHEUS_MONITORING_ENABLED,
                self.metrics.enabled.to_string(),
            ),
        ];
        if self.metrics.enabled {
            lines.push((vars::METRICS_ADDR, self.metrics.addr.to_string()));
        }
        lines.extend([
            (vars::LOG_LEVEL, self.log.level.as_str().to_owned()),
            (vars::LOG_FORMAT, self.log.format.as_str().to_owned()),
            (vars::AUDIT_LOG, self.log.audit.as_str().to_owned()),
            (
                vars::PERSISTENCE_DATA_PATH,
                self.data_path.display().to_string(),
            ),
            (
                vars::ANONYMOUS_ACCESS_ENABLED,
                auth.anonymous_access.to_string(),
            ),
            (vars::APIKEY_ENABLED, auth.api_key.is_some().to_string()),
        ]);
        if let Some(keys) = &auth.api_key {
            lines.push((vars::APIKEY_ALLOWED_KEYS, count(keys.keys.len(), "key")));
            lines.push((vars::APIKEY_USERS, keys.users.join(",")));
        }
        lines.push((vars::DB_USERS_ENABLED, auth.db_users_enabled.to_string()));
        lines.push((vars::OIDC_ENABLED, auth.oidc.is_some().to_string()));
        if let Some(oidc) = &auth.oidc {
            lines.extend(describe_oidc(oidc));
        }
        lines.push((
            vars::GRPC_ADDR,
            self.grpc
                .addr
                .map_or_else(|| "off".to_owned(), |addr| addr.to_string()),
        ));
        if let Some(upstream) = &self.grpc.upstream {
            lines.push((vars::UPSTREAM_GRPC_ADDR, upstream.clone()));
        }
        lines.extend(crate::tls::describe(self.tls.as_ref()));
        lines.extend([
            (vars::MAX_BODY, self.backend.max_body.to_string()),
            (
                vars::BODY_TIMEOUT,
                format!("{:?}", self.backend.body_timeout),
            ),
            (
                vars::MAX_BATCH_OBJECTS,
                self.backend.max_batch_objects.to_string(),
            ),
        ]);
        lines.extend(describe_throttle(&self.throttle));
        if let Some(store) = &self.user_store {
            lines.extend([
                (vars::USER_STORE_URL, store.shown_url()),
                (
                    vars::KEY_REVOCATION_BOUND,
                    format!("{:?}", store.revocation_bound),
                ),
                (
                    vars::USER_STORE_READY_GRACE,
                    store
                        .ready_grace
                        .map_or_else(|| "off".to_owned(), |grace| format!("{grace:?}")),
                ),
                (
                    vars::CHANGE_LOG_RETENTION,
                    format!("{:?}", store.log_retention),
                ),
            ]);
        }
        if let Some(up) = &self.backend.upstream {
            lines.extend([
                (vars::UPSTREAM_URL, redact_userinfo(&up.url)),
                (vars::UPSTREAM_FORWARD_AUTH, up.forward_auth.to_string()),
                (
                    vars::UPSTREAM_API_KEY,
                    if up.api_key.is_some() {
                        "(set)"
                    } else {
                        "(unset)"
                    }
                    .to_owned(),
                ),
                (vars::UPSTREAM_TIMEOUT, format!("{:?}", up.timeout)),
            ]);
        }
        let rbac = &self.authorization.rbac;
        lines.push((vars::RBAC_ENABLED, rbac.is_some().to_string()));
        if let Some(rbac) = rbac {
            lines.extend([
                (vars::RBAC_ROOT_USERS, rbac.root_users.join(",")),
                (vars::RBAC_ROOT_GROUPS, rbac.root_groups.join(",")),
                (vars::RBAC_READONLY_GROUPS, rbac.readonly_groups.join(",")),
                (vars::RBAC_VIEWER_USERS, rbac.viewer_users.join(",")),
                (vars::RBAC_ADMIN_USERS, rbac.admin_users.join(",")),
                (
                    vars::RBAC_IP_IN_AUDIT_LOG_DISABLED,
                    rbac.ip_in_audit_log_disabled.to_string(),
                ),
            ]);
        }
        let admin = &self.authorization.admin_list;
        lines.push((vars::ADMINLIST_ENABLED, admin.is_some().to_string()));
        if let Some(admin) = admin {
            lines.extend([
                (vars::ADMINLIST_USERS, admin.users.join(",")),
                (
                    vars::ADMINLIST_READONLY_USERS,
                    admin.readonly_users.join(","),
                ),
                (vars::ADMINLIST_GROUPS, admin.groups.join(",")),
                (
                    vars::ADMINLIST_READONLY_GROUPS,
                    admin.readonly_groups.join(","),
                ),
            ]);
        }
        lines
    }
}

/// The OIDC lines of [`Settings::describe`]. Nothing here is a secret; the certificate is
/// summarised, not printed.
fn describe_oidc(oidc: &OidcSettings) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        (vars::OIDC_ISSUER, redact_userinfo(&oidc.issuer)),
        (
            vars::OIDC_CLIENT_ID,
            oidc.client_id.clone().unwrap_or_default(),
        ),
        (
            vars::OIDC_SKIP_CLIENT_ID_CHECK,
            oidc.skip_client_id_check.to_string(),
        ),
        (vars::OIDC_USERNAME_CLAIM, oidc.username_claim.clone()),
        (
            vars::OIDC_GROUPS_CLAIM,
            oidc.groups_claim.clone().unwrap_or_default(),
        ),
        (vars::OIDC_SCOPES, oidc.scopes.join(",")),
        (
            vars::OIDC_CERTIFICATE,
            match &oidc.certificate {
                Some(pem) => count(
                    pem.matches("-----BEGIN CERTIFICATE-----").count(),
                    "certificate",
                ),
                None => "none".to_owned(),
            },
        ),
        (
            vars::OIDC_JWKS_URL,
            oidc.jwks_url
                .as_deref()
                .map_or_else(|| "discovery".to_owned(), redact_userinfo),
        ),
        (
            vars::OIDC_INSECURE_SKIP_TLS_VERIFY,
            oidc.insecure_skip_tls_verify.to_string(),
        ),
    ];
    lines.extend([
        (
            vars::OIDC_REFRESH_INTERVAL,
            format!("{:?}", oidc.refresh_interval),
        ),
        (
            vars::OIDC_KID_MISS_COOLDOWN,
            format!("{:?}", oidc.kid_miss_cooldown),
        ),
        (
            vars::OIDC_MAX_STALENESS,
            format!("{:?}", oidc.max_staleness),
        ),
        (vars::OIDC_LEEWAY, format!("{:?}", oidc.leeway)),
        (
            vars::OIDC_FETCH_TIMEOUT,
            format!("{:?}", oidc.fetch_timeout),
        ),
    ]);
    lines
}

/// The client and throttle lines of [`Settings::describe`].
fn describe_throttle(throttle: &ThrottleSettings) -> [(&'static str, String); 3] {
    let proxies: Vec<String> = throttle
        .trusted_proxies
        .iter()
        .map(Cidr::to_string)
        .collect();
    [
        (vars::TRUSTED_PROXIES, proxies.join(",")),
        (vars::AUTH_FAILURE_LIMIT, throttle.failure_limit.to_string()),
        (
            vars::AUTH_FAILURE_WINDOW,
            format!("{:?}", throttle.failure_window),
        ),
    ]
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(keys: &[&str], users: &[&str]) -> StaticApiKeys {
        StaticApiKeys {
            keys: keys.iter().map(|k| Secret::new((*k).to_owned())).collect(),
            users: users.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    fn exposed_pairs(keys: &StaticApiKeys) -> Vec<(String, String)> {
        keys.pairs()
            .map(|(k, u)| (k.expose().clone(), u.to_owned()))
            .collect()
    }

    #[test]
    fn pairs_give_the_single_user_to_every_key() {
        let pairs = exposed_pairs(&keys(&["k1", "k2", "k3"], &["alice"]));
        let expected: Vec<(String, String)> = ["k1", "k2", "k3"]
            .iter()
            .map(|k| ((*k).to_owned(), "alice".to_owned()))
            .collect();
        assert!(pairs == expected, "keys do not all map to the single user");
    }

    #[test]
    fn pairs_map_key_i_to_user_i() {
        let pairs = exposed_pairs(&keys(&["k1", "k2"], &["alice", "bob"]));
        let expected = vec![
            ("k1".to_owned(), "alice".to_owned()),
            ("k2".to_owned(), "bob".to_owned()),
        ];
        assert!(pairs == expected, "key i does not map to user i");
    }

    #[test]
    fn log_names_are_lower_case() {
        let table = [
            (LogLevel::Trace, "trace"),
            (LogLevel::Debug, "debug"),
            (LogLevel::Info, "info"),
            (LogLevel::Warn, "warn"),
            (LogLevel::Error, "error"),
        ];
        for (level, name) in table {
            assert_eq!(level.as_str(), name);
        }
        assert_eq!(LogFormat::Json.as_str(), "json");
        assert_eq!(LogFormat::Text.as_str(), "text");
    }

    #[test]
    fn counts_are_pluralised() {
        assert_eq!(count(1, "key"), "1 key");
        assert_eq!(count(3, "key"), "3 keys");
    }
}
