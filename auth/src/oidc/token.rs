//! Reading a compact JWS without trusting it: size and shape first, strict base64url, JSON
//! objects without duplicate members, then the header and claim rules. Nothing here touches a
//! key; every failure is a [`Reason`], and no input can make it panic.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::alg::Alg;
use super::keys::{decode_b64url, is_b64url, MAX_KID_BYTES};
use crate::Reason;

/// Tokens longer than this are refused before any decoding (CVE-2025-30204).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Whether a bearer token has a JWT's shape: three dot-separated segments whose first is
/// strict base64url of a JSON object. Tokens over [`MAX_TOKEN_BYTES`] with three segments
/// count as JWTs without decoding, so the OIDC path refuses them before any work.
pub fn is_jwt_shaped(token: &str) -> bool {
    let mut segments = token.splitn(4, '.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return false;
    };
    if token.len() > MAX_TOKEN_BYTES {
        return true;
    }
    match decode_b64url(header) {
        Some(bytes) => {
            // JSON may open with whitespace, and `header()` accepts it: a token the OIDC path
            // would accept must be routed there (found by the `jws` fuzz target).
            let first = bytes
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            first == Some(&b'{') && serde_json::from_slice::<de::IgnoredAny>(&bytes).is_ok()
        }
        None => false,
    }
}

/// A member name as parsed: borrowed from the decoded segment unless it contains escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Any JSON value, checked as strictly as building a `serde_json::Value` would (escapes and
/// surrogates, numbers in range, the nesting limit) but not kept: no allocation.
struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnreadVisitor)
    }
}

struct UnreadVisitor;

impl<'de> Visitor<'de> for UnreadVisitor {
    type Value = Unread;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Unread, E> {
        Ok(Unread)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Unread, E> {
        Ok(Unread)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Unread, E> {
        Ok(Unread)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Unread, E> {
        Ok(Unread)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Unread, E> {
        Ok(Unread)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Unread, E> {
        Ok(Unread)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut items: A) -> Result<Unread, A::Error> {
        while items.next_element::<Unread>()?.is_some() {}
        Ok(Unread)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Unread, A::Error> {
        while members.next_entry::<Unread, Unread>()?.is_some() {}
        Ok(Unread)
    }
}

/// The members of a JSON object that a check reads, by name; the others were checked as
/// strictly (see [`Unread`]) but not kept.
pub(crate) struct Members<'w> {
    wanted: &'w [&'w str],
    values: Vec<Option<Value>>,
}

impl Members<'_> {
    /// The value of member `name`, which must be one of the names asked for.
    fn get(&self, name: &str) -> Option<&Value> {
        let index = self.wanted.iter().position(|w| *w == name)?;
        self.values[index].as_ref()
    }

    fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Reads a JSON object whose members are all distinct (RFC 7519 §4: duplicates are refused),
/// keeping the values of the members in `wanted` and checking the rest without building them.
struct Select<'w>(&'w [&'w str]);

impl<'de, 'w> DeserializeSeed<'de> for Select<'w> {
    type Value = Members<'w>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Members<'w>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 'w> Visitor<'de> for Select<'w> {
    type Value = Members<'w>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object without duplicate members")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Members<'w>, A::Error> {
        let mut values: Vec<Option<Value>> = vec![None; self.0.len()];
        let mut names: Vec<Name<'de>> = Vec::new();
        while let Some(name) = access.next_key::<Name<'de>>()? {
            // The first of equal names in `wanted` holds the value (a configured claim name
            // may repeat a standard one).
            match self.0.iter().position(|w| *w == name.0) {
                Some(index) => values[index] = Some(access.next_value()?),
                None => {
                    access.next_value::<Unread>()?;
                }
            }
            names.push(name);
        }
        // Sorted, duplicates are neighbours: O(n log n) however many members a hostile token
        // carries.
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if names.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(de::Error::custom("duplicate member"));
        }
        Ok(Members {
            wanted: self.0,
            values,
        })
    }
}

/// Decodes one segment into the named members of a duplicate-free JSON object.
fn object<'w>(segment: &str, wanted: &'w [&'w str]) -> Result<Members<'w>, Reason> {
    let bytes = decode_b64url(segment).ok_or(Reason::MalformedToken)?;
    // Checked whole and first: unread strings are not copied out, so nothing else would
    // refuse invalid UTF-8 inside them.
    let text = std::str::from_utf8(&bytes).map_err(|_| Reason::MalformedToken)?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let members = Select(wanted)
        .deserialize(&mut deserializer)
        .map_err(|_| Reason::MalformedToken)?;
    deserializer.end().map_err(|_| Reason::MalformedToken)?;
    Ok(members)
}

/// The token's three segments, still encoded.
pub(crate) struct Segments<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

/// Splits a token into exactly three non-empty-header segments, refusing oversized tokens
/// first.
pub(crate) fn split(token: &str) -> Result<Segments<'_>, Reason> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reason::MalformedToken);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(Reason::MalformedToken)?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(Reason::MalformedToken)?;
    if header.is_empty() || payload.contains('.') {
        return Err(Reason::MalformedToken);
    }
    // The signature is decoded only once the claims pass; refuse a non-base64url one here so
    // a padded or standard-alphabet signature is malformed, not merely a bad signature.
    if !is_b64url(signature) {
        return Err(Reason::MalformedToken);
    }
    Ok(Segments {
        signing_input,
        header,
        payload,
        signature,
    })
}

/// The header members that matter; `jku`, `x5u`, `jwk` and `x5c` are never read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
}

/// `typ` values accepted (case-insensitive): a JWT or an RFC 9068 access token.
const ACCEPTED_TYP: [&str; 4] = ["JWT", "at+jwt", "application/jwt", "application/at+jwt"];

/// Decodes and checks the header: `alg` accepted, no `crit`, an accepted `typ` if any, not a
/// nested JWT, a short string `kid` if any.
pub(crate) fn header(segment: &str) -> Result<Header, Reason> {
    let header = object(segment, &["alg", "crit", "enc", "typ", "cty", "kid"])?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or(Reason::DisallowedAlg)?,
        Some(_) => return Err(Reason::MalformedToken),
        None => return Err(Reason::DisallowedAlg),
    };
    if header.contains("crit") || header.contains("enc") {
        return Err(Reason::MalformedToken);
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if ACCEPTED_TYP.iter().any(|t| t.eq_ignore_ascii_case(typ)) => {}
        Some(_) => return Err(Reason::MalformedToken),
    }
    match header.get("cty") {
        None => {}
        Some(Value::String(cty))
            if !cty.eq_ignore_ascii_case("JWT") && !cty.eq_ignore_ascii_case("application/jwt") => {
        }
        Some(_) => return Err(Reason::MalformedToken),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if kid.len() <= MAX_KID_BYTES => Some(kid.to_owned()),
        Some(_) => return Err(Reason::MalformedToken),
    };
    Ok(Header { alg, kid })
}

/// The claim rules, from the settings.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub(crate) issuer: String,
    /// `None` when the audience check is skipped.
    pub(crate) audience: Option<String>,
    pub(crate) username_claim: String,
    pub(crate) groups_claim: Option<String>,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub(crate) leeway: f64,
}

