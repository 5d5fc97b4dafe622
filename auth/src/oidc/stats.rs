//! What the OIDC machinery counts, as plain atomics: the server exports them as Prometheus
//! metrics (this crate knows no metrics library). Label values come only from the closed
//! enums here, never from an issuer, a `kid` or a token.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a key fetch ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchTrigger {
    /// The first fetch after start.
    Startup,
    /// The periodic refresh.
    Interval,
    /// A token named a key id the published keys do not hold.
    KidMiss,
    /// A retry after a failed fetch.
    Retry,
}

impl FetchTrigger {
    /// Every trigger, in label order.
    pub const ALL: [FetchTrigger; 4] = [
        FetchTrigger::Startup,
        FetchTrigger::Interval,
        FetchTrigger::KidMiss,
        FetchTrigger::Retry,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchTrigger::Startup => "startup",
            FetchTrigger::Interval => "interval",
            FetchTrigger::KidMiss => "kid_miss",
            FetchTrigger::Retry => "retry",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a key fetch (discovery when needed, then the JWKS) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchResult {
    /// Keys were loaded and published.
    Success,
    /// The issuer did not answer within the fetch timeout.
    Timeout,
    /// Connection, TLS or protocol failure.
    NetworkError,
    /// A status other than 2xx (including a refused redirect).
    HttpError,
    /// The response exceeded 1 MiB.
    TooLarge,
    /// The response was not a valid discovery document or JWKS, or had no usable key.
    Invalid,
}

impl FetchResult {
    /// Every result, in label order.
    pub const ALL: [FetchResult; 6] = [
        FetchResult::Success,
        FetchResult::Timeout,
        FetchResult::NetworkError,
        FetchResult::HttpError,
        FetchResult::TooLarge,
        FetchResult::Invalid,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchResult::Success => "success",
            FetchResult::Timeout => "timeout",
            FetchResult::NetworkError => "network_error",
            FetchResult::HttpError => "http_error",
            FetchResult::TooLarge => "too_large",
            FetchResult::Invalid => "invalid",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const FETCH_SLOTS: usize = FetchTrigger::ALL.len() * FetchResult::ALL.len();

/// Counters and gauges shared by the JwksRefresher (writer) and the server (reader).
#[derive(Debug)]
pub struct OidcStats {
    fetches: [AtomicU64; FETCH_SLOTS],
    keys: AtomicU64,
    /// Milliseconds since the epoch of the last successful fetch; 0 before the first.
    last_success_millis: AtomicU64,
    /// Milliseconds since the epoch of the next scheduled fetch; 0 when none is scheduled.
    next_fetch_millis: AtomicU64,
    last_fetch_failed: AtomicBool,
    refetch_suppressed: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Keys older than this are stale (the refresh interval plus the fetch timeout).
    stale_after: Duration,
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl OidcStats {
    /// Stats whose keys count as stale once older than `stale_after`.
    pub fn new(stale_after: Duration) -> Self {
        OidcStats {
            fetches: std::array::from_fn(|_| AtomicU64::new(0)),
            keys: AtomicU64::new(0),
            last_success_millis: AtomicU64::new(0),
            next_fetch_millis: AtomicU64::new(0),
            last_fetch_failed: AtomicBool::new(false),
            refetch_suppressed: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            stale_after,
        }
    }

    /// Fetches that ran for `trigger` and ended with `result`.
    pub fn fetches(&self, trigger: FetchTrigger, result: FetchResult) -> u64 {
        self.fetches[trigger.index() * FetchResult::ALL.len() + result.index()]
            .load(Ordering::Relaxed)
    }

    /// The number of usable keys published.
    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::Relaxed)
    }

    /// Seconds since the epoch of the last successful fetch, if any.
    pub fn last_success_timestamp(&self) -> Option<f64> {
        match self.last_success_millis.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(millis as f64 / 1000.0),
        }
    }

    /// Whether the published keys may be out of date: nothing has loaded, the last fetch
    /// failed, or the keys are older than the refresh interval (plus the fetch timeout).
    pub fn stale(&self) -> bool {
        let last = self.last_success_millis.load(Ordering::Relaxed);
        if last == 0 || self.last_fetch_failed.load(Ordering::Relaxed) {
            return true;
        }
        let age = unix_millis(SystemTime::now()).saturating_sub(last);
        u128::from(age) > self.stale_after.as_millis()
    }

    /// Seconds until the next scheduled fetch, at least 1 (for `Retry-After`).
    pub fn seconds_to_next_fetch(&self) -> u64 {
        let next = self.next_fetch_millis.load(Ordering::Relaxed);
        let now = unix_millis(SystemTime::now());
        next.saturating_sub(now).div_ceil(1000).max(1)
    }

    /// Kid-miss refetch requests that did not start a fetch (cooldown, negative cache, or a
    /// fetch already in flight).
    pub fn refetch_suppressed(&self) -> u64 {
        self.refetch_suppressed.load(Ordering::Relaxed)
    }

    /// Tokens answered from the verified-token cache.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Tokens that had to be verified.
    pub fn cache_misses(&self) -> u64 {
        self.cache_misses.load(Ordering::Relaxed)
    }

    pub(crate) fn record_fetch(&self, trigger: FetchTrigger, result: FetchResult) {
        self.fetches[trigger.index() * FetchResult::ALL.len() + result.index()]
            .fetch_add(1, Ordering::Relaxed);
        if result == FetchResult::Success {
            self.last_success_millis
                .store(unix_millis(SystemTime::now()).max(1), Ordering::Relaxed);
        }
        self.last_fetch_failed
            .store(result != FetchResult::Success, Ordering::Relaxed);
    }

    pub(crate) fn set_keys(&self, n: usize) {
        self.keys
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn set_next_fetch(&self, at: Option<SystemTime>) {
        self.next_fetch_millis
            .store(at.map_or(0, unix_millis), Ordering::Relaxed);
    }

    pub(crate) fn count_suppressed(&self) {
        self.refetch_suppressed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self) {
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_in_index_order() {
        for (i, t) in FetchTrigger::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
        for (i, r) in FetchResult::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn stale_until_loaded_and_after_a_failure() {
        let stats = OidcStats::new(Duration::from_secs(60));
        assert!(stats.stale());
        stats.record_fetch(FetchTrigger::Startup, FetchResult::Success);
        assert!(!stats.stale());
        assert!(stats.last_success_timestamp().is_some());
        stats.record_fetch(FetchTrigger::Interval, FetchResult::Timeout);
        assert!(stats.stale());
        assert_eq!(
            stats.fetches(FetchTrigger::Interval, FetchResult::Timeout),
            1
        );
        assert_eq!(
            stats.fetches(FetchTrigger::Startup, FetchResult::Success),
            1
        );
    }

    #[test]
    fn stale_when_older_than_the_interval() {
        let stats = OidcStats::new(Duration::ZERO);
        stats.record_fetch(FetchTrigger::Startup, FetchResult::Success);
        std::thread::sleep(Duration::from_millis(5));
        assert!(stats.stale());
    }
}
