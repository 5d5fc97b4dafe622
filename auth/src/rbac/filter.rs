//! Permission filters: `*` matches any run of characters (including none), every other
//! character matches itself, and the whole value must match (anchored). Weaviate turns filters
//! into regular expressions, so `Movie|Book` there grants every collection starting with
//! `Movie`; here a filter with regular-expression syntax is refused when the role is written,
//! naming the character, so no role silently means something other than it says.
//!
//! A [`Filter`] is compiled once, when its role changes; matching allocates nothing.

use std::fmt;

/// What a filter names, which decides the characters it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterKind {
    /// A collection or an alias: letters, digits and `_` (the first letter is upper-cased).
    Collection,
    /// A tenant, shard or role name: letters, digits, `_` and `-`.
    Name,
    /// An object id: hexadecimal digits and `-`.
    Object,
    /// A user or group name: anything printable but regular-expression syntax.
    Principal,
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The filter is empty.
    #[error("filter is empty")]
    Empty,
    /// The filter is longer than its kind allows.
    #[error("filter is longer than {0} characters")]
    TooLong(usize),
    /// Regular-expression syntax, which filters do not have.
    #[error(
        "filter {filter:?} uses {syntax:?}, which is regular-expression syntax; filters match literally except \"*\", which matches any run of characters"
    )]
    RegexSyntax {
        /// The refused filter.
        filter: String,
        /// The offending character or sequence.
        syntax: String,
    },
    /// A character a name of this kind never holds.
    #[error("filter {filter:?} holds {character:?}, which no {kind} name can hold")]
    Character {
        /// The refused filter.
        filter: String,
        /// The offending character.
        character: char,
        /// What the filter names.
        kind: &'static str,
    },
}

/// Characters that are regular-expression syntax in Weaviate's filters and mean nothing here.
const REGEX_SYNTAX: &[char] = &['|', '(', ')', '[', ']', '{', '}', '+', '?', '^', '$', '\\'];

impl FilterKind {
    fn max_len(self) -> usize {
        match self {
            FilterKind::Collection => 255,
            FilterKind::Name => 64,
            FilterKind::Object => 64,
            FilterKind::Principal => 256,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            FilterKind::Collection => "collection",
            FilterKind::Name => "tenant, shard or role",
            FilterKind::Object => "object id",
            FilterKind::Principal => "user or group",
        }
    }

    fn allows(self, c: char) -> bool {
        match self {
            FilterKind::Collection => c.is_ascii_alphanumeric() || c == '_',
            FilterKind::Name => c.is_ascii_alphanumeric() || c == '_' || c == '-',
            FilterKind::Object => c.is_ascii_hexdigit() || c == '-',
            FilterKind::Principal => !c.is_control(),
        }
    }
}

/// Checks `filter` against its kind and normalizes it: collection filters get their first
/// letter upper-cased, as Weaviate does (`movie*` is `Movie*`).
pub fn normalize(filter: &str, kind: FilterKind) -> Result<String, FilterError> {
    if filter.is_empty() {
        return Err(FilterError::Empty);
    }
    if filter.chars().count() > kind.max_len() {
        return Err(FilterError::TooLong(kind.max_len()));
    }
    if let Some(c) = filter.chars().find(|c| REGEX_SYNTAX.contains(c)) {
        return Err(FilterError::RegexSyntax {
            filter: filter.to_owned(),
            syntax: c.to_string(),
        });
    }
    // `.*` is the regular-expression way of writing what `*` means here; a `.` elsewhere is an
    // ordinary character in user names (`alice.smith@example.com`).
    if filter.contains(".*") {
        return Err(FilterError::RegexSyntax {
            filter: filter.to_owned(),
            syntax: ".*".to_owned(),
        });
    }
    if let Some(c) = filter.chars().find(|&c| c != '*' && !kind.allows(c)) {
        let syntax = c == '.';
        return Err(if syntax {
            FilterError::RegexSyntax {
                filter: filter.to_owned(),
                syntax: c.to_string(),
            }
        } else {
            FilterError::Character {
                filter: filter.to_owned(),
                character: c,
                kind: kind.describe(),
            }
        });
    }
    Ok(match kind {
        FilterKind::Collection => upper_first(filter),
        _ => filter.to_owned(),
    })
}

