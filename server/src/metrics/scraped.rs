//! Metrics the auth crate counts in plain atomics (it knows no metrics library), read at each
//! scrape: [`OidcCollector`] over `OidcStats`, [`DbUsersCollector`] over the KeyRegistry's
//! `UserCounts`; [`ThrottleCollector`] over the failure throttle's table; and [`LogCollector`] over the log output's count of dropped lines. Each scrape builds the families from the current values, so there are no
//! shadow counters to keep in step.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use portcullis_auth::oidc::{FetchResult, FetchTrigger, OidcStats};
use portcullis_auth::throttle::FailureThrottle;
use portcullis_auth::KeyRegistryHandle;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use super::labels::UserState;

/// The description of a family whose samples are built at each scrape (here, and by
/// [`super::sharded`]).
pub(super) struct ScrapedFamily {
    pub(super) desc: Desc,
    kind: MetricType,
}

impl ScrapedFamily {
    pub(super) fn new(
        name: &str,
        help: &str,
        labels: &[&str],
        kind: MetricType,
    ) -> Result<Self, prometheus::Error> {
        let labels = labels.iter().map(|l| (*l).to_owned()).collect();
        let desc = Desc::new(name.to_owned(), help.to_owned(), labels, HashMap::new())?;
        Ok(ScrapedFamily { desc, kind })
    }

    /// A sample with these label values (in the order of the label names given to
    /// [`ScrapedFamily::new`]) and no value yet.
    pub(super) fn labelled(&self, values: &[&str]) -> Metric {
        let mut labels: Vec<LabelPair> = self
            .desc
            .variable_labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name(name.clone());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect();
        // The text format lists labels by name, as the prometheus vectors do.
        labels.sort_by(|a, b| a.name().cmp(b.name()));
        Metric::from_label(labels)
    }

