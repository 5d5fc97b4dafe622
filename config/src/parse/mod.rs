//! Validation of the merged variables into [`Settings`], collecting every problem.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ConfigError, Problem};
use crate::secret::Secret;
use crate::settings::{
    AdminList, AuthenticationSettings, AuthorizationSettings, BackendSettings, LogFormat, LogLevel,
    LogSettings, MetricsSettings, OidcSettings, Settings, StaticApiKeys, UpstreamSettings,
};
use crate::source::{self, Values};
use crate::vars;

const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
const DEFAULT_METRICS_PORT: u16 = 2112;
const DEFAULT_DATA_PATH: &str = "./data";
const MAX_WORKERS: usize = 1024;
const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;
const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_OIDC_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
const DEFAULT_OIDC_KID_MISS_COOLDOWN: Duration = Duration::from_secs(10);
const DEFAULT_OIDC_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_OIDC_LEEWAY: Duration = Duration::from_secs(60);
const DEFAULT_OIDC_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Every OIDC variable besides `AUTHENTICATION_OIDC_ENABLED`: noticed as ignored while it is off.
const OIDC_VARIABLES: &[&str] = &[
    vars::OIDC_ISSUER,
    vars::OIDC_CLIENT_ID,
    vars::OIDC_SKIP_CLIENT_ID_CHECK,
    vars::OIDC_USERNAME_CLAIM,
    vars::OIDC_GROUPS_CLAIM,
    vars::OIDC_SCOPES,
    vars::OIDC_CERTIFICATE,
    vars::OIDC_JWKS_URL,
    vars::OIDC_INSECURE_SKIP_TLS_VERIFY,
    vars::OIDC_REFRESH_INTERVAL,
    vars::OIDC_KID_MISS_COOLDOWN,
    vars::OIDC_MAX_STALENESS,
    vars::OIDC_LEEWAY,
    vars::OIDC_FETCH_TIMEOUT,
];

const BOOLEAN_FIX: &str = "use true, on, enabled or 1 to enable; false, off, disabled or 0 to \
                           disable (any case)";
const ADDR_FIX: &str = "give an IP address and a port, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or \
                        [::1]:8080 (host names are not resolved)";

/// Problems and notices found so far.
#[derive(Debug, Default)]
pub(crate) struct Report {
    problems: Vec<Problem>,
    notices: Vec<String>,
}

impl Report {
    /// Records a problem. Callers never put a secret value in any part of it.
    pub(crate) fn problem(
        &mut self,
        variable: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem::new(variable, message, fix));
    }

    /// Records a start-up notice. Callers never put a secret value in it.
    pub(crate) fn notice(&mut self, text: impl Into<String>) {
        self.notices.push(text.into());
    }
}

/// Splits the process environment into UTF-8 pairs, reporting non-UTF-8 names and values of
/// variables that look like ours (others are not looked at).
pub(crate) fn utf8_vars(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> (Vec<(String, String)>, Vec<Problem>) {
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in vars {
        let name = match name.into_string() {
            Ok(name) => name,
            Err(name) => {
                let lossy = name.to_string_lossy().into_owned();
                if vars::is_in_our_namespace(&lossy) {
                    problems.push(Problem::new(
                        lossy,
                        "the variable name is not valid UTF-8",
                        "rename it to the exact ASCII variable name",
                    ));
                }
                continue;
            }
        };
        match value.into_string() {
            Ok(value) => pairs.push((name, value)),
            Err(_) if vars::is_in_our_namespace(&name) => problems.push(Problem::new(
                name,
                "the value is not valid UTF-8",
                "set it to UTF-8 text",
            )),
            Err(_) => {}
        }
    }
    (pairs, problems)
}

/// Parses the variables into [`Settings`], or every problem found (including `problems`).
pub(crate) fn parse(
    vars: impl IntoIterator<Item = (String, String)>,
    problems: Vec<Problem>,
) -> Result<Settings, ConfigError> {
    // A later pair with the same name wins, as in a shell.
    let env: BTreeMap<String, String> = vars.into_iter().collect();
    let mut report = Report {
        problems,
        notices: Vec::new(),
    };
    let values = source::merge(&env, &mut report);
    let mut parser = Parser {
        values: &values,
        report,
    };
    let settings = parser.settings();
    let Report { problems, notices } = parser.report;
    if problems.is_empty() {
        Ok(Settings {
            notices,
            ..settings
        })
    } else {
        Err(ConfigError { problems })
    }
}

/// A variable's parsed value. `Invalid` has been reported already.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field<T> {
    Unset,
    Set(T),
    Invalid,
}

impl<T> Field<T> {
    /// The value, or `default` when unset or invalid (an invalid value fails the parse anyway).
    fn unwrap_or(self, default: T) -> T {
        match self {
            Field::Set(value) => value,
            Field::Unset | Field::Invalid => default,
        }
    }

    fn is_invalid(&self) -> bool {
        matches!(self, Field::Invalid)
    }
}

impl Field<bool> {
    fn is_true(&self) -> bool {
        matches!(self, Field::Set(true))
    }
}

struct Parser<'a> {
    values: &'a Values,
    report: Report,
}

impl<'a> Parser<'a> {
    fn settings(&mut self) -> Settings {
        let http = self.addr(vars::HTTP_ADDR);
        let http_valid = !http.is_invalid();
        let http_addr = http.unwrap_or(DEFAULT_HTTP_ADDR);
        Settings {
            http_addr,
            workers: self.workers(),
            metrics: self.metrics(http_addr, http_valid),
            log: LogSettings {
                level: self.log_level(),
                format: self.log_format(),
            },
            data_path: self.data_path(),
            authentication: self.authentication(),
            authorization: self.authorization(),
            backend: self.backend(),
            notices: Vec::new(),
        }
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.values.get(name).map(String::as_str)
    }

    fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Adds a notice for each of `names` that is set, saying `why` it is ignored.
    fn notice_ignored(&mut self, names: &[&str], why: &str) {
        for name in names {
            if self.is_set(name) {
                self.report
                    .notice(format!("{name} is set but ignored because {why}"));
            }
        }
    }

    fn boolean(&mut self, name: &str) -> Field<bool> {
        let Some(raw) = self.get(name) else {
            return Field::Unset;
        };
        match parse_bool(raw) {
            Some(value) => Field::Set(value),
            None => {
                let message = format!("{raw:?} is not a boolean");
                self.report.problem(name, message, BOOLEAN_FIX);
                Field::Invalid
            }
        }
    }

    fn addr(&mut self, name: &str) -> Field<SocketAddr> {
        let Some(raw) = self.get(name) else {
            return Field::Unset;
        };
        match raw.trim().parse::<SocketAddr>() {
            Ok(addr) => Field::Set(addr),
            Err(_) => {
                let message = format!("{raw:?} is not an IP:port socket address");
                self.report.problem(name, message, ADDR_FIX);
                Field::Invalid
            }
        }
    }

    fn port(&mut self, name: &str) -> Field<u16> {
        let Some(raw) = self.get(name) else {
            return Field::Unset;
        };
        match raw.trim().parse::<u16>() {
            Ok(port) => Field::Set(port),
            Err(_) => {
                let message = format!("{raw:?} is not a port number (0 to 65535)");
                self.report
                    .problem(name, message, format!("e.g. {name}={DEFAULT_METRICS_PORT}"));
                Field::Invalid
            }
        }
    }

    /// A comma-separated list. Never quotes the value, so it also serves secret lists.
    fn list(&mut self, name: &str) -> Field<Vec<String>> {
        match self.get(name) {
            None => Field::Unset,
            Some(raw) => self.split(name, raw),
        }
    }

    fn split(&mut self, name: &str, raw: &str) -> Field<Vec<String>> {
        match split_list(raw) {
            Ok(items) => Field::Set(items),
            Err(message) => {
                self.report.problem(
                    name,
                    message,
                    "separate items with a single ',' and leave none empty, or unset the variable",
                );
                Field::Invalid
            }
        }
    }

