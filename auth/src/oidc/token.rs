//! Reading a compact JWS without trusting it: size and shape first, strict base64url, JSON
//! objects without duplicate members, then the header and claim rules. Nothing here touches a
//! key; every failure is a [`Reason`], and no input can make it panic.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::alg::Alg;
use super::keys::{decode_b64url, is_b64url, MAX_KID_BYTES};
use crate::Reason;

/// Tokens longer than this are refused before any decoding (CVE-2025-30204).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Whether a bearer token has a JWT's shape: three dot-separated segments whose first is
/// strict base64url of a JSON object. Tokens over [`MAX_TOKEN_BYTES`] with three segments
/// count as JWTs without decoding, so the OIDC path refuses them before any work.
pub fn is_jwt_shaped(token: &str) -> bool {
    routed_header(token).is_some()
}

/// The router's reading of a bearer token: `None` unless it has a JWT's shape
/// ([`is_jwt_shaped`]); for a JWT, what [`header`] finds in its first segment, so the
/// verification that follows does not decode and parse the header a second time. A JWT over
/// [`MAX_TOKEN_BYTES`] is not decoded: its header is [`Reason::MalformedToken`].
pub(crate) fn routed_header(token: &str) -> Option<Result<Header, Reason>> {
    if count_dots(token.as_bytes()) != 2 {
        return None;
    }
    routed_header_of_two_dots(token)
}

/// [`routed_header`] of a token its caller already found exactly two dots in.
pub(crate) fn routed_header_of_two_dots(token: &str) -> Option<Result<Header, Reason>> {
    debug_assert_eq!(count_dots(token.as_bytes()), 2);
    if token.len() > MAX_TOKEN_BYTES {
        return Some(Err(Reason::MalformedToken));
    }
    let (segment, _) = token.split_once('.')?;
    let bytes = decode_b64url(segment)?;
    // JSON may open with whitespace, and `header()` accepts it: a token the OIDC path would
    // accept must be routed there (found by the `jws` fuzz target).
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return None;
    }
    match object_of(&bytes, &HEADER_MEMBERS) {
        Ok(members) => Some(header_of(&members)),
        // Not a header we accept, but still a JWT if it is JSON at all (duplicate members,
        // invalid UTF-8 in a string, a number out of range): malformed, never an API key.
        Err(reason) => serde_json::from_slice::<de::IgnoredAny>(&bytes)
            .is_ok()
            .then_some(Err(reason)),
    }
}

/// The number of dots in a token (a JWT has exactly two). Counted in `u8` over chunks of at
/// most 255 bytes, which the compiler vectorizes (a `usize` count does not: 10x slower).
pub(crate) fn count_dots(token: &[u8]) -> usize {
    token
        .chunks(255)
        .map(|chunk| usize::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'.'))))
        .sum()
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

/// A member's value, as far as a check reads it: strings are borrowed from the decoded
/// segment (copied only when they hold escapes), integers kept, anything else only parsed.
#[derive(Debug)]
enum Field<'de> {
    Str(Cow<'de, str>),
    /// A JSON integer that fits in an `i64` (what `serde_json::Value::as_i64` would return).
    Int(i64),
    /// An array: each string item, and `None` for an item of any other type.
    Array(Vec<Option<Cow<'de, str>>>),
    /// `null`, a boolean, a fraction, an integer beyond `i64`, or an object.
    Other,
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Field<'de>, E> {
        Ok(Field::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Field<'de>, E> {
        Ok(i64::try_from(n).map_or(Field::Other, Field::Int))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(text.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut items: A) -> Result<Field<'de>, A::Error> {
        let mut strings = Vec::new();
        while let Some(item) = items.next_element::<Field<'de>>()? {
            strings.push(match item {
                Field::Str(text) => Some(text),
                _ => None,
            });
        }
        Ok(Field::Array(strings))
    }

    fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<Field<'de>, A::Error> {
        UnreadVisitor.visit_map(members)?;
        Ok(Field::Other)
    }
}

/// The most members a check asks for.
const MAX_WANTED: usize = 7;

/// The members of a JSON object that a check reads, by name; the others were checked as
/// strictly (see [`Unread`]) but not kept.
pub(crate) struct Members<'w, 'de> {
    wanted: &'w [&'w str],
    values: [Option<Field<'de>>; MAX_WANTED],
}

impl<'de> Members<'_, 'de> {
    /// The value of member `name`, which must be one of the names asked for.
    fn get(&self, name: &str) -> Option<&Field<'de>> {
        let index = self.wanted.iter().position(|w| *w == name)?;
        self.values[index].as_ref()
    }

    fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Whether two member names are equal. Most names are short and many have the same length
/// (`iss`, `exp`, `aud`, `iat`, ...): the first byte tells most of them apart without a call
/// to `memcmp`.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