    /// The family of these samples.
    pub(super) fn family(&self, metrics: Vec<Metric>) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(self.kind);
        family.set_metric(metrics);
        family
    }

    /// A family with one sample per `(label values, value)`, the values in the order of the
    /// label names given to [`ScrapedFamily::new`].
    fn collect<'a>(&self, samples: impl IntoIterator<Item = (&'a [&'a str], f64)>) -> MetricFamily {
        let metrics = samples
            .into_iter()
            .map(|(values, value)| {
                let mut metric = self.labelled(values);
                match self.kind {
                    MetricType::GAUGE => {
                        let mut gauge = Gauge::default();
                        gauge.set_value(value);
                        metric.set_gauge(gauge);
                    }
                    _ => {
                        let mut counter = Counter::default();
                        counter.set_value(value);
                        metric.set_counter(counter);
                    }
                }
                metric
            })
            .collect();
        self.family(metrics)
    }

    /// A histogram family of one unlabelled sample, from `histogram`'s atomics (its buckets
    /// made cumulative here).
    fn histogram(&self, histogram: &portcullis_auth::api_key::TimeHistogram) -> MetricFamily {
        use portcullis_auth::api_key::TimeHistogram;
        let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        let mut cumulative = 0;
        let buckets = TimeHistogram::BOUNDS
            .iter()
            .zip(&histogram.buckets)
            .map(|(bound, n)| {
                cumulative += load(n);
                let mut bucket = prometheus::proto::Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        let mut sample = prometheus::proto::Histogram::default();
        sample.set_bucket(buckets);
        // The count includes the +Inf slot.
        sample.set_sample_count(load(&histogram.count));
        sample.set_sample_sum(load(&histogram.sum_micros) as f64 / 1e6);
        let mut metric = Metric::default();
        metric.set_histogram(sample);
        self.family(vec![metric])
    }

    /// A family of one unlabelled sample.
    fn single(&self, value: f64) -> MetricFamily {
        self.collect([(&[][..], value)])
    }
}

/// Exports the OpenID Connect machinery's counters and gauges, read from [`OidcStats`] at
/// each scrape. Labels come from the closed `trigger` and `result` sets; never an issuer, a
/// `kid` or a token.
pub struct OidcCollector {
    stats: Arc<OidcStats>,
    fetches: ScrapedFamily,
    keys: ScrapedFamily,
    last_success: ScrapedFamily,
    stale: ScrapedFamily,
    refetch_suppressed: ScrapedFamily,
    cache_hits: ScrapedFamily,
    cache_misses: ScrapedFamily,
}

impl OidcCollector {
    /// A collector over `stats`; every `trigger` x `result` series is present from the start.
    pub fn new(stats: Arc<OidcStats>) -> Result<Self, prometheus::Error> {
        use MetricType::{COUNTER, GAUGE};
        Ok(OidcCollector {
            stats,
            fetches: ScrapedFamily::new(
                "portcullis_jwks_fetch_total",
                "Issuer key fetches (discovery when needed, then the JWKS), by trigger and result.",
                &["trigger", "result"],
                COUNTER,
            )?,
            keys: ScrapedFamily::new(
                "portcullis_jwks_keys",
                "Usable signing keys in the published key set.",
                &[],
                GAUGE,
            )?,
            last_success: ScrapedFamily::new(
                "portcullis_jwks_last_success_timestamp_seconds",
                "Unix time of the last successful key fetch (0 before the first).",
                &[],
                GAUGE,
            )?,
            stale: ScrapedFamily::new(
                "portcullis_jwks_stale",
                "1 when the keys may be out of date: none loaded yet, the last fetch failed, or older than the refresh interval.",
                &[],
                GAUGE,
            )?,
            refetch_suppressed: ScrapedFamily::new(
                "portcullis_jwks_refetch_suppressed_total",
                "Refetches asked for by unknown kids that started no fetch (cooldown, negative cache, or one already running).",
                &[],
                COUNTER,
            )?,
            cache_hits: ScrapedFamily::new(
                "portcullis_token_cache_hits_total",
                "OIDC tokens answered from the verified-token cache.",
                &[],
                COUNTER,
            )?,
            cache_misses: ScrapedFamily::new(
                "portcullis_token_cache_misses_total",
                "OIDC tokens that had to be verified.",
                &[],
                COUNTER,
            )?,
        })
    }
}

impl Collector for OidcCollector {
    fn desc(&self) -> Vec<&Desc> {
        [
            &self.fetches,
            &self.keys,
            &self.last_success,
            &self.stale,
            &self.refetch_suppressed,
            &self.cache_hits,
            &self.cache_misses,
        ]
        .into_iter()
        .map(|family| &family.desc)
        .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = &self.stats;
        let fetches: Vec<([&str; 2], f64)> = FetchTrigger::ALL
            .into_iter()
            .flat_map(|trigger| {
                FetchResult::ALL.into_iter().map(move |result| {
                    (
                        [trigger.as_str(), result.as_str()],
                        stats.fetches(trigger, result) as f64,
                    )
                })
            })
            .collect();
        vec![
            self.fetches
                .collect(fetches.iter().map(|(labels, value)| (&labels[..], *value))),
            self.keys
                .single(i64::try_from(stats.keys()).unwrap_or(i64::MAX) as f64),
            self.last_success
                .single(stats.last_success_timestamp().unwrap_or(0.0)),
            self.stale.single(f64::from(u8::from(stats.stale()))),
            self.refetch_suppressed
                .single(stats.refetch_suppressed() as f64),
            self.cache_hits.single(stats.cache_hits() as f64),
            self.cache_misses.single(stats.cache_misses() as f64),
        ]
    }
}

/// Exports `portcullis_db_users`, read from the KeyRegistry's counts at each scrape.
pub struct DbUsersCollector {
    keys: KeyRegistryHandle,
    db_users: ScrapedFamily,
}

impl DbUsersCollector {
    /// A collector over the counts `keys` publishes.
    pub fn new(keys: KeyRegistryHandle) -> Result<Self, prometheus::Error> {
        Ok(DbUsersCollector {
            keys,
            db_users: ScrapedFamily::new(
                "portcullis_db_users",
                "Database users by state.",
                &["state"],
                MetricType::GAUGE,
            )?,
        })
    }
}

impl Collector for DbUsersCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.db_users.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let counts = self.keys.counts();
        let count = |state| match state {
            UserState::Active => counts.active.load(Ordering::Relaxed),
            UserState::Inactive => counts.inactive.load(Ordering::Relaxed),
        };
        let labels = UserState::ALL.map(|state| [state.as_str()]);
        vec![self.db_users.collect(
            UserState::ALL
                .iter()
                .zip(&labels)
                .map(|(&state, label)| (&label[..], count(state) as f64)),
        )]
    }
}

