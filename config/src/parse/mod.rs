//! Validation of the merged variables into [`Settings`], collecting every problem.
//!
//! This file holds the entry points, the [`Parser`] core and [`Field`]. Each settings area is
//! an `impl Parser<'_>` block in its own file with its tests: the shared value parsers in
//! `values.rs`, then `general.rs`, `authn.rs`, `oidc.rs` and `authz.rs`. The test helpers they
//! share are in `tests.rs`.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::error::{ConfigError, Problem, Report};
use crate::settings::{LogSettings, Settings, DEFAULT_HTTP_ADDR};
use crate::source::{self, Values};
use crate::vars;

mod audit;
mod authn;
mod authz;
mod general;
mod grpc;
mod oidc;
#[cfg(test)]
pub(crate) mod tests;
mod throttle;
mod tls;
mod user_store;
mod values;

pub(crate) use values::redact_userinfo;

impl Settings {
    /// Pure parse over (name, value) pairs. Reads no process environment; reads only the files
    /// named by `PORTCULLIS_CONFIG_FILE` and `*_FILE` variables.
    ///
    /// Variable names are matched exactly (upper case), as Weaviate reads them; keys in the
    /// config file are case-insensitive. A later pair with the same name replaces an earlier one.
    /// Every problem is collected and returned in one [`ConfigError`].
    pub fn from_vars<I, K, V>(vars: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars.into_iter().map(|(k, v)| (k.into(), v.into()));
        parse(vars, Vec::new())
    }

    /// [`Settings::from_vars`] over the process environment. A non-UTF-8 name or value of one
    /// of our variables is a problem; other variables are not looked at.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let (vars, problems) = utf8_vars(std::env::vars_os());
        parse(vars, problems)
    }
}

/// Splits the process environment into UTF-8 pairs, reporting non-UTF-8 names and values of
/// variables that look like ours (others are not looked at).
fn utf8_vars(
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
fn parse(
    vars: impl IntoIterator<Item = (String, String)>,
    problems: Vec<Problem>,
) -> Result<Settings, ConfigError> {
    // A later pair with the same name wins, as in a shell.
    let env: BTreeMap<String, String> = vars.into_iter().collect();
    let mut report = Report::with(problems);
    let values = source::merge(&env, &mut report);
    let mut parser = Parser {
        values: &values,
        report,
    };
    let settings = parser.settings();
    let (problems, notices) = parser.report.into_parts();
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
                audit: self.audit_log(),
            },
            data_path: self.data_path(),
            authentication: self.authentication(),
            authorization: self.authorization(),
            backend: self.backend(),
            throttle: self.throttle(),
            grpc: self.grpc(http_addr, http_valid),
            tls: self.tls(),
            user_store: self.user_store(),
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

    /// The value of `name` when it is set to something other than blanks.
    fn non_empty(&self, name: &str) -> Option<&'a str> {
        self.get(name).filter(|raw| !raw.trim().is_empty())
    }
}
