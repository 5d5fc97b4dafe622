//! The JwksRefresher actor: the only writer of the issuer's published keys.
//!
//! It fetches at start, then on the refresh interval (sooner when the JWKS response's
//! `Cache-Control: max-age` says so, but never sooner than the kid-miss cooldown), and backs
//! off exponentially with jitter after a failure, keeping the last good keys. A token naming an
//! unknown `kid` sends [`RefreshForKid`]: at most one fetch runs at a time and every miss
//! waits on it (single-flight); a fetch for a miss starts only if the cooldown has passed
//! since the last fetch of any kind, otherwise one fetch is scheduled for the end of the
//! cooldown and the miss is answered at once; a `kid` still unknown after a fetch is remembered
//! (negative cache) and answered without a fetch until one cooldown after that fetch began.
//! The negative cache lasts one cooldown, never the refresh interval: it only spares the
//! scheduling work the cooldown rule would do anyway, so a `kid` sent (even forged) before its
//! key was published cannot keep that key out for longer than one cooldown.
//!
//! A new key set is published, and the verified-token cache purged of tokens whose key left,
//! before any waiting miss is answered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseFuture,
    SpawnHandle, WrapFuture,
};
use rand::Rng;
use tokio::sync::oneshot;

use super::cache::TokenCache;
use super::fetch::{self, Discovered, FetchFailure, Fetched, Source};
use super::keys::{KeySet, PublishedKeys};
use super::stats::{FetchResult, FetchTrigger, OidcStats};

/// The most requests waiting on one fetch; later misses are answered at once.
const MAX_WAITERS: usize = 4096;
/// The most `kid`s remembered as unknown (or pending a scheduled fetch).
const MAX_NEGATIVE: usize = 10_000;
/// The first retry delay after a failure; it doubles up to the refresh interval.
const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// The refresh timing, from the settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) refresh_interval: Duration,
    pub(crate) kid_miss_cooldown: Duration,
}

/// What a [`RefreshForKid`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KidOutcome {
    /// The published keys now know the `kid`: look again.
    Known,
    /// Still unknown after a fetch, or no fetch was allowed now (cooldown, negative cache).
    Unknown,
    /// The fetch failed; the `kid` stays unknown.
    FetchFailed,
}

/// Asks for the keys of a `kid` the published set does not know.
#[derive(Message)]
#[rtype(result = "KidOutcome")]
pub(crate) struct RefreshForKid {
    pub(crate) kid: String,
}

/// Stops the actor: a configuration reload replaced it. Waiting misses are answered
/// [`KidOutcome::FetchFailed`] as the actor's channels close.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopRefresher;

/// The actor.
pub struct JwksRefresher {
    client: reqwest::Client,
    source: Source,
    timing: Timing,
    published: PublishedKeys,
    cache: TokenCache,
    stats: Arc<OidcStats>,
    discovered: Option<Discovered>,
    in_flight: bool,
    waiters: Vec<(String, oneshot::Sender<KidOutcome>)>,
    /// Kids that missed while no fetch was allowed; judged by the next fetch.
    pending: HashSet<String>,
    negative: HashMap<String, Instant>,
    last_fetch: Option<Instant>,
    failures: u32,
    /// The scheduled fetch: its handle, when it is due (`None`: beyond `Instant`'s range).
    timer: Option<(SpawnHandle, Option<Instant>)>,
}

impl JwksRefresher {
    pub(crate) fn new(
        client: reqwest::Client,
        source: Source,
        timing: Timing,
        published: PublishedKeys,
        cache: TokenCache,
        stats: Arc<OidcStats>,
    ) -> Self {
        JwksRefresher {
            client,
            source,
            timing,
            published,
            cache,
            stats,
            discovered: None,
            in_flight: false,
            waiters: Vec::new(),
            pending: HashSet::new(),
            negative: HashMap::new(),
            last_fetch: None,
            failures: 0,
            timer: None,
        }
    }

    /// How long a `kid` found unknown stays in the negative cache, from the start of the
    /// fetch that did not find it: one cooldown, after which a miss may fetch again. Longer
    /// would let one forged token keep a newly published key out.
    fn negative_ttl(&self) -> Duration {
        self.timing.kid_miss_cooldown
    }