/// Exports `portcullis_log_lines_dropped_total`, read at each scrape from the log output
/// (`crate::logging`), which counts in an atomic so that logging never touches a metric.
pub struct LogCollector {
    read: fn() -> u64,
    dropped: ScrapedFamily,
}

impl LogCollector {
    /// A collector over the count `read` returns.
    pub fn new(read: fn() -> u64) -> Result<Self, prometheus::Error> {
        Ok(LogCollector {
            read,
            dropped: ScrapedFamily::new(
                "portcullis_log_lines_dropped_total",
                "Log lines dropped because the log output did not keep up (its queue was full) or refused them.",
                &[],
                MetricType::COUNTER,
            )?,
        })
    }
}

impl Collector for LogCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.dropped.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        vec![self.dropped.single((self.read)() as f64)]
    }
}

/// Exports the failure throttle's table, read at each scrape: the clients in debt
/// (`portcullis_auth_throttle_clients`, a scan of the table), its fixed capacity, and the
/// clients evicted while still in debt.
pub struct ThrottleCollector {
    throttle: Arc<FailureThrottle>,
    clients: ScrapedFamily,
    capacity: ScrapedFamily,
    evictions: ScrapedFamily,
}

impl ThrottleCollector {
    /// A collector over `throttle`.
    pub fn new(throttle: Arc<FailureThrottle>) -> Result<Self, prometheus::Error> {
        use MetricType::{COUNTER, GAUGE};
        Ok(ThrottleCollector {
            throttle,
            clients: ScrapedFamily::new(
                "portcullis_auth_throttle_clients",
                "Client addresses with failed credential checks not yet forgiven (entries in use in the throttle's table).",
                &[],
                GAUGE,
            )?,
            capacity: ScrapedFamily::new(
                "portcullis_auth_throttle_capacity",
                "The most client addresses the throttle's table holds (fixed at start).",
                &[],
                GAUGE,
            )?,
            evictions: ScrapedFamily::new(
                "portcullis_auth_throttle_evictions_total",
                "Client addresses forgotten while still in debt, because their part of the table was full.",
                &[],
                COUNTER,
            )?,
        })
    }
}

impl Collector for ThrottleCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![
            &self.clients.desc,
            &self.capacity.desc,
            &self.evictions.desc,
        ]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let throttle = &self.throttle;
        vec![
            self.clients
                .single(throttle.entries(std::time::Instant::now()) as f64),
            self.capacity.single(throttle.capacity() as f64),
            self.evictions.single(throttle.evictions() as f64),
        ]
    }
}

/// Exports the replicas' sync with the shared user store (`docs/replicas.md`), read at each
/// scrape from the KeyRegistry's `SyncStats` and lease. Registered only with
/// `PORTCULLIS_USER_STORE_URL`. Labels come from the closed `result`, `reason` and `via` sets.
pub struct UserSyncCollector {
    keys: KeyRegistryHandle,
    staleness: ScrapedFamily,
    bound: ScrapedFamily,
    fenced: ScrapedFamily,
    applied_seq: ScrapedFamily,
    polls: ScrapedFamily,
    full_reloads: ScrapedFamily,
    applied: ScrapedFamily,
    listener_up: ScrapedFamily,
    reconnects: ScrapedFamily,
    propagation: ScrapedFamily,
    ack_wait: ScrapedFamily,
    ack_timeouts: ScrapedFamily,
    pruned: ScrapedFamily,
    live_replicas: ScrapedFamily,
}

