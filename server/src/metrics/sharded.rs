//! The request path's four families (`portcullis_auth_requests_total`,
//! `portcullis_auth_duration_seconds`, `portcullis_http_requests_total`,
//! `portcullis_http_request_duration_seconds`), counted per thread and summed at each scrape.
//!
//! Every request adds to two counters and two histograms. Through the prometheus crate's
//! series that is ten locked read-modify-write instructions a request (a histogram's
//! observation takes four), and with several workers every one of them moves the same cache
//! lines between cores. Here each thread that observes gets a [`Shard`] of its own: a plain
//! load and store per cell, which only that thread writes. A scrape sums the shards, including
//! those of threads that have ended, so no count ever goes down. A histogram's count is the
//! sum of its buckets, so a scrape never shows the two apart; its sum may miss an observation
//! being written at that instant, as the count may.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Histogram, Metric, MetricFamily, MetricType};
use prometheus::IntCounterVec;

use super::scraped::ScrapedFamily;

/// Adds `by` to a cell only its own thread writes: no locked instruction.
fn add(cell: &AtomicU64, by: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Release,
    );
}

/// One histogram's cells in a shard: a count per bucket (the last above every bound) and the
/// sum's bits.
struct Cells<const SLOTS: usize> {
    buckets: [AtomicU64; SLOTS],
    sum: AtomicU64,
}

impl<const SLOTS: usize> Cells<SLOTS> {
    fn new() -> Self {
        Cells {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[f64], value: f64) {
        let slot = bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(bounds.len());
        add(&self.buckets[slot], 1);
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed)) + value;
        self.sum.store(sum.to_bits(), Ordering::Release);
    }
}

/// Bucket slots of the two histograms: their bounds and one above them.
const AUTH_SLOTS: usize = super::AUTH_BUCKETS.len() + 1;
const HTTP_SLOTS: usize = super::HTTP_BUCKETS.len() + 1;

/// One thread's counts, at the dense indices [`super::Metrics`] computes from closed label
/// sets.
struct Shard {
    auth_requests: Box<[AtomicU64]>,
    auth_duration: Box<[Cells<AUTH_SLOTS>]>,
    http_requests: Box<[AtomicU64]>,
    http_duration: Box<[Cells<HTTP_SLOTS>]>,
}

/// How many series each family has slots for (from its [`Spec`]).
#[derive(Clone, Copy)]
struct Layout {
    auth_requests: usize,
    auth_duration: usize,
    http_requests: usize,
    http_duration: usize,
}

impl Shard {
    fn new(layout: Layout) -> Self {
        let counters = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
        Shard {
            auth_requests: counters(layout.auth_requests),
            auth_duration: (0..layout.auth_duration).map(|_| Cells::new()).collect(),
            http_requests: counters(layout.http_requests),
            http_duration: (0..layout.http_duration).map(|_| Cells::new()).collect(),
        }
    }
}

/// The label values of a slot, in the order of the family's label names.
pub(super) type SlotLabels = fn(usize) -> Vec<&'static str>;

/// The four families, their shards, and the HTTP requests whose status has no slot.
pub(super) struct RequestMetrics {
    /// Tells this instance's shards apart in a thread's list (tests run many servers).
    id: u64,
    layout: Layout,
    shards: Arc<ShardList>,
    /// HTTP requests with a status outside the cached set, looked up by label.
    uncached: IntCounterVec,
    auth_requests: Family,
    auth_duration: Family,
    http_requests: Family,
    http_duration: Family,
}

/// A family's description and how its slots map to label values.
struct Family {
    scraped: ScrapedFamily,
    labels: SlotLabels,
}

impl Family {
    fn new(spec: Spec, kind: MetricType) -> Result<Self, prometheus::Error> {
        Ok(Family {
            scraped: ScrapedFamily::new(spec.name, spec.help, spec.labels, kind)?,
            labels: spec.values,
        })
    }

    /// A sample labelled for `slot`.
    fn metric(&self, slot: usize) -> Metric {
        self.scraped.labelled(&(self.labels)(slot))
    }
}

/// A family's name, help text, label names, how many slots it has, and the label values of
/// each slot.
pub(super) struct Spec {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    pub slots: usize,
    pub values: SlotLabels,
}

/// The four families' [`Spec`]s.
pub(super) struct Specs {
    pub auth_requests: Spec,
    pub auth_duration: Spec,
    pub http_requests: Spec,
    pub http_duration: Spec,
}

/// Every shard of one [`RequestMetrics`], its threads' ended or not.
type ShardList = Mutex<Vec<Arc<Shard>>>;

/// A thread's shard of one [`RequestMetrics`]: the instance's id, a handle that tells whether
/// it still exists, and the shard.
type LocalShard = (u64, Weak<ShardList>, Arc<Shard>);

thread_local! {
    /// This thread's shard of each live [`RequestMetrics`].
    static LOCAL: RefCell<Vec<LocalShard>> = const { RefCell::new(Vec::new()) };
}

