//! The Authorization header parser (`server/src/gate/credential.rs`) against a plain model of
//! its documented rules, written here byte by byte without the vectorized scan; and the token
//! it extracts, sent back as `Bearer <token>`, must come out unchanged.
//!
//! Input: header values separated by `\n` (which no header value can hold); an empty input is
//! a request without the header. Values `HeaderValue` refuses (control bytes) are left out, as
//! actix would never deliver them.

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use portcullis_server::gate::credential::{extract, CredentialError};

/// The rules of the module's documentation, in their order of precedence.
fn model(values: &[&[u8]]) -> Result<Option<String>, CredentialError> {
    let value = match values {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(CredentialError::Duplicate),
    };
    if value.contains(&b',') {
        return Err(CredentialError::CommaJoined);
    }
    if value.iter().all(|&b| b == b' ' || b == b'\t') {
        return Err(CredentialError::Empty);
    }
    if value.iter().any(|&b| !(b' '..=b'~').contains(&b)) {
        return Err(CredentialError::Malformed);
    }
    let space = value.iter().position(|&b| b == b' ');
    let (scheme, rest) = match space {
        Some(at) => (&value[..at], &value[at + 1..]),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let token = &rest[start..];
    if token.is_empty() {
        return Err(CredentialError::EmptyBearer);
    }
    if token.contains(&b' ') {
        return Err(CredentialError::Malformed);
    }
    Ok(Some(String::from_utf8_lossy(token).into_owned()))
}

/// The target.
pub fn check(data: &[u8]) {
    let mut headers = HeaderMap::new();
    let mut values: Vec<&[u8]> = Vec::new();
    if !data.is_empty() {
        for part in data.split(|&b| b == b'\n') {
            if let Ok(value) = HeaderValue::from_bytes(part) {
                headers.append(AUTHORIZATION, value);
                values.push(part);
            }
        }
    }
    let got = extract(&headers).map(|token| token.map(str::to_owned));
    assert_eq!(got, model(&values), "the parser and the model disagree");

    if let Ok(Some(token)) = got {
        assert!(token.bytes().all(|b| b.is_ascii_graphic() && b != b','));
        let mut again = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .unwrap_or_else(|_| panic!("an extracted token is a valid header value"));
        again.insert(AUTHORIZATION, value);
        assert_eq!(extract(&again), Ok(Some(token.as_str())), "round trip");
    }
}
