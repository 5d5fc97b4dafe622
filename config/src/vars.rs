//! The names of the variables Portcullis reads, and which of them are secrets.

/// Path of an optional YAML or TOML file holding variables (overridden by the environment).
pub const CONFIG_FILE: &str = "PORTCULLIS_CONFIG_FILE";
/// The HTTP listen address, `IP:port`.
pub const HTTP_ADDR: &str = "PORTCULLIS_HTTP_ADDR";
/// The number of HTTP worker threads.
pub const WORKERS: &str = "PORTCULLIS_WORKERS";
/// The metrics listen address, `IP:port`.
pub const METRICS_ADDR: &str = "PORTCULLIS_METRICS_ADDR";

/// The largest request body the server reads, in bytes (suffixes KiB, MiB, GiB allowed).
pub const MAX_BODY: &str = "PORTCULLIS_MAX_BODY";
/// How long a request's body may take to arrive, from its headers to its last byte
/// (e.g. `30s`); a slower body gets 408.
pub const BODY_TIMEOUT: &str = "PORTCULLIS_BODY_TIMEOUT";
/// The most objects one `POST /v1/batch/objects` may carry; more get 422.
pub const MAX_BATCH_OBJECTS: &str = "PORTCULLIS_MAX_BATCH_OBJECTS";
/// Peers (CIDR networks, comma-separated) whose `X-Forwarded-For` names the client.
pub const TRUSTED_PROXIES: &str = "PORTCULLIS_TRUSTED_PROXIES";
/// Failed credential checks a client may cause per window; 0 turns the throttle off.
pub const AUTH_FAILURE_LIMIT: &str = "PORTCULLIS_AUTH_FAILURE_LIMIT";
/// The time in which a client's budget of failed credential checks refills (e.g. `60s`).
pub const AUTH_FAILURE_WINDOW: &str = "PORTCULLIS_AUTH_FAILURE_WINDOW";
/// The shared user store, `postgres://...`; unset means the SQLite file under the data path.
pub const USER_STORE_URL: &str = "PORTCULLIS_USER_STORE_URL";
/// The longest a replica answers database keys from a view of the user store that old
/// (e.g. `5s`); with `PORTCULLIS_USER_STORE_URL` only.
pub const KEY_REVOCATION_BOUND: &str = "PORTCULLIS_KEY_REVOCATION_BOUND";
/// How long the user store may be unreadable before `/v1/.well-known/ready` answers 503
/// (e.g. `30s`), or `off`; with `PORTCULLIS_USER_STORE_URL` only.
pub const USER_STORE_READY_GRACE: &str = "PORTCULLIS_USER_STORE_READY_GRACE";
/// How long the user store's change log keeps entries every live replica has applied (e.g.
/// `10m`); with `PORTCULLIS_USER_STORE_URL` only.
pub const CHANGE_LOG_RETENTION: &str = "PORTCULLIS_CHANGE_LOG_RETENTION";
/// The upstream database HTTP API to proxy to; unset means the embedded store.
pub const UPSTREAM_URL: &str = "PORTCULLIS_UPSTREAM_URL";
/// Whether the client's `Authorization` header is forwarded upstream.
pub const UPSTREAM_FORWARD_AUTH: &str = "PORTCULLIS_UPSTREAM_FORWARD_AUTH";
/// The key Portcullis itself sends (`Authorization: Bearer`) on its own reads of the
/// upstream (the schema and aliases RBAC needs in proxy mode); never on forwarded calls (a
/// secret).
pub const UPSTREAM_API_KEY: &str = "PORTCULLIS_UPSTREAM_API_KEY";
/// How long the upstream may take to answer (e.g. `60s`, `500ms`, `2m`).
pub const UPSTREAM_TIMEOUT: &str = "PORTCULLIS_UPSTREAM_TIMEOUT";
/// The gRPC listen address, `IP:port` (wins over `GRPC_PORT`), or `off`.
pub const GRPC_ADDR: &str = "PORTCULLIS_GRPC_ADDR";
/// The upstream database's gRPC address, `host:port`; unset means no gRPC upstream.
pub const UPSTREAM_GRPC_ADDR: &str = "PORTCULLIS_UPSTREAM_GRPC_ADDR";
/// The gRPC port on the HTTP address's IP when `PORTCULLIS_GRPC_ADDR` is not set (Weaviate's name).
pub const GRPC_PORT: &str = "GRPC_PORT";
/// The listeners' certificate chain, a PEM file (leaf first); with the key file, TLS is on.
pub const TLS_CERT_FILE: &str = "PORTCULLIS_TLS_CERT_FILE";
/// The private key of the certificate, a PEM file (PKCS#8, PKCS#1 or SEC1).
pub const TLS_KEY_FILE: &str = "PORTCULLIS_TLS_KEY_FILE";
/// CA certificates (PEM) that client certificates are verified against.
pub const TLS_CLIENT_CA_FILE: &str = "PORTCULLIS_TLS_CLIENT_CA_FILE";
/// `optional` (verified when sent) or `require` (no certificate, no handshake).
pub const TLS_CLIENT_AUTH: &str = "PORTCULLIS_TLS_CLIENT_AUTH";
/// `off` (cleartext metrics, the default) or `on` (the metrics listener uses the same certificate).
pub const METRICS_TLS: &str = "PORTCULLIS_METRICS_TLS";
/// How often the certificate and key files are checked for changes (e.g. `5s`).
pub const TLS_RELOAD_INTERVAL: &str = "PORTCULLIS_TLS_RELOAD_INTERVAL";

