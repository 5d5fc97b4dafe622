//! The KeyRegistry actor: the single owner of every API key the server accepts, static keys
//! from the environment and database users' keys. This file holds the actor, its loading,
//! the judging of keys ([`Authenticate`]) and the flush of last-used times; the changes to
//! users are in `manage.rs`, and what callers hold is the handle (`handle.rs`).
//!
//! The actor is the only writer and the authority. What it has decided it publishes in a
//! shared map (SHA-256 digest of the key -> principal) that request handlers read without a
//! message. Static keys change only by a configuration reload (`statics.rs`), which publishes
//! the whole new set before it acknowledges, so every one of them is published before the
//! first request after start or reload, and the map's silence about a static-shaped key is itself the answer (no
//! message, so a flood of wrong keys costs a hash and a map read). A well-formed database key
//! the map has no answer for is sent to the actor, which judges it. Every change
//! (create, rotate, activate, deactivate, delete) is committed to the user store first, then
//! applied in memory, and any published answer it withdraws is removed before the reply, so no
//! request that starts after the acknowledgement can see the old answer.
//!
//! Why a digest lookup is not a timing oracle: the map is keyed by SHA-256 of the presented
//! key, so how long a lookup takes depends on digest bytes of the guess, which tell an attacker
//! nothing about a stored key's preimage. The actor compares database keys' digests in
//! constant time (`subtle`), against a dummy digest when the key id is unknown, so an unknown
//! id and a wrong secret cost the same.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use portcullis_config::StaticApiKeys;
use subtle::ConstantTimeEq;

use super::now_ms;
use super::published::{Answer, DbUse, PublishedAnswers, UserCounts};
use super::shared::{SharedStoreError, SharedUserStore};
use super::store::{UserStore, UserStoreError};
use super::sync::SyncState;
use super::table::{self, TableLoader, UserRow, UserTable};
use crate::digest::KeyDigest;
use crate::{AuthMethod, Principal, PrincipalKind, Reason};

/// How often last-used times are written to the store (in one batch).
const LAST_USED_FLUSH: Duration = Duration::from_secs(10);

/// Where database users are kept.
#[derive(Clone)]
pub(super) enum Backend {
    /// The SQLite file of this process.
    Local(UserStore),
    /// The store shared by replicas (its sync state is [`KeyRegistry::sync`]).
    Shared(SharedUserStore),
}

/// Database users: the store and the in-memory table of them.
pub(super) struct DbUsers {
    pub(super) store: Backend,
    pub(super) table: UserTable,
    /// Last-used times folded into rows when their answers were withdrawn, for the next
    /// flush (the flush otherwise reads only published answers).
    pub(super) unflushed: Vec<(Arc<str>, i64)>,
}

/// The actor. Build it with [`KeyRegistry::load`], then [`KeyRegistry::start_with_handle`].
pub struct KeyRegistry {
    /// How many static keys are published (they change only by a reload: `statics.rs`).
    pub(super) static_keys: usize,
    pub(super) static_users: Vec<String>,
    pub(super) db: Option<DbUsers>,
    pub(super) published: PublishedAnswers,
    pub(super) counts: Arc<UserCounts>,
    /// With the shared store only: the change log position, the lease and the listener's
    /// statistics (`sync.rs`).
    pub(super) sync: Option<SyncState>,
}

impl KeyRegistry {
    /// A registry holding the static keys (digests only) and no database users.
    pub fn new(static_keys: Option<&StaticApiKeys>) -> Self {
        let statics = super::statics::static_entries(static_keys);
        let mut static_users: Vec<String> = Vec::new();
        for (_, p) in &statics {
            if !static_users.iter().any(|u| u == p.username()) {
                static_users.push(p.username().to_owned());
            }
        }
        let published = PublishedAnswers::default();
        for (d, p) in &statics {
            published.0.insert(
                *d,
                Answer {
                    principal: p.clone(),
                    method: AuthMethod::ApiKeyStatic,
                    db: None,
                },
            );
        }
        KeyRegistry {
            static_keys: statics.len(),
            static_users,
            db: None,
            published,
            counts: Arc::default(),
            sync: None,
        }
    }

