//! Settings parsing (`config/`): `Settings::from_vars` over an environment built from the input.
//!
//! Input: entries separated by `\0`. An entry is `NAME=value` (a name starting with an upper
//! case letter; `!NAME=value` plants the marker below), or a selector byte and a value: the
//! selector's low seven bits pick the variable among every name Portcullis reads (its lists in
//! `config/src/vars.rs`, so variables added later are fuzzed too), Weaviate's RBAC names, and
//! names it must ignore or refuse; the high bit plants a marker secret, appended to a secret
//! variable's value or as the password of a URL (`http://svc:<marker>@...`). Variables that
//! make the parser read a file are left out (`PORTCULLIS_CONFIG_FILE`, the `_FILE` forms, a
//! certificate given as a path: its value always starts `-----BEGIN`).
//!
//! What must hold: a refusal names at least one problem, each with its variable; the marker
//! never appears in the error, the notices or the masked description (unless the input also
//! wrote it in a variable that is not secret); the same variables parse to the same result;
//! variables outside Portcullis' names change nothing.

use portcullis_config::{vars, Settings};

/// The planted secret.
pub const MARKER: &str = "Qx7Zk9WmSecret";

/// Every name an entry may set, in a fixed order.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = vars::PORTCULLIS_VARIABLES
        .iter()
        .chain(vars::GENERAL_VARIABLES)
        .chain(vars::AUTH_VARIABLES)
        .chain(vars::RBAC_SETTINGS)
        .copied()
        .filter(|name| *name != vars::CONFIG_FILE)
        .collect();
    names.extend([
        "PORTCULLIS_NOT_A_VARIABLE",
        "AUTHENTICATION_OIDC_NOT_A_VARIABLE",
        "AUTHORIZATION_NOT_A_VARIABLE",
        "PATH",
    ]);
    names
}

fn carries_url(name: &str) -> bool {
    [vars::UPSTREAM_URL, vars::OIDC_ISSUER, vars::OIDC_JWKS_URL].contains(&name)
}

/// An entry written `NAME=value` or `!NAME=value`: the name, the value, whether to plant.
fn literal(entry: &[u8]) -> Option<(String, &[u8], bool)> {
    let (plant, entry) = match entry.strip_prefix(b"!") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    if !entry.first()?.is_ascii_uppercase() {
        return None;
    }
    let eq = entry.iter().position(|&b| b == b'=')?;
    let name = std::str::from_utf8(&entry[..eq]).ok()?;
    Some((name.to_owned(), &entry[eq + 1..], plant))
}

/// The environment an input describes.
pub struct Environment {
    /// The variables, in order.
    pub env: Vec<(String, String)>,
    /// Whether the marker was planted in a secret or a URL's password.
    pub planted: bool,
    /// Whether the input also wrote the marker itself, where it may be echoed.
    pub in_plain_sight: bool,
}

/// The environment an input describes.
pub fn environment(data: &[u8]) -> Environment {
    let names = names();
    let mut env = Vec::new();
    let mut planted = false;
    let mut in_plain_sight = false;
    for entry in data.split(|&b| b == 0) {
        let (name, value, plant) = match literal(entry) {
            Some(literal) => literal,
            None => {
                let Some((&selector, value)) = entry.split_first() else {
                    continue;
                };
                let name = names[usize::from(selector & 0x7f) % names.len()];
                (name.to_owned(), value, selector & 0x80 != 0)
            }
        };
        if name == vars::CONFIG_FILE || name.ends_with(vars::FILE_SUFFIX) {
            continue;
        }
        let name = name.as_str();
        let mut value = String::from_utf8_lossy(value).into_owned();
        in_plain_sight |= name.contains(MARKER) || value.contains(MARKER);
        if name == vars::OIDC_CERTIFICATE {
            value = format!("-----BEGIN{value}");
        }
        if plant {
            if vars::SECRET_VARIABLES.contains(&name) {
                value.push_str(MARKER);
                planted = true;
            } else if carries_url(name) {
                value = match value.split_once("://") {
                    Some((scheme, rest)) => format!("{scheme}://svc:{MARKER}@{rest}"),
                    None => format!("http://svc:{MARKER}@{value}"),
                };
                planted = true;
            }
        }
        env.push((name.to_owned(), value));
    }
    Environment {
        env,
        planted,
        in_plain_sight,
    }
}

/// The target.
pub fn check(data: &[u8]) {
    let Environment {
        env,
        planted,
        in_plain_sight,
    } = environment(data);
    let result = Settings::from_vars(env.clone());
    let text = match &result {
        Err(error) => {
            assert!(!error.problems.is_empty(), "refused without a problem");
            for problem in &error.problems {
                assert!(
                    !problem.variable.is_empty(),
                    "a problem without its variable"
                );
            }
            error.to_string()
        }
        Ok(settings) => {
            let mut text: Vec<String> = settings.notices.clone();
            text.extend(
                settings
                    .describe()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}")),
            );
            text.join("\n")
        }
    };
    // The marker may be echoed only where the input wrote it in plain sight.
    if planted && !in_plain_sight {
        assert!(!text.contains(MARKER), "a secret was echoed: {text}");
    }

    assert_eq!(
        Settings::from_vars(env.clone()),
        result,
        "not deterministic"
    );
    if result.is_ok() {
        let mut more = env;
        more.insert(0, ("HOME".to_owned(), "/nowhere".to_owned()));
        more.insert(0, ("WEAVIATE_UNRELATED".to_owned(), "x".to_owned()));
        assert_eq!(
            Settings::from_vars(more),
            result,
            "an unrelated variable mattered"
        );
    }
}