/// Where the embedded store keeps its files (Weaviate's name).
pub const PERSISTENCE_DATA_PATH: &str = "PERSISTENCE_DATA_PATH";
/// Log level (Weaviate's name and values).
pub const LOG_LEVEL: &str = "LOG_LEVEL";
/// Log format, `json` or `text` (Weaviate's name).
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// Which RBAC authorization decisions are logged: `all`, `denials` or `off`.
pub const AUDIT_LOG: &str = "PORTCULLIS_AUDIT_LOG";
/// Whether the metrics endpoint is served (Weaviate's name; on by default here).
pub const PROMETHEUS_MONITORING_ENABLED: &str = "PROMETHEUS_MONITORING_ENABLED";
/// The metrics port when `PORTCULLIS_METRICS_ADDR` is not set (Weaviate's name).
pub const PROMETHEUS_MONITORING_PORT: &str = "PROMETHEUS_MONITORING_PORT";

/// Whether requests without a credential are served.
pub const ANONYMOUS_ACCESS_ENABLED: &str = "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED";
/// Whether static API keys are accepted.
pub const APIKEY_ENABLED: &str = "AUTHENTICATION_APIKEY_ENABLED";
/// The static API keys, comma-separated (a secret).
pub const APIKEY_ALLOWED_KEYS: &str = "AUTHENTICATION_APIKEY_ALLOWED_KEYS";
/// The users the static keys authenticate as, comma-separated.
pub const APIKEY_USERS: &str = "AUTHENTICATION_APIKEY_USERS";
/// Whether database users (runtime-managed keys) are enabled.
pub const DB_USERS_ENABLED: &str = "AUTHENTICATION_DB_USERS_ENABLED";
/// Whether OpenID Connect is enabled.
pub const OIDC_ENABLED: &str = "AUTHENTICATION_OIDC_ENABLED";
/// The prefix of Weaviate's OpenID Connect variables.
pub const OIDC_PREFIX: &str = "AUTHENTICATION_OIDC_";
/// The issuer URL, exactly as the provider's discovery document spells it.
pub const OIDC_ISSUER: &str = "AUTHENTICATION_OIDC_ISSUER";
/// The client id expected in the token's `aud`.
pub const OIDC_CLIENT_ID: &str = "AUTHENTICATION_OIDC_CLIENT_ID";
/// Whether the `aud` check is skipped.
pub const OIDC_SKIP_CLIENT_ID_CHECK: &str = "AUTHENTICATION_OIDC_SKIP_CLIENT_ID_CHECK";
/// The claim holding the user name.
pub const OIDC_USERNAME_CLAIM: &str = "AUTHENTICATION_OIDC_USERNAME_CLAIM";
/// The claim holding the groups.
pub const OIDC_GROUPS_CLAIM: &str = "AUTHENTICATION_OIDC_GROUPS_CLAIM";
/// Scopes advertised to clients at `/v1/.well-known/openid-configuration`, comma-separated.
pub const OIDC_SCOPES: &str = "AUTHENTICATION_OIDC_SCOPES";
/// A CA certificate (inline PEM or a file path) added to the roots for the issuer's TLS.
pub const OIDC_CERTIFICATE: &str = "AUTHENTICATION_OIDC_CERTIFICATE";
/// The JWKS URL; when set, discovery is skipped (and only RS256 is accepted, as in Weaviate).
pub const OIDC_JWKS_URL: &str = "AUTHENTICATION_OIDC_JWKS_URL";
/// Whether the issuer's TLS certificate is not verified (for tests only).
pub const OIDC_INSECURE_SKIP_TLS_VERIFY: &str = "AUTHENTICATION_OIDC_INSECURE_SKIP_TLS_VERIFY";
/// How often the issuer's keys are refetched (e.g. `5m`).
pub const OIDC_REFRESH_INTERVAL: &str = "PORTCULLIS_OIDC_REFRESH_INTERVAL";
/// The least time between two key fetches caused by tokens naming unknown key ids.
pub const OIDC_KID_MISS_COOLDOWN: &str = "PORTCULLIS_OIDC_KID_MISS_COOLDOWN";
/// How long after the last successful fetch the issuer's keys are still used.
pub const OIDC_MAX_STALENESS: &str = "PORTCULLIS_OIDC_MAX_STALENESS";
/// Clock skew allowed when checking `exp`, `nbf` and `iat` (`0s` allowed).
pub const OIDC_LEEWAY: &str = "PORTCULLIS_OIDC_LEEWAY";
/// How long one discovery or key fetch may take.
pub const OIDC_FETCH_TIMEOUT: &str = "PORTCULLIS_OIDC_FETCH_TIMEOUT";