    /// Runs `trigger`'s fetch after `delay`, replacing any scheduled fetch.
    fn schedule(&mut self, delay: Duration, trigger: FetchTrigger, ctx: &mut Context<Self>) {
        if let Some((handle, _)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(delay, move |act, ctx| {
            act.timer = None;
            act.start_fetch(trigger, ctx);
        });
        self.timer = Some((handle, Instant::now().checked_add(delay)));
        self.stats
            .set_next_fetch(SystemTime::now().checked_add(delay));
    }

    fn start_fetch(&mut self, trigger: FetchTrigger, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        if let Some((handle, _)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        self.in_flight = true;
        self.last_fetch = Some(Instant::now());
        self.stats.set_next_fetch(Some(SystemTime::now()));
        let job = fetch::fetch(
            self.client.clone(),
            self.source.clone(),
            self.discovered.clone(),
        );
        ctx.spawn(
            job.into_actor(self)
                .map(move |result, act, ctx| act.finish_fetch(trigger, result, ctx)),
        );
    }

    fn finish_fetch(
        &mut self,
        trigger: FetchTrigger,
        result: Result<Fetched, FetchFailure>,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = false;
        match result {
            Ok(fetched) => self.publish(trigger, fetched, ctx),
            Err(failure) => self.fail(trigger, failure, ctx),
        }
    }

    fn publish(&mut self, trigger: FetchTrigger, fetched: Fetched, ctx: &mut Context<Self>) {
        let Fetched {
            discovered,
            keys,
            ignored,
            max_age,
        } = fetched;
        if !ignored.is_empty() {
            tracing::warn!(
                jwks_uri = %discovered.jwks_uri,
                ignored = %KeySet::describe_ignored(&ignored),
                "some JWKS keys were ignored"
            );
        }
        let previous = self.published.load();
        let keys = Arc::new(keys);
        // Publish first, then purge: a request verified with a departed key after this point
        // is refused by the published set; the purge only frees memory.
        self.published.store(keys.clone());
        self.cache.retain(keys.uids(), super::unix_now());
        let added = keys.uids().difference(previous.uids()).count();
        let removed = previous.uids().difference(keys.uids()).count();
        self.stats.set_keys(keys.len());
        self.stats.record_fetch(trigger, FetchResult::Success);
        if added > 0 || removed > 0 || !previous.is_loaded() {
            tracing::info!(
                trigger = trigger.as_str(),
                keys = keys.len(),
                added,
                removed,
                jwks_uri = %discovered.jwks_uri,
                "issuer keys loaded"
            );
        } else {
            tracing::debug!(
                trigger = trigger.as_str(),
                keys = keys.len(),
                "issuer keys unchanged"
            );
        }
        self.discovered = Some(discovered);
        self.failures = 0;

        // Judge the kids that were waiting or pending: known now, or negatively cached from
        // the moment this fetch began (a key published during the fetch is not in it).
        let fetch_began = self.last_fetch.unwrap_or_else(Instant::now);
        let waiters = std::mem::take(&mut self.waiters);
        let pending = std::mem::take(&mut self.pending);
        for kid in pending.iter().chain(waiters.iter().map(|(kid, _)| kid)) {
            if !keys.knows_kid(kid) {
                self.remember_unknown(kid.clone(), fetch_began);
            }
        }
        self.negative.retain(|kid, _| !keys.knows_kid(kid));
        for (kid, tx) in waiters {
            let outcome = if keys.knows_kid(&kid) {
                KidOutcome::Known
            } else {
                KidOutcome::Unknown
            };
            let _ = tx.send(outcome);
        }

        let mut delay = self.timing.refresh_interval;
        if let Some(max_age) = max_age {
            delay = delay.min(max_age.max(self.timing.kid_miss_cooldown));
        }
        self.schedule(delay, FetchTrigger::Interval, ctx);
    }

    fn fail(&mut self, trigger: FetchTrigger, failure: FetchFailure, ctx: &mut Context<Self>) {
        self.stats.record_fetch(trigger, failure.result);
        self.failures = self.failures.saturating_add(1);
        let have_keys = self.published.load().is_loaded();
        tracing::warn!(
            trigger = trigger.as_str(),
            result = failure.result.as_str(),
            failures = self.failures,
            keeping_last_good_keys = have_keys,
            "issuer key fetch failed: {}",
            failure.detail
        );
        // A moved JWKS (an HTTP error) is rediscovered on the next attempt.
        if failure.result == FetchResult::HttpError && self.source.jwks_url.is_none() {
            self.discovered = None;
        }
        for (_, tx) in std::mem::take(&mut self.waiters) {
            let _ = tx.send(KidOutcome::FetchFailed);
        }
        let delay = self.backoff();
        self.schedule(delay, FetchTrigger::Retry, ctx);
    }

    /// Exponential backoff from [`BACKOFF_BASE`], capped at the refresh interval, with the
    /// delay drawn uniformly from its upper half (jitter).
    fn backoff(&self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(20);
        let ceiling = BACKOFF_BASE
            .saturating_mul(1u32 << exponent)
            .min(self.timing.refresh_interval);
        let ceiling_ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(2);
        let ms = rand::rng().random_range(ceiling_ms / 2..=ceiling_ms);
        Duration::from_millis(ms)
    }

    fn remember_unknown(&mut self, kid: String, now: Instant) {
        if self.negative.len() >= MAX_NEGATIVE {
            let ttl = self.negative_ttl();
            self.negative
                .retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if self.negative.len() >= MAX_NEGATIVE {
                self.negative.clear();
            }
        }
        self.negative.insert(kid, now);
    }

    fn is_negative(&self, kid: &str, now: Instant) -> bool {
        self.negative
            .get(kid)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.negative_ttl())
    }
}

impl Actor for JwksRefresher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(
            issuer = %self.source.issuer,
            discovery = self.source.jwks_url.is_none(),
            "JWKS refresher started"
        );
        self.start_fetch(FetchTrigger::Startup, ctx);
    }
}

