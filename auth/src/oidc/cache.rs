//! The cache of verified tokens: SHA-256 of the token -> principal, so a token already
//! verified costs one hash and one map read. Bounded in size; an entry is used only until its
//! token expires (`exp` plus the leeway) and only while the key that verified it is still
//! published. The JwksRefresher also purges entries whose key left the JWKS.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::keys::KeySet;
use crate::digest::DigestMap;
use crate::Principal;

/// The default bound on cached tokens.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// SHA-256 of a token.
pub(crate) type TokenDigest = [u8; 32];

/// SHA-256 of a token's bytes.
pub(crate) fn digest(token: &str) -> TokenDigest {
    crate::digest::digest(token.as_bytes())
}

type Entries = DigestMap<Entry>;

#[derive(Clone)]
struct Entry {
    principal: Principal,
    /// Seconds since the epoch after which the entry is not used (`exp` + leeway).
    valid_until: f64,
    /// The verifying key.
    key_uid: u64,
}

/// The shared cache. Cloning shares it.
#[derive(Clone)]
pub(crate) struct TokenCache {
    entries: Arc<Entries>,
    capacity: usize,
    /// When a full cache was last swept for expired entries (whole seconds since the epoch).
    last_sweep: Arc<AtomicU64>,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        TokenCache {
            entries: Arc::new(Entries::default()),
            capacity,
            last_sweep: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The principal of a cached token still valid at `now` whose key `keys` still holds.
    /// An expired entry is removed.
    pub(crate) fn get(&self, digest: &TokenDigest, now: f64, keys: &KeySet) -> Option<Principal> {
        let (principal, expired) = {
            let entry = self.entries.get(digest)?;
            if now >= entry.valid_until {
                (None, true)
            } else if keys.has_uid(entry.key_uid) {
                (Some(entry.principal.clone()), false)
            } else {
                (None, false)
            }
        };
        if expired {
            self.entries.remove(digest);
        }
        principal
    }

    /// The most tokens it holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Remembers a verified token. At capacity, expired entries are dropped first, then an
    /// arbitrary entry makes room.
    pub(crate) fn insert(
        &self,
        digest: TokenDigest,
        principal: Principal,
        valid_until: f64,
        key_uid: u64,
        now: f64,
    ) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&digest) {
            // A full sweep frees every expired entry at once, but it walks the whole cache:
            // at most one a second, or a full cache of live tokens would make every new token
            // pay for a walk over all of them.
            let second = now as u64;
            let last = self.last_sweep.load(Ordering::Relaxed);
            if second > last
                && self
                    .last_sweep
                    .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.entries.retain(|_, e| now < e.valid_until);
            }
            if self.entries.len() >= self.capacity {
                let victim = self.entries.iter().next().map(|e| *e.key());
                if let Some(victim) = victim {
                    self.entries.remove(&victim);
                }
            }
        }
        self.entries.insert(
            digest,
            Entry {
                principal,
                valid_until,
                key_uid,
            },
        );
    }

    /// Drops, in one pass, every entry verified by a key not in `keep` and every entry no
    /// longer valid at `now`.
    pub(crate) fn retain(&self, keep: &HashSet<u64>, now: f64) {
        self.entries
            .retain(|_, e| keep.contains(&e.key_uid) && now < e.valid_until);
    }

    /// The number of cached tokens.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;
    use crate::PrincipalKind;

    fn principal() -> Principal {
        Principal::new("u", Vec::new(), PrincipalKind::Oidc)
    }

    #[test]
    fn a_full_cache_of_live_tokens_stays_at_its_bound() {
        let cache = TokenCache::new(3);
        for i in 0..10u8 {
            cache.insert([i; 32], principal(), 2e9, 1, 1e9);
            assert!(cache.entries.len() <= 3, "bound exceeded after {i}");
            assert!(cache.entries.contains_key(&[i; 32]), "newest entry kept");
        }
    }

    #[test]
    fn a_full_cache_drops_expired_entries_in_one_sweep() {
        let cache = TokenCache::new(3);
        cache.insert([1; 32], principal(), 10.0, 1, 5.0);
        cache.insert([2; 32], principal(), 10.0, 1, 5.0);
        cache.insert([3; 32], principal(), 100.0, 1, 5.0);
        // At t=20 the first two have expired: one sweep frees both.
        cache.insert([4; 32], principal(), 100.0, 1, 20.0);
        assert_eq!(cache.entries.len(), 2);
        assert!(cache.entries.contains_key(&[3; 32]) && cache.entries.contains_key(&[4; 32]));
    }
}