/// Whether the admin list authorizes requests.
pub const ADMINLIST_ENABLED: &str = "AUTHORIZATION_ADMINLIST_ENABLED";
/// Users allowed every verb.
pub const ADMINLIST_USERS: &str = "AUTHORIZATION_ADMINLIST_USERS";
/// Users allowed reads only.
pub const ADMINLIST_READONLY_USERS: &str = "AUTHORIZATION_ADMINLIST_READONLY_USERS";
/// Groups allowed every verb.
pub const ADMINLIST_GROUPS: &str = "AUTHORIZATION_ADMINLIST_GROUPS";
/// Groups allowed reads only.
pub const ADMINLIST_READONLY_GROUPS: &str = "AUTHORIZATION_ADMINLIST_READONLY_GROUPS";
/// Whether RBAC (roles) authorizes requests.
pub const RBAC_ENABLED: &str = "AUTHORIZATION_RBAC_ENABLED";
/// Weaviate's older alias of `AUTHORIZATION_RBAC_ENABLED`.
pub const ENABLE_RBAC: &str = "AUTHORIZATION_ENABLE_RBAC";
/// Users given the built-in `root` role at every start.
pub const RBAC_ROOT_USERS: &str = "AUTHORIZATION_RBAC_ROOT_USERS";
/// Weaviate's older name of `AUTHORIZATION_RBAC_ROOT_USERS`, read only when that is unset.
pub const RBAC_ADMIN_USERS_FALLBACK: &str = "AUTHORIZATION_ADMIN_USERS";
/// OIDC groups given the built-in `root` role at every start.
pub const RBAC_ROOT_GROUPS: &str = "AUTHORIZATION_RBAC_ROOT_GROUPS";
/// OIDC groups given the built-in `read-only` role at every start.
pub const RBAC_READONLY_GROUPS: &str = "AUTHORIZATION_RBAC_READONLY_GROUPS";
/// Weaviate's older name of `AUTHORIZATION_RBAC_READONLY_GROUPS`, read only when that is unset.
pub const RBAC_READONLY_ROOT_GROUPS_FALLBACK: &str =
    "EXPERIMENTAL_AUTHORIZATION_RBAC_READONLY_ROOT_GROUPS";
