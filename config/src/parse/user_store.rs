//! The shared user store of replicas: `PORTCULLIS_USER_STORE_URL` and
//! `PORTCULLIS_KEY_REVOCATION_BOUND` (`docs/replicas.md`).

use std::time::Duration;

use super::values::parse_duration;
use super::Parser;
use crate::settings::UserStoreSettings;
use crate::{vars, Secret};

/// The revocation bound when `PORTCULLIS_KEY_REVOCATION_BOUND` is not set.
pub(crate) const DEFAULT_REVOCATION_BOUND: Duration = Duration::from_secs(5);
const MIN_REVOCATION_BOUND: Duration = Duration::from_millis(200);
const MAX_REVOCATION_BOUND: Duration = Duration::from_secs(300);
/// The readiness grace when `PORTCULLIS_USER_STORE_READY_GRACE` is not set.
pub(crate) const DEFAULT_READY_GRACE: Duration = Duration::from_secs(30);
const MAX_READY_GRACE: Duration = Duration::from_secs(3600);
/// The change log's retention when `PORTCULLIS_CHANGE_LOG_RETENTION` is not set.
pub(crate) const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(600);
const MAX_LOG_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl Parser<'_> {
    pub(super) fn user_store(&mut self) -> Option<UserStoreSettings> {
        let Some(raw) = self.get(vars::USER_STORE_URL) else {
            self.notice_ignored(
                &[
                    vars::KEY_REVOCATION_BOUND,
                    vars::USER_STORE_READY_GRACE,
                    vars::CHANGE_LOG_RETENTION,
                ],
                "PORTCULLIS_USER_STORE_URL is not set (users are kept in the SQLite file)",
            );
            return None;
        };
        let url = raw.trim();
        let mut valid = true;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
            || url.len() <= "postgres://".len()
        {
            self.report.problem(
                vars::USER_STORE_URL,
                format!(
                    "{:?} is not a PostgreSQL URL",
                    super::redact_userinfo(url)
                ),
                format!(
                    "e.g. {}=postgres://portcullis@db.internal:5432/portcullis, or unset it to keep \
                     users in the SQLite file under {}",
                    vars::USER_STORE_URL,
                    vars::PERSISTENCE_DATA_PATH
                ),
            );
            valid = false;
        }
        // The embedded document store is one process's files: replicas front a real database.
        if !self.is_set(vars::UPSTREAM_URL) {
            self.report.problem(
                vars::USER_STORE_URL,
                "is set without PORTCULLIS_UPSTREAM_URL: replicas sharing users cannot serve the \
                 embedded document store, which lives in one process's files",
                format!(
                    "set {} to the database the replicas front, or unset {}",
                    vars::UPSTREAM_URL,
                    vars::USER_STORE_URL
                ),
            );
            valid = false;
        }
        let bound = self.revocation_bound();
        let ready_grace = self.ready_grace();
        let log_retention = self.log_retention();
        valid.then(|| UserStoreSettings {
            url: Secret::new(url.to_owned()),
            revocation_bound: bound,
            ready_grace,
            log_retention,
        })
    }

    fn log_retention(&mut self) -> Duration {
        let Some(raw) = self.get(vars::CHANGE_LOG_RETENTION) else {
            return DEFAULT_LOG_RETENTION;
        };
        match parse_duration(raw) {
            Some(retention) if retention <= MAX_LOG_RETENTION => retention,
            _ => {
                self.report.problem(
                    vars::CHANGE_LOG_RETENTION,
                    format!("{raw:?} is not a duration up to 7 days"),
                    format!(
                        "e.g. {}=10m (the default); 0s removes entries as soon as every live \
                         replica has applied them",
                        vars::CHANGE_LOG_RETENTION
                    ),
                );
                DEFAULT_LOG_RETENTION
            }
        }
    }

    fn ready_grace(&mut self) -> Option<Duration> {
        let Some(raw) = self.get(vars::USER_STORE_READY_GRACE) else {
            return Some(DEFAULT_READY_GRACE);
        };
        if raw.trim().eq_ignore_ascii_case("off") {
            return None;
        }
        match parse_duration(raw) {
            Some(grace) if grace <= MAX_READY_GRACE => Some(grace),
            _ => {
                self.report.problem(
                    vars::USER_STORE_READY_GRACE,
                    format!("{raw:?} is not a duration up to 1h, nor off"),
                    format!(
                        "e.g. {}=30s (the default), 0s to be unready as soon as database keys \
                         are refused, or off to keep the store out of readiness",
                        vars::USER_STORE_READY_GRACE
                    ),
                );
                Some(DEFAULT_READY_GRACE)
            }
        }
    }

    fn revocation_bound(&mut self) -> Duration {
        let Some(raw) = self.get(vars::KEY_REVOCATION_BOUND) else {
            return DEFAULT_REVOCATION_BOUND;
        };
        match parse_duration(raw) {
            Some(bound) if (MIN_REVOCATION_BOUND..=MAX_REVOCATION_BOUND).contains(&bound) => bound,
            _ => {
                self.report.problem(
                    vars::KEY_REVOCATION_BOUND,
                    format!("{raw:?} is not a duration from 200ms to 300s"),
                    format!(
                        "e.g. {}=5s (the default), or 1s for a tighter bound",
                        vars::KEY_REVOCATION_BOUND
                    ),
                );
                DEFAULT_REVOCATION_BOUND
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::*;
    use crate::vars::*;

    const PG: &str = "postgres://portcullis:s3cret-pw@db.internal:5432/users";

    fn fronting(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = open(&[(UPSTREAM_URL, "http://127.0.0.1:8081")]);
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn unset_means_the_sqlite_file_and_the_bound_is_ignored_with_a_notice() {
        let settings = ok(&fronting(&[(KEY_REVOCATION_BOUND, "1s")]));
        assert_eq!(settings.user_store, None);
        assert!(
            settings
                .notices
                .iter()
                .any(|n| n.starts_with("PORTCULLIS_KEY_REVOCATION_BOUND is set but ignored")),
            "{:?}",
            settings.notices
        );
    }

    #[test]
    fn a_postgres_url_with_the_default_bound_and_its_password_never_shown() {
        let settings = ok(&fronting(&[(USER_STORE_URL, PG)]));
        let store = settings.user_store.clone().expect("user store");
        assert_eq!(store.revocation_bound, Duration::from_secs(5));
        assert_eq!(store.url.expose(), PG);
        assert_eq!(store.shown_url(), "postgres://***@db.internal:5432/users");
        let described = format!("{:?} {:?}", settings.describe(), settings);
        assert!(!described.contains("s3cret-pw"), "{described}");
        assert!(
            described.contains("PORTCULLIS_USER_STORE_URL"),
            "{described}"
        );
    }

    #[test]
    fn the_bound_is_read_within_its_range() {
        for (raw, want) in [
            ("200ms", Duration::from_millis(200)),
            ("1s", Duration::from_secs(1)),
            ("300s", Duration::from_secs(300)),
            ("5m", Duration::from_secs(300)),
        ] {
            let settings = ok(&fronting(&[
                (USER_STORE_URL, PG),
                (KEY_REVOCATION_BOUND, raw),
            ]));
            assert_eq!(
                settings.user_store.map(|s| s.revocation_bound),
                Some(want),
                "{raw}"
            );
        }
        for raw in ["199ms", "0", "301s", "1h", "soon", "-1s"] {
            let problem = only_problem(
                &fronting(&[(USER_STORE_URL, PG), (KEY_REVOCATION_BOUND, raw)]),
                KEY_REVOCATION_BOUND,
            );
            assert!(
                problem
                    .message
                    .ends_with("is not a duration from 200ms to 300s"),
                "{raw}: {problem}"
            );
        }
    }

    #[test]
    fn the_ready_grace_is_a_duration_up_to_an_hour_or_off() {
        let settings = ok(&fronting(&[(USER_STORE_URL, PG)]));
        assert_eq!(
            settings.user_store.map(|s| s.ready_grace),
            Some(Some(Duration::from_secs(30)))
        );
        for (raw, want) in [
            ("0s", Some(Duration::ZERO)),
            ("10s", Some(Duration::from_secs(10))),
            ("1h", Some(Duration::from_secs(3600))),
            ("off", None),
            ("OFF", None),
        ] {
            let settings = ok(&fronting(&[
                (USER_STORE_URL, PG),
                (USER_STORE_READY_GRACE, raw),
            ]));
            assert_eq!(
                settings.user_store.map(|s| s.ready_grace),
                Some(want),
                "{raw}"
            );
        }
        for raw in ["61m", "2h", "soon", "-1s"] {
            let problem = only_problem(
                &fronting(&[(USER_STORE_URL, PG), (USER_STORE_READY_GRACE, raw)]),
                USER_STORE_READY_GRACE,
            );
            assert!(
                problem
                    .message
                    .ends_with("is not a duration up to 1h, nor off"),
                "{raw}: {problem}"
            );
        }
    }

    #[test]
    fn the_log_retention_is_a_duration_up_to_a_week() {
        let settings = ok(&fronting(&[(USER_STORE_URL, PG)]));
        assert_eq!(
            settings.user_store.map(|s| s.log_retention),
            Some(Duration::from_secs(600))
        );
        for (raw, want) in [("0s", 0), ("90s", 90), ("168h", 7 * 24 * 3600)] {
            let settings = ok(&fronting(&[
                (USER_STORE_URL, PG),
                (CHANGE_LOG_RETENTION, raw),
            ]));
            assert_eq!(
                settings.user_store.map(|s| s.log_retention),
                Some(Duration::from_secs(want)),
                "{raw}"
            );
        }
        for raw in ["169h", "forever", "-1s"] {
            let problem = only_problem(
                &fronting(&[(USER_STORE_URL, PG), (CHANGE_LOG_RETENTION, raw)]),
                CHANGE_LOG_RETENTION,
            );
            assert!(
                problem.message.ends_with("is not a duration up to 7 days"),
                "{raw}: {problem}"
            );
        }
    }

    #[test]
    fn refuses_other_schemes_without_showing_the_password() {
        for raw in [
            "mysql://u:s3cret-pw@h/db",
            "sqlite://users.db",
            "postgres://",
            "https://u:s3cret-pw@h",
        ] {
            let problem = only_problem(&fronting(&[(USER_STORE_URL, raw)]), USER_STORE_URL);
            assert!(
                problem.message.ends_with("is not a PostgreSQL URL"),
                "{problem}"
            );
            assert!(!problem.to_string().contains("s3cret-pw"), "{problem}");
        }
    }

    #[test]
    fn refuses_the_embedded_document_store() {
        let problem = only_problem(&open(&[(USER_STORE_URL, PG)]), USER_STORE_URL);
        assert!(
            problem
                .message
                .starts_with("is set without PORTCULLIS_UPSTREAM_URL"),
            "{problem}"
        );
        assert!(problem.fix.contains("PORTCULLIS_UPSTREAM_URL"), "{problem}");
        assert!(!problem.to_string().contains("s3cret-pw"), "{problem}");
    }
}
