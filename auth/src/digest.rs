//! Maps keyed by a SHA-256 digest (of an API key or a bearer token), hashed by the digest's
//! own bits instead of SipHash: a SHA-256 output is already uniform, and both maps only ever
//! insert digests of credentials that were accepted, so no caller can choose keys that crowd
//! one bucket. Every API-key and every cached-token request looks one up.

use std::hash::{BuildHasherDefault, Hasher};

use dashmap::DashMap;

/// A concurrent map from a SHA-256 digest to `V`.
pub(crate) type DigestMap<V> = DashMap<[u8; 32], V, BuildHasherDefault<DigestHasher>>;

/// Folds the bytes it is given into one word (the digest's length prefix, then the digest).
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