/// Users given the built-in `viewer` role at start (additive).
pub const RBAC_VIEWER_USERS: &str = "EXPERIMENTAL_AUTHORIZATION_RBAC_READONLY_USERS";
/// Users given the built-in `admin` role at start (additive).
pub const RBAC_ADMIN_USERS: &str = "EXPERIMENTAL_AUTHORIZATION_RBAC_ADMIN_USERS";
/// Whether the audit log leaves out the client address.
pub const RBAC_IP_IN_AUDIT_LOG_DISABLED: &str = "AUTHORIZATION_RBAC_IP_IN_AUDIT_LOG_DISABLED";

/// The bootstrap admin's key, supplied by the operator instead of generated and printed (a
/// secret; a `pcu_` database key, as `portcullis generate-key` prints one).
pub const BOOTSTRAP_ADMIN_KEY: &str = "PORTCULLIS_BOOTSTRAP_ADMIN_KEY";

/// Suffix of the variable that names a file holding a secret variable's value.
pub const FILE_SUFFIX: &str = "_FILE";

/// Every `PORTCULLIS_*` variable. Any other `PORTCULLIS_*` name is an error; features add theirs here.
pub const PORTCULLIS_VARIABLES: &[&str] = &[
    CONFIG_FILE,
    AUDIT_LOG,
    BOOTSTRAP_ADMIN_KEY,
    HTTP_ADDR,
    WORKERS,
    METRICS_ADDR,
    MAX_BODY,
    BODY_TIMEOUT,
    MAX_BATCH_OBJECTS,
    TRUSTED_PROXIES,
    AUTH_FAILURE_LIMIT,
    AUTH_FAILURE_WINDOW,
    UPSTREAM_URL,
    USER_STORE_URL,
    KEY_REVOCATION_BOUND,
    USER_STORE_READY_GRACE,
    CHANGE_LOG_RETENTION,
    UPSTREAM_FORWARD_AUTH,
    UPSTREAM_API_KEY,
    UPSTREAM_TIMEOUT,
    GRPC_ADDR,
    UPSTREAM_GRPC_ADDR,
    OIDC_REFRESH_INTERVAL,
    OIDC_KID_MISS_COOLDOWN,
    OIDC_MAX_STALENESS,
    OIDC_LEEWAY,
    OIDC_FETCH_TIMEOUT,
    TLS_CERT_FILE,
    TLS_KEY_FILE,
    TLS_CLIENT_CA_FILE,
    TLS_CLIENT_AUTH,
    METRICS_TLS,
    TLS_RELOAD_INTERVAL,
];

/// Secret variables: never echoed, and each also accepted as `NAME_FILE`.
pub const SECRET_VARIABLES: &[&str] = &[APIKEY_ALLOWED_KEYS, BOOTSTRAP_ADMIN_KEY, UPSTREAM_API_KEY];

/// Non-`PORTCULLIS_*`, non-auth variables Portcullis reads.
pub const GENERAL_VARIABLES: &[&str] = &[
    PERSISTENCE_DATA_PATH,
    LOG_LEVEL,
    LOG_FORMAT,
    PROMETHEUS_MONITORING_ENABLED,
    PROMETHEUS_MONITORING_PORT,
    GRPC_PORT,
];