    /// A secret variable's value from `NAME` or the file named by `NAME_FILE`, with the name
    /// of the variable it came from.
    fn secret(&mut self, name: &str) -> Field<(String, String)> {
        let file_name = format!("{name}{}", vars::FILE_SUFFIX);
        match (self.get(name), self.get(&file_name)) {
            (Some(_), Some(_)) => {
                self.report.problem(
                    name,
                    format!("is set together with {file_name}"),
                    format!("set only one of {name} and {file_name}"),
                );
                Field::Invalid
            }
            (Some(value), None) => Field::Set((value.to_owned(), name.to_owned())),
            (None, Some(path)) => match self.read_secret_file(&file_name, path) {
                Some(value) => Field::Set((value, file_name)),
                None => Field::Invalid,
            },
            (None, None) => Field::Unset,
        }
    }

    /// The content of a `NAME_FILE` file with one trailing newline removed.
    fn read_secret_file(&mut self, file_name: &str, path: &str) -> Option<String> {
        if path.is_empty() {
            self.report.problem(
                file_name,
                "is set but empty",
                "set it to the path of a file holding the value, or unset it",
            );
            return None;
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.report.problem(
                    file_name,
                    format!("cannot read {path:?}: {err}"),
                    "check the path and that the server may read the file",
                );
                return None;
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            self.report.problem(
                file_name,
                format!("{path:?} is not UTF-8 text"),
                "store the value as UTF-8 text",
            );
            return None;
        };
        Some(trim_one_newline(text))
    }

