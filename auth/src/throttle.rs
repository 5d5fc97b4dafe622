//! The failure throttle: a budget of failed credential checks per client address, in a table
//! of fixed size. Framework-free: a listener asks [`FailureThrottle::check`] before it spends
//! work on a credential, and tells [`FailureThrottle::record_failure`] when one failed
//! (the [`Gatekeeper`](crate::Gatekeeper) does both for it).
//!
//! Each client has a token bucket, kept as one timestamp (the generic cell rate algorithm):
//! `limit` failures at once, then one more every `window / limit`, so an idle client's budget
//! is whole again one window after its last failure. A client over budget is refused until
//! its next failure would fit.
//!
//! Memory is fixed at start: [`SETS`] sets of [`WAYS`] entries (65,536 clients, 1.5 MiB),
//! a set chosen by a keyed hash of the address (so a client cannot aim at another's set).
//! A failure from a new client takes a free or recovered entry of its set, else evicts the
//! one closest to recovery and counts an eviction. Eviction only ever forgets debt: it can
//! let an attacker fail again sooner, never throttle anyone who has not failed. Entries are
//! exact addresses (IPv6: the /64 network, one site's usual allocation, which an attacker
//! would otherwise rotate through for free), so one client never spends another's budget.
//!
//! Only failures write; a request with a good credential never touches the table, and the
//! check before an expensive judgement reads one atomic while no client is over budget.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use portcullis_config::ThrottleSettings;

/// Sets in the table (a power of two).
pub const SETS: usize = 4096;
/// Entries per set.
pub const WAYS: usize = 16;

/// What [`FailureThrottle::check`] says about a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The client may present a credential that costs work.
    Allow,
    /// The client is over budget until one more failure fits, `retry_after` from now.
    Throttled {
        /// Time until the client's next failure would be within budget.
        retry_after: Duration,
    },
}

impl Verdict {
    /// Whole seconds for `Retry-After`: the wait rounded up, at least 1.
    pub fn retry_after_seconds(&self) -> u32 {
        match self {
            Verdict::Allow => 1,
            Verdict::Throttled { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                u32::try_from(secs).unwrap_or(u32::MAX).max(1)
            }
        }
    }
}

/// A budget of failed credential checks per client address. Shared by every worker (it is
/// `Sync`); each set has its own lock, held for a scan of [`WAYS`] entries.
pub struct FailureThrottle {
    sets: Box<[Mutex<Set>]>,
    hasher: std::hash::RandomState,
    /// Time zero of the table's timestamps.
    epoch: Instant,
    /// Nanoseconds one failure adds to a client's debt: window / limit.
    interval: u64,
    /// The debt a client may carry and still fail once more: window - interval.
    tolerance: u64,
    window: u64,
    /// The latest timestamp any failure set: while it is not past `now + tolerance`, no
    /// client is over budget and [`FailureThrottle::check`] reads nothing else.
    horizon: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct Set {
    entries: [Entry; WAYS],
}

/// One client. `tat` (theoretical arrival time, ns after `epoch`) is when its debt is paid;
/// 0 marks a free entry (every recorded failure sets it to at least one interval).
#[derive(Clone, Copy, Default)]
struct Entry {
    client: u128,
    tat: u64,
}

impl FailureThrottle {
    /// The throttle `settings` describe, or `None` when it is turned off.
    pub fn from_settings(settings: &ThrottleSettings) -> Option<FailureThrottle> {
        let limit = NonZeroU32::new(settings.failure_limit)?;
        Some(FailureThrottle::new(limit, settings.failure_window, SETS))
    }