/// The `AUTHENTICATION_*`/`AUTHORIZATION_*` variables Portcullis reads.
pub const AUTH_VARIABLES: &[&str] = &[
    ANONYMOUS_ACCESS_ENABLED,
    APIKEY_ENABLED,
    APIKEY_ALLOWED_KEYS,
    APIKEY_USERS,
    DB_USERS_ENABLED,
    OIDC_ENABLED,
    OIDC_ISSUER,
    OIDC_CLIENT_ID,
    OIDC_SKIP_CLIENT_ID_CHECK,
    OIDC_USERNAME_CLAIM,
    OIDC_GROUPS_CLAIM,
    OIDC_SCOPES,
    OIDC_CERTIFICATE,
    OIDC_JWKS_URL,
    OIDC_INSECURE_SKIP_TLS_VERIFY,
    ADMINLIST_ENABLED,
    ADMINLIST_USERS,
    ADMINLIST_READONLY_USERS,
    ADMINLIST_GROUPS,
    ADMINLIST_READONLY_GROUPS,
    RBAC_ENABLED,
    ENABLE_RBAC,
];

/// Weaviate's RBAC settings besides the switch, read when RBAC is on (a notice otherwise).
pub const RBAC_SETTINGS: &[&str] = &[
    RBAC_ROOT_USERS,
    RBAC_ADMIN_USERS_FALLBACK,
    RBAC_ROOT_GROUPS,
    RBAC_READONLY_GROUPS,
    RBAC_READONLY_ROOT_GROUPS_FALLBACK,
    RBAC_VIEWER_USERS,
    RBAC_ADMIN_USERS,
    RBAC_IP_IN_AUDIT_LOG_DISABLED,
];

/// The `NAME_FILE` form of `name` when `name` is a secret variable.
pub(crate) fn file_variant_of(name: &str) -> Option<&'static str> {
    let base = name.strip_suffix(FILE_SUFFIX)?;
    SECRET_VARIABLES
        .iter()
        .copied()
        .find(|secret| *secret == base)
}

/// Whether Portcullis reads `name` (exact, upper-case spelling).
pub(crate) fn is_read(name: &str) -> bool {
    PORTCULLIS_VARIABLES.contains(&name)
        || GENERAL_VARIABLES.contains(&name)
        || AUTH_VARIABLES.contains(&name)
        || RBAC_SETTINGS.contains(&name)
        || file_variant_of(name).is_some()
}

/// Whether `name` belongs to a family Portcullis owns or checks, so a bad spelling is reported.
pub(crate) fn is_in_our_namespace(name: &str) -> bool {
    is_read(name)
        || name.starts_with("PORTCULLIS_")
        || name.starts_with("AUTHENTICATION_")
        || name.starts_with("AUTHORIZATION_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_variants_are_recognised() {
        assert_eq!(
            file_variant_of("AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE"),
            Some(APIKEY_ALLOWED_KEYS)
        );
        assert_eq!(file_variant_of("AUTHENTICATION_APIKEY_USERS_FILE"), None);
        assert_eq!(file_variant_of("LOG_LEVEL"), None);
    }

    #[test]
    fn every_portcullis_variable_has_the_prefix() {
        for name in PORTCULLIS_VARIABLES {
            assert!(name.starts_with("PORTCULLIS_"), "{name}");
        }
    }

    #[test]
    fn read_variables_are_in_our_namespace() {
        for name in PORTCULLIS_VARIABLES
            .iter()
            .chain(GENERAL_VARIABLES)
            .chain(AUTH_VARIABLES)
        {
            assert!(is_read(name), "{name}");
            assert!(is_in_our_namespace(name), "{name}");
        }
        assert!(!is_read("PATH"));
        assert!(!is_in_our_namespace("HOME"));
    }
}