impl Handler<RefreshForKid> for JwksRefresher {
    type Result = ResponseFuture<KidOutcome>;

    fn handle(&mut self, msg: RefreshForKid, ctx: &mut Self::Context) -> Self::Result {
        let ready = |outcome| -> ResponseFuture<KidOutcome> { Box::pin(async move { outcome }) };
        if self.published.load().knows_kid(&msg.kid) {
            return ready(KidOutcome::Known);
        }
        let now = Instant::now();
        if self.is_negative(&msg.kid, now) {
            self.stats.count_suppressed();
            return ready(KidOutcome::Unknown);
        }
        if !self.in_flight {
            let since_last = self.last_fetch.map(|at| now.saturating_duration_since(at));
            match since_last {
                Some(elapsed) if elapsed < self.timing.kid_miss_cooldown => {
                    // No fetch now: one at the end of the cooldown judges this kid.
                    self.stats.count_suppressed();
                    if self.pending.len() < MAX_NEGATIVE {
                        self.pending.insert(msg.kid);
                    }
                    let due = self.timing.kid_miss_cooldown - elapsed;
                    let sooner = self.timer.as_ref().is_none_or(|(_, at)| {
                        match (at, now.checked_add(due)) {
                            (Some(at), Some(due_at)) => *at > due_at,
                            _ => true,
                        }
                    });
                    if sooner {
                        self.schedule(due, FetchTrigger::KidMiss, ctx);
                    }
                    return ready(KidOutcome::Unknown);
                }
                _ => self.start_fetch(FetchTrigger::KidMiss, ctx),
            }
        } else {
            self.stats.count_suppressed();
        }
        if self.waiters.len() >= MAX_WAITERS {
            return ready(KidOutcome::Unknown);
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push((msg.kid, tx));
        Box::pin(async move { rx.await.unwrap_or(KidOutcome::FetchFailed) })
    }
}

impl Handler<StopRefresher> for JwksRefresher {
    type Result = ();

    fn handle(&mut self, _msg: StopRefresher, ctx: &mut Self::Context) {
        tracing::info!(issuer = %self.source.issuer, "JWKS refresher stopped (replaced)");
        ctx.stop();
    }
}
