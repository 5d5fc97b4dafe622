//! OpenID Connect: Weaviate's `AUTHENTICATION_OIDC_*` variables (with Weaviate's messages)
//! and Portcullis's `PORTCULLIS_OIDC_*` timings.

use std::time::Duration;

use super::values::parse_duration;
use super::{Field, Parser};
use crate::settings::OidcSettings;
use crate::vars;

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

impl Parser<'_> {
    /// Weaviate's `AUTHENTICATION_OIDC_*` rules (and messages) plus our `PORTCULLIS_OIDC_*`.
    pub(super) fn oidc(&mut self, enabled: &Field<bool>) -> Option<OidcSettings> {
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
                    format!("{:?} {why}", super::redact_userinfo(raw)),
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
}

/// Checks an issuer or JWKS URL: `http(s)://` then a host, no whitespace, fragment or
/// credentials. `Ok(true)` for plain `http://`.
///
/// Not `url::Url`: its WHATWG rules accept values refused here (`https:x`, `https:///path`,
/// `https://a\b@c`), refuse some accepted here (`https://host:notaport`), and would change
/// which message some refused values get (`https://#frag` has no host there, a fragment here).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::*;
    use crate::vars::*;

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
    fn issuer_and_jwks_url_errors_never_echo_user_or_password() {
        for raw in [
            "https://kc:s3cr3t-pw@issuer.example",
            "kc:s3cr3t-pw@issuer.example",
        ] {
            for name in [OIDC_ISSUER, OIDC_JWKS_URL] {
                let problem = only_problem(&oidc(&[(name, raw)]), name);
                let text = format!("{problem} {problem:?}");
                assert!(
                    !text.contains("s3cr3t-pw") && !text.contains("kc:"),
                    "{text}"
                );
                assert!(text.contains("***@issuer.example"), "{text}");
            }
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

    // Credentials are refused in these URLs today; the description redacts them anyway, so a
    // later relaxation of the parser cannot put them in the start-up log.
    #[test]
    fn describe_redacts_credentials_in_every_url() {
        let mut settings = ok(&oidc(&[(UPSTREAM_URL, "http://db:8081")]));
        if let Some(up) = settings.backend.upstream.as_mut() {
            up.url = "http://svc:s3cr3t-pw@db:8081".to_owned();
        }
        if let Some(oidc) = settings.authentication.oidc.as_mut() {
            oidc.issuer = "https://kc:s3cr3t-pw@issuer.example".to_owned();
            oidc.jwks_url = Some("https://kc:s3cr3t-pw@issuer.example/jwks".to_owned());
        }
        let lines = format!("{:?}", settings.describe());
        assert!(!lines.contains("s3cr3t-pw"), "{lines}");
        for shown in [
            "http://***@db:8081",
            "https://***@issuer.example",
            "https://***@issuer.example/jwks",
        ] {
            assert!(lines.contains(shown), "{lines}");
        }
    }
}
