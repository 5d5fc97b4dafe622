//! Gathers the raw variables: the optional config file (read by the `config` crate) merged
//! under the environment, with checks on names Portcullis does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::path::Path;

use config::{File, FileFormat, Source, Value, ValueKind};

use crate::error::Report;
use crate::vars;

/// The merged values of the variables Portcullis reads, by upper-case name.
pub(crate) type Values = BTreeMap<String, String>;

/// Merges the file named by `PORTCULLIS_CONFIG_FILE` (if any) under `env`, reports unknown or
/// ignored names, and returns the values of the variables Portcullis reads.
pub(crate) fn merge(env: &BTreeMap<String, String>, report: &mut Report) -> Values {
    let file = match env.get(vars::CONFIG_FILE) {
        Some(path) => load_file(path, report),
        None => BTreeMap::new(),
    };

    let names: BTreeSet<&String> = env.keys().chain(file.keys()).collect();
    for name in names {
        check_name(name, !env.contains_key(name.as_str()), report);
    }
    if file.contains_key(vars::CONFIG_FILE) {
        report.notice(format!(
            "{} in the config file is ignored: only the environment can name the config file",
            vars::CONFIG_FILE
        ));
    }
    for name in file.keys().filter(|name| env.contains_key(name.as_str())) {
        if vars::is_read(name) && name != vars::CONFIG_FILE {
            report.notice(format!(
                "{name} from the environment overrides the value in the config file"
            ));
        }
    }

    // Both layers are flat name -> value maps; the environment wins name by name.
    let mut merged: Values = file
        .into_iter()
        .filter(|(name, _)| vars::is_read(name) && name != vars::CONFIG_FILE)
        .collect();
    merged.extend(
        env.iter()
            .filter(|(name, _)| vars::is_read(name))
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    merged
}

/// Reports a name Portcullis does not read, when it looks like one of ours.
fn check_name(name: &str, only_in_file: bool, report: &mut Report) {
    if vars::is_read(name) {
        return;
    }
    if name.starts_with("PORTCULLIS_") {
        report.problem(
            name,
            "is not a Portcullis variable",
            format!(
                "use one of {} (or remove it)",
                vars::PORTCULLIS_VARIABLES.join(", ")
            ),
        );
    } else if name.starts_with(vars::OIDC_PREFIX) {
        report.notice(format!(
            "{name} is not an OpenID Connect setting Portcullis supports; it is ignored (check the spelling)"
        ));
    } else if name.starts_with("AUTHENTICATION_") || name.starts_with("AUTHORIZATION_") {
        report.notice(format!(
            "{name} is not a variable Portcullis or Weaviate reads; it is ignored (check the spelling)"
        ));
    } else if only_in_file {
        report.notice(format!(
            "{name} in the config file is not a variable Portcullis reads; it is ignored"
        ));
    }
}

/// Reads and flattens the config file. Keys are upper-cased; problems name the key or
/// `PORTCULLIS_CONFIG_FILE`, and never quote the file's content.
fn load_file(path: &str, report: &mut Report) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if path.trim().is_empty() {
        report.problem(
            vars::CONFIG_FILE,
            "is set but empty",
            "set it to the path of a .yaml, .yml or .toml file, or unset it",
        );
        return out;
    }
    let extension = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let (format, format_name) = match extension.as_deref() {
        Some("yaml" | "yml") => (FileFormat::Yaml, "YAML"),
        Some("toml") => (FileFormat::Toml, "TOML"),
        _ => {
            report.problem(
                vars::CONFIG_FILE,
                format!("{path:?} has no .yaml, .yml or .toml extension"),
                "name a YAML file (.yaml or .yml) or a TOML file (.toml)",
            );
            return out;
        }
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            report.problem(
                vars::CONFIG_FILE,
                format!("cannot read {path:?}: {err}"),
                "check the path, that it is a UTF-8 text file, and that the server may read it",
            );
            return out;
        }
    };
    let table = match File::from_str(&text, format).collect() {
        Ok(table) => table,
        Err(err) => {
            report.problem(
                vars::CONFIG_FILE,
                format!("{path:?} {}", parse_failure(&err, &text, format_name)),
                format!(
                    "fix the {format_name} syntax; the file is a flat mapping of variable names \
                     to values, e.g. LOG_LEVEL: info"
                ),
            );
            return out;
        }
    };

    let mut entries: Vec<(String, Value)> = table.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in entries {
        let name = key.to_ascii_uppercase();
        if out.contains_key(&name) {
            report.problem(
                &name,
                "is set twice in the config file (keys are case-insensitive)",
                "keep only one of them",
            );
            continue;
        }
        match flatten(value.kind) {
            Ok(value) => {
                out.insert(name, value);
            }
            Err(Shape::Table) => report.problem(
                &name,
                "is a nested table in the config file",
                "use flat top-level keys named like the variables, e.g. LOG_LEVEL: info",
            ),
            Err(Shape::NestedList) => report.problem(
                &name,
                "is a list holding a list or table in the config file",
                "give a list of plain values, e.g. [alice, bob], or a comma-separated string",
            ),
            Err(Shape::Nil) => report.problem(
                &name,
                "has no value in the config file",
                "give it a value or remove the key",
            ),
        }
    }
    out
}

/// Why a file value cannot be a variable's value.
enum Shape {
    Table,
    NestedList,
    Nil,
}

