//! The server's own settings: workers, the metrics endpoint, logging, the data path, and the
//! backend (body limit and upstream).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::values::parse_size;
use super::{Field, Parser};
use crate::secret::Secret;
use crate::settings::{BackendSettings, LogFormat, LogLevel, MetricsSettings, UpstreamSettings};
use crate::vars;

pub(super) const DEFAULT_METRICS_PORT: u16 = 2112;
const DEFAULT_DATA_PATH: &str = "./data";
const MAX_WORKERS: usize = 1024;
const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;
const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Generous for bulk loading (Weaviate's clients send 100 to 1,000 objects a batch), small
/// enough that the per-object work and answer of one batch stay bounded.
const DEFAULT_MAX_BATCH_OBJECTS: usize = 10_000;

impl Parser<'_> {
    pub(super) fn workers(&mut self) -> usize {
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

    pub(super) fn metrics(&mut self, http: SocketAddr, http_valid: bool) -> MetricsSettings {
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

    pub(super) fn log_level(&mut self) -> LogLevel {
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

    pub(super) fn log_format(&mut self) -> LogFormat {
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

    pub(super) fn data_path(&mut self) -> PathBuf {
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

    pub(super) fn backend(&mut self) -> BackendSettings {
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
        let body_timeout = self
            .duration(vars::BODY_TIMEOUT)
            .unwrap_or(DEFAULT_BODY_TIMEOUT);
        let max_batch_objects = match self.get(vars::MAX_BATCH_OBJECTS) {
            None => DEFAULT_MAX_BATCH_OBJECTS,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    self.report.problem(
                        vars::MAX_BATCH_OBJECTS,
                        format!("{raw:?} is not a positive number of objects"),
                        format!(
                            "e.g. {}={DEFAULT_MAX_BATCH_OBJECTS}",
                            vars::MAX_BATCH_OBJECTS
                        ),
                    );
                    DEFAULT_MAX_BATCH_OBJECTS
                }
            },
        };
        let forward_auth = self.boolean(vars::UPSTREAM_FORWARD_AUTH);
        let timeout = self.duration(vars::UPSTREAM_TIMEOUT);
        let api_key = match self.secret(vars::UPSTREAM_API_KEY) {
            Field::Set((key, from))
                if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                self.report.problem(
                    &from,
                    "is empty or holds a space or a control character",
                    "set it to the upstream's API key as it is sent after `Bearer `",
                );
                None
            }
            Field::Set((key, _)) => Some(Secret::new(key)),
            _ => None,
        };
        let upstream = match self.get(vars::UPSTREAM_URL) {
            None => {
                self.notice_ignored(
                    &[
                        vars::UPSTREAM_FORWARD_AUTH,
                        vars::UPSTREAM_API_KEY,
                        vars::UPSTREAM_TIMEOUT,
                    ],
                    "PORTCULLIS_UPSTREAM_URL is not set (the embedded store serves requests)",
                );
                None
            }
            Some(raw) => match parse_upstream_url(raw) {
                Ok(url) => Some(UpstreamSettings {
                    url,
                    forward_auth: forward_auth.unwrap_or(false),
                    api_key,
                    timeout: timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT),
                }),
                Err(why) => {
                    self.report.problem(
                        vars::UPSTREAM_URL,
                        format!("{:?} {why}", super::redact_userinfo(raw)),
                        format!("e.g. {}=http://127.0.0.1:8081", vars::UPSTREAM_URL),
                    );
                    None
                }
            },
        };
        BackendSettings {
            max_body,
            body_timeout,
            max_batch_objects,
            upstream,
        }
    }
}

/// Checks an upstream URL: `http` or `https`, a host, an optional port, no path, query,
/// fragment or credentials. Returns it without a trailing slash.
///
/// Not `url::Url`: its WHATWG rules would refuse values accepted until now (`http://:80`,
/// `http://[zz]`) and accept refused ones (`HTTP://host`, `http://host:`).
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

/// Whether two listeners on these IPs would claim the same port.
fn ips_overlap(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::*;
    use crate::settings::DEFAULT_HTTP_ADDR;
    use crate::vars::*;

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
        assert!(up.api_key.is_none());
    }

    #[test]
    fn reads_the_key_for_its_own_upstream_reads_and_never_shows_it() {
        let settings = ok(&open(&[
            (UPSTREAM_URL, "http://127.0.0.1:9000"),
            (UPSTREAM_API_KEY, "upstream-secret-1"),
        ]));
        let up = settings.backend.upstream.as_ref().expect("upstream");
        assert_eq!(
            up.api_key.as_ref().map(|k| k.expose().as_str()),
            Some("upstream-secret-1")
        );
        assert!(!format!("{settings:?}").contains("upstream-secret-1"));
        for bad in ["", "two words", "tab\there"] {
            let problem = only_problem(
                &open(&[
                    (UPSTREAM_URL, "http://127.0.0.1:9000"),
                    (UPSTREAM_API_KEY, bad),
                ]),
                UPSTREAM_API_KEY,
            );
            assert!(
                bad.is_empty() || !format!("{problem:?}").contains(bad),
                "the refused key is not shown"
            );
        }
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
    fn body_timeout_and_batch_cap_have_defaults_and_are_read() {
        let defaults = ok(&open(&[])).backend;
        assert_eq!(
            (defaults.body_timeout, defaults.max_batch_objects),
            (Duration::from_secs(30), 10_000)
        );
        let set = ok(&open(&[
            (BODY_TIMEOUT, "1500ms"),
            (MAX_BATCH_OBJECTS, " 50 "),
        ]))
        .backend;
        assert_eq!(
            (set.body_timeout, set.max_batch_objects),
            (Duration::from_millis(1500), 50)
        );
    }

    #[test]
    fn rejects_a_zero_or_garbage_body_timeout_or_batch_cap() {
        for raw in ["0", "0s", "soon"] {
            only_problem(&open(&[(BODY_TIMEOUT, raw)]), BODY_TIMEOUT);
        }
        for raw in ["0", "-1", "many", "1e3"] {
            let problem = only_problem(&open(&[(MAX_BATCH_OBJECTS, raw)]), MAX_BATCH_OBJECTS);
            assert!(
                problem.message.contains("positive number of objects"),
                "{problem}"
            );
        }
    }

    #[test]
    fn upstream_url_errors_never_echo_user_or_password() {
        for raw in [
            "http://svc:s3cr3t-pw@host:8081",
            "svc:s3cr3t-pw@host",
            "ftp://svc:s3cr3t-pw@h",
        ] {
            let problem = only_problem(&open(&[(UPSTREAM_URL, raw)]), UPSTREAM_URL);
            let text = format!("{problem} {problem:?}");
            assert!(
                !text.contains("s3cr3t-pw") && !text.contains("svc"),
                "{text}"
            );
            assert!(text.contains("***@h"), "{text}");
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