/// `movie` -> `Movie`: Weaviate's collection names start with a capital letter.
pub fn upper_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A compiled filter.
#[derive(Clone, PartialEq, Eq)]
pub enum Filter {
    /// `*` (or only stars): matches everything, including the literal `*` of an "all" request.
    Any,
    /// No star: the value itself.
    Exact(Box<str>),
    /// `prefix*`.
    Prefix(Box<str>),
    /// `*suffix`.
    Suffix(Box<str>),
    /// Anything else: the literal runs between the stars, in order. The first run is a prefix
    /// unless the filter starts with `*`, the last a suffix unless it ends with `*`.
    Glob {
        /// The filter as written, to show it back.
        source: Box<str>,
        /// Whether the filter starts with `*`.
        open_start: bool,
        /// Whether the filter ends with `*`.
        open_end: bool,
        /// The non-empty literal runs.
        parts: Box<[Box<str>]>,
    },
}

impl Filter {
    /// Compiles a filter already checked by [`normalize`] (or a built-in one).
    pub fn compile(filter: &str) -> Filter {
        if filter.chars().all(|c| c == '*') {
            return Filter::Any;
        }
        let stars = filter.matches('*').count();
        if stars == 0 {
            return Filter::Exact(filter.into());
        }
        if stars == 1 {
            if let Some(prefix) = filter.strip_suffix('*') {
                return Filter::Prefix(prefix.into());
            }
            if let Some(suffix) = filter.strip_prefix('*') {
                return Filter::Suffix(suffix.into());
            }
        }
        Filter::Glob {
            source: filter.into(),
            open_start: filter.starts_with('*'),
            open_end: filter.ends_with('*'),
            parts: filter
                .split('*')
                .filter(|p| !p.is_empty())
                .map(Into::into)
                .collect(),
        }
    }

    /// Whether the filter matches `value`. A request for "all" of something passes the literal
    /// `*`, which only a filter matching everything matches (per-name grants never add up to
    /// "all", as in Weaviate). Matching another filter's text as a literal answers whether this
    /// filter covers every name that one does (a star in the value can only be absorbed by a
    /// star here).
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Filter::Any => true,
            Filter::Exact(exact) => **exact == *value,
            Filter::Prefix(prefix) => value.starts_with(&**prefix),
            Filter::Suffix(suffix) => value.ends_with(&**suffix),
            Filter::Glob {
                open_start,
                open_end,
                parts,
                ..
            } => glob_matches(*open_start, *open_end, parts, value),
        }
    }

    /// Writes the filter as written.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Filter::Any => out.push('*'),
            Filter::Exact(s) => out.push_str(s),
            Filter::Prefix(s) => {
                out.push_str(s);
                out.push('*');
            }
            Filter::Suffix(s) => {
                out.push('*');
                out.push_str(s);
            }
            Filter::Glob { source, .. } => out.push_str(source),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_to(&mut out);
        f.write_str(&out)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filter({self})")
    }
}

