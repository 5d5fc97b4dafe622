//! `Caller`: the extractor through which handlers behind the gate read the principal the gate
//! admitted.
//!
//! The gate does not put the principal in the request's extensions: actix-web gives every
//! request a new, empty extensions map, so the first insert allocates its table and a box,
//! and dropping the request frees both (about 400 instructions a request, a tenth of the
//! gate's whole cost). Instead each worker thread keeps one table of the requests it has
//! admitted and not yet answered, keyed by the address of the request's head (which the
//! request owns until its response is sent, so no two live requests share it). An
//! [`Admission`] adds the entry and removes it when the gate is done with the request,
//! answered or dropped; the table keeps its capacity, so a request allocates nothing here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use actix_web::dev::{Payload, RequestHead};
use actix_web::{FromRequest, HttpRequest};
use portcullis_auth::Principal;

use crate::error::ApiError;

/// The authenticated caller, for handlers behind the gate.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let key = key_of(req.head());
        let principal = ADMITTED.with(|admitted| admitted.borrow().get(&key).cloned());
        std::future::ready(principal.map(Caller).ok_or_else(|| {
            tracing::error!(path = ?req.path(), "handler reached without a principal");
            ApiError::Internal
        }))
    }
}

/// A request the gate admitted, with its principal readable through [`Caller`] on this
/// thread until the admission is dropped.
pub(crate) struct Admission {
    key: usize,
}

impl Admission {
    /// Records `principal` as the caller of the request whose head is `head`.
    pub(crate) fn new(head: &RequestHead, principal: Principal) -> Self {
        let key = key_of(head);
        ADMITTED.with(|admitted| admitted.borrow_mut().insert(key, principal));
        Admission { key }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        // `try_with`: a request dropped while the thread's locals are torn down has no table.
        let _ = ADMITTED.try_with(|admitted| admitted.borrow_mut().remove(&self.key));
    }
}

/// A request's key: the address of its head.
fn key_of(head: &RequestHead) -> usize {
    std::ptr::from_ref(head) as usize
}

thread_local! {
    /// The principals of the requests this worker admitted and has not yet answered.
    static ADMITTED: RefCell<HashMap<usize, Principal, BuildHasherDefault<AddressHasher>>> =
        RefCell::new(HashMap::default());
}

/// Hashes an address by one multiplication (Fibonacci hashing), its high half folded into
/// the low one (the table picks buckets by the low bits, and an aligned address's low bits
/// are zero): the keys are addresses chosen by the allocator, not by clients, so no keyed
/// hash is needed.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, address: usize) {
        let product = (address as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = product ^ (product >> 32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use portcullis_auth::PrincipalKind;

    fn caller_of(req: &HttpRequest) -> Option<String> {
        let mut payload = Payload::None;
        futures_util::FutureExt::now_or_never(Caller::from_request(req, &mut payload))
            .expect("ready")
            .ok()
            .map(|caller| caller.0.username().to_owned())
    }

    #[test]
    fn each_request_reads_its_own_principal_until_the_admission_ends() {
        let first = TestRequest::default().to_http_request();
        let second = TestRequest::default().to_http_request();
        assert_eq!(caller_of(&first), None);

        let alice = Admission::new(
            first.head(),
            Principal::new("alice", vec![], PrincipalKind::StaticKey),
        );
        let bob = Admission::new(
            second.head(),
            Principal::new("bob", vec![], PrincipalKind::DbUser),
        );
        assert_eq!(caller_of(&first).as_deref(), Some("alice"));
        assert_eq!(caller_of(&second).as_deref(), Some("bob"));

        drop(alice);
        assert_eq!(caller_of(&first), None);
        assert_eq!(caller_of(&second).as_deref(), Some("bob"));
        drop(bob);
        assert_eq!(caller_of(&second), None);
        assert!(ADMITTED.with(|admitted| admitted.borrow().is_empty()));
    }

    #[test]
    fn another_thread_sees_no_principal() {
        let req = TestRequest::default().to_http_request();
        let _admission = Admission::new(req.head(), Principal::anonymous());
        let key = key_of(req.head());
        let elsewhere = std::thread::spawn(move || {
            ADMITTED.with(|admitted| admitted.borrow().contains_key(&key))
        })
        .join()
        .unwrap();
        assert!(!elsewhere);
        assert_eq!(caller_of(&req).as_deref(), Some("anonymous"));
    }
}
