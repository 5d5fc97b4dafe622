//! SHA-256 digests of credentials (API keys and bearer tokens), the only form in which the
//! server keeps them, and the maps keyed by them.
//!
//! The maps hash a key by the digest's own bits instead of SipHash: a SHA-256 output is
//! already uniform, and both maps (published API-key answers, verified tokens) only ever
//! insert digests of credentials that were accepted, so no caller can choose keys that crowd
//! one bucket. Every API-key and every cached-token request looks one up.

use std::hash::{BuildHasherDefault, Hasher};

use dashmap::DashMap;
use sha2::{Digest, Sha256};

/// SHA-256 of an API key's (or a token's) bytes.
pub type KeyDigest = [u8; 32];

/// SHA-256 of a presented or configured key.
pub fn digest(secret: &[u8]) -> KeyDigest {
    Sha256::digest(secret).into()
}

/// A concurrent map from a SHA-256 digest to `V`.
pub(crate) type DigestMap<V> = DashMap<KeyDigest, V, BuildHasherDefault<DigestHasher>>;

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