    fn workers(&mut self) -> usize {
        let Some(raw) = self.get(vars::WORKERS) else {
            return std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(MAX_WORKERS);
        };
        match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_WORKERS).contains(&n) => n,
            _ => {
                let message = format!("{raw:?} is not a number of workers from 1 to {MAX_WORKERS}");
                self.report.problem(
                    vars::WORKERS,
                    message,
                    format!("e.g. {}=4, or unset it for one per CPU", vars::WORKERS),
                );
                1
            }
        }
    }

    fn metrics(&mut self, http: SocketAddr, http_valid: bool) -> MetricsSettings {
        let enabled = self
            .boolean(vars::PROMETHEUS_MONITORING_ENABLED)
            .unwrap_or(true);
        let default_addr = SocketAddr::new(http.ip(), DEFAULT_METRICS_PORT);
        if !enabled {
            self.notice_ignored(
                &[vars::METRICS_ADDR, vars::PROMETHEUS_MONITORING_PORT],
                "PROMETHEUS_MONITORING_ENABLED is false",
            );
            return MetricsSettings {
                enabled,
                addr: default_addr,
            };
        }
        let port = self.port(vars::PROMETHEUS_MONITORING_PORT);
        let explicit = self.addr(vars::METRICS_ADDR);
        let (addr, variable, valid) = match (&explicit, &port) {
            (Field::Set(addr), Field::Set(port)) => {
                if addr.port() != *port {
                    self.report.notice(format!(
                        "{} ({addr}) overrides {} ({port}): metrics are served on port {}",
                        vars::METRICS_ADDR,
                        vars::PROMETHEUS_MONITORING_PORT,
                        addr.port()
                    ));
                }
                (*addr, vars::METRICS_ADDR, true)
            }
            (Field::Set(addr), _) => (*addr, vars::METRICS_ADDR, true),
            (Field::Invalid, _) => (default_addr, vars::METRICS_ADDR, false),
            (Field::Unset, port) => (
                SocketAddr::new(http.ip(), port.clone().unwrap_or(DEFAULT_METRICS_PORT)),
                vars::PROMETHEUS_MONITORING_PORT,
                !port.is_invalid(),
            ),
        };
        if valid
            && http_valid
            && addr.port() != 0
            && addr.port() == http.port()
            && ips_overlap(addr.ip(), http.ip())
        {
            self.report.problem(
                variable,
                format!(
                    "metrics would be served on {addr}, the same port as the HTTP address {http}"
                ),
                format!(
                    "give metrics another port, e.g. {}={DEFAULT_METRICS_PORT} or {}={}",
                    vars::PROMETHEUS_MONITORING_PORT,
                    vars::METRICS_ADDR,
                    SocketAddr::new(http.ip(), DEFAULT_METRICS_PORT)
                ),
            );
        }
        MetricsSettings { enabled, addr }
    }

    fn log_level(&mut self) -> LogLevel {
        let Some(raw) = self.get(vars::LOG_LEVEL) else {
            return LogLevel::Info;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "panic" | "fatal" | "error" => LogLevel::Error,
            "warning" | "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => {
                let message = format!("{raw:?} is not a log level");
                self.report.problem(
                    vars::LOG_LEVEL,
                    message,
                    "use one of panic, fatal, error, warning, info, debug, trace",
                );
                LogLevel::Info
            }
        }
    }

    fn log_format(&mut self) -> LogFormat {
        let Some(raw) = self.get(vars::LOG_FORMAT) else {
            return LogFormat::Text;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            _ => {
                let message = format!("{raw:?} is not a log format");
                self.report
                    .problem(vars::LOG_FORMAT, message, "use json or text");
                LogFormat::Text
            }
        }
    }

    fn data_path(&mut self) -> PathBuf {
        match self.get(vars::PERSISTENCE_DATA_PATH) {
            None => PathBuf::from(DEFAULT_DATA_PATH),
            Some(raw) if raw.trim().is_empty() => {
                self.report.problem(
                    vars::PERSISTENCE_DATA_PATH,
                    "is set but empty",
                    format!("set a directory, e.g. {DEFAULT_DATA_PATH}, or unset it"),
                );
                PathBuf::from(DEFAULT_DATA_PATH)
            }
            Some(raw) => PathBuf::from(raw),
        }
    }

    fn backend(&mut self) -> BackendSettings {
        let max_body = match self.get(vars::MAX_BODY) {
            None => DEFAULT_MAX_BODY,
            Some(raw) => match parse_size(raw) {
                Some(n) if n > 0 => n,
                _ => {
                    self.report.problem(
                        vars::MAX_BODY,
                        format!("{raw:?} is not a positive size in bytes"),
                        format!(
                            "e.g. {}=10MiB or {}=1048576",
                            vars::MAX_BODY,
                            vars::MAX_BODY
                        ),
                    );
                    DEFAULT_MAX_BODY
                }
            },
        };
        let forward_auth = self.boolean(vars::UPSTREAM_FORWARD_AUTH);
        let timeout = self.duration(vars::UPSTREAM_TIMEOUT);
        let upstream = match self.get(vars::UPSTREAM_URL) {
            None => {
                self.notice_ignored(
                    &[vars::UPSTREAM_FORWARD_AUTH, vars::UPSTREAM_TIMEOUT],
                    "PORTCULLIS_UPSTREAM_URL is not set (the embedded store serves requests)",
                );
                None
            }
            Some(raw) => match parse_upstream_url(raw) {
                Ok(url) => Some(UpstreamSettings {
                    url,
                    forward_auth: forward_auth.unwrap_or(false),
                    timeout: timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT),
                }),
                Err(why) => {
                    self.report.problem(
                        vars::UPSTREAM_URL,
                        format!("{raw:?} {why}"),
                        format!("e.g. {}=http://127.0.0.1:8081", vars::UPSTREAM_URL),
                    );
                    None
                }
            },
        };
        BackendSettings { max_body, upstream }
    }

    /// A duration like `60s`, `500ms`, `5m`, `24h`, or a plain number of seconds. Zero is refused.
    fn duration(&mut self, name: &str) -> Field<Duration> {
        let Some(raw) = self.get(name) else {
            return Field::Unset;
        };
        match parse_duration(raw) {
            Some(d) if !d.is_zero() => Field::Set(d),
            _ => {
                self.report.problem(
                    name,
                    format!("{raw:?} is not a positive duration"),
                    format!("e.g. {name}=60s (units: ms, s, m, h; a bare number is seconds)"),
                );
                Field::Invalid
            }
        }
    }

    fn authentication(&mut self) -> AuthenticationSettings {
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

        AuthenticationSettings {
            anonymous_access: anonymous.unwrap_or(false),
            api_key,
            db_users_enabled: db_users.unwrap_or(false) || bootstrap,
            bootstrap_admin: bootstrap,
            oidc: oidc_settings,
        }
    }

    /// Weaviate's `AUTHENTICATION_OIDC_*` rules (and messages) plus our `PORTCULLIS_OIDC_*`.
    fn oidc(&mut self, enabled: &Field<bool>) -> Option<OidcSettings> {
        match enabled {
            Field::Set(true) => {}
            Field::Set(false) | Field::Unset => {
                self.notice_ignored(OIDC_VARIABLES, "AUTHENTICATION_OIDC_ENABLED is not true");
                return None;
            }
            Field::Invalid => return None,
        }

        let issuer = match self.non_empty(vars::OIDC_ISSUER) {
            None => {
                self.report.problem(
                    vars::OIDC_ISSUER,
                    "missing required field 'issuer'",
                    format!(
                        "set {}=<issuer URL>, exactly as the provider's discovery document spells it",
                        vars::OIDC_ISSUER
                    ),
                );
                None
            }
            Some(raw) => self.oidc_url(vars::OIDC_ISSUER, raw),
        };
        let skip_client_id_check = self
            .boolean(vars::OIDC_SKIP_CLIENT_ID_CHECK)
            .unwrap_or(false);
        let client_id = self.non_empty(vars::OIDC_CLIENT_ID).map(str::to_owned);
        if client_id.is_none() && !skip_client_id_check {
            self.report.problem(
                vars::OIDC_CLIENT_ID,
                "missing required field 'client_id': either set a client_id or explicitly \
                 disable the check with 'skip_client_id_check: true'",
                format!(
                    "set {}=<client id expected in the tokens' aud>, or {}=true",
                    vars::OIDC_CLIENT_ID,
                    vars::OIDC_SKIP_CLIENT_ID_CHECK
                ),
            );
        }
        let username_claim = self.non_empty(vars::OIDC_USERNAME_CLAIM).map(str::to_owned);
        if username_claim.is_none() {
            self.report.problem(
                vars::OIDC_USERNAME_CLAIM,
                "missing required field 'username_claim'",
                format!(
                    "set {}=<claim holding the user name>, e.g. email, preferred_username or sub",
                    vars::OIDC_USERNAME_CLAIM
                ),
            );
        }
        let groups_claim = self.non_empty(vars::OIDC_GROUPS_CLAIM).map(str::to_owned);
        let scopes = match self.non_empty(vars::OIDC_SCOPES) {
            None => Vec::new(),
            Some(raw) => self.split(vars::OIDC_SCOPES, raw).unwrap_or(Vec::new()),
        };
        let certificate = self.oidc_certificate();
        let insecure = self
            .boolean(vars::OIDC_INSECURE_SKIP_TLS_VERIFY)
            .unwrap_or(false);
        if insecure && certificate.is_some() {
            self.report.problem(
                vars::OIDC_INSECURE_SKIP_TLS_VERIFY,
                format!(
                    "cannot skip TLS verification and trust a certificate ({}) at the same time",
                    vars::OIDC_CERTIFICATE
                ),
                format!(
                    "unset {} and keep the certificate, or unset {}",
                    vars::OIDC_INSECURE_SKIP_TLS_VERIFY,
                    vars::OIDC_CERTIFICATE
                ),
            );
        } else if insecure {
            self.report.notice(format!(
                "{} is true: the issuer's TLS certificate is not verified, so anyone on the path \
                 can serve signing keys; use it for tests only",
                vars::OIDC_INSECURE_SKIP_TLS_VERIFY
            ));
        }
        let jwks_url = match self.non_empty(vars::OIDC_JWKS_URL) {
            None => None,
            Some(raw) => self.oidc_url(vars::OIDC_JWKS_URL, raw),
        };

        let refresh_interval = self
            .duration(vars::OIDC_REFRESH_INTERVAL)
            .unwrap_or(DEFAULT_OIDC_REFRESH_INTERVAL);
        let kid_miss_cooldown = self
            .duration(vars::OIDC_KID_MISS_COOLDOWN)
            .unwrap_or(DEFAULT_OIDC_KID_MISS_COOLDOWN);
        let staleness = self.duration(vars::OIDC_MAX_STALENESS);
        let staleness_valid = !staleness.is_invalid();
        let max_staleness = staleness.unwrap_or(DEFAULT_OIDC_MAX_STALENESS);
        let leeway = self.leeway();
        let fetch_timeout = self
            .duration(vars::OIDC_FETCH_TIMEOUT)
            .unwrap_or(DEFAULT_OIDC_FETCH_TIMEOUT);
        if staleness_valid && max_staleness <= refresh_interval {
            self.report.problem(
                vars::OIDC_MAX_STALENESS,
                format!(
                    "{max_staleness:?} is not longer than {} ({refresh_interval:?}): keys would \
                     stop being used before the next refresh",
                    vars::OIDC_REFRESH_INTERVAL
                ),
                format!(
                    "set {} well above {}, e.g. 24h",
                    vars::OIDC_MAX_STALENESS,
                    vars::OIDC_REFRESH_INTERVAL
                ),
            );
        }

        Some(OidcSettings {
            issuer: issuer?,
            client_id,
            skip_client_id_check,
            username_claim: username_claim?,
            groups_claim,
            scopes,
            certificate,
            jwks_url,
            insecure_skip_tls_verify: insecure,
            refresh_interval,
            kid_miss_cooldown,
            max_staleness,
            leeway,
            fetch_timeout,
        })
    }

    /// The value of `name` when it is set to something other than blanks.
    fn non_empty(&self, name: &str) -> Option<&'a str> {
        self.get(name).filter(|raw| !raw.trim().is_empty())
    }

    /// An issuer or JWKS URL: `http(s)://host...`, kept exactly (an issuer must match `iss`
    /// byte for byte). `http://` is accepted with a notice, as Weaviate accepts it.
    fn oidc_url(&mut self, name: &str, raw: &str) -> Option<String> {
        match check_oidc_url(raw) {
            Ok(plain_http) => {
                if plain_http {
                    self.report.notice(format!(
                        "{name} uses http://: signing keys are fetched without TLS; use https:// \
                         unless the issuer is reached over a trusted network"
                    ));
                }
                Some(raw.to_owned())
            }
            Err(why) => {
                self.report.problem(
                    name,
                    format!("{raw:?} {why}"),
                    format!("e.g. {name}=https://login.example.com/realms/main"),
                );
                None
            }
        }
    }

    /// `AUTHENTICATION_OIDC_CERTIFICATE`: inline PEM, or the path of a PEM file.
    fn oidc_certificate(&mut self) -> Option<String> {
        let name = vars::OIDC_CERTIFICATE;
        let raw = self.non_empty(name)?;
        let fix = "give the PEM text of the CA certificate (-----BEGIN CERTIFICATE-----...) or \
                   the path of a file holding it";
        let trimmed = raw.trim();
        let pem = if trimmed.starts_with("-----BEGIN") {
            trimmed.to_owned()
        } else if ["http://", "https://", "s3://"]
            .iter()
            .any(|scheme| trimmed.to_ascii_lowercase().starts_with(scheme))
        {
            self.report.problem(
                name,
                "fetching the certificate from a URL or S3 is not supported",
                format!("download it once and {fix}"),
            );
            return None;
        } else {
            match std::fs::read(trimmed) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        self.report.problem(
                            name,
                            format!("{trimmed:?} is not a PEM text file"),
                            fix,
                        );
                        return None;
                    }
                },
                Err(err) => {
                    self.report.problem(
                        name,
                        format!("is neither PEM text nor a readable file: cannot read {trimmed:?}: {err}"),
                        fix,
                    );
                    return None;
                }
            }
        };
        if !pem.contains("-----BEGIN CERTIFICATE-----")
            || !pem.contains("-----END CERTIFICATE-----")
        {
            self.report
                .problem(name, "does not contain a PEM certificate", fix);
            return None;
        }
        Some(pem)
    }

    /// `PORTCULLIS_OIDC_LEEWAY`: like [`Parser::duration`], but zero (no leeway) is allowed.
    fn leeway(&mut self) -> Duration {
        let name = vars::OIDC_LEEWAY;
        let Some(raw) = self.get(name) else {
            return DEFAULT_OIDC_LEEWAY;
        };
        match parse_duration(raw) {
            Some(d) => d,
            None => {
                self.report.problem(
                    name,
                    format!("{raw:?} is not a duration"),
                    format!("e.g. {name}=60s, or {name}=0s for none (units: ms, s, m, h)"),
                );
                DEFAULT_OIDC_LEEWAY
            }
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

    fn authorization(&mut self) -> AuthorizationSettings {
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

/// A size in bytes: a number with an optional `KiB`, `MiB` or `GiB` (or `k`, `m`, `g`) suffix.
fn parse_size(raw: &str) -> Option<usize> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: usize = number.parse().ok()?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// A duration: a number with `ms`, `s`, `m` or `h`, or a bare number of seconds.
fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Checks an upstream URL: `http` or `https`, a host, an optional port, no path, query,
/// fragment or credentials. Returns it without a trailing slash.
fn parse_upstream_url(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() {
        return Err("has no host");
    }
    if rest.contains(['/', '?', '#', '@']) || rest.chars().any(|c| c.is_whitespace()) {
        return Err("must be scheme://host[:port] without a path, query or credentials");
    }
    if let Some((_, port)) = rest.rsplit_once(':') {
        if !rest.ends_with(']') && port.parse::<u16>().is_err() {
            return Err("has an invalid port");
        }
    }
    Ok(trimmed.to_owned())
}

/// Checks an issuer or JWKS URL: `http(s)://` then a host, no whitespace, fragment or
/// credentials. `Ok(true)` for plain `http://`.
fn check_oidc_url(raw: &str) -> Result<bool, &'static str> {
    let lower = raw.to_ascii_lowercase();
    let (rest, plain_http) = if let Some(rest) = lower.strip_prefix("https://") {
        (rest, false)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (rest, true)
    } else {
        return Err("must start with https:// (or http://)");
    };
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err("has no host");
    }
    if authority.contains('@') {
        return Err("must not contain credentials");
    }
    if raw.contains('#') {
        return Err("must not contain a fragment");
    }
    Ok(plain_http)
}

/// Weaviate's boolean spellings (case-insensitive); anything else is `None`.
fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "enabled" | "1" | "true" => Some(true),
        "off" | "disabled" | "0" | "false" => Some(false),
        _ => None,
    }
}

