//! `X-Request-Id`: taken from the client when it is a short, plain token, otherwise generated.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

/// The header every response carries.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Generates ids unique within the process: a random per-process prefix and a counter.
pub struct RequestIds {
    prefix: u32,
    counter: AtomicU64,
}

impl RequestIds {
    /// A generator with a fresh random prefix.
    pub fn new() -> Self {
        RequestIds {
            prefix: rand::random(),
            counter: AtomicU64::new(0),
        }
    }

    /// The id for a request: the client's own if it is 1 to 64 characters of `[A-Za-z0-9._-]`
    /// (so it can be logged verbatim), otherwise a new one.
    pub fn for_request(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(given) = headers.get(&X_REQUEST_ID) {
            let bytes = given.as_bytes();
            let plain = (1..=64).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if plain {
                return given.clone();
            }
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08x}-{:012x}", self.prefix, n);
        HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_plain_client_ids_and_replaces_others() {
        let ids = RequestIds::new();
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123_x.y"));
        assert_eq!(ids.for_request(&headers), "abc-123_x.y");
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(ids.for_request(&headers), "has space");
        let long = "a".repeat(65);
        headers.insert(X_REQUEST_ID, HeaderValue::from_str(&long).unwrap());
        assert_ne!(ids.for_request(&headers), long.as_str());
    }

    #[test]
    fn generated_ids_are_unique() {
        let ids = RequestIds::new();
        let a = ids.for_request(&HeaderMap::new());
        let b = ids.for_request(&HeaderMap::new());
        assert_ne!(a, b);
    }
}
