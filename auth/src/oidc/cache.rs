//! The cache of verified tokens: SHA-256 of the token -> principal, so a token already
//! verified costs one hash and one map read. Bounded in size; an entry is used only until its
//! token expires (`exp` plus the leeway) and only while the key that verified it is still
//! published. The JwksRefresher also purges entries whose key left the JWKS.
//!
//! A full cache makes room for a new token by dropping the tokens cached longest ago (first
//! in, first out), after dropping every expired one (at most once a second). Tokens of one
//! issuer share a lifetime, so the oldest are also the nearest to expiring, and a token just
//! verified stays until `capacity` newer ones have been: a burst of new tokens costs each
//! client at most one more verification, never a cache that forgets its tokens as soon as
//! it learns them. (The cache used to drop the first entry its map iterated over, from the
//! map's first shards, wherever the new token had landed: after 10,000 tokens into a cache of
//! 1,000, 99 of the last 1,000 were still cached, and at 100,000 an insertion cost 1.2-1.6 us
//! instead of 0.3, rising as the first shards emptied.)

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

/// One cached token in the order of caching: its digest and when its entry stops being used.
type Placed = (TokenDigest, f64);

/// The shared cache. Cloning shares it.
#[derive(Clone)]
pub(crate) struct TokenCache {
    entries: Arc<Entries>,
    /// Every cached token in the order it was cached, oldest first; only [`Self::insert`]
    /// and a purge change it, under this lock. Its length bounds the number of entries. It
    /// may also hold a token whose entry has already gone (expired when looked up): that
    /// place is given up, evicting nothing, when it comes first, or at a sweep. Should such
    /// a token be cached again before that (the clock went back), it holds two places, and
    /// the older one evicts it early.
    order: Arc<Mutex<VecDeque<Placed>>>,
    capacity: usize,
    /// When a full cache was last swept for expired entries (whole seconds since the epoch).
    last_sweep: Arc<AtomicU64>,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        TokenCache {
            entries: Arc::new(Entries::default()),
            order: Arc::new(Mutex::new(VecDeque::new())),
            capacity,
            last_sweep: Arc::new(AtomicU64::new(0)),
        }
    }

    fn order(&self) -> MutexGuard<'_, VecDeque<Placed>> {
        // A panic while holding the lock leaves at worst an order missing a token: that
        // token's entry is then never evicted, only expired. Keep caching.
        self.order.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Remembers a verified token. At capacity, expired entries are dropped first (a sweep,
    /// at most once a second), then the tokens cached longest ago make room.
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
        let entry = Entry {
            principal,
            valid_until,
            key_uid,
        };
        let mut order = self.order();
        if self.entries.insert(digest, entry).is_some() {
            // Verified twice at once (two requests with one new token): it keeps its place.
            return;
        }
        order.push_back((digest, valid_until));
        if order.len() <= self.capacity {
            return;
        }
        // A sweep walks every cached token (in the order, not the map): at most once a
        // second, or a full cache of live tokens would make every new token pay for it.
        let second = now as u64;
        if second > self.last_sweep.load(Ordering::Relaxed) {
            self.last_sweep.store(second, Ordering::Relaxed);
            order.retain(|(cached, until)| {
                let live = now < *until;
                if !live {
                    self.entries.remove(cached);
                }
                live
            });
        }
        while order.len() > self.capacity {
            let Some((oldest, _)) = order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    /// Drops, in one pass, every entry verified by a key not in `keep` and every entry no
    /// longer valid at `now`.
    pub(crate) fn retain(&self, keep: &HashSet<u64>, now: f64) {
        let mut order = self.order();
        self.entries
            .retain(|_, e| keep.contains(&e.key_uid) && now < e.valid_until);
        order.retain(|(cached, _)| self.entries.contains_key(cached));
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

    #[test]
    fn a_full_cache_makes_room_by_dropping_the_tokens_cached_longest_ago() {
        let capacity = 1_000;
        let cache = TokenCache::new(capacity);
        let token = |i: u32| crate::digest::digest(&i.to_le_bytes());
        for i in 0..10 * capacity as u32 {
            cache.insert(token(i), principal(), 2e9, 1, 1e9);
            assert!(cache.entries.len() <= capacity, "bound exceeded after {i}");
        }
        let cached = 10 * capacity as u32;
        let kept =
            (cached - capacity as u32..cached).filter(|&i| cache.entries.contains_key(&token(i)));
        assert_eq!(
            kept.count(),
            capacity,
            "every one of the newest tokens is still cached"
        );
        assert!(
            (0..cached - capacity as u32).all(|i| !cache.entries.contains_key(&token(i))),
            "only the older ones made room"
        );
        assert_eq!(cache.order().len(), capacity);
    }

    #[test]
    fn a_token_that_expired_on_lookup_leaves_the_order_at_the_next_sweep() {
        let cache = TokenCache::new(3);
        let keys = KeySet::empty();
        cache.insert([2; 32], principal(), 100.0, 1, 5.0);
        cache.insert([1; 32], principal(), 10.0, 1, 5.0);
        cache.insert([3; 32], principal(), 100.0, 1, 5.0);
        // Looked up after it expired: its entry goes, its place in the order stays a while.
        assert!(cache.get(&[1; 32], 20.0, &keys).is_none());
        assert_eq!(cache.entries.len(), 2);
        // Full by the order's count: the sweep drops the expired token's place, so the oldest
        // live token ([2], before it in the order) is not evicted to make room.
        cache.insert([4; 32], principal(), 100.0, 1, 20.0);
        assert_eq!(cache.entries.len(), 3);
        assert!([2, 3, 4]
            .iter()
            .all(|&i| cache.entries.contains_key(&[i; 32])));
        assert_eq!(cache.order().len(), 3);
    }

    #[test]
    fn a_token_verified_twice_at_once_is_cached_once() {
        let cache = TokenCache::new(2);
        cache.insert([1; 32], principal(), 100.0, 1, 5.0);
        cache.insert([1; 32], principal(), 100.0, 1, 5.0);
        cache.insert([2; 32], principal(), 100.0, 1, 5.0);
        assert_eq!(cache.order().len(), 2);
        assert!(cache.entries.contains_key(&[1; 32]) && cache.entries.contains_key(&[2; 32]));
    }
}
