//! Replicas: how the KeyRegistry keeps its users in step with the shared store
//! (`shared.rs`, `docs/replicas.md`).
//!
//! The actor stays the only writer of its table and of the published answers. It reads the
//! store's change log from its position ([`SharedUserStore::read`]) when a notification
//! arrives (the listener task), when the listener reconnected (notifications may have been
//! lost), every quarter of the bound (polling), and after each of its own writes, before it
//! replies. At most one read is in flight; a trigger during one asks for another after it.
//! Every successful read renews the [`Lease`] from the moment it started; database keys are
//! answered only while the lease holds, so a change committed anywhere is applied here, or
//! database keys are refused, at most the bound after its commit, whatever is lost or down.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::postgres::PgListener;

use super::registry::{detached, KeyRegistry};
use super::shared::{FullReason, Lease, Position, Read, SharedUserStore, Snapshot, UserState};
use super::table::{self, TableLoader, UserRow};
use crate::digest::KeyDigest;

/// How a change reached this replica (the metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A read a notification asked for.
    Notify,
    /// A periodic read, or one after the listener reconnected.
    Poll,
    /// The read after this replica's own write.
    Write,
}

impl Via {
    /// Every path, in label order.
    pub const ALL: [Via; 3] = [Via::Notify, Via::Poll, Via::Write];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Notify => "notify",
            Via::Poll => "poll",
            Via::Write => "write",
        }
    }
}

/// What the sync has done, for the metrics endpoint. Written by the actor and the listener.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Reads that succeeded.
    pub reads_ok: AtomicU64,
    /// Reads that failed or timed out.
    pub reads_failed: AtomicU64,
    /// Full reloads, by [`FullReason`] (in `FullReason::ALL` order).
    pub full_reloads: [AtomicU64; 6],
    /// Changes applied, by [`Via`] (in `Via::ALL` order).
    pub applied: [AtomicU64; 3],
    /// 1 while the listener is connected and listening.
    pub listener_up: AtomicI64,
    /// Times the listener's connection was lost and made again.
    pub listener_reconnects: AtomicU64,
    /// The last applied change number.
    pub applied_seq: AtomicI64,
    /// Commit-to-read times of applied changes (the database's clock).
    pub propagation: TimeHistogram,
    /// Time changes waited for acknowledgements.
    pub ack_wait: TimeHistogram,
    /// Waits that reached the bound with a replica still behind.
    pub ack_timeouts: AtomicU64,
    /// Entries removed from the change log by this replica's pruning.
    pub pruned: AtomicU64,
    /// Replicas holding a live lease (this one included), as counted at this replica's last
    /// report to the store (0 before the first).
    pub live_replicas: AtomicI64,
}

/// A histogram of durations in plain atomics (the auth crate knows no metrics library): a
/// count per bucket of [`TimeHistogram::BOUNDS`] (not cumulative), the sum and the count.
#[derive(Debug, Default)]
pub struct TimeHistogram {
    /// Observations up to each bound (and above the last one, in the last slot).
    pub buckets: [AtomicU64; 14],
    /// Sum of the observations, in microseconds.
    pub sum_micros: AtomicU64,
    /// How many observations.
    pub count: AtomicU64,
}

