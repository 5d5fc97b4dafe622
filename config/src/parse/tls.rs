//! TLS on the listeners: `PORTCULLIS_TLS_CERT_FILE` and `PORTCULLIS_TLS_KEY_FILE` (both or
//! neither), client certificates, `PORTCULLIS_METRICS_TLS` and the reload interval. The files
//! themselves are read by the server at start, which names them when they are unusable.

use std::path::PathBuf;

use super::{Field, Parser};
use crate::tls::{ClientAuth, ClientAuthMode, TlsSettings, DEFAULT_TLS_RELOAD_INTERVAL};
use crate::vars;

/// The variables that mean nothing without a certificate and key.
const NEEDS_TLS: [&str; 3] = [
    vars::TLS_CLIENT_CA_FILE,
    vars::TLS_CLIENT_AUTH,
    vars::METRICS_TLS,
];

impl Parser<'_> {
    pub(super) fn tls(&mut self) -> Option<TlsSettings> {
        let cert = self.tls_path(vars::TLS_CERT_FILE);
        let key = self.tls_path(vars::TLS_KEY_FILE);
        let client_ca = self.tls_path(vars::TLS_CLIENT_CA_FILE);
        let mode = self.client_auth_mode();
        let metrics = self.metrics_tls();
        let reload_interval = self.duration(vars::TLS_RELOAD_INTERVAL);
        let (cert, key) = match (cert, key) {
            (Field::Unset, Field::Unset) => {
                for name in NEEDS_TLS {
                    if self.is_set(name) {
                        self.report.problem(
                            name,
                            "is set but TLS is off (PORTCULLIS_TLS_CERT_FILE and \
                             PORTCULLIS_TLS_KEY_FILE are not set)",
                            format!(
                                "set {} and {} to turn TLS on, or unset {name}",
                                vars::TLS_CERT_FILE,
                                vars::TLS_KEY_FILE
                            ),
                        );
                    }
                }
                self.notice_ignored(&[vars::TLS_RELOAD_INTERVAL], "TLS is off");
                return None;
            }
            (Field::Set(_), Field::Unset) => {
                self.missing_half(vars::TLS_KEY_FILE, vars::TLS_CERT_FILE);
                return None;
            }
            (Field::Unset, Field::Set(_)) => {
                self.missing_half(vars::TLS_CERT_FILE, vars::TLS_KEY_FILE);
                return None;
            }
            (Field::Set(cert), Field::Set(key)) => (cert, key),
            _ => return None,
        };
        let client_auth = match (client_ca, mode) {
            (Field::Set(ca_file), mode) => Some(ClientAuth {
                ca_file,
                mode: mode.unwrap_or(ClientAuthMode::Optional),
            }),
            (Field::Unset, Field::Set(mode)) => {
                self.report.problem(
                    vars::TLS_CLIENT_AUTH,
                    format!(
                        "is {} but no CA is given to verify client certificates with",
                        mode.as_str()
                    ),
                    format!(
                        "set {} to a PEM file of the CA certificates that issue client \
                         certificates, or unset {}",
                        vars::TLS_CLIENT_CA_FILE,
                        vars::TLS_CLIENT_AUTH
                    ),
                );
                None
            }
            _ => None,
        };
        Some(TlsSettings {
            cert_file: cert,
            key_file: key,
            client_auth,
            metrics: metrics.unwrap_or(false),
            reload_interval: reload_interval.unwrap_or(DEFAULT_TLS_RELOAD_INTERVAL),
        })
    }

    /// A file path: set, and not blank.
    fn tls_path(&mut self, name: &str) -> Field<PathBuf> {
        let Some(raw) = self.get(name) else {
            return Field::Unset;
        };
        if raw.trim().is_empty() {
            self.report.problem(
                name,
                "is empty",
                format!("give the path of a PEM file, or unset {name}"),
            );
            return Field::Invalid;
        }
        Field::Set(PathBuf::from(raw))
    }

    /// One of the certificate and key is set without the other.
    fn missing_half(&mut self, missing: &str, set: &str) {
        self.report.problem(
            missing,
            format!("is not set, but {set} is: TLS needs both the certificate and its key"),
            format!("set {missing} too, or unset {set} to serve cleartext"),
        );
    }

    fn client_auth_mode(&mut self) -> Field<ClientAuthMode> {
        let Some(raw) = self.get(vars::TLS_CLIENT_AUTH) else {
            return Field::Unset;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "optional" => Field::Set(ClientAuthMode::Optional),
            "require" => Field::Set(ClientAuthMode::Require),
            _ => {
                self.report.problem(
                    vars::TLS_CLIENT_AUTH,
                    format!("{raw:?} is not optional or require"),
                    format!(
                        "{}=optional verifies a client certificate when one is sent, \
                         {}=require refuses clients without one",
                        vars::TLS_CLIENT_AUTH,
                        vars::TLS_CLIENT_AUTH
                    ),
                );
                Field::Invalid
            }
        }
    }

    fn metrics_tls(&mut self) -> Field<bool> {
        let Some(raw) = self.get(vars::METRICS_TLS) else {
            return Field::Unset;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "on" => Field::Set(true),
            "off" => Field::Set(false),
            _ => {
                self.report.problem(
                    vars::METRICS_TLS,
                    format!("{raw:?} is not on or off"),
                    format!(
                        "{}=off serves metrics in cleartext (the default), {}=on with the \
                         listeners' certificate",
                        vars::METRICS_TLS,
                        vars::METRICS_TLS
                    ),
                );
                Field::Invalid
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::parse::tests::*;
    use crate::tls::{ClientAuth, ClientAuthMode, TlsSettings};
    use crate::vars::*;

    const PAIR: [(&str, &str); 2] = [
        (TLS_CERT_FILE, "/etc/tls/a.crt"),
        (TLS_KEY_FILE, "/etc/tls/a.key"),
    ];

    fn with_pair<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = open(&PAIR);
        vars.extend_from_slice(extra);
        vars
    }

    fn variables(vars: &[(&str, &str)]) -> Vec<String> {
        problems(vars).into_iter().map(|p| p.variable).collect()
    }

    #[test]
    fn tls_is_off_without_certificate_and_key() {
        assert_eq!(ok(&open(&[])).tls, None);
    }

    #[test]
    fn a_certificate_and_key_turn_tls_on_with_defaults() {
        let settings = ok(&with_pair(&[]));
        assert_eq!(
            settings.tls,
            Some(TlsSettings {
                cert_file: PathBuf::from("/etc/tls/a.crt"),
                key_file: PathBuf::from("/etc/tls/a.key"),
                client_auth: None,
                metrics: false,
                reload_interval: Duration::from_secs(5),
            })
        );
    }

    #[test]
    fn a_certificate_without_its_key_names_the_missing_one() {
        let found = problems(&open(&[(TLS_CERT_FILE, "/etc/tls/a.crt")]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].variable, TLS_KEY_FILE);
        assert!(
            found[0].message.contains(TLS_CERT_FILE),
            "{}",
            found[0].message
        );
        let found = problems(&open(&[(TLS_KEY_FILE, "/etc/tls/a.key")]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].variable, TLS_CERT_FILE);
        assert!(
            found[0].message.contains(TLS_KEY_FILE),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn rejects_empty_file_names() {
        assert_eq!(
            variables(&open(&[(TLS_CERT_FILE, " "), (TLS_KEY_FILE, "/k")])),
            vec![TLS_CERT_FILE]
        );
        assert_eq!(
            variables(&with_pair(&[(TLS_CLIENT_CA_FILE, "")])),
            vec![TLS_CLIENT_CA_FILE]
        );
    }

    #[test]
    fn a_client_ca_makes_client_certificates_optional_unless_required() {
        let settings = ok(&with_pair(&[(TLS_CLIENT_CA_FILE, "/ca.pem")]));
        let expected = ClientAuth {
            ca_file: PathBuf::from("/ca.pem"),
            mode: ClientAuthMode::Optional,
        };
        assert_eq!(settings.tls.and_then(|t| t.client_auth), Some(expected));
        let settings = ok(&with_pair(&[
            (TLS_CLIENT_CA_FILE, "/ca.pem"),
            (TLS_CLIENT_AUTH, "Require"),
        ]));
        assert_eq!(
            settings.tls.and_then(|t| t.client_auth).map(|c| c.mode),
            Some(ClientAuthMode::Require)
        );
    }

    #[test]
    fn rejects_client_auth_values_and_client_auth_without_a_ca() {
        assert_eq!(
            variables(&with_pair(&[
                (TLS_CLIENT_CA_FILE, "/ca.pem"),
                (TLS_CLIENT_AUTH, "required")
            ])),
            vec![TLS_CLIENT_AUTH]
        );
        let found = problems(&with_pair(&[(TLS_CLIENT_AUTH, "require")]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].variable, TLS_CLIENT_AUTH);
        assert!(
            found[0].fix.contains(TLS_CLIENT_CA_FILE),
            "{}",
            found[0].fix
        );
    }

    #[test]
    fn metrics_tls_is_on_or_off() {
        let on = ok(&with_pair(&[(METRICS_TLS, "on")]));
        assert_eq!(on.tls.map(|t| t.metrics), Some(true));
        let off = ok(&with_pair(&[(METRICS_TLS, "OFF")]));
        assert_eq!(off.tls.map(|t| t.metrics), Some(false));
        assert_eq!(
            variables(&with_pair(&[(METRICS_TLS, "true")])),
            vec![METRICS_TLS]
        );
    }

    #[test]
    fn reload_interval_is_a_positive_duration() {
        let settings = ok(&with_pair(&[(TLS_RELOAD_INTERVAL, "250ms")]));
        assert_eq!(
            settings.tls.map(|t| t.reload_interval),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            variables(&with_pair(&[(TLS_RELOAD_INTERVAL, "0s")])),
            vec![TLS_RELOAD_INTERVAL]
        );
        assert_eq!(
            variables(&with_pair(&[(TLS_RELOAD_INTERVAL, "soon")])),
            vec![TLS_RELOAD_INTERVAL]
        );
    }

    #[test]
    fn tls_options_without_tls_are_refused_and_the_interval_ignored() {
        let found = variables(&open(&[
            (TLS_CLIENT_CA_FILE, "/ca.pem"),
            (TLS_CLIENT_AUTH, "optional"),
            (METRICS_TLS, "on"),
        ]));
        assert_eq!(
            found,
            vec![TLS_CLIENT_CA_FILE, TLS_CLIENT_AUTH, METRICS_TLS]
        );
        let settings = ok(&open(&[(TLS_RELOAD_INTERVAL, "1s")]));
        assert_eq!(
            settings.notices,
            vec!["PORTCULLIS_TLS_RELOAD_INTERVAL is set but ignored because TLS is off".to_owned()]
        );
    }

    #[test]
    fn describe_names_the_files_and_modes() {
        let settings = ok(&with_pair(&[
            (TLS_CLIENT_CA_FILE, "/ca.pem"),
            (METRICS_TLS, "on"),
        ]));
        let lines = settings.describe();
        let value = |name: &str| {
            lines
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(value(TLS_CERT_FILE).as_deref(), Some("/etc/tls/a.crt"));
        assert_eq!(value(TLS_CLIENT_AUTH).as_deref(), Some("optional"));
        assert_eq!(value(METRICS_TLS).as_deref(), Some("on"));
        let off = ok(&open(&[])).describe();
        assert!(off.contains(&(TLS_CERT_FILE, "off".to_owned())));
    }
}
