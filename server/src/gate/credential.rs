//! Reading the credential from a request: exactly one `Authorization: Bearer <token>` header.
//!
//! The scheme is matched case-insensitively (RFC 9110 §11.1). Ambiguous input is refused with
//! 400 rather than guessed at: two headers, a comma-joined value, an empty or whitespace-only
//! value, a bearer scheme with nothing or more than one token after it, a tab. Any other scheme
//! counts as no credential, as in Weaviate. The query string is never read.

use actix_web::http::header::{HeaderMap, AUTHORIZATION};

/// Why an Authorization header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// More than one Authorization header.
    Duplicate,
    /// A comma inside the value, as proxies produce when they join two headers.
    CommaJoined,
    /// Empty or whitespace-only value.
    Empty,
    /// `Bearer` with no token after it.
    EmptyBearer,
    /// Not visible ASCII, a tab, or text after the token.
    Malformed,
}

impl CredentialError {
    /// A short description for the 400 body (it never contains the credential).
    pub fn describe(self) -> &'static str {
        match self {
            CredentialError::Duplicate => "more than one Authorization header",
            CredentialError::CommaJoined => "comma-joined Authorization header",
            CredentialError::Empty => "empty Authorization header",
            CredentialError::EmptyBearer => "empty bearer token",
            CredentialError::Malformed => "malformed Authorization header",
        }
    }
}

/// What one pass over a header value found.
struct Scan {
    comma: bool,
    /// A byte outside visible ASCII and the space (a tab, a control byte, non-ASCII).
    invalid: bool,
    /// A byte other than the space.
    not_space: bool,
}

impl Scan {
    /// Branch-free over the bytes with `u8` accumulators, which the compiler vectorizes
    /// (with `bool`s in a tuple it does not: 30x slower on a JWT).
    fn of(bytes: &[u8]) -> Scan {
        let (mut comma, mut invalid, mut not_space) = (0u8, 0u8, 0u8);
        for &b in bytes {
            comma |= u8::from(b == b',');
            invalid |= u8::from(b.wrapping_sub(0x20) >= 0x5f);
            not_space |= u8::from(b != b' ');
        }
        Scan {
            comma: comma != 0,
            invalid: invalid != 0,
            not_space: not_space != 0,
        }
    }
}

/// Whether every byte is visible ASCII other than the comma (no space): branch-free, with a
/// `u8` accumulator the compiler vectorizes, two comparisons a byte.
fn is_plain_token(bytes: &[u8]) -> bool {
    let odd = bytes.iter().fold(0u8, |odd, &b| {
        odd | u8::from(b.wrapping_sub(0x21) >= 0x5e) | u8::from(b == b',')
    });
    odd == 0
}

/// The usual form's scheme and its one space, `Bearer `, matched case-insensitively.
const BEARER_SP: &[u8] = b"bearer ";

/// The bearer token, if the request carries one.
pub fn extract(headers: &HeaderMap) -> Result<Option<&str>, CredentialError> {
    from_values(headers.get_all(AUTHORIZATION).map(|value| value.as_bytes()))
}