impl TimeHistogram {
    /// The buckets' upper bounds, in seconds (the last slot is +Inf).
    pub const BOUNDS: [f64; 13] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = Self::BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(Self::BOUNDS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reloads the roles from the store (the server's RoleRegistry); calls are serialised by it.
pub type RolesReload = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// The shared store's side of the KeyRegistry.
pub(super) struct SyncState {
    pub(super) store: SharedUserStore,
    pub(super) lease: Arc<Lease>,
    /// Where the table stands in the change log; `None`: reload everything next.
    pub(super) position: Option<Position>,
    in_flight: bool,
    again: bool,
    /// Whether the last read failed (to log transitions, not every failure).
    failing: bool,
    pub(super) stats: Arc<SyncStats>,
    /// How the roles are reloaded (with RBAC on; set after start by
    /// [`crate::KeyRegistryHandle::follow_roles`]).
    roles_reload: Option<RolesReload>,
    /// Roles changes applied from the log, and how many of them the roles were reloaded
    /// after: while behind, the next report waits for a reload, so a replica acknowledges a
    /// roles change (and renews its lease) only once its roles hold it.
    roles_wanted: u64,
    roles_done: u64,
}

impl SyncState {
    pub(super) fn new(store: SharedUserStore) -> Self {
        SyncState {
            lease: Arc::new(Lease::new(store.bound(), store.ready_grace())),
            store,
            position: None,
            in_flight: false,
            again: false,
            failing: false,
            stats: Arc::default(),
            roles_reload: None,
            roles_wanted: 0,
            roles_done: 0,
        }
    }

    /// Counts a failed read, and logs the first of a run of them.
    fn read_failed(&mut self, err: &dyn std::fmt::Display) {
        self.stats.reads_failed.fetch_add(1, Ordering::Relaxed);
        if !self.failing {
            self.failing = true;
            tracing::warn!(
                error = %err,
                bound = ?self.lease.bound(),
                "cannot read the user store; database keys are refused once the last good \
                 read is older than PORTCULLIS_KEY_REVOCATION_BOUND"
            );
        }
    }
}

/// Reload the roles with this after every roles change in the log (and once now).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct FollowRoles(pub(super) RolesReload);

impl Handler<FollowRoles> for KeyRegistry {
    type Result = ();

    fn handle(&mut self, msg: FollowRoles, _ctx: &mut Self::Context) {
        if let Some(sync) = self.sync.as_mut() {
            sync.roles_reload = Some(msg.0);
            // Changes read before this reached the actor: the next report reloads first.
            sync.roles_wanted += 1;
        }
    }
}

/// Read the store now (a notification, a reconnect, the poll timer).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct SyncNow {
    pub(super) via: Via,
}

impl Handler<SyncNow> for KeyRegistry {
    type Result = ();

    fn handle(&mut self, msg: SyncNow, ctx: &mut Self::Context) {
        self.start_sync(ctx, msg.via);
    }
}

impl KeyRegistry {
    /// Starts a read unless one is in flight (then one more follows it).
    pub(super) fn start_sync(&mut self, ctx: &mut Context<Self>, via: Via) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        if sync.in_flight {
            sync.again = true;
            return;
        }
        sync.in_flight = true;
        let store = sync.store.clone();
        let base = sync.position.clone();
        ctx.spawn(
            detached(async move { store.read(base).await })
                .into_actor(self)
                .map(move |read, act, ctx| {
                    let Some(sync) = act.sync.as_mut() else {
                        return;
                    };
                    sync.in_flight = false;
                    match read.ok_or("the read's task panicked") {
                        Ok(Ok(read)) => {
                            sync.stats.reads_ok.fetch_add(1, Ordering::Relaxed);
                            if sync.failing {
                                sync.failing = false;
                                tracing::info!("the user store answers again");
                            }
                            if let Some((seq, started)) = act.apply_read(read, via) {
                                act.confirm(ctx, seq, started);
                            }
                        }
                        Ok(Err(err)) => sync.read_failed(&err),
                        Err(err) => sync.read_failed(&err),
                    }
                    let again = act
                        .sync
                        .as_mut()
                        .is_some_and(|s| std::mem::take(&mut s.again));
                    if again {
                        act.start_sync(ctx, via);
                    }
                }),
        );
    }

    /// Applies a read made from the table's current position. A read from another position
    /// (one that waited behind a write) is dropped: a newer one follows. The position reached
    /// and when the read started, for [`KeyRegistry::confirm`]; `None` when nothing was
    /// applied.
    pub(super) fn apply_read(&mut self, read: Read, via: Via) -> Option<(i64, Instant)> {
        let sync = self.sync.as_ref()?;
        if read.base != sync.position {
            return None;
        }
        let stats = sync.stats.clone();
        let mut roles = false;
        let applied = match read.snapshot {
            Snapshot::Delta(changes) => {
                let mut all = true;
                for change in changes {
                    match change.user {
                        None => roles = true,
                        Some((id, state)) => {
                            // A deletion also removed the user's role assignments (in its
                            // transaction, with no roles entry): reload them too.
                            roles |= state.is_none();
                            if !self.apply_user_state(&id, state) {
                                all = false;
                                break;
                            }
                        }
                    }
                    stats.applied[via as usize].fetch_add(1, Ordering::Relaxed);
                    stats
                        .propagation
                        .observe(Duration::from_secs_f64(change.lag_seconds.clamp(0.0, 1e9)));
                    tracing::trace!(seq = change.seq, via = via.as_str(), "change applied");
                }
                all
            }
            Snapshot::Full { reason, users } => {
                stats.full_reloads[FullReason::ALL
                    .iter()
                    .position(|r| *r == reason)
                    .unwrap_or(0)]
                .fetch_add(1, Ordering::Relaxed);
                if reason != FullReason::Startup {
                    tracing::info!(reason = reason.as_str(), "user store reloaded in full");
                }
                roles = reason != FullReason::Startup;
                self.replace_users(users)
            }
        };
        self.publish_counts();
        let sync = self.sync.as_mut()?;
        if roles {
            sync.roles_wanted += 1;
        }
        if !applied {
            // The table and the log disagree (never, short of a damaged store): reload it all.
            tracing::error!(
                "a change from the user store does not fit the users in memory; reloading them all"
            );
            sync.position = None;
            return None;
        }
        let seq = read.position.seq;
        stats.applied_seq.store(seq, Ordering::Relaxed);
        sync.position = Some(read.position);
        Some((seq, read.started))
    }

    /// Reports that the table is at `seq` (`shared.rs`, `report`), then renews the lease from
    /// `started` (the start of the read that brought it there) if nothing newer committed
    /// meanwhile; otherwise reads again. A writer waiting for acknowledgements counts this
    /// replica from its report on, so the lease is never renewed on a view that a writer
    /// has not counted.
    /// When a roles change was applied since the roles were last reloaded, reloads them
    /// first: a replica whose roles do not hold a change neither acknowledges it nor renews
    /// its lease.
    pub(super) fn confirm(&mut self, ctx: &mut Context<Self>, seq: i64, started: Instant) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let store = sync.store.clone();
        let wanted = sync.roles_wanted;
        let reload = if wanted > sync.roles_done {
            let reload = sync.roles_reload.clone();
            if reload.is_none() {
                // No roles to keep (RBAC off): nothing to wait for.
                sync.roles_done = wanted;
            }
            reload
        } else {
            None
        };
        let run = async move {
            if let Some(reload) = reload {
                reload().await.map_err(Unconfirmed::Roles)?;
            }
            store.report(seq).await.map_err(Unconfirmed::Store)
        };
        ctx.spawn(detached(run).into_actor(self).map(move |current, act, ctx| {
            let Some(sync) = act.sync.as_mut() else {
                return;
            };
            let current = current.unwrap_or(Err(Unconfirmed::Panicked));
            // Not when the reload failed or the task died (it may have died reloading).
            if !matches!(current, Err(Unconfirmed::Roles(_) | Unconfirmed::Panicked)) {
                sync.roles_done = sync.roles_done.max(wanted);
            }
            if let Ok((_, live)) = &current {
                sync.stats.live_replicas.store(*live, Ordering::Relaxed);
            }
            match current.map(|(current, _)| current) {
                Ok(current) if current == seq => sync.lease.renew(started),
                Ok(_) => act.start_sync(ctx, Via::Poll),
                Err(Unconfirmed::Roles(err)) => tracing::warn!(
                    error = %err,
                    "cannot reload the roles from the user store; retrying at the next poll \
                     (database keys are refused once the bound passes)"
                ),
                Err(Unconfirmed::Store(err)) => {
                    tracing::debug!(error = %err, "cannot report this replica's position");
                }
                Err(Unconfirmed::Panicked) => {
                    tracing::error!("the task reporting this replica's position panicked");
                }
            }
        }));
    }