impl UserSyncCollector {
    /// A collector over what `keys` publishes of its sync.
    pub fn new(keys: KeyRegistryHandle) -> Result<Self, prometheus::Error> {
        let gauge = |name, help| ScrapedFamily::new(name, help, &[], MetricType::GAUGE);
        let histogram = |name, help| ScrapedFamily::new(name, help, &[], MetricType::HISTOGRAM);
        let counter = |name, help, labels: &[&str]| {
            ScrapedFamily::new(name, help, labels, MetricType::COUNTER)
        };
        Ok(UserSyncCollector {
            keys,
            staleness: gauge(
                "portcullis_user_sync_staleness_seconds",
                "Age of this replica's view of the user store (from the start of the last good read).",
            )?,
            bound: gauge(
                "portcullis_user_sync_bound_seconds",
                "PORTCULLIS_KEY_REVOCATION_BOUND: database keys are refused once the view is this old.",
            )?,
            fenced: gauge(
                "portcullis_user_sync_fenced",
                "1 while database keys are refused (503 store_unavailable): the view is older than the bound.",
            )?,
            applied_seq: gauge(
                "portcullis_user_sync_applied_seq",
                "The last change of the user store's log applied here.",
            )?,
            polls: counter(
                "portcullis_user_sync_polls_total",
                "Reads of the user store's change log, by result.",
                &["result"],
            )?,
            full_reloads: counter(
                "portcullis_user_sync_full_reloads_total",
                "Reads that reloaded every user, by reason.",
                &["reason"],
            )?,
            applied: counter(
                "portcullis_user_sync_changes_applied_total",
                "Changes applied, by the path that brought them (notify, poll, write).",
                &["via"],
            )?,
            listener_up: gauge(
                "portcullis_user_sync_listener_up",
                "1 while the LISTEN connection to the user store is up.",
            )?,
            reconnects: counter(
                "portcullis_user_sync_listener_reconnects_total",
                "Times the LISTEN connection was lost and made again.",
                &[],
            )?,
            propagation: histogram(
                "portcullis_user_sync_propagation_seconds",
                "Time from a change's commit to its read by this replica (the database's clock).",
            )?,
            ack_wait: histogram(
                "portcullis_user_sync_ack_wait_seconds",
                "Time a change made here waited for every replica with a live lease to apply it.",
            )?,
            ack_timeouts: counter(
                "portcullis_user_sync_ack_timeouts_total",
                "Waits that reached the bound with a replica still behind (it is fenced by then).",
                &[],
            )?,
            pruned: counter(
                "portcullis_user_sync_log_pruned_total",
                "Entries this replica removed from the change log (applied by every live replica and older than PORTCULLIS_CHANGE_LOG_RETENTION).",
                &[],
            )?,
            live_replicas: gauge(
                "portcullis_user_sync_live_replicas",
                "Replicas holding a live lease on the user store (this one included), as counted at this replica's last report; a change made here waits for each of them.",
            )?,
        })
    }
}

impl Collector for UserSyncCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![
            &self.staleness.desc,
            &self.bound.desc,
            &self.fenced.desc,
            &self.applied_seq.desc,
            &self.polls.desc,
            &self.full_reloads.desc,
            &self.applied.desc,
            &self.listener_up.desc,
            &self.reconnects.desc,
            &self.propagation.desc,
            &self.ack_wait.desc,
            &self.ack_timeouts.desc,
            &self.pruned.desc,
            &self.live_replicas.desc,
        ]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use portcullis_auth::api_key::{FullReason, Via};
        let (Some(stats), Some(lease)) = (self.keys.sync_stats(), self.keys.lease()) else {
            return Vec::new();
        };
        let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed) as f64;
        let results = [["ok"], ["error"]];
        let reasons = FullReason::ALL.map(|r| [r.as_str()]);
        let vias = Via::ALL.map(|v| [v.as_str()]);
        vec![
            self.staleness.single(lease.staleness().as_secs_f64()),
            self.bound.single(lease.bound().as_secs_f64()),
            self.fenced.single(if lease.valid() { 0.0 } else { 1.0 }),
            self.applied_seq
                .single(stats.applied_seq.load(Ordering::Relaxed) as f64),
            self.polls.collect([
                (&results[0][..], load(&stats.reads_ok)),
                (&results[1][..], load(&stats.reads_failed)),
            ]),
            self.full_reloads.collect(
                reasons
                    .iter()
                    .zip(&stats.full_reloads)
                    .map(|(label, n)| (&label[..], load(n))),
            ),
            self.applied.collect(
                vias.iter()
                    .zip(&stats.applied)
                    .map(|(label, n)| (&label[..], load(n))),
            ),
            self.listener_up
                .single(stats.listener_up.load(Ordering::Relaxed) as f64),
            self.reconnects.single(load(&stats.listener_reconnects)),
            self.propagation.histogram(&stats.propagation),
            self.ack_wait.histogram(&stats.ack_wait),
            self.ack_timeouts.single(load(&stats.ack_timeouts)),
            self.pruned.single(load(&stats.pruned)),
            self.live_replicas
                .single(stats.live_replicas.load(Ordering::Relaxed) as f64),
        ]
    }
}