    /// A throttle allowing `limit` failures per `window`, with `sets` sets of [`WAYS`]
    /// entries (`sets` is rounded up to a power of two; tests use small tables).
    pub fn new(limit: NonZeroU32, window: Duration, sets: usize) -> FailureThrottle {
        let window = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1);
        let interval = (window / u64::from(limit.get())).max(1);
        FailureThrottle {
            sets: (0..sets.max(1).next_power_of_two())
                .map(|_| Mutex::new(Set::default()))
                .collect(),
            hasher: std::hash::RandomState::new(),
            epoch: Instant::now(),
            interval,
            tolerance: window.saturating_sub(interval),
            window,
            horizon: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Whether `client` may present, at `now`, a credential whose judgement costs work.
    pub fn check(&self, client: IpAddr, now: Instant) -> Verdict {
        let now = self.nanos(now);
        let limit = now.saturating_add(self.tolerance);
        if self.horizon.load(Ordering::Relaxed) <= limit {
            return Verdict::Allow;
        }
        let key = client_key(client);
        let set = self.lock(key);
        match set.entries.iter().find(|e| e.tat != 0 && e.client == key) {
            Some(entry) if entry.tat > limit => Verdict::Throttled {
                retry_after: Duration::from_nanos(entry.tat - limit),
            },
            _ => Verdict::Allow,
        }
    }

    /// Counts one failed credential check by `client` at `now`.
    pub fn record_failure(&self, client: IpAddr, now: Instant) {
        let now = self.nanos(now);
        let key = client_key(client);
        let mut set = self.lock(key);
        let slot = match set
            .entries
            .iter()
            .position(|e| e.tat != 0 && e.client == key)
        {
            Some(i) => i,
            None => {
                // A free or recovered entry, else the one closest to recovery.
                let (i, victim) = set
                    .entries
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.tat)
                    .map_or((0, 0), |(i, e)| (i, e.tat));
                if victim > now {
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                set.entries[i] = Entry {
                    client: key,
                    tat: 0,
                };
                i
            }
        };
        let entry = &mut set.entries[slot];
        // Concurrent requests may each pass the check and fail: the debt is capped at one
        // window, so a client is never refused for longer than a window.
        entry.tat = entry
            .tat
            .max(now)
            .saturating_add(self.interval)
            .min(now.saturating_add(self.window));
        self.horizon.fetch_max(entry.tat, Ordering::Relaxed);
    }

    /// Clients with unpaid debt at `now` (for the table-size gauge; scans every set).
    pub fn entries(&self, now: Instant) -> usize {
        let now = self.nanos(now);
        self.sets
            .iter()
            .map(|set| {
                let set = set.lock().unwrap_or_else(PoisonError::into_inner);
                set.entries.iter().filter(|e| e.tat > now).count()
            })
            .sum()
    }

    /// The most clients the table holds.
    pub fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// Clients forgotten while still in debt, because their set was full.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self, key: u128) -> MutexGuard<'_, Set> {
        let index = (self.hasher.hash_one(key) as usize) & (self.sets.len() - 1);
        // A set holds plain numbers: a panic while it was locked cannot leave it unusable.
        self.sets[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The table key of an address: an IPv4 address (IPv4-mapped ones included) as its
/// IPv4-mapped IPv6 form, an IPv6 address as its /64 network. The two never meet: a /64 key
/// has its low 64 bits clear, an IPv4 key has `ffff` in them.
fn client_key(addr: IpAddr) -> u128 {
    match addr.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    fn throttle(limit: u32, window_secs: u64, sets: usize) -> FailureThrottle {
        FailureThrottle::new(
            NonZeroU32::new(limit).expect("non-zero"),
            Duration::from_secs(window_secs),
            sets,
        )
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn allows_the_limit_at_once_then_one_per_interval() {
        let t = throttle(10, 60, 64);
        let a = ip("198.51.100.1");
        let t0 = t.epoch + secs(100.0);
        for i in 0..10 {
            assert_eq!(t.check(a, t0), Verdict::Allow, "failure {i}");
            t.record_failure(a, t0);
        }
        // Ten failures at t0: the next fits one interval (6 s) later.
        assert_eq!(
            t.check(a, t0),
            Verdict::Throttled {
                retry_after: secs(6.0)
            }
        );
        assert_eq!(t.check(a, t0).retry_after_seconds(), 6);
        assert_eq!(
            t.check(a, t0 + secs(5.5)).retry_after_seconds(),
            1,
            "rounded up"
        );
        assert_eq!(t.check(a, t0 + secs(6.0)), Verdict::Allow);
        t.record_failure(a, t0 + secs(6.0));
        assert!(matches!(
            t.check(a, t0 + secs(6.0)),
            Verdict::Throttled { .. }
        ));
        // One window after the last failure the whole budget is back.
        let later = t0 + secs(66.0);
        for i in 0..10 {
            assert_eq!(
                t.check(a, later),
                Verdict::Allow,
                "failure {i} after the window"
            );
            t.record_failure(a, later);
        }
        assert!(matches!(t.check(a, later), Verdict::Throttled { .. }));
    }

    #[test]
    fn one_clients_failures_never_spend_anothers_budget() {
        // One set of 16: every client shares it, and only exact addresses match.
        let t = throttle(3, 60, 1);
        let now = t.epoch + secs(1.0);
        for _ in 0..3 {
            t.record_failure(ip("198.51.100.1"), now);
        }
        assert!(matches!(
            t.check(ip("198.51.100.1"), now),
            Verdict::Throttled { .. }
        ));
        for other in [
            "198.51.100.2",
            "2001:db8::1",
            "::ffff:198.51.100.3",
            "0.0.0.0",
        ] {
            assert_eq!(t.check(ip(other), now), Verdict::Allow, "{other}");
        }
        // A mapped address is its IPv4 address.
        assert!(matches!(
            t.check(ip("::ffff:198.51.100.1"), now),
            Verdict::Throttled { .. }
        ));
    }

    #[test]
    fn ipv6_clients_are_their_64_network() {
        let t = throttle(2, 60, 16);
        let now = t.epoch + secs(1.0);
        t.record_failure(ip("2001:db8:1:2::1"), now);
        t.record_failure(ip("2001:db8:1:2:ffff::9"), now);
        assert!(matches!(
            t.check(ip("2001:db8:1:2::77"), now),
            Verdict::Throttled { .. }
        ));
        assert_eq!(t.check(ip("2001:db8:1:3::1"), now), Verdict::Allow);
    }

    #[test]
    fn memory_is_fixed_and_eviction_forgets_the_least_indebted() {
        let t = throttle(1, 60, 1);
        assert_eq!(t.capacity(), WAYS);
        let now = t.epoch + secs(1.0);
        // The first client is deep in debt (twice: capped at one window).
        let first = ip("203.0.113.1");
        t.record_failure(first, now);
        t.record_failure(first, now);
        for i in 0..100u8 {
            t.record_failure(ip(&format!("198.51.100.{i}")), now + secs(1.0));
        }
        assert_eq!(
            t.entries(now + secs(1.0)),
            WAYS,
            "never more than the table"
        );
        assert_eq!(t.evictions(), 100 - (WAYS as u64 - 1));
        // The first client was the least indebted when its set filled (its debt ends at
        // now + 60 s, the others' at now + 61 s), so it went first; the last one stays.
        assert_eq!(t.check(first, now + secs(1.0)), Verdict::Allow);
        assert!(matches!(
            t.check(ip("198.51.100.99"), now + secs(1.0)),
            Verdict::Throttled { .. }
        ));
        // Recovered entries are free again, without an eviction.
        let later = now + secs(200.0);
        assert_eq!(t.entries(later), 0);
        t.record_failure(ip("192.0.2.1"), later);
        assert_eq!(t.evictions(), 100 - (WAYS as u64 - 1));
    }

    #[test]
    fn reads_nothing_but_the_horizon_while_nobody_is_over_budget() {
        let t = throttle(5, 10, 16);
        let now = t.epoch + secs(1.0);
        t.record_failure(ip("198.51.100.1"), now);
        // One failure in debt by 2 s; over budget only past 8 s of debt.
        assert!(t.horizon.load(Ordering::Relaxed) <= t.nanos(now) + t.tolerance);
        assert_eq!(t.check(ip("198.51.100.1"), now), Verdict::Allow);
    }

    #[test]
    fn disabled_by_a_zero_limit() {
        let settings = ThrottleSettings {
            trusted_proxies: Vec::new(),
            failure_limit: 0,
            failure_window: Duration::from_secs(60),
        };
        assert!(FailureThrottle::from_settings(&settings).is_none());
        let on = ThrottleSettings {
            failure_limit: 100,
            ..settings
        };
        let t = FailureThrottle::from_settings(&on).expect("on");
        assert_eq!(t.capacity(), 65_536);
    }
}