impl RequestMetrics {
    pub(super) fn new(specs: Specs) -> Result<Self, prometheus::Error> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let layout = Layout {
            auth_requests: specs.auth_requests.slots,
            auth_duration: specs.auth_duration.slots,
            http_requests: specs.http_requests.slots,
            http_duration: specs.http_duration.slots,
        };
        let uncached = IntCounterVec::new(
            prometheus::Opts::new(specs.http_requests.name, specs.http_requests.help),
            specs.http_requests.labels,
        )?;
        Ok(RequestMetrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            layout,
            shards: Arc::default(),
            uncached,
            auth_requests: Family::new(specs.auth_requests, MetricType::COUNTER)?,
            auth_duration: Family::new(specs.auth_duration, MetricType::HISTOGRAM)?,
            http_requests: Family::new(specs.http_requests, MetricType::COUNTER)?,
            http_duration: Family::new(specs.http_duration, MetricType::HISTOGRAM)?,
        })
    }

    /// Runs `f` on this thread's shard, creating it on the thread's first observation.
    fn with_shard(&self, f: impl FnOnce(&Shard)) {
        LOCAL.with(|local| {
            if let Some((_, _, shard)) = local.borrow().iter().find(|(id, ..)| *id == self.id) {
                return f(shard);
            }
            let shard = Arc::new(Shard::new(self.layout));
            self.shards
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Arc::clone(&shard));
            let mut local = local.borrow_mut();
            // Shards of instances that are gone (a test's server) are dropped here.
            local.retain(|(_, owner, _)| owner.strong_count() > 0);
            local.push((self.id, Arc::downgrade(&self.shards), Arc::clone(&shard)));
            drop(local);
            f(&shard);
        });
    }

    /// Counts one authentication outcome at `slot` and its duration at `method_slot`.
    pub(super) fn observe_auth(&self, slot: usize, method_slot: usize, seconds: f64) {
        self.with_shard(|shard| {
            add(&shard.auth_requests[slot], 1);
            shard.auth_duration[method_slot].observe(&super::AUTH_BUCKETS, seconds);
        });
    }

    /// Counts one HTTP request at `slot` (`None`: a status without a slot, counted under
    /// `uncached`'s labels) and its duration at `route_method`.
    pub(super) fn observe_http<'a>(
        &self,
        slot: Option<usize>,
        uncached: impl FnOnce() -> [&'a str; 3],
        route_method: usize,
        seconds: f64,
    ) {
        if slot.is_none() {
            self.uncached.with_label_values(&uncached()).inc();
        }
        self.with_shard(|shard| {
            if let Some(slot) = slot {
                add(&shard.http_requests[slot], 1);
            }
            shard.http_duration[route_method].observe(&super::HTTP_BUCKETS, seconds);
        });
    }

    /// `family`'s counters: each slot's sum over `shards`, for the slots counted at all.
    fn counters(
        shards: &[Arc<Shard>],
        family: &Family,
        cells: impl Fn(&Shard) -> &[AtomicU64],
        len: usize,
    ) -> Vec<Metric> {
        (0..len)
            .filter_map(|slot| {
                let total: u64 = shards
                    .iter()
                    .map(|s| cells(s)[slot].load(Ordering::Acquire))
                    .sum();
                (total > 0).then(|| {
                    let mut metric = family.metric(slot);
                    let mut counter = Counter::default();
                    counter.set_value(total as f64);
                    metric.set_counter(counter);
                    metric
                })
            })
            .collect()
    }

    /// `family`'s histograms: each slot's buckets and sum over `shards`, for the slots
    /// observed at all.
    fn histograms<const SLOTS: usize>(
        shards: &[Arc<Shard>],
        family: &Family,
        bounds: &[f64],
        cells: impl Fn(&Shard) -> &[Cells<SLOTS>],
        len: usize,
    ) -> Vec<Metric> {
        (0..len)
            .filter_map(|slot| {
                let mut counts = [0u64; SLOTS];
                let mut sum = 0.0;
                for shard in shards {
                    let cells = &cells(shard)[slot];
                    for (count, bucket) in counts.iter_mut().zip(&cells.buckets) {
                        *count += bucket.load(Ordering::Acquire);
                    }
                    sum += f64::from_bits(cells.sum.load(Ordering::Acquire));
                }
                let total: u64 = counts.iter().sum();
                (total > 0).then(|| {
                    let mut cumulative = 0;
                    let buckets = bounds
                        .iter()
                        .zip(counts)
                        .map(|(bound, count)| {
                            cumulative += count;
                            let mut bucket = Bucket::default();
                            bucket.set_upper_bound(*bound);
                            bucket.set_cumulative_count(cumulative);
                            bucket
                        })
                        .collect();
                    let mut histogram = Histogram::default();
                    histogram.set_bucket(buckets);
                    histogram.set_sample_count(total);
                    histogram.set_sample_sum(sum);
                    let mut metric = family.metric(slot);
                    metric.set_histogram(histogram);
                    metric
                })
            })
            .collect()
    }

    fn snapshot(&self) -> Vec<Arc<Shard>> {
        self.shards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Collector for RequestMetrics {
    fn desc(&self) -> Vec<&Desc> {
        vec![
            &self.auth_requests.scraped.desc,
            &self.auth_duration.scraped.desc,
            &self.http_requests.scraped.desc,
            &self.http_duration.scraped.desc,
        ]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // One snapshot for the four families.
        let shards = self.snapshot();
        let layout = self.layout;
        let mut http_requests = Self::counters(
            &shards,
            &self.http_requests,
            |s| &s.http_requests,
            layout.http_requests,
        );
        for family in self.uncached.collect() {
            http_requests.extend(family.get_metric().iter().cloned());
        }
        vec![
            self.auth_requests.scraped.family(Self::counters(
                &shards,
                &self.auth_requests,
                |s| &s.auth_requests,
                layout.auth_requests,
            )),
            self.auth_duration.scraped.family(Self::histograms(
                &shards,
                &self.auth_duration,
                &super::AUTH_BUCKETS,
                |s| &s.auth_duration,
                layout.auth_duration,
            )),
            self.http_requests.scraped.family(http_requests),
            self.http_duration.scraped.family(Self::histograms(
                &shards,
                &self.http_duration,
                &super::HTTP_BUCKETS,
                |s| &s.http_duration,
                layout.http_duration,
            )),
        ]
    }
}

/// The registry's handle on the shared [`RequestMetrics`].
pub(super) struct Registered(pub Arc<RequestMetrics>);

impl Collector for Registered {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}