/// Reads a JSON object whose members are all distinct (RFC 7519 §4: duplicates are refused),
/// keeping the values of the members in `wanted` (at most [`MAX_WANTED`]) and checking the
/// rest without building them.
struct Select<'w>(&'w [&'w str]);

impl<'de, 'w> DeserializeSeed<'de> for Select<'w> {
    type Value = Members<'w, 'de>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Members<'w, 'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 'w> Visitor<'de> for Select<'w> {
    type Value = Members<'w, 'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object without duplicate members")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Members<'w, 'de>, A::Error> {
        let mut values: [Option<Field<'de>>; MAX_WANTED] = Default::default();
        // Room for the members of a usual token without growing.
        let mut names: Vec<Name<'de>> = Vec::with_capacity(16);
        while let Some(name) = access.next_key::<Name<'de>>()? {
            // The first of equal names in `wanted` holds the value (a configured claim name
            // may repeat a standard one).
            match self.0.iter().position(|w| same_name(w, &name.0)) {
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
        if names
            .windows(2)
            .any(|pair| same_name(&pair[0].0, &pair[1].0))
        {
            return Err(de::Error::custom("duplicate member"));
        }
        Ok(Members {
            wanted: self.0,
            values,
        })
    }
}

/// The named members of a duplicate-free JSON object, from a segment's decoded bytes.
fn object_of<'w, 'de>(bytes: &'de [u8], wanted: &'w [&'w str]) -> Result<Members<'w, 'de>, Reason> {
    debug_assert!(wanted.len() <= MAX_WANTED);
    // Checked whole and first: unread strings are not copied out, so nothing else would
    // refuse invalid UTF-8 inside them.
    let text = std::str::from_utf8(bytes).map_err(|_| Reason::MalformedToken)?;
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
    let bytes = decode_b64url(segment).ok_or(Reason::MalformedToken)?;
    header_of(&object_of(&bytes, &HEADER_MEMBERS)?)
}

/// The header members read.
const HEADER_MEMBERS: [&str; 6] = ["alg", "crit", "enc", "typ", "cty", "kid"];

/// The checks of [`header`] on its members.
fn header_of(header: &Members<'_, '_>) -> Result<Header, Reason> {
    let alg = match header.get("alg") {
        Some(Field::Str(name)) => Alg::from_name(name).ok_or(Reason::DisallowedAlg)?,
        Some(_) => return Err(Reason::MalformedToken),
        None => return Err(Reason::DisallowedAlg),
    };
    if header.contains("crit") || header.contains("enc") {
        return Err(Reason::MalformedToken);
    }
    match header.get("typ") {
        None => {}
        Some(Field::Str(typ)) if ACCEPTED_TYP.iter().any(|t| t.eq_ignore_ascii_case(typ)) => {}
        Some(_) => return Err(Reason::MalformedToken),
    }
    match header.get("cty") {
        None => {}
        Some(Field::Str(cty))
            if !cty.eq_ignore_ascii_case("JWT") && !cty.eq_ignore_ascii_case("application/jwt") => {
        }
        Some(_) => return Err(Reason::MalformedToken),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Field::Str(kid)) if kid.len() <= MAX_KID_BYTES => Some(kid.clone().into_owned()),
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
fn numeric_date(value: &Field<'_>) -> Option<i64> {
    match value {
        Field::Int(seconds) if *seconds >= 0 => Some(*seconds),
        _ => None,
    }
}

fn optional_date(claims: &Members<'_, '_>, name: &str) -> Result<Option<i64>, Reason> {
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
    let bytes = decode_b64url(segment).ok_or(Reason::MalformedToken)?;
    let claims = object_of(&bytes, &wanted)?;
    match claims.get("iss") {
        Some(Field::Str(iss)) if *iss == rules.issuer => {}
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
            Some(Field::Str(aud)) => aud == audience,
            Some(Field::Array(auds)) => {
                if !auds.iter().all(Option::is_some) {
                    return Err(Reason::BadAudience);
                }
                auds.iter().any(|a| a.as_deref() == Some(audience.as_str()))
            }
            _ => false,
        };
        if !contains {
            return Err(Reason::BadAudience);
        }
    }
    let username = match claims.get(&rules.username_claim) {
        Some(Field::Str(name)) if is_safe_name(name) => name.clone().into_owned(),
        _ => return Err(Reason::MissingClaim),
    };
    let groups = match rules.groups_claim.as_ref().and_then(|c| claims.get(c)) {
        Some(Field::Str(group)) if is_safe_name(group) => vec![group.clone().into_owned()],
        Some(Field::Array(items)) => {
            // Sized for the array, not grown: the groups live as long as the token's cache
            // entry, and a grown vector would hold room for four.
            let mut groups = Vec::with_capacity(items.len());
            groups.extend(
                items
                    .iter()
                    .flatten()
                    .filter(|group| is_safe_name(group))
                    .map(|group| group.clone().into_owned()),
            );
            groups
        }
        _ => Vec::new(),
    };
    Ok(Claims {
        username,
        groups,
        exp,
    })
}