/// A file value as a variable's string: lists joined with ",", scalars in their text form.
fn flatten(kind: ValueKind) -> Result<String, Shape> {
    match kind {
        ValueKind::Array(items) => {
            let items = items
                .into_iter()
                .map(|item| match item.kind {
                    ValueKind::Array(_) | ValueKind::Table(_) => Err(Shape::NestedList),
                    other => scalar(other),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(items.join(","))
        }
        other => scalar(other),
    }
}

fn scalar(kind: ValueKind) -> Result<String, Shape> {
    match kind {
        ValueKind::String(s) => Ok(s),
        ValueKind::Boolean(b) => Ok(b.to_string()),
        ValueKind::I64(n) => Ok(n.to_string()),
        ValueKind::I128(n) => Ok(n.to_string()),
        ValueKind::U64(n) => Ok(n.to_string()),
        ValueKind::U128(n) => Ok(n.to_string()),
        ValueKind::Float(n) => Ok(n.to_string()),
        ValueKind::Table(_) => Err(Shape::Table),
        ValueKind::Array(_) => Err(Shape::NestedList),
        ValueKind::Nil => Err(Shape::Nil),
    }
}

/// Describes a parse failure by its position only: parser messages can quote the file, and the
/// file may hold secrets.
fn parse_failure(err: &config::ConfigError, text: &str, format_name: &str) -> String {
    if let config::ConfigError::FileParse { cause, .. } = err {
        // The crate reports a top level that is not a table as its own (boxed) error type.
        if cause.is::<Box<config::ConfigError>>() || cause.is::<config::ConfigError>() {
            return "does not hold a mapping of variable names to values at its top level"
                .to_owned();
        }
        if let Some((line, column)) = position(cause.as_ref(), text) {
            return format!("is not valid {format_name} (error at line {line}, column {column})");
        }
    }
    format!("is not valid {format_name}")
}

/// Where the TOML or YAML parser stopped in `text`, as a line and a column counted from 1,
/// when its error says.
fn position(cause: &(dyn Error + 'static), text: &str) -> Option<(usize, usize)> {
    if let Some(err) = cause.downcast_ref::<toml::de::Error>() {
        return err.span().map(|span| line_and_column(text, span.start));
    }
    let mark = cause.downcast_ref::<yaml_rust2::ScanError>()?.marker();
    // yaml-rust2 counts lines from 1 and columns from 0.
    Some((mark.line(), mark.col() + 1))
}

/// The line and column (from 1) of byte `at` in `text`, counted as the toml crate's own error
/// message counts them, so positions read as they always have: columns are characters, or
/// bytes when the byte at `at` starts or sits inside a multi-byte character, and an `at` past
/// the end is as many columns past the last byte.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let Some(last) = text.len().checked_sub(1) else {
        return (1, at + 1);
    };
    let past_end = at.saturating_sub(last);
    let at = at - past_end;
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|&&byte| byte == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |newline| newline + 1);
    let column = text
        .get(line_start..=at)
        .map_or(at - line_start, |run| run.chars().count() - 1);
    (line + 1, column + past_end + 1)
}

#[cfg(test)]
mod tests {
    use config::Map;

    use super::*;
    use crate::parse::tests::*;
    use crate::settings::{LogFormat, LogLevel};
    use crate::vars::*;

    #[test]
    fn counts_lines_and_columns_as_toml_does() {
        let table = [
            ("a = 1", 0, (1, 1)),
            ("a = 1", 4, (1, 5)),
            ("a = 1\nb = = 2", 10, (2, 5)),
            ("a\n", 1, (1, 2)),
            ("a\n", 2, (1, 3)),
            ("a = [1,", 7, (1, 8)),
            ("a = [1,", 9, (1, 10)),
            ("\"é\" = 1 x", 9, (1, 9)),
            ("\"é\" = ü", 7, (1, 8)),
            ("", 0, (1, 1)),
        ];
        for (text, at, expected) in table {
            assert_eq!(line_and_column(text, at), expected, "{text:?} at {at}");
        }
    }

    #[test]
    fn positions_agree_with_the_parsers_own_messages() {
        let table = [
            (FileFormat::Toml, "a = 1\nX = = 1\n"),
            (FileFormat::Toml, "\"é\" = ü"),
            (FileFormat::Toml, "a = [1,"),
            (FileFormat::Yaml, "a: 1\n b: 2\n"),
            (FileFormat::Yaml, "é: ü: x"),
            (FileFormat::Yaml, "a: [\n"),
        ];
        for (format, text) in table {
            let Err(config::ConfigError::FileParse { cause, .. }) =
                File::from_str(text, format).collect()
            else {
                panic!("{text:?} should not parse");
            };
            let (line, column) = position(cause.as_ref(), text).expect("a position");
            // Each parser's message names the position; the messages themselves are never shown.
            let said = cause.to_string();
            let toml = format!("at line {line}, column {column}\n");
            let yaml = format!(" line {line} column {column}");
            assert!(said.contains(&toml) || said.ends_with(&yaml), "{said}");
        }
    }

    #[test]
    fn flattens_scalars_and_lists() {
        let list = ValueKind::Array(vec![
            Value::new(None, ValueKind::String("alice".into())),
            Value::new(None, ValueKind::I64(7)),
            Value::new(None, ValueKind::Boolean(true)),
        ]);
        assert!(matches!(flatten(list), Ok(s) if s == "alice,7,true"));
        assert!(matches!(flatten(ValueKind::U64(2112)), Ok(s) if s == "2112"));
        assert!(matches!(flatten(ValueKind::Nil), Err(Shape::Nil)));
        assert!(matches!(
            flatten(ValueKind::Table(Map::new())),
            Err(Shape::Table)
        ));
    }

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
}