/// What a token's claims establish, before its signature is checked.
#[derive(Debug, PartialEq)]
pub(crate) struct Claims {
    pub(crate) username: String,
    pub(crate) groups: Vec<String>,
    /// `exp` as seconds since the epoch.
    pub(crate) exp: f64,
}

/// A NumericDate as issuers write it: a JSON integer of seconds from 0 to `i64::MAX`.
/// Floats (RFC 7519 allows fractions, no issuer we know sends them), negative numbers,
/// numbers beyond `i64`, strings and other types are refused (`docs/hostile-inputs.md` row
/// 13).
fn numeric_date(value: &Value) -> Option<i64> {
    value.as_i64().filter(|seconds| *seconds >= 0)
}

fn optional_date(claims: &Members<'_>, name: &str) -> Result<Option<i64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => numeric_date(value).map(Some).ok_or(Reason::MissingClaim),
    }
}

/// Control, bidirectional-override and invisible formatting characters, refused in user
/// names and dropped from groups (so `admin` cannot be imitated by look-alikes built with them).
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(is_unsafe_char)
}

/// Decodes the payload and checks the claims at `now` (seconds since the epoch), in this
/// order: `iss`, `exp`, `nbf`, `iat`, `aud`, the user name, then the groups.
pub(crate) fn claims(segment: &str, rules: &ClaimRules, now: f64) -> Result<Claims, Reason> {
    let groups_claim = rules
        .groups_claim
        .as_deref()
        .unwrap_or(rules.username_claim.as_str());
    let wanted = [
        "iss",
        "exp",
        "nbf",
        "iat",
        "aud",
        rules.username_claim.as_str(),
        groups_claim,
    ];
    let claims = object(segment, &wanted)?;
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == rules.issuer => {}
        _ => return Err(Reason::BadIssuer),
    }
    let exp = claims
        .get("exp")
        .ok_or(Reason::MissingClaim)
        .and_then(|v| numeric_date(v).ok_or(Reason::MissingClaim))?;
    // In f64: exact for every date before the year 285 million, and no integer overflow.
    let exp = exp as f64;
    if now >= exp + rules.leeway {
        return Err(Reason::Expired);
    }
    if let Some(nbf) = optional_date(&claims, "nbf")? {
        if nbf as f64 > now + rules.leeway {
            return Err(Reason::NotYetValid);
        }
    }
    if let Some(iat) = optional_date(&claims, "iat")? {
        if iat as f64 > now + rules.leeway {
            return Err(Reason::NotYetValid);
        }
    }
    if let Some(audience) = &rules.audience {
        let contains = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => {
                if !auds.iter().all(Value::is_string) {
                    return Err(Reason::BadAudience);
                }
                auds.iter().any(|a| a.as_str() == Some(audience.as_str()))
            }
            _ => false,
        };
        if !contains {
            return Err(Reason::BadAudience);
        }
    }
    let username = match claims.get(&rules.username_claim) {
        Some(Value::String(name)) if is_safe_name(name) => name.clone(),
        _ => return Err(Reason::MissingClaim),
    };
    let groups = match rules.groups_claim.as_ref().and_then(|c| claims.get(c)) {
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let groups = groups.into_iter().filter(|g| is_safe_name(g)).collect();
    Ok(Claims {
        username,
        groups,
        exp,
    })
}