/// Splits on ',' and trims items. The error message never quotes the value.
fn split_list(raw: &str) -> Result<Vec<String>, String> {
    if raw.trim().is_empty() {
        return Err("is set but empty".to_owned());
    }
    let items: Vec<String> = raw.split(',').map(|s| s.trim().to_owned()).collect();
    let empty: Vec<String> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.is_empty())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    match empty.as_slice() {
        [] => Ok(items),
        [one] => Err(format!("item {one} is empty")),
        many => Err(format!("items {} are empty", many.join(", "))),
    }
}

/// Removes one trailing line ending (`\n` or `\r\n`), as editors add one to files.
fn trim_one_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Whether two listeners on these IPs would claim the same port.
fn ips_overlap(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::vars::*;

    // Fake keys for tests. Assertions never print them: failure messages are fixed strings.
    const KEY_A: &str = "pk-test-alpha-91c3";
    const KEY_B: &str = "pk-test-bravo-27d8";
    const KEY_C: &str = "pk-test-charlie-5e0f";

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_vars(vars.iter().copied())
    }

    /// The variables plus anonymous access on, the smallest valid configuration.
    fn open<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = vec![(ANONYMOUS_ACCESS_ENABLED, "true")];
        vars.extend_from_slice(extra);
        vars
    }

    /// Static keys on with the given keys and users, plus `extra`.
    fn keyed<'a>(
        keys: &'a str,
        users: &'a str,
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        let mut vars = vec![
            (APIKEY_ENABLED, "true"),
            (APIKEY_ALLOWED_KEYS, keys),
            (APIKEY_USERS, users),
        ];
        vars.extend_from_slice(extra);
        vars
    }

    fn ok(vars: &[(&str, &str)]) -> Settings {
        match parse(vars) {
            Ok(settings) => settings,
            // A ConfigError never holds a secret, so it may be printed.
            Err(err) => panic!("expected valid settings, got {err}"),
        }
    }

    fn problems(vars: &[(&str, &str)]) -> Vec<Problem> {
        match parse(vars) {
            Ok(_) => panic!("expected a configuration error"),
            Err(err) => {
                assert_no_key_in(&err.to_string());
                assert_no_key_in(&format!("{err:?}"));
                err.problems
            }
        }
    }

    fn variables(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.variable.as_str()).collect()
    }

    /// The single problem, asserted to name `variable`.
    fn only_problem(vars: &[(&str, &str)], variable: &str) -> Problem {
        let problems = problems(vars);
        assert_eq!(variables(&problems), [variable], "{problems:#?}");
        problems.into_iter().next().expect("one problem")
    }

    fn assert_no_key_in(text: &str) {
        for key in [KEY_A, KEY_B, KEY_C] {
            assert!(!text.contains(key), "output contains a key value");
        }
    }

    fn exposed(keys: &StaticApiKeys) -> Vec<(String, String)> {
        keys.pairs()
            .map(|(key, user)| (key.expose().clone(), user.to_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, u)| ((*k).to_owned(), (*u).to_owned()))
            .collect()
    }

    fn temp_file(suffix: &str, content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new()
            .suffix(suffix)
            .tempfile()
            .expect("temp file");
        file.write_all(content.as_bytes()).expect("write temp file");
        file
    }

    fn path_of(file: &tempfile::NamedTempFile) -> &str {
        file.path().to_str().expect("UTF-8 temp path")
    }

    // --- defaults and general variables ---

    #[test]
    fn applies_defaults_when_only_anonymous_access_is_set() {
        let settings = ok(&open(&[]));
        assert_eq!(settings.http_addr, DEFAULT_HTTP_ADDR);
        assert!((1..=MAX_WORKERS).contains(&settings.workers));
        assert!(settings.metrics.enabled);
        assert_eq!(settings.metrics.addr.to_string(), "127.0.0.1:2112");
        assert_eq!(settings.log.level, LogLevel::Info);
        assert_eq!(settings.log.format, LogFormat::Text);
        assert_eq!(settings.data_path, PathBuf::from("./data"));
        assert!(settings.authentication.anonymous_access);
        assert_eq!(settings.authentication.api_key, None);
        assert!(!settings.authentication.db_users_enabled);
        assert_eq!(settings.authorization.admin_list, None);
        assert_eq!(settings.notices, Vec::<String>::new());
    }

    #[test]
    fn reads_general_variables() {
        let settings = ok(&open(&[
            (HTTP_ADDR, "0.0.0.0:9000"),
            (WORKERS, "3"),
            (PERSISTENCE_DATA_PATH, "/var/lib/portcullis"),
        ]));
        assert_eq!(settings.http_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.workers, 3);
        assert_eq!(settings.data_path, PathBuf::from("/var/lib/portcullis"));
    }

    #[test]
    fn rejects_workers_outside_one_to_1024() {
        for raw in ["0", "1025", "-1", "four", ""] {
            let problem = only_problem(&open(&[(WORKERS, raw)]), WORKERS);
            assert!(problem.message.contains("1 to 1024"), "{problem}");
        }
        assert_eq!(ok(&open(&[(WORKERS, "1024")])).workers, 1024);
    }

    #[test]
    fn rejects_an_empty_data_path() {
        only_problem(&open(&[(PERSISTENCE_DATA_PATH, "")]), PERSISTENCE_DATA_PATH);
    }

    #[test]
    fn log_level_accepts_weaviate_values_in_any_case() {
        let table = [
            ("panic", LogLevel::Error),
            ("FATAL", LogLevel::Error),
            ("error", LogLevel::Error),
            ("Warning", LogLevel::Warn),
            ("warn", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("DEBUG", LogLevel::Debug),
            ("trace", LogLevel::Trace),
        ];
        for (raw, level) in table {
            assert_eq!(ok(&open(&[(LOG_LEVEL, raw)])).log.level, level, "{raw}");
        }
    }

    #[test]
    fn rejects_an_unknown_log_level() {
        let problem = only_problem(&open(&[(LOG_LEVEL, "verbose")]), LOG_LEVEL);
        assert!(problem.fix.contains("warning"), "{problem}");
    }

    #[test]
    fn log_format_accepts_json_and_text_only() {
        let table = [("json", LogFormat::Json), ("TEXT", LogFormat::Text)];
        for (raw, format) in table {
            assert_eq!(ok(&open(&[(LOG_FORMAT, raw)])).log.format, format, "{raw}");
        }
        only_problem(&open(&[(LOG_FORMAT, "logfmt")]), LOG_FORMAT);
    }

    // --- parsing rules ---

    #[test]
    fn booleans_accept_weaviate_spellings_in_any_case() {
        let table = [
            ("on", true),
            ("ON", true),
            ("enabled", true),
            ("Enabled", true),
            ("1", true),
            ("true", true),
            ("TRUE", true),
            ("off", false),
            ("OFF", false),
            ("disabled", false),
            ("0", false),
            ("false", false),
            ("False", false),
        ];
        for (raw, expected) in table {
            let settings = ok(&open(&[(DB_USERS_ENABLED, raw)]));
            assert_eq!(settings.authentication.db_users_enabled, expected, "{raw}");
        }
    }

    #[test]
    fn rejects_unrecognised_boolean_spellings() {
        for raw in ["yes", "no", "ture", "2", "", "enable"] {
            let problem = only_problem(&open(&[(DB_USERS_ENABLED, raw)]), DB_USERS_ENABLED);
            for accepted in [
                "true", "on", "enabled", "1", "false", "off", "disabled", "0",
            ] {
                assert!(problem.fix.contains(accepted), "{problem}");
            }
        }
    }

    #[test]
    fn trims_list_items() {
        let settings = ok(&open(&[
            (ADMINLIST_ENABLED, "true"),
            (ADMINLIST_USERS, " alice , bob"),
            (ADMINLIST_READONLY_GROUPS, "readers ,  auditors "),
        ]));
        let admin = settings.authorization.admin_list.expect("admin list");
        assert_eq!(admin.users, ["alice", "bob"]);
        assert_eq!(admin.readonly_groups, ["readers", "auditors"]);
        assert_eq!(admin.readonly_users, Vec::<String>::new());
    }

    #[test]
    fn rejects_empty_list_items() {
        let table = [
            ("a,,b", "item 2 is empty"),
            ("a,", "item 2 is empty"),
            (",a, ,b", "items 1, 3 are empty"),
            ("", "is set but empty"),
            ("  ", "is set but empty"),
        ];
        for (raw, message) in table {
            let vars = open(&[(ADMINLIST_ENABLED, "true"), (ADMINLIST_USERS, raw)]);
            let problem = only_problem(&vars, ADMINLIST_USERS);
            assert_eq!(problem.message, message, "{raw:?}");
        }
    }

    // --- static API keys ---

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
    fn reads_a_secret_from_its_name_file() {
        let file = temp_file(".keys", &format!("{KEY_A},{KEY_B}\n"));
        let vars = [
            (APIKEY_ENABLED, "true"),
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE", path_of(&file)),
            (APIKEY_USERS, "alice,bob"),
        ];
        let api_key = ok(&vars).authentication.api_key.expect("static keys");
        let expected = pairs(&[(KEY_A, "alice"), (KEY_B, "bob")]);
        assert!(
            exposed(&api_key) == expected,
            "the key file was not read as expected"
        );
    }

    #[test]
    fn name_file_content_loses_one_trailing_newline_only() {
        let table = [
            ("abc\n", "abc"),
            ("abc\r\n", "abc"),
            ("abc\n\n", "abc\n"),
            ("abc", "abc"),
            ("\n", ""),
        ];
        for (content, expected) in table {
            assert_eq!(
                trim_one_newline(content.to_owned()),
                expected,
                "{content:?}"
            );
        }
    }

    #[test]
    fn rejects_a_secret_set_both_directly_and_by_file() {
        let file = temp_file(".keys", KEY_B);
        let vars = [
            (APIKEY_ENABLED, "true"),
            (APIKEY_ALLOWED_KEYS, KEY_A),
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE", path_of(&file)),
            (APIKEY_USERS, "alice"),
        ];
        let problem = only_problem(&vars, APIKEY_ALLOWED_KEYS);
        assert!(
            problem
                .message
                .contains("AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE"),
            "{problem}"
        );
    }

    #[test]
    fn rejects_an_unreadable_name_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("absent.keys");
        let vars = [
            (APIKEY_ENABLED, "true"),
            (
                "AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE",
                missing.to_str().expect("UTF-8 path"),
            ),
            (APIKEY_USERS, "alice"),
        ];
        only_problem(&vars, "AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE");
    }

    // --- admin list and RBAC ---

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

    // --- OIDC and anonymous access ---

    /// The smallest valid OIDC configuration plus `extra`.
    fn oidc<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = vec![
            (OIDC_ENABLED, "true"),
            (OIDC_ISSUER, "https://issuer.example/realms/main"),
            (OIDC_CLIENT_ID, "portcullis"),
            (OIDC_USERNAME_CLAIM, "email"),
        ];
        vars.extend_from_slice(extra);
        vars
    }

    fn oidc_settings(vars: &[(&str, &str)]) -> OidcSettings {
        ok(vars).authentication.oidc.expect("OIDC enabled")
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

    #[test]
    fn reads_oidc_settings_with_defaults() {
        let settings = ok(&oidc(&[]));
        let oidc = settings.authentication.oidc.clone().expect("OIDC enabled");
        assert_eq!(oidc.issuer, "https://issuer.example/realms/main");
        assert_eq!(oidc.client_id.as_deref(), Some("portcullis"));
        assert!(!oidc.skip_client_id_check);
        assert_eq!(oidc.username_claim, "email");
        assert_eq!(oidc.groups_claim, None);
        assert_eq!(oidc.scopes, Vec::<String>::new());
        assert_eq!(oidc.certificate, None);
        assert_eq!(oidc.jwks_url, None);
        assert!(!oidc.insecure_skip_tls_verify);
        assert_eq!(oidc.refresh_interval, Duration::from_secs(300));
        assert_eq!(oidc.kid_miss_cooldown, Duration::from_secs(10));
        assert_eq!(oidc.max_staleness, Duration::from_secs(86_400));
        assert_eq!(oidc.leeway, Duration::from_secs(60));
        assert_eq!(oidc.fetch_timeout, Duration::from_secs(5));
        assert_eq!(
            oidc.discovery_url(),
            "https://issuer.example/realms/main/.well-known/openid-configuration"
        );
        assert_eq!(settings.notices, Vec::<String>::new());
    }

    #[test]
    fn reads_every_oidc_variable() {
        let oidc = oidc_settings(&oidc(&[
            (OIDC_GROUPS_CLAIM, "groups"),
            (OIDC_SCOPES, "openid, email"),
            (OIDC_JWKS_URL, "https://keys.example/jwks.json"),
            (OIDC_CERTIFICATE, PEM),
            (OIDC_REFRESH_INTERVAL, "2m"),
            (OIDC_KID_MISS_COOLDOWN, "500ms"),
            (OIDC_MAX_STALENESS, "1h"),
            (OIDC_LEEWAY, "0s"),
            (OIDC_FETCH_TIMEOUT, "2s"),
        ]));
        assert_eq!(oidc.groups_claim.as_deref(), Some("groups"));
        assert_eq!(oidc.scopes, ["openid", "email"]);
        assert_eq!(
            oidc.jwks_url.as_deref(),
            Some("https://keys.example/jwks.json")
        );
        assert_eq!(oidc.certificate.as_deref(), Some(PEM.trim()));
        assert_eq!(oidc.refresh_interval, Duration::from_secs(120));
        assert_eq!(oidc.kid_miss_cooldown, Duration::from_millis(500));
        assert_eq!(oidc.max_staleness, Duration::from_secs(3600));
        assert_eq!(oidc.leeway, Duration::ZERO);
        assert_eq!(oidc.fetch_timeout, Duration::from_secs(2));
    }

    #[test]
    fn keeps_the_issuer_exactly_as_given() {
        let oidc = oidc_settings(&oidc(&[(OIDC_ISSUER, "https://issuer.example/")]));
        assert_eq!(oidc.issuer, "https://issuer.example/");
        assert_eq!(
            oidc.discovery_url(),
            "https://issuer.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn oidc_counts_as_an_enabled_method() {
        let auth = ok(&oidc(&[])).authentication;
        assert!(!auth.bootstrap_admin);
        assert!(!auth.db_users_enabled);
        assert!(!auth.anonymous_access);
    }

    #[test]
    fn requires_issuer_and_username_claim_with_weaviates_messages() {
        let problems = problems(&[(OIDC_ENABLED, "true"), (OIDC_CLIENT_ID, "c")]);
        assert_eq!(variables(&problems), [OIDC_ISSUER, OIDC_USERNAME_CLAIM]);
        assert_eq!(problems[0].message, "missing required field 'issuer'");
        assert_eq!(
            problems[1].message,
            "missing required field 'username_claim'"
        );
    }

    #[test]
    fn empty_required_values_count_as_missing() {
        for name in [OIDC_ISSUER, OIDC_USERNAME_CLAIM, OIDC_CLIENT_ID] {
            only_problem(&oidc(&[(name, "  ")]), name);
        }
    }

    #[test]
    fn requires_a_client_id_unless_its_check_is_skipped() {
        let vars = [
            (OIDC_ENABLED, "true"),
            (OIDC_ISSUER, "https://issuer.example"),
            (OIDC_USERNAME_CLAIM, "sub"),
        ];
        let problem = only_problem(&vars, OIDC_CLIENT_ID);
        assert_eq!(
            problem.message,
            "missing required field 'client_id': either set a client_id or explicitly disable \
             the check with 'skip_client_id_check: true'"
        );
        let mut skipped = vars.to_vec();
        skipped.push((OIDC_SKIP_CLIENT_ID_CHECK, "true"));
        let oidc = oidc_settings(&skipped);
        assert!(oidc.skip_client_id_check);
        assert_eq!(oidc.client_id, None);
    }

    #[test]
    fn rejects_issuer_and_jwks_urls_that_are_not_http_urls() {
        for raw in [
            "issuer.example",
            "ftp://issuer.example",
            "https://",
            "https:///path",
            "https://user:pw@issuer.example",
            "https://issuer.example/a b",
            "https://issuer.example/#frag",
        ] {
            only_problem(&oidc(&[(OIDC_ISSUER, raw)]), OIDC_ISSUER);
            only_problem(&oidc(&[(OIDC_JWKS_URL, raw)]), OIDC_JWKS_URL);
        }
    }

    #[test]
    fn accepts_a_plain_http_issuer_with_a_notice() {
        let vars = oidc(&[(OIDC_ISSUER, "http://127.0.0.1:9000")]);
        let settings = ok(&vars);
        assert_eq!(
            settings.authentication.oidc.map(|o| o.issuer).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with(OIDC_ISSUER));
    }

    #[test]
    fn reads_the_certificate_from_a_file_path() {
        let file = temp_file(".pem", PEM);
        let oidc = oidc_settings(&oidc(&[(OIDC_CERTIFICATE, path_of(&file))]));
        assert_eq!(oidc.certificate.as_deref(), Some(PEM));
    }

    #[test]
    fn rejects_certificates_that_are_not_pem_or_a_readable_file() {
        let not_pem = temp_file(".pem", "hello");
        for raw in [
            "/nonexistent/ca.pem",
            "https://ca.example/ca.pem",
            "s3://bucket/ca.pem",
            "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
            path_of(&not_pem),
        ] {
            only_problem(&oidc(&[(OIDC_CERTIFICATE, raw)]), OIDC_CERTIFICATE);
        }
    }

    #[test]
    fn refuses_skipping_tls_verification_together_with_a_certificate() {
        let problem = only_problem(
            &oidc(&[
                (OIDC_CERTIFICATE, PEM),
                (OIDC_INSECURE_SKIP_TLS_VERIFY, "true"),
            ]),
            OIDC_INSECURE_SKIP_TLS_VERIFY,
        );
        assert!(problem.message.contains(OIDC_CERTIFICATE), "{problem}");
        let settings = ok(&oidc(&[(OIDC_INSECURE_SKIP_TLS_VERIFY, "true")]));
        assert!(
            settings
                .authentication
                .oidc
                .expect("on")
                .insecure_skip_tls_verify
        );
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
    }

    #[test]
    fn rejects_bad_oidc_booleans_durations_and_scopes() {
        let cases = [
            (OIDC_SKIP_CLIENT_ID_CHECK, "maybe"),
            (OIDC_INSECURE_SKIP_TLS_VERIFY, "yes"),
            (OIDC_REFRESH_INTERVAL, "0s"),
            (OIDC_REFRESH_INTERVAL, "5 minutes"),
            (OIDC_KID_MISS_COOLDOWN, "0"),
            (OIDC_MAX_STALENESS, "-1h"),
            (OIDC_LEEWAY, "1d"),
            (OIDC_FETCH_TIMEOUT, "soon"),
            (OIDC_SCOPES, "openid,,email"),
        ];
        for (name, raw) in cases {
            only_problem(&oidc(&[(name, raw)]), name);
        }
    }

    #[test]
    fn rejects_a_max_staleness_not_above_the_refresh_interval() {
        let problem = only_problem(
            &oidc(&[(OIDC_REFRESH_INTERVAL, "10m"), (OIDC_MAX_STALENESS, "10m")]),
            OIDC_MAX_STALENESS,
        );
        assert!(problem.message.contains(OIDC_REFRESH_INTERVAL), "{problem}");
    }

    #[test]
    fn blank_optional_oidc_values_are_unset() {
        let oidc = oidc_settings(&oidc(&[
            (OIDC_GROUPS_CLAIM, ""),
            (OIDC_SCOPES, ""),
            (OIDC_JWKS_URL, " "),
            (OIDC_CERTIFICATE, ""),
        ]));
        assert_eq!(oidc.groups_claim, None);
        assert!(oidc.scopes.is_empty());
        assert_eq!(oidc.jwks_url, None);
        assert_eq!(oidc.certificate, None);
    }

    #[test]
    fn notices_oidc_variables_while_oidc_is_off() {
        for enabled in [None, Some("false")] {
            let mut vars = open(&[
                (OIDC_ISSUER, "https://issuer.example"),
                (OIDC_USERNAME_CLAIM, "email"),
                (OIDC_LEEWAY, "30s"),
            ]);
            if let Some(enabled) = enabled {
                vars.push((OIDC_ENABLED, enabled));
            }
            let settings = ok(&vars);
            assert_eq!(settings.authentication.oidc, None);
            assert_eq!(settings.notices.len(), 3, "{:?}", settings.notices);
            assert!(settings.notices.iter().all(|n| n.contains("ignored")));
        }
    }

    #[test]
    fn unknown_oidc_variables_give_a_notice() {
        let settings = ok(&oidc(&[("AUTHENTICATION_OIDC_NAMESPACE_CLAIM", "ns")]));
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with("AUTHENTICATION_OIDC_NAMESPACE_CLAIM"));
    }

    #[test]
    fn an_invalid_oidc_switch_is_one_problem() {
        only_problem(&open(&[(OIDC_ENABLED, "perhaps")]), OIDC_ENABLED);
    }

    #[test]
    fn describe_lists_oidc_settings_without_the_certificate_text() {
        let settings = ok(&oidc(&[(OIDC_CERTIFICATE, PEM)]));
        let lines = settings.describe();
        let get = |name: &str| {
            lines
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get(OIDC_ENABLED).as_deref(), Some("true"));
        assert_eq!(
            get(OIDC_ISSUER).as_deref(),
            Some("https://issuer.example/realms/main")
        );
        assert_eq!(get(OIDC_CERTIFICATE).as_deref(), Some("1 certificate"));
        assert!(!format!("{lines:?}").contains("MIIBfake"));
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

    // --- addresses and metrics ---

    #[test]
    fn rejects_socket_addresses_that_are_not_ip_and_port() {
        for raw in [
            "localhost:8080",
            "8080",
            "127.0.0.1",
            "[::1]",
            "::1:8080",
            "",
        ] {
            let problem = only_problem(&open(&[(HTTP_ADDR, raw)]), HTTP_ADDR);
            assert!(problem.fix.contains("127.0.0.1:8080"), "{problem}");
            assert!(problem.fix.contains("[::1]:8080"), "{problem}");
        }
        assert_eq!(
            ok(&open(&[(HTTP_ADDR, "[::1]:8080")]))
                .http_addr
                .to_string(),
            "[::1]:8080"
        );
        only_problem(&open(&[(METRICS_ADDR, "metrics:2112")]), METRICS_ADDR);
    }

    #[test]
    fn rejects_a_port_that_is_not_a_u16() {
        for raw in ["70000", "-1", "port", ""] {
            only_problem(
                &open(&[(PROMETHEUS_MONITORING_PORT, raw)]),
                PROMETHEUS_MONITORING_PORT,
            );
        }
    }

    #[test]
    fn metrics_follow_the_http_ip_and_prometheus_port() {
        let table: [(&[(&str, &str)], &str); 4] = [
            (&[], "127.0.0.1:2112"),
            (&[(HTTP_ADDR, "0.0.0.0:80")], "0.0.0.0:2112"),
            (
                &[
                    (HTTP_ADDR, "[::1]:80"),
                    (PROMETHEUS_MONITORING_PORT, "9100"),
                ],
                "[::1]:9100",
            ),
            (&[(METRICS_ADDR, "10.0.0.1:9000")], "10.0.0.1:9000"),
        ];
        for (extra, addr) in table {
            let settings = ok(&open(extra));
            assert_eq!(settings.metrics.addr.to_string(), addr, "{extra:?}");
            assert_eq!(settings.notices, Vec::<String>::new());
        }
    }

    #[test]
    fn metrics_addr_wins_over_a_disagreeing_prometheus_port_with_a_notice() {
        let settings = ok(&open(&[
            (METRICS_ADDR, "127.0.0.1:9000"),
            (PROMETHEUS_MONITORING_PORT, "9100"),
        ]));
        assert_eq!(settings.metrics.addr.to_string(), "127.0.0.1:9000");
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with(METRICS_ADDR));
        let agreeing = ok(&open(&[
            (METRICS_ADDR, "127.0.0.1:9100"),
            (PROMETHEUS_MONITORING_PORT, "9100"),
        ]));
        assert_eq!(agreeing.notices, Vec::<String>::new());
    }

    #[test]
    fn rejects_a_metrics_port_equal_to_the_http_port() {
        let table: [(&[(&str, &str)], &str); 4] = [
            (&[(HTTP_ADDR, "127.0.0.1:2112")], PROMETHEUS_MONITORING_PORT),
            (
                &[(PROMETHEUS_MONITORING_PORT, "8080")],
                PROMETHEUS_MONITORING_PORT,
            ),
            (&[(METRICS_ADDR, "127.0.0.1:8080")], METRICS_ADDR),
            (
                &[
                    (HTTP_ADDR, "0.0.0.0:8080"),
                    (METRICS_ADDR, "127.0.0.1:8080"),
                ],
                METRICS_ADDR,
            ),
        ];
        for (extra, variable) in table {
            only_problem(&open(extra), variable);
        }
    }

    #[test]
    fn allows_the_same_port_on_other_ips_or_port_zero() {
        let table: [&[(&str, &str)]; 3] = [
            &[(METRICS_ADDR, "10.0.0.1:8080")],
            &[(HTTP_ADDR, "127.0.0.1:0"), (METRICS_ADDR, "127.0.0.1:0")],
            &[
                (HTTP_ADDR, "127.0.0.1:0"),
                (PROMETHEUS_MONITORING_PORT, "0"),
            ],
        ];
        for extra in table {
            ok(&open(extra));
        }
    }

    #[test]
    fn metrics_can_be_disabled_and_their_addresses_are_then_ignored() {
        let settings = ok(&open(&[
            (PROMETHEUS_MONITORING_ENABLED, "false"),
            (METRICS_ADDR, "127.0.0.1:8080"),
        ]));
        assert!(!settings.metrics.enabled);
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with(METRICS_ADDR));
    }

    // --- unknown variables ---

    #[test]
    fn rejects_an_unknown_portcullis_variable() {
        let problem = only_problem(&open(&[("PORTCULLIS_WORKRES", "2")]), "PORTCULLIS_WORKRES");
        for known in PORTCULLIS_VARIABLES {
            assert!(problem.fix.contains(known), "{problem}");
        }
    }

    #[test]
    fn unknown_auth_variables_give_a_notice() {
        let settings = ok(&open(&[
            ("AUTHENTICATION_APIKEY_ENABLE", "true"),
            ("AUTHORIZATION_VIEWER_USERS", "alice"),
        ]));
        assert_eq!(settings.notices.len(), 2, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with("AUTHENTICATION_APIKEY_ENABLE "));
        assert!(settings.notices[1].starts_with("AUTHORIZATION_VIEWER_USERS "));
    }

    #[test]
    fn ignores_unrelated_environment_variables() {
        let settings = ok(&open(&[("PATH", "/usr/bin"), ("HOME", "/root")]));
        assert_eq!(settings.notices, Vec::<String>::new());
    }

    #[test]
    fn reports_every_problem_together() {
        let keys = format!("{KEY_A},{KEY_A}");
        let vars = keyed(
            &keys,
            "alice,bob,carol",
            &[
                (HTTP_ADDR, "localhost"),
                (LOG_LEVEL, "loud"),
                ("PORTCULLIS_UNKNOWN", "x"),
                (DB_USERS_ENABLED, "maybe"),
                (ADMINLIST_ENABLED, "true"),
                (ADMINLIST_USERS, "alice"),
                (ADMINLIST_READONLY_USERS, "alice"),
            ],
        );
        let mut found = variables(&problems(&vars))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        found.sort();
        let mut expected = [
            "PORTCULLIS_UNKNOWN",
            HTTP_ADDR,
            LOG_LEVEL,
            APIKEY_ALLOWED_KEYS,
            APIKEY_USERS,
            DB_USERS_ENABLED,
            ADMINLIST_READONLY_USERS,
        ];
        expected.sort_unstable();
        assert_eq!(found, expected);
    }

    // --- config file ---

    #[test]
    fn merges_a_yaml_file_under_the_environment() {
        let file = temp_file(
            ".yaml",
            "authentication_anonymous_access_enabled: true\n\
             LOG_LEVEL: debug\n\
             Log_Format: json\n\
             PROMETHEUS_MONITORING_PORT: 9100\n\
             AUTHORIZATION_ADMINLIST_ENABLED: on\n\
             AUTHORIZATION_ADMINLIST_USERS: [alice, bob]\n",
        );
        let settings = ok(&[(CONFIG_FILE, path_of(&file)), (LOG_LEVEL, "warning")]);
        assert!(settings.authentication.anonymous_access);
        assert_eq!(settings.log.level, LogLevel::Warn, "the environment wins");
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.metrics.addr.port(), 9100);
        let admin = settings.authorization.admin_list.expect("admin list");
        assert_eq!(admin.users, ["alice", "bob"]);
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(settings.notices[0].starts_with(LOG_LEVEL));
    }

    #[test]
    fn merges_a_toml_file_under_the_environment() {
        let file = temp_file(
            ".toml",
            &format!(
                "AUTHENTICATION_APIKEY_ENABLED = true\n\
                 AUTHENTICATION_APIKEY_ALLOWED_KEYS = [\"{KEY_A}\", \"{KEY_B}\"]\n\
                 AUTHENTICATION_APIKEY_USERS = \"alice,bob\"\n\
                 PORTCULLIS_WORKERS = 2\n"
            ),
        );
        let settings = ok(&[
            (CONFIG_FILE, path_of(&file)),
            (APIKEY_USERS, "carol"),
            (WORKERS, "5"),
        ]);
        assert_eq!(settings.workers, 5);
        let api_key = settings.authentication.api_key.expect("static keys");
        let expected = pairs(&[(KEY_A, "carol"), (KEY_B, "carol")]);
        assert!(
            exposed(&api_key) == expected,
            "file keys or env users were not merged"
        );
        assert_no_key_in(&settings.notices.join("\n"));
    }

    #[test]
    fn rejects_a_nested_table_in_the_file() {
        let file = temp_file(".yaml", "authentication:\n  apikey:\n    enabled: true\n");
        let vars = open(&[(CONFIG_FILE, path_of(&file))]);
        let problem = only_problem(&vars, "AUTHENTICATION");
        assert!(problem.message.contains("nested table"), "{problem}");
    }

    #[test]
    fn rejects_a_key_set_twice_in_the_file_in_different_case() {
        let file = temp_file(".toml", "LOG_LEVEL = \"info\"\nlog_level = \"debug\"\n");
        only_problem(&open(&[(CONFIG_FILE, path_of(&file))]), LOG_LEVEL);
    }

    #[test]
    fn rejects_an_unparsable_file_without_quoting_it() {
        let table = [
            (
                ".toml",
                format!("AUTHENTICATION_APIKEY_ALLOWED_KEYS = \"{KEY_A}\nX = = 1\n"),
                "is not valid TOML (error at line 2, column 5)",
            ),
            (
                ".yaml",
                format!("AUTHENTICATION_APIKEY_ALLOWED_KEYS: \"{KEY_A}\n  - : [\n"),
                "is not valid YAML (error at line",
            ),
            (".yml", KEY_A.to_owned(), "does not hold a mapping"),
            (".yaml", format!("- {KEY_A}\n"), "does not hold a mapping"),
        ];
        for (suffix, content, message) in table {
            let file = temp_file(suffix, &content);
            let problem = only_problem(&open(&[(CONFIG_FILE, path_of(&file))]), CONFIG_FILE);
            assert!(problem.message.contains(message), "{problem}");
        }
    }

    #[test]
    fn rejects_a_missing_or_unsupported_config_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("absent.yaml");
        only_problem(
            &open(&[(CONFIG_FILE, missing.to_str().expect("UTF-8 path"))]),
            CONFIG_FILE,
        );
        let json = temp_file(".json", "{}");
        let problem = only_problem(&open(&[(CONFIG_FILE, path_of(&json))]), CONFIG_FILE);
        assert!(problem.message.contains(".toml"), "{problem}");
    }

    #[test]
    fn checks_names_from_the_file_like_variables() {
        let file = temp_file(
            ".yaml",
            "portcullis_workerz: 2\nAUTHORIZATION_TYPO: x\nSOMETHING_ELSE: y\n",
        );
        let problems = problems(&open(&[(CONFIG_FILE, path_of(&file))]));
        assert_eq!(variables(&problems), ["PORTCULLIS_WORKERZ"]);
        let file = temp_file(".yaml", "AUTHORIZATION_TYPO: x\nSOMETHING_ELSE: y\n");
        let settings = ok(&open(&[(CONFIG_FILE, path_of(&file))]));
        assert_eq!(settings.notices.len(), 2, "{:?}", settings.notices);
    }

    // --- secrets never shown ---

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

    #[test]
    fn non_utf8_values_of_our_variables_are_problems() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let bad = OsString::from_vec(vec![0x66, 0xff]);
            let (pairs, problems) = utf8_vars([
                (OsString::from(LOG_LEVEL), bad.clone()),
                (OsString::from("UNRELATED"), bad),
                (OsString::from(WORKERS), OsString::from("2")),
            ]);
            assert_eq!(variables(&problems), [LOG_LEVEL]);
            assert_eq!(pairs, [(WORKERS.to_owned(), "2".to_owned())]);
        }
    }

    #[test]
    fn backend_defaults_to_the_embedded_store_with_a_10_mib_limit() {
        let settings = ok(&open(&[]));
        assert_eq!(settings.backend.max_body, 10 * 1024 * 1024);
        assert_eq!(settings.backend.upstream, None);
    }

    #[test]
    fn parses_body_sizes_with_units() {
        for (raw, bytes) in [
            ("1024", 1024),
            ("64KiB", 65536),
            ("2MiB", 2 << 20),
            ("1g", 1 << 30),
        ] {
            assert_eq!(
                ok(&open(&[(MAX_BODY, raw)])).backend.max_body,
                bytes,
                "{raw}"
            );
        }
        for raw in ["0", "ten", "5 parsecs", "-1"] {
            only_problem(&open(&[(MAX_BODY, raw)]), MAX_BODY);
        }
    }

    #[test]
    fn reads_the_upstream_with_its_options() {
        let settings = ok(&open(&[
            (UPSTREAM_URL, "http://127.0.0.1:9000/"),
            (UPSTREAM_FORWARD_AUTH, "true"),
            (UPSTREAM_TIMEOUT, "1500ms"),
        ]));
        let up = settings.backend.upstream.expect("upstream");
        assert_eq!(up.url, "http://127.0.0.1:9000");
        assert!(up.forward_auth);
        assert_eq!(up.timeout, Duration::from_millis(1500));
        let up = ok(&open(&[(UPSTREAM_URL, "https://db.internal")]))
            .backend
            .upstream
            .expect("upstream");
        assert_eq!((up.forward_auth, up.timeout.as_secs()), (false, 60));
    }

    #[test]
    fn rejects_upstream_urls_that_are_not_scheme_host_port() {
        for raw in [
            "127.0.0.1:9000",
            "ftp://host",
            "http://",
            "http://host/v1",
            "http://user:pw@host",
            "http://host:notaport",
        ] {
            only_problem(&open(&[(UPSTREAM_URL, raw)]), UPSTREAM_URL);
        }
    }

    #[test]
    fn rejects_zero_or_unitless_garbage_timeouts() {
        for raw in ["0", "0s", "soon", "5 min"] {
            only_problem(
                &open(&[(UPSTREAM_URL, "http://h:1"), (UPSTREAM_TIMEOUT, raw)]),
                UPSTREAM_TIMEOUT,
            );
        }
    }

    #[test]
    fn upstream_options_without_an_upstream_are_noticed() {
        let settings = ok(&open(&[(UPSTREAM_FORWARD_AUTH, "true")]));
        assert!(settings
            .notices
            .iter()
            .any(|n| n.contains(UPSTREAM_FORWARD_AUTH)));
    }
}