    /// A registry with static keys and, when `store` is given, every database user loaded
    /// from it: one read of the store into a table sized from the count first, its name
    /// index built in bulk at the end.
    pub async fn load(
        static_keys: Option<&StaticApiKeys>,
        store: Option<UserStore>,
    ) -> Result<Self, UserStoreError> {
        let mut registry = Self::new(static_keys);
        if let Some(store) = store {
            let loader = store
                .load_each(TableLoader::with_capacity, |loader, user| {
                    let bad = |what| UserStoreError::BadRow {
                        user: user.id.to_owned(),
                        what,
                    };
                    let key_id = table::key_id(user.key_id)
                        .ok_or_else(|| bad("key id is not 12 characters"))?;
                    let last = user.last_used_ms.unwrap_or(0);
                    let added = loader.push(UserRow {
                        name: Arc::from(user.id),
                        digest: user.key_digest,
                        key_id,
                        active: user.active,
                        revoked: user.revoked,
                        created_at_ms: user.created_at_ms,
                        last_used_ms: last,
                        persisted_last_used_ms: last,
                    });
                    added
                        .then_some(())
                        .ok_or_else(|| bad("duplicate name or key id"))
                })
                .await?;
            let table = loader.finish().map_err(|name| UserStoreError::BadRow {
                user: name.to_string(),
                what: "duplicate name or key id",
            })?;
            registry.db = Some(DbUsers {
                store: Backend::Local(store),
                table,
                unflushed: Vec::new(),
            });
            registry.publish_counts();
        }
        Ok(registry)
    }

    /// A registry with static keys and every database user of the store shared by replicas,
    /// read in one snapshot; the actor then keeps them in step with the store (`sync.rs`).
    /// A store that cannot be reached now is not an error: the registry starts with no
    /// database users and its lease fenced, and the actor's first read that reaches the store
    /// loads them all ([`KeyRegistry::awaiting_store`] says so meanwhile).
    pub async fn load_shared(
        static_keys: Option<&StaticApiKeys>,
        store: SharedUserStore,
    ) -> Result<Self, SharedStoreError> {
        let mut registry = Self::new(static_keys);
        registry.db = Some(DbUsers {
            store: Backend::Shared(store.clone()),
            table: UserTable::default(),
            unflushed: Vec::new(),
        });
        registry.sync = Some(SyncState::new(store.clone()));
        if !store.schema_ready() {
            // Unreachable when it was opened (logged then).
            return Ok(registry);
        }
        let read = match store.read_at_start().await {
            Ok(read) => read,
            Err(err) if err.is_unavailable() => {
                tracing::warn!(
                    error = %err,
                    "cannot read the user store at start; database keys are refused (503) \
                     until it answers, and the users are loaded then"
                );
                return Ok(registry);
            }
            Err(err) => return Err(err),
        };
        let Some((seq, started)) = registry.apply_read(read, super::sync::Via::Poll) else {
            return Err(SharedStoreError::BadRow {
                user: String::new(),
                what: "the stored users do not fit in memory (a duplicate name or key id)",
            });
        };
        registry.confirm_now(&store, seq, started).await;
        Ok(registry)
    }