    /// Makes a user's row what the log says it became (`None`: deleted), withdrawing any
    /// published answer that ends. `false` when it cannot fit the table.
    fn apply_user_state(&mut self, id: &str, state: Option<UserState>) -> bool {
        let Some(db) = self.db.as_mut() else {
            return false;
        };
        let Some(state) = state else {
            if let Some(digest) = db.table.get(id).map(|row| row.digest) {
                KeyRegistry::withdraw(&self.published, db, &digest);
                db.table.remove(id);
            }
            return true;
        };
        let Some(key_id) = table::key_id(&state.key_id) else {
            return false;
        };
        match db.table.slot_of(id) {
            Some(slot) => {
                let Some(old) = db.table.row(slot).map(|row| row.digest) else {
                    return false;
                };
                if old != state.key_digest {
                    KeyRegistry::withdraw(&self.published, db, &old);
                    if !db.table.set_key(slot, key_id, state.key_digest) {
                        return false;
                    }
                }
                if !state.active || state.revoked {
                    KeyRegistry::withdraw(&self.published, db, &state.key_digest);
                }
                db.table.set_state(slot, state.active, state.revoked)
            }
            None => {
                if db.table.key_taken(&key_id) {
                    return false;
                }
                db.table
                    .insert(UserRow {
                        name: Arc::from(id),
                        digest: state.key_digest,
                        key_id,
                        active: state.active,
                        revoked: state.revoked,
                        created_at_ms: state.created_at_ms,
                        last_used_ms: 0,
                        persisted_last_used_ms: 0,
                    })
                    .is_some()
            }
        }
    }

    /// Replaces every user with `users` (a full reload), withdrawing every published
    /// database answer first (their last uses are kept for the next flush).
    fn replace_users(&mut self, users: Vec<super::store::UserRecord>) -> bool {
        let Some(db) = self.db.as_mut() else {
            return false;
        };
        let published: Vec<KeyDigest> = self
            .published
            .0
            .iter()
            .filter(|answer| answer.db.is_some())
            .map(|answer| *answer.key())
            .collect();
        for digest in &published {
            KeyRegistry::withdraw(&self.published, db, digest);
        }
        let mut loader = TableLoader::with_capacity(users.len());
        for user in users {
            let Some(row) = super::manage::row_of(user) else {
                return false;
            };
            if !loader.push(row) {
                return false;
            }
        }
        match loader.finish() {
            Ok(table) => {
                db.table = table;
                true
            }
            Err(_) => false,
        }
    }