/// Leftmost matching of literal runs separated by stars. Taking each run at its first
/// occurrence is enough: a star may absorb any run, so an earlier match never prevents a later
/// run from matching where a later choice would have.
fn glob_matches(open_start: bool, open_end: bool, parts: &[Box<str>], value: &str) -> bool {
    let mut rest = value;
    let mut parts = parts;
    if !open_start {
        let Some((first, tail)) = parts.split_first() else {
            return rest.is_empty();
        };
        let Some(after) = rest.strip_prefix(&**first) else {
            return false;
        };
        rest = after;
        parts = tail;
    }
    let (middle, last) = if open_end {
        (parts, None)
    } else {
        match parts.split_last() {
            Some((last, middle)) => (middle, Some(last)),
            None => (parts, None),
        }
    };
    for part in middle {
        match rest.find(&**part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    match last {
        Some(last) => rest.len() >= last.len() && rest.ends_with(&**last),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Filter {
        Filter::compile(s)
    }

    #[test]
    fn stars_match_any_run_and_everything_else_is_literal_and_anchored() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "Movie", true),
            ("*", "", true),
            ("**", "x", true),
            ("Movie", "Movie", true),
            ("Movie", "Movies", false),
            ("Movie", "AMovie", false),
            ("Movie*", "Movie", true),
            ("Movie*", "MovieNight", true),
            ("Movie*", "AMovie", false),
            ("*Movie", "MyMovie", true),
            ("*Movie", "MovieX", false),
            ("M*e", "Me", true),
            ("M*e", "Movie", true),
            ("M*e", "Movies", false),
            ("*ov*", "Movie", true),
            ("*ov*", "Mvie", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("a*b*c", "abcbc", true),
            ("ab*ab", "ab", false),
            ("ab*ab", "abab", true),
            ("a*a*a", "aa", false),
            ("a*a*a", "aaa", true),
        ];
        for (filter, value, expected) in cases {
            assert_eq!(f(filter).matches(value), *expected, "{filter} vs {value}");
        }
    }

    #[test]
    fn an_all_request_needs_a_filter_that_matches_everything() {
        assert!(f("*").matches("*"));
        assert!(!f("Movie*").matches("*"));
        assert!(!f("*Movie").matches("*"));
        assert!(!f("Movie").matches("*"));
        assert!(!f("*a*").matches("*"));
    }

    #[test]
    fn matching_a_filter_as_a_literal_answers_coverage() {
        // (holder, asked, whether every name the asked filter matches is matched by the holder)
        let cases = [
            ("*", "Movie*", true),
            ("Movie*", "Movie*", true),
            ("Movie*", "MovieNight*", true),
            ("Movie*", "Mov*", false),
            ("Movie*", "Movie", true),
            ("Movie", "Movie*", false),
            ("*a", "b*a", true),
            ("*a", "*a*", false),
            ("a*", "a*b", true),
        ];
        for (holder, asked, covers) in cases {
            assert_eq!(f(holder).matches(asked), covers, "{holder} covers {asked}");
        }
    }

    #[test]
    fn regex_syntax_is_refused_naming_it() {
        for (filter, syntax) in [
            ("Movie|Book", "|"),
            ("(Movie)", "("),
            ("[A-Z]*", "["),
            ("Movie+", "+"),
            ("Movie?", "?"),
            ("^Movie", "^"),
            ("Movie$", "$"),
            ("Mo\\w", "\\"),
            ("Movie.*", ".*"),
        ] {
            let err = normalize(filter, FilterKind::Collection).unwrap_err();
            assert_eq!(
                err,
                FilterError::RegexSyntax {
                    filter: filter.into(),
                    syntax: syntax.into()
                },
                "{filter}"
            );
            assert!(err.to_string().contains(&format!("{syntax:?}")), "{err}");
        }
        // A dot in a collection is a pattern there, not a character a collection can hold.
        assert!(matches!(
            normalize("Mov.e", FilterKind::Collection),
            Err(FilterError::RegexSyntax { .. })
        ));
        // In user names it is an ordinary character.
        assert_eq!(
            normalize("alice.smith@example.com", FilterKind::Principal).unwrap(),
            "alice.smith@example.com"
        );
        assert!(normalize("alice.*", FilterKind::Principal).is_err());
    }

    #[test]
    fn kinds_limit_characters_and_length_and_collections_are_capitalized() {
        assert_eq!(
            normalize("movie*", FilterKind::Collection).unwrap(),
            "Movie*"
        );
        assert_eq!(normalize("*", FilterKind::Collection).unwrap(), "*");
        assert_eq!(
            normalize("tenant-1*", FilterKind::Name).unwrap(),
            "tenant-1*"
        );
        assert!(matches!(
            normalize("Movie Night", FilterKind::Collection),
            Err(FilterError::Character { character: ' ', .. })
        ));
        assert!(matches!(
            normalize("xyz", FilterKind::Object),
            Err(FilterError::Character { character: 'x', .. })
        ));
        assert_eq!(normalize("", FilterKind::Name), Err(FilterError::Empty));
        assert_eq!(
            normalize(&"a".repeat(65), FilterKind::Name),
            Err(FilterError::TooLong(64))
        );
        assert!(normalize("a:b,c", FilterKind::Principal).is_ok());
        assert!(normalize("a\nb", FilterKind::Principal).is_err());
    }

    #[test]
    fn filters_show_back_as_written() {
        for s in ["*", "Movie", "Movie*", "*Movie", "M*v*e", "*a*"] {
            assert_eq!(f(s).to_string(), s);
        }
    }
}
