//! `X-Request-Id`: taken from the client when it is a short, plain token, otherwise generated
//! (without an allocation of its own).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::BytesMut;

/// The header every response carries.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `{prefix:08x}-{counter:012x}`.
const ID_LEN: usize = 21;

/// Generated ids are cut from one buffer per worker, this many at a time: a header value
/// shares the buffer (a reference count) instead of allocating its own bytes.
const IDS_PER_CHUNK: usize = 1024;

thread_local! {
    static CHUNK: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A request's id as [`RequestIds::for_request`] chose it: 1 to 64 bytes of
/// `[A-Za-z0-9._-]` (the client's) or hex digits and `-` (generated), never a sensitive
/// value, so a log line writes it without escaping or scanning it again.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id as the response's header value.
    pub fn header(&self) -> &HeaderValue {
        &self.0
    }

    /// The id's bytes: only `[A-Za-z0-9._-]`.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The header value, for the response.
    pub fn into_header(self) -> HeaderValue {
        self.0
    }
}

impl PartialEq<&str> for RequestId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Generates ids unique within the process: a random per-process prefix and a counter.
pub struct RequestIds {
    prefix: u32,
    /// `prefix` in hex, as every generated id starts.
    prefix_hex: [u8; 8],
    counter: AtomicU64,
}

impl RequestIds {
    /// A generator with a fresh random prefix.
    pub fn new() -> Self {
        let prefix: u32 = rand::random();
        let mut prefix_hex = [0u8; 8];
        hex(&mut prefix_hex, u64::from(prefix));
        RequestIds {
            prefix,
            prefix_hex,
            counter: AtomicU64::new(0),
        }
    }

    /// The id for a request: the client's own if it is 1 to 64 characters of `[A-Za-z0-9._-]`
    /// (so it can be logged verbatim), otherwise a new one.
    pub fn for_request(&self, headers: &HeaderMap) -> RequestId {
        RequestId(self.header_value(headers))
    }

    /// [`RequestIds::for_request`]'s value.
    fn header_value(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(given) = headers.get(&X_REQUEST_ID) {
            let bytes = given.as_bytes();
            let plain = (1..=64).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if plain && !given.is_sensitive() {
                return given.clone();
            }
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        if n >> 48 != 0 {
            // Wider than 12 hex digits (after 2^48 requests): the rare, allocating form.
            let id = format!("{:08x}-{:012x}", self.prefix, n);
            return HeaderValue::from_str(&id)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        }
        let mut id = [b'-'; ID_LEN];
        id[..8].copy_from_slice(&self.prefix_hex);
        hex(&mut id[9..], n);
        let bytes = CHUNK.with(|chunk| {
            let mut chunk = chunk.borrow_mut();
            if chunk.capacity() < ID_LEN {
                *chunk = BytesMut::with_capacity(ID_LEN * IDS_PER_CHUNK);
            }
            chunk.extend_from_slice(&id);
            chunk.split().freeze()
        });
        HeaderValue::from_maybe_shared(bytes)
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }
}

/// Writes `value` as lower-case hex digits filling `out`, zero-padded (the digits that do not
/// fit are the caller's to rule out).
fn hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 0xf) as usize];
        value >>= 4;
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
    fn generated_ids_are_the_prefix_and_the_counter_in_hex() {
        let ids = RequestIds::new();
        ids.counter.store(0xabc, Ordering::Relaxed);
        let prefix = format!("{:08x}", ids.prefix);
        assert_eq!(
            ids.for_request(&HeaderMap::new()),
            format!("{prefix}-000000000abc").as_str()
        );
        for _ in 0..3 * IDS_PER_CHUNK {
            let n = ids.counter.load(Ordering::Relaxed);
            assert_eq!(
                ids.for_request(&HeaderMap::new()),
                format!("{prefix}-{n:012x}").as_str()
            );
        }
        ids.counter.store(1 << 48, Ordering::Relaxed);
        assert_eq!(
            ids.for_request(&HeaderMap::new()),
            format!("{prefix}-1000000000000").as_str()
        );
    }

    #[test]
    fn every_id_is_plain_and_not_sensitive() {
        let ids = RequestIds::new();
        let mut headers = HeaderMap::new();
        let given = [
            "abc-123_x.y",
            "has space",
            "quote\"d",
            "back\\slash",
            "",
            "\t",
        ];
        for value in given {
            headers.insert(X_REQUEST_ID, HeaderValue::from_str(value).unwrap());
            let id = ids.for_request(&headers);
            assert!(
                id.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
                "{id:?}"
            );
            assert!(!id.header().is_sensitive());
        }
        let mut sensitive = HeaderValue::from_static("abc");
        sensitive.set_sensitive(true);
        headers.insert(X_REQUEST_ID, sensitive);
        assert_ne!(ids.for_request(&headers), "abc");
        ids.counter.store(1 << 48, Ordering::Relaxed);
        assert!(ids.for_request(&HeaderMap::new()).as_bytes().is_ascii());
    }

    #[test]
    fn generated_ids_are_unique() {
        let ids = RequestIds::new();
        let a = ids.for_request(&HeaderMap::new());
        let b = ids.for_request(&HeaderMap::new());
        assert_ne!(a, b);
    }
}
