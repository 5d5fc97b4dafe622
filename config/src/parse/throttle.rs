//! Who the client is and how many failed credentials it may present:
//! `PORTCULLIS_TRUSTED_PROXIES`, `PORTCULLIS_AUTH_FAILURE_LIMIT` and
//! `PORTCULLIS_AUTH_FAILURE_WINDOW`.

use std::time::Duration;

use super::{Field, Parser};
use crate::cidr::Cidr;
use crate::settings::ThrottleSettings;
use crate::vars;

/// Generous for a person or a client library that retries (a mistyped key, a token that
/// expired), small enough that a flood of invalid tokens from one address costs at most about
/// two RSA verifications a second once the first hundred are spent.
const DEFAULT_FAILURE_LIMIT: u32 = 100;
/// The most failures a window may allow; more is no throttle at all.
const MAX_FAILURE_LIMIT: u32 = 1_000_000;
const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);
const MIN_FAILURE_WINDOW: Duration = Duration::from_secs(1);
const MAX_FAILURE_WINDOW: Duration = Duration::from_secs(3600);

impl Parser<'_> {
    pub(super) fn throttle(&mut self) -> ThrottleSettings {
        let trusted_proxies = self.trusted_proxies();
        let failure_limit = self.failure_limit();
        let failure_window = self.failure_window();
        if failure_limit == 0 {
            self.notice_ignored(
                &[vars::AUTH_FAILURE_WINDOW],
                "PORTCULLIS_AUTH_FAILURE_LIMIT is 0 (failed credentials are not throttled)",
            );
        }
        ThrottleSettings {
            trusted_proxies,
            failure_limit,
            failure_window,
        }
    }

    fn trusted_proxies(&mut self) -> Vec<Cidr> {
        let name = vars::TRUSTED_PROXIES;
        let Field::Set(items) = self.list(name) else {
            return Vec::new();
        };
        let mut networks = Vec::with_capacity(items.len());
        let mut bad = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match Cidr::parse(item) {
                Ok(network) => networks.push(network),
                Err(why) => bad.push(format!("item {} ({item:?}) {why}", i + 1)),
            }
        }
        if !bad.is_empty() {
            self.report.problem(
                name,
                bad.join("; "),
                format!(
                    "list the proxies' addresses or networks as address/prefix, e.g. \
                     {name}=10.0.0.0/8,fd00::/8,127.0.0.1"
                ),
            );
            return Vec::new();
        }
        if networks.iter().any(|n| n.prefix() == 0) {
            self.report.notice(format!(
                "{name} trusts every address of a family (a /0 network): any client can then \
                 choose the address it is logged and throttled as with X-Forwarded-For"
            ));
        }
        networks
    }

    fn failure_limit(&mut self) -> u32 {
        let name = vars::AUTH_FAILURE_LIMIT;
        let Some(raw) = self.get(name) else {
            return DEFAULT_FAILURE_LIMIT;
        };
        match raw.trim().parse::<u32>() {
            Ok(n) if n <= MAX_FAILURE_LIMIT => n,
            _ => {
                self.report.problem(
                    name,
                    format!("{raw:?} is not a number of failures from 0 to {MAX_FAILURE_LIMIT}"),
                    format!(
                        "e.g. {name}={DEFAULT_FAILURE_LIMIT}, or {name}=0 to turn the throttle off"
                    ),
                );
                DEFAULT_FAILURE_LIMIT
            }
        }
    }

    fn failure_window(&mut self) -> Duration {
        let name = vars::AUTH_FAILURE_WINDOW;
        match self.duration(name) {
            Field::Set(window) if (MIN_FAILURE_WINDOW..=MAX_FAILURE_WINDOW).contains(&window) => {
                window
            }
            Field::Set(window) => {
                self.report.problem(
                    name,
                    format!("{window:?} is outside 1s to 1h"),
                    format!("e.g. {name}=60s"),
                );
                DEFAULT_FAILURE_WINDOW
            }
            Field::Unset | Field::Invalid => DEFAULT_FAILURE_WINDOW,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::*;
    use crate::vars::*;

    #[test]
    fn throttles_by_default_with_no_trusted_proxy() {
        let throttle = ok(&open(&[])).throttle;
        assert_eq!(throttle.trusted_proxies, Vec::<Cidr>::new());
        assert_eq!(throttle.failure_limit, 100);
        assert_eq!(throttle.failure_window, Duration::from_secs(60));
        assert!(throttle.enabled());
    }

    #[test]
    fn reads_trusted_proxies_limit_and_window() {
        let settings = ok(&open(&[
            (TRUSTED_PROXIES, "127.0.0.1, 10.0.0.0/8,fd00::/8"),
            (AUTH_FAILURE_LIMIT, "20"),
            (AUTH_FAILURE_WINDOW, "5m"),
        ]));
        let throttle = settings.throttle;
        let shown: Vec<String> = throttle
            .trusted_proxies
            .iter()
            .map(Cidr::to_string)
            .collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]);
        assert_eq!(throttle.failure_limit, 20);
        assert_eq!(throttle.failure_window, Duration::from_secs(300));
        assert_eq!(settings.notices, Vec::<String>::new());
    }

    #[test]
    fn a_limit_of_zero_turns_the_throttle_off() {
        let settings = ok(&open(&[
            (AUTH_FAILURE_LIMIT, "0"),
            (AUTH_FAILURE_WINDOW, "10s"),
        ]));
        assert!(!settings.throttle.enabled());
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(
            settings.notices[0].contains(AUTH_FAILURE_WINDOW),
            "{:?}",
            settings.notices
        );
    }

    #[test]
    fn rejects_limits_that_are_not_0_to_a_million() {
        for raw in ["-1", "1000001", "many", "", "1.5"] {
            let problem = only_problem(&open(&[(AUTH_FAILURE_LIMIT, raw)]), AUTH_FAILURE_LIMIT);
            assert!(problem.message.contains("0 to 1000000"), "{problem}");
            assert!(
                problem.fix.contains("=0 to turn the throttle off"),
                "{problem}"
            );
        }
        assert_eq!(
            ok(&open(&[(AUTH_FAILURE_LIMIT, "1000000")]))
                .throttle
                .failure_limit,
            1_000_000
        );
    }

    #[test]
    fn rejects_windows_outside_one_second_to_one_hour() {
        for (raw, message) in [
            ("500ms", "500ms is outside 1s to 1h"),
            ("2h", "7200s is outside 1s to 1h"),
            ("0s", "\"0s\" is not a positive duration"),
            ("soon", "\"soon\" is not a positive duration"),
        ] {
            let problem = only_problem(&open(&[(AUTH_FAILURE_WINDOW, raw)]), AUTH_FAILURE_WINDOW);
            assert_eq!(problem.message, message, "{raw}");
        }
        for (raw, window) in [("1s", 1), ("1h", 3600)] {
            assert_eq!(
                ok(&open(&[(AUTH_FAILURE_WINDOW, raw)]))
                    .throttle
                    .failure_window,
                Duration::from_secs(window)
            );
        }
    }

    #[test]
    fn rejects_trusted_proxies_that_are_not_networks_naming_each() {
        let problem = only_problem(
            &open(&[(
                TRUSTED_PROXIES,
                "127.0.0.1,proxy.internal,10.0.0.1/8,fd00::/200",
            )]),
            TRUSTED_PROXIES,
        );
        assert_eq!(
            problem.message,
            "item 2 (\"proxy.internal\") is not an IP address or CIDR network; \
             item 3 (\"10.0.0.1/8\") has bits set past its prefix length (the network is 10.0.0.0/8); \
             item 4 (\"fd00::/200\") has a prefix length that is not a number from 0 to 128"
        );
        assert!(problem.fix.contains("10.0.0.0/8"), "{problem}");
        for raw in ["", "10.0.0.0/8,,::1"] {
            only_problem(&open(&[(TRUSTED_PROXIES, raw)]), TRUSTED_PROXIES);
        }
    }

    #[test]
    fn trusting_a_whole_family_is_allowed_with_a_notice() {
        let settings = ok(&open(&[(TRUSTED_PROXIES, "0.0.0.0/0")]));
        assert_eq!(settings.throttle.trusted_proxies.len(), 1);
        assert_eq!(settings.notices.len(), 1, "{:?}", settings.notices);
        assert!(
            settings.notices[0].contains("X-Forwarded-For"),
            "{:?}",
            settings.notices
        );
    }

    #[test]
    fn describes_the_throttle_at_start() {
        let settings = ok(&open(&[(TRUSTED_PROXIES, "10.0.0.0/8,::1")]));
        let lines = settings.describe();
        for (name, value) in [
            (TRUSTED_PROXIES, "10.0.0.0/8,::1/128"),
            (AUTH_FAILURE_LIMIT, "100"),
            (AUTH_FAILURE_WINDOW, "60s"),
        ] {
            assert!(
                lines.iter().any(|(n, v)| *n == name && v == value),
                "{name}={value} missing from {lines:?}"
            );
        }
    }
}
