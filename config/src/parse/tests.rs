//! The test helpers every area's tests share, and the tests of `mod.rs` (all problems at
//! once, non-UTF-8 variables).

use std::ffi::OsString;
use std::io::Write;

use super::*;
use crate::settings::StaticApiKeys;
use crate::vars::*;

// Fake keys for tests. Assertions never print them: failure messages are fixed strings.
pub(crate) const KEY_A: &str = "pk-test-alpha-91c3";
pub(crate) const KEY_B: &str = "pk-test-bravo-27d8";
pub(crate) const KEY_C: &str = "pk-test-charlie-5e0f";

pub(crate) fn parse(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_vars(vars.iter().copied())
}

/// The variables plus anonymous access on, the smallest valid configuration.
pub(crate) fn open<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![(ANONYMOUS_ACCESS_ENABLED, "true")];
    vars.extend_from_slice(extra);
    vars
}

/// Static keys on with the given keys and users, plus `extra`.
pub(crate) fn keyed<'a>(
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

pub(crate) fn ok(vars: &[(&str, &str)]) -> Settings {
    match parse(vars) {
        Ok(settings) => settings,
        // A ConfigError never holds a secret, so it may be printed.
        Err(err) => panic!("expected valid settings, got {err}"),
    }
}

pub(crate) fn problems(vars: &[(&str, &str)]) -> Vec<Problem> {
    match parse(vars) {
        Ok(_) => panic!("expected a configuration error"),
        Err(err) => {
            assert_no_key_in(&err.to_string());
            assert_no_key_in(&format!("{err:?}"));
            err.problems
        }
    }
}

pub(crate) fn variables(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.variable.as_str()).collect()
}

/// The single problem, asserted to name `variable`.
pub(crate) fn only_problem(vars: &[(&str, &str)], variable: &str) -> Problem {
    let problems = problems(vars);
    assert_eq!(variables(&problems), [variable], "{problems:#?}");
    problems.into_iter().next().expect("one problem")
}

pub(crate) fn assert_no_key_in(text: &str) {
    for key in [KEY_A, KEY_B, KEY_C] {
        assert!(!text.contains(key), "output contains a key value");
    }
}

pub(crate) fn exposed(keys: &StaticApiKeys) -> Vec<(String, String)> {
    keys.pairs()
        .map(|(key, user)| (key.expose().clone(), user.to_owned()))
        .collect()
}

pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, u)| ((*k).to_owned(), (*u).to_owned()))
        .collect()
}

pub(crate) fn temp_file(suffix: &str, content: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(suffix)
        .tempfile()
        .expect("temp file");
    file.write_all(content.as_bytes()).expect("write temp file");
    file
}

pub(crate) fn path_of(file: &tempfile::NamedTempFile) -> &str {
    file.path().to_str().expect("UTF-8 temp path")
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