    /// [`KeyRegistry::confirm`] before the actor runs (start-up, the bootstrap admin): a
    /// failed report leaves the lease as it was (the first poll renews it).
    pub(super) async fn confirm_now(
        &mut self,
        store: &SharedUserStore,
        seq: i64,
        started: std::time::Instant,
    ) {
        match store.report(seq).await {
            Ok((current, live)) => {
                if let Some(sync) = &self.sync {
                    sync.stats.live_replicas.store(live, Ordering::Relaxed);
                    if current == seq {
                        sync.lease.renew(started);
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot report this replica's position"),
        }
    }

    /// With the store shared by replicas: whether it has not been read yet (it could not be
    /// reached at start); database keys and user management are refused until it is.
    pub fn awaiting_store(&self) -> bool {
        self.sync
            .as_ref()
            .is_some_and(|sync| sync.position.is_none())
    }

    pub(super) fn is_static_user(&self, name: &str) -> bool {
        self.static_users.iter().any(|u| u == name)
    }

    /// Publishes the counts of users by state (the table keeps them as it changes).
    pub(super) fn publish_counts(&self) {
        let (active, inactive) = self.db.as_ref().map_or((0, 0), |db| {
            let active = db.table.active();
            (active, db.table.len() - active)
        });
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.counts.active.store(count(active), Ordering::Relaxed);
        self.counts
            .inactive
            .store(count(inactive), Ordering::Relaxed);
    }

    /// Withdraws the published answer for a key, if any, folding the last use it recorded
    /// into the user's row so that neither the listing nor the store loses it.
    pub(super) fn withdraw(published: &PublishedAnswers, db: &mut DbUsers, key: &KeyDigest) {
        let Some((_, answer)) = published.0.remove(key) else {
            return;
        };
        let Some(used) = answer.db else {
            return;
        };
        let seen = used.last_used.into_inner();
        if let Some(row) = db.table.row_mut(used.slot) {
            if seen > row.last_used_ms {
                row.last_used_ms = seen;
            }
            if seen > row.persisted_last_used_ms {
                row.persisted_last_used_ms = seen;
                db.unflushed.push((row.name.clone(), seen));
            }
        }
    }

    /// The last use of a user: its row's, or the newer one its published answer holds.
    pub(super) fn last_used_of(&self, row: &UserRow) -> i64 {
        let live = self
            .published
            .0
            .get(&row.digest)
            .and_then(|a| a.db.as_ref().map(|d| d.last_used.load(Ordering::Relaxed)))
            .unwrap_or(0);
        live.max(row.last_used_ms)
    }

    fn judge_db_key(&mut self, presented: &KeyDigest, key_id: &str) -> Result<Principal, Reason> {
        let Some(db) = self.db.as_ref() else {
            return Err(Reason::InvalidKey);
        };
        if self.sync.as_ref().is_some_and(|sync| !sync.lease.valid()) {
            return Err(Reason::StoreUnavailable);
        }
        let user = table::key_id(key_id).and_then(|id| db.table.by_key(&id));
        // Compare against a dummy when the id is unknown, so both cases cost the same.
        let stored = user.map(|(_, u)| u.digest).unwrap_or([0u8; 32]);
        let matches: bool = stored.ct_eq(presented).into();
        let Some((slot, user)) = user.filter(|_| matches) else {
            return Err(Reason::InvalidKey);
        };
        if user.revoked {
            return Err(Reason::Revoked);
        }
        if !user.active {
            return Err(Reason::UserInactive);
        }
        let principal =
            Principal::with_shared_name(user.name.clone(), Vec::new(), PrincipalKind::DbUser);
        self.published.0.insert(
            *presented,
            Answer {
                principal: principal.clone(),
                method: AuthMethod::ApiKeyDb,
                db: Some(DbUse {
                    slot,
                    last_used: AtomicI64::new(now_ms()),
                }),
            },
        );
        Ok(principal)
    }

    /// Writes the last-used times that changed since the last flush, in the background. Only
    /// published answers record uses, so only they are read (not every user).
    fn flush_last_used(&mut self) {
        let Some(db) = self.db.as_mut() else {
            return;
        };
        let mut updates: Vec<(String, i64)> = db
            .unflushed
            .drain(..)
            .map(|(name, at)| (name.to_string(), at))
            .collect();
        for answer in self.published.0.iter() {
            let Some(used) = &answer.db else {
                continue;
            };
            let seen = used.last_used.load(Ordering::Relaxed);
            if let Some(row) = db.table.row_mut(used.slot) {
                if seen > row.persisted_last_used_ms {
                    row.persisted_last_used_ms = seen;
                    row.last_used_ms = row.last_used_ms.max(seen);
                    updates.push((row.name.to_string(), seen));
                }
            }
        }
        if updates.is_empty() {
            return;
        }
        let store = db.store.clone();
        // A task of its own, not in the actor's context: the SQLite write is a transaction,
        // and one left waiting in a held context would keep the file's write lock from the
        // change holding it (`detached`).
        actix::spawn(async move {
            let written = match &store {
                Backend::Local(store) => store
                    .record_last_used(&updates)
                    .await
                    .map_err(|e| e.to_string()),
                Backend::Shared(store) => store
                    .record_last_used(&updates)
                    .await
                    .map_err(|e| e.to_string()),
            };
            if let Err(err) = written {
                // Best effort: the times stay in memory and are tried again next time a
                // user is seen.
                tracing::warn!(error = %err, users = updates.len(), "could not record last-used times");
            }
        });
    }
}

/// Runs `work`, a call to the user store, as a task of its own, started now; resolves to its
/// output, or `None` if the task panicked. Every store call the actor does not hold its
/// context for goes through this (or `actix::spawn` when the actor needs no answer): while a
/// change holds the context (an `AtomicResponse`, from its check through its write), the
/// context polls nothing else it spawned, and a transaction left waiting there for its next
/// statement keeps its locks. A replica's lease renewal, holding the change counter's share
/// lock, blocked that very change's write until the write timed out with a 503.
pub(super) fn detached<T: 'static>(
    work: impl std::future::Future<Output = T> + 'static,
) -> impl std::future::Future<Output = Option<T>> {
    let task = actix::spawn(work);
    async move { task.await.ok() }
}

impl Actor for KeyRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(
            static_keys = self.static_keys,
            db_users = self.db.as_ref().map(|db| db.table.len()),
            "key registry started"
        );
        if self.db.is_some() {
            ctx.run_interval(LAST_USED_FLUSH, |act, _| act.flush_last_used());
        }
        self.start_syncing(ctx);
    }
}

/// Judge a well-formed database key the published answers did not cover.
#[derive(Message)]
#[rtype(result = "Result<Principal, Reason>")]
pub(crate) struct Authenticate {
    /// SHA-256 of the presented key.
    pub(crate) digest: KeyDigest,
    /// The key id the key carries.
    pub(crate) key_id: String,
}

impl Handler<Authenticate> for KeyRegistry {
    type Result = Result<Principal, Reason>;

    fn handle(&mut self, msg: Authenticate, _ctx: &mut Self::Context) -> Self::Result {
        self.judge_db_key(&msg.digest, &msg.key_id)
    }
}