    /// After this replica committed change `seq`: applies `read` (made before the reply), and
    /// if the change is still not in the table, fences database keys until a read brings it
    /// in, so that the old key is not accepted here after the reply.
    pub(super) fn after_write(
        &mut self,
        ctx: &mut Context<Self>,
        seq: i64,
        read: Result<Read, super::shared::SharedStoreError>,
    ) {
        match read {
            Ok(read) => {
                if let Some((seq, started)) = self.apply_read(read, Via::Write) {
                    self.confirm(ctx, seq, started);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read back a change just written to the user store");
            }
        }
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        let caught_up = sync.position.as_ref().is_some_and(|p| p.seq >= seq);
        if !caught_up {
            sync.lease.fence();
            self.start_sync(ctx, Via::Poll);
        }
    }

    /// Prunes the change log in the background (`shared.rs`, `prune`); only while this
    /// replica's lease holds, so a fenced replica leaves the log alone.
    fn prune(&mut self) {
        let Some(sync) = self.sync.as_ref().filter(|sync| sync.lease.valid()) else {
            return;
        };
        let (store, stats) = (sync.store.clone(), sync.stats.clone());
        // A task of its own: nothing here needs the actor (`registry::detached`).
        actix::spawn(async move {
            match store.prune().await {
                Ok(removed) => {
                    stats.pruned.fetch_add(removed, Ordering::Relaxed);
                }
                Err(err) => tracing::debug!(error = %err, "cannot prune the change log"),
            }
        });
    }

    /// Starts the listener task and the poll timer (with the shared store only).
    pub(super) fn start_syncing(&mut self, ctx: &mut Context<Self>) {
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        let every = sync.store.read_timeout();
        ctx.run_interval(every, |act, ctx| act.start_sync(ctx, Via::Poll));
        ctx.run_interval(sync.store.prune_every(), |act, _| act.prune());
        listen(
            sync.store.clone(),
            ctx.address().downgrade(),
            sync.stats.clone(),
        );
    }
}

/// Why [`KeyRegistry::confirm`] did not report.
enum Unconfirmed {
    Roles(String),
    Store(super::shared::SharedStoreError),
    /// Its task panicked (a bug).
    Panicked,
}

/// The listener: LISTENs on [`super::shared::CHANNEL`] over its own connection and asks the
/// actor for a read on every notification, and on every reconnect (notifications sent while
/// the connection was down are lost). `try_recv`, not `recv`: only it reports a reconnect.
fn listen(store: SharedUserStore, registry: actix::WeakAddr<KeyRegistry>, stats: Arc<SyncStats>) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    let ask = move |via: Via| match registry.upgrade() {
        Some(addr) => {
            addr.do_send(SyncNow { via });
            true
        }
        None => false,
    };
    actix::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        let failed = |stats: &SyncStats, err: &sqlx::Error, backoff: &mut Duration| {
            let was_up = stats.listener_up.swap(0, Ordering::Relaxed) == 1;
            if was_up {
                tracing::warn!(error = %err, "the user store listener is down; polling meanwhile");
            }
            let wait = *backoff;
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
            wait
        };
        loop {
            let mut listener = match PgListener::connect_with(store.listen_pool()).await {
                Ok(listener) => listener,
                Err(err) => {
                    let wait = failed(&stats, &err, &mut backoff);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            if let Err(err) = listener.listen(super::shared::CHANNEL).await {
                let wait = failed(&stats, &err, &mut backoff);
                tokio::time::sleep(wait).await;
                continue;
            }
            stats.listener_up.store(1, Ordering::Relaxed);
            backoff = FIRST_BACKOFF;
            // LISTEN is committed: what changed before it is found by this read.
            if !ask(Via::Notify) {
                return;
            }
            loop {
                let via = match listener.try_recv().await {
                    Ok(Some(_)) => {
                        // Drain what else arrived: one read covers them all.
                        while listener.next_buffered().is_some() {}
                        stats.listener_up.store(1, Ordering::Relaxed);
                        Via::Notify
                    }
                    Ok(None) => {
                        stats.listener_reconnects.fetch_add(1, Ordering::Relaxed);
                        stats.listener_up.store(1, Ordering::Relaxed);
                        Via::Poll
                    }
                    Err(err) => {
                        // The reconnect failed: a new listener, once it LISTENs, asks for the
                        // read that finds what was notified meanwhile.
                        let wait = failed(&stats, &err, &mut backoff);
                        tokio::time::sleep(wait).await;
                        break;
                    }
                };
                backoff = FIRST_BACKOFF;
                if !ask(via) {
                    return;
                }
            }
        }
    });
}
