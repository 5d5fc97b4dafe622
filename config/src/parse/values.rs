//! The value parsers every area shares: booleans, socket addresses, ports, lists, secrets
//! (`NAME` or `NAME_FILE`), durations and sizes.

use std::net::SocketAddr;
use std::time::Duration;

use super::general::DEFAULT_METRICS_PORT;
use super::{Field, Parser};
use crate::vars;

const BOOLEAN_FIX: &str = "use true, on, enabled or 1 to enable; false, off, disabled or 0 to \
                           disable (any case)";
const ADDR_FIX: &str = "give an IP address and a port, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or \
                        [::1]:8080 (host names are not resolved)";

impl Parser<'_> {
    pub(super) fn boolean(&mut self, name: &str) -> Field<bool> {
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

    pub(super) fn addr(&mut self, name: &str) -> Field<SocketAddr> {
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

    pub(super) fn port(&mut self, name: &str) -> Field<u16> {
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
    pub(super) fn list(&mut self, name: &str) -> Field<Vec<String>> {
        match self.get(name) {
            None => Field::Unset,
            Some(raw) => self.split(name, raw),
        }
    }

    pub(super) fn split(&mut self, name: &str, raw: &str) -> Field<Vec<String>> {
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
    pub(super) fn secret(&mut self, name: &str) -> Field<(String, String)> {
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

    /// A duration like `60s`, `500ms`, `5m`, `24h`, or a plain number of seconds. Zero is refused.
    pub(super) fn duration(&mut self, name: &str) -> Field<Duration> {
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
}

/// Weaviate's boolean spellings (case-insensitive); anything else is `None`.
pub(super) fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "enabled" | "1" | "true" => Some(true),
        "off" | "disabled" | "0" | "false" => Some(false),
        _ => None,
    }
}

/// A size in bytes: a number with an optional `KiB`, `MiB` or `GiB` (or `k`, `m`, `g`) suffix.
pub(super) fn parse_size(raw: &str) -> Option<usize> {
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
pub(super) fn parse_duration(raw: &str) -> Option<Duration> {
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

/// `raw` with any `user:password@` replaced by `***@`, for error messages and the start-up log.
/// Everything from the scheme's `://` (or the start) to the last `@` goes: a password may hold
/// `/`, `?` or `#`, so cutting at the first of those could leave its tail visible, and hiding a
/// path segment that holds `@` costs nothing in a message.
pub(crate) fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    match raw[start..].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::*;
    use crate::vars::*;

    #[test]
    fn redacts_user_and_password_from_urls() {
        for (raw, shown) in [
            ("http://svc:pw@host:8081", "http://***@host:8081"),
            (
                "https://user@issuer/realms/a",
                "https://***@issuer/realms/a",
            ),
            ("https://u:p/w?#x@issuer/path", "https://***@issuer/path"),
            ("svc:pw@host", "***@host"),
            ("HTTP://a:b@c", "HTTP://***@c"),
            ("https://issuer/realms/main", "https://issuer/realms/main"),
            ("", ""),
        ] {
            assert_eq!(redact_userinfo(raw), shown, "{raw}");
        }
    }

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
}