/// The bearer token from every value of the request's `Authorization` header (or gRPC's
/// `authorization` metadata), whatever the framework that read them: the rules of
/// [`extract`], for every listener.
pub fn from_values<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<&'a str>, CredentialError> {
    let Some(bytes) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CredentialError::Duplicate);
    }
    // The usual form, `Bearer <token>` with a token of visible ASCII other than the comma,
    // checked with two comparisons a byte; anything else (an error, another scheme, other
    // spacing) takes the general rules below, which find the same token for this form.
    if let Some(tail) = bytes.get(BEARER_SP.len()..) {
        if !tail.is_empty()
            && bytes[..BEARER_SP.len()].eq_ignore_ascii_case(BEARER_SP)
            && is_plain_token(tail)
        {
            return std::str::from_utf8(tail)
                .map(Some)
                .map_err(|_| CredentialError::Malformed);
        }
    }
    // One pass over the value: classify, then decide in order of precedence.
    let scan = Scan::of(bytes);
    if scan.comma {
        return Err(CredentialError::CommaJoined);
    }
    // Without control bytes the only whitespace is the space; with them (a tab), look again.
    let all_whitespace = if scan.invalid {
        bytes.iter().all(u8::is_ascii_whitespace)
    } else {
        !scan.not_space
    };
    if all_whitespace {
        return Err(CredentialError::Empty);
    }
    if scan.invalid {
        return Err(CredentialError::Malformed);
    }
    // Visible ASCII and spaces only from here, so str conversion cannot fail.
    let text = std::str::from_utf8(bytes).map_err(|_| CredentialError::Malformed)?;
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(CredentialError::EmptyBearer);
    }
    if token.as_bytes().contains(&b' ') {
        return Err(CredentialError::Malformed);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                AUTHORIZATION,
                HeaderValue::from_bytes(v).expect("header value"),
            );
        }
        map
    }

    #[test]
    fn the_scan_classifies_every_byte_value() {
        // The vectorized scan against the plain definitions, for each byte value at the start,
        // the middle and the end of a JWT-sized value.
        for byte in 0..=u8::MAX {
            for at in [0, 300, 699] {
                let mut value = vec![b'x'; 700];
                value[at] = byte;
                let scan = Scan::of(&value);
                assert_eq!(scan.comma, byte == b',', "{byte:#x} at {at}");
                assert_eq!(
                    scan.invalid,
                    !(0x20..0x7f).contains(&byte),
                    "{byte:#x} at {at}"
                );
                assert!(scan.not_space, "{byte:#x} at {at}");
                assert_eq!(
                    is_plain_token(&value),
                    (0x21..0x7f).contains(&byte) && byte != b',',
                    "{byte:#x} at {at}"
                );
            }
            assert_eq!(Scan::of(&[byte; 40]).not_space, byte != b' ', "{byte:#x}");
            assert_eq!(
                is_plain_token(&[byte; 40]),
                (0x21..0x7f).contains(&byte) && byte != b',',
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn reads_bearer_tokens_case_insensitively() {
        let cases: &[(&[u8], &str)] = &[
            (b"Bearer abc", "abc"),
            (b"bearer abc", "abc"),
            (b"BEARER abc", "abc"),
            (b"bEaReR abc", "abc"),
            (b"Bearer  abc", "abc"),
            (b"Bearer a.b.c", "a.b.c"),
            (b"Bearer abc==", "abc=="),
            (b"Bearer a", "a"),
            (b"bearer  a", "a"),
            (b"Bearer   a.b.c", "a.b.c"),
        ];
        for (value, token) in cases {
            let map = headers(&[value]);
            assert_eq!(
                extract(&map),
                Ok(Some(*token)),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn other_schemes_and_no_header_are_no_credential() {
        assert_eq!(extract(&HeaderMap::new()), Ok(None));
        for value in [
            &b"Basic dXNlcjpwYXNz"[..],
            b"Token abc",
            b"ApiKey abc",
            b"Bearerabc",
        ] {
            assert_eq!(extract(&headers(&[value])), Ok(None));
        }
    }

    #[test]
    fn refuses_ambiguous_or_malformed_headers() {
        let cases: &[(&[&[u8]], CredentialError)] = &[
            (&[b"Bearer a", b"Bearer b"], CredentialError::Duplicate),
            (&[b"Bearer a", b"Basic b"], CredentialError::Duplicate),
            (&[b"Bearer a, Bearer b"], CredentialError::CommaJoined),
            (&[b"Bearer a,b"], CredentialError::CommaJoined),
            (&[b""], CredentialError::Empty),
            (&[b"   "], CredentialError::Empty),
            (&[b"Bearer"], CredentialError::EmptyBearer),
            (&[b"Bearer "], CredentialError::EmptyBearer),
            (&[b"bearer    "], CredentialError::EmptyBearer),
            (&[b"Bearer\tabc"], CredentialError::Malformed),
            (&[b"Bearer abc def"], CredentialError::Malformed),
            (&[b"Bearer ab\xffc"], CredentialError::Malformed),
        ];
        for (values, expected) in cases {
            let map = headers(values);
            assert_eq!(extract(&map), Err(*expected), "{values:?}");
        }
    }
}
