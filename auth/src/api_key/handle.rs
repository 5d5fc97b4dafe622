//! [`KeyRegistryHandle`]: the KeyRegistry's whole API. Requests judge keys through it (the
//! published answers first, a message to the actor only for a database key they do not
//! cover) and the user-management routes change users through it. The actor's messages are
//! crate-private: only the actor writes, and the handle is how everyone else asks.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;
use portcullis_config::StaticApiKeys;

use super::format::{self, NewKey};
use super::manage::{
    ActivateUser, CreateUser, DeactivateUser, DeleteUser, GetUser, ListUsers, RotateKey,
};
use super::model::{UserError, UserInfo, UserPage};
use super::now_ms;
use super::published::{PublishedAnswers, UserCounts};
use super::registry::{Authenticate, KeyRegistry};
use super::shared::{Lease, SharedUserStore};
use super::statics::{static_entries, ReplaceStaticKeys, StaticKeyChange};
use super::sync::{FollowRoles, RolesReload, SyncStats};
use crate::digest::{digest, KeyDigest};
use crate::{AuthMethod, Authenticated, Denied, Reason};

/// Users per page when [`KeyRegistryHandle::list`] gathers the whole listing.
const LIST_PAGE: usize = 1000;

/// What request handlers and the user-management routes hold: the actor's address and its
/// published answers. Cloning shares them.
#[derive(Clone)]
pub struct KeyRegistryHandle {
    addr: Addr<KeyRegistry>,
    published: PublishedAnswers,
    counts: Arc<UserCounts>,
    db_enabled: bool,
    /// With the store shared by replicas: database keys are answered only while it holds.
    lease: Option<Arc<Lease>>,
    /// With the store shared by replicas: what the sync has done, and the store (to wait for
    /// acknowledgements).
    sync: Option<(Arc<SyncStats>, SharedUserStore)>,
}

/// What the published answers say of a presented key, without the actor.
pub enum KeyLookup<'a> {
    /// Answered: a published principal, or a refusal (a database key of a bad shape or
    /// checksum, or a static-shaped key the answers do not hold: every static key is
    /// published, so that silence is final).
    Decided(Result<Authenticated, Denied>),
    /// A well-formed database key with no published answer: [`KeyRegistryHandle::judge`]
    /// asks the actor.
    Unjudged(UnjudgedKey<'a>),
}

/// A database key the published answers did not cover, with its digest already taken.
pub struct UnjudgedKey<'a> {
    digest: KeyDigest,
    key_id: &'a str,
}

impl KeyRegistry {
    /// Starts the actor on the current arbiter and returns the handle to it.
    pub fn start_with_handle(self) -> KeyRegistryHandle {
        let published = self.published.clone();
        let counts = self.counts.clone();
        let db_enabled = self.db.is_some();
        let lease = self.sync.as_ref().map(|sync| sync.lease.clone());
        let sync = self
            .sync
            .as_ref()
            .map(|sync| (sync.stats.clone(), sync.store.clone()));
        let addr = self.start();
        KeyRegistryHandle {
            addr,
            published,
            counts,
            db_enabled,
            lease,
            sync,
        }
    }
}

impl KeyRegistryHandle {
    /// Authenticates a presented API key: [`KeyRegistryHandle::lookup`], then
    /// [`KeyRegistryHandle::judge`] when the published answers do not cover it.
    pub async fn authenticate(&self, key: &str) -> Result<Authenticated, Denied> {
        match self.lookup(key) {
            KeyLookup::Decided(verdict) => verdict,
            KeyLookup::Unjudged(key) => self.judge(key).await,
        }
    }

    /// Asks the published answers: one SHA-256 and one map read, no message. A key with the
    /// database prefix is judged only as a database key, and one with a bad shape or checksum
    /// is refused without a message to the actor.
    ///
    /// A key the answers hold as a database user's is not parsed again: only a key that
    /// parsed (shape and checksum) was ever accepted as one, and the digest stands for that
    /// very key. Parsing is the longest step of a database key's lookup (the checksum's CRC
    /// and the alphabet scan, about 600 instructions), and a published key is the usual case.
    pub fn lookup<'a>(&self, key: &'a str) -> KeyLookup<'a> {
        let db_shaped = self.db_enabled && format::looks_like_db_key(key);
        let presented = digest(key.as_bytes());
        if let Some(answer) = self.published.0.get(&presented) {
            let accepted = match &answer.db {
                Some(db) => {
                    if self.lease_expired() {
                        return KeyLookup::Decided(Err(store_unavailable()));
                    }
                    db.last_used.store(now_ms(), Ordering::Relaxed);
                    true
                }
                // A static key with the database prefix (an operator may configure one)
                // counts only if it also has a database key's shape, as when every such key
                // was parsed first.
                None => !db_shaped || format::parse(key).is_ok(),
            };
            return KeyLookup::Decided(if accepted {
                Ok(Authenticated {
                    principal: answer.principal.clone(),
                    method: answer.method,
                })
            } else {
                Err(denied(AuthMethod::ApiKeyDb))
            });
        }
        // Every static key is published: a miss on a static-shaped key is final.
        if !db_shaped {
            return KeyLookup::Decided(Err(denied(AuthMethod::ApiKeyStatic)));
        }
        let Ok(key_id) = format::parse(key) else {
            return KeyLookup::Decided(Err(denied(AuthMethod::ApiKeyDb)));
        };
        // Hit or miss alike, so an expired lease is no oracle of which keys exist.
        if self.lease_expired() {
            return KeyLookup::Decided(Err(store_unavailable()));
        }
        KeyLookup::Unjudged(UnjudgedKey {
            digest: presented,
            key_id,
        })
    }

    /// Sends a database key the published answers did not cover to the actor, which judges
    /// it and, when it accepts it, publishes the answer for the next request.
    pub async fn judge(&self, key: UnjudgedKey<'_>) -> Result<Authenticated, Denied> {
        let method = AuthMethod::ApiKeyDb;
        let msg = Authenticate {
            digest: key.digest,
            key_id: key.key_id.to_owned(),
        };
        match self.addr.send(msg).await {
            Ok(verdict) => verdict
                .map(|principal| Authenticated { principal, method })
                .map_err(|reason| Denied { method, reason }),
            Err(err) => {
                tracing::error!(error = %err, "key registry did not answer");
                Err(Denied {
                    method,
                    reason: Reason::Internal,
                })
            }
        }
    }

    /// Creates a database user with a new key, returned to be shown once.
    pub async fn create_user(&self, id: impl Into<String>) -> Result<NewKey, UserError> {
        self.store_loaded()?;
        self.ask(CreateUser { id: id.into() }).await
    }

    /// Replaces a database user's key; the old key stops working before this returns. A
    /// revoked key's revocation ends with it.
    pub async fn rotate_key(&self, id: impl Into<String>) -> Result<NewKey, UserError> {
        self.store_loaded()?;
        self.ask(RotateKey { id: id.into() }).await
    }

    /// Activates a deactivated database user (a revoked key stays revoked).
    pub async fn activate(&self, id: impl Into<String>) -> Result<(), UserError> {
        self.store_loaded()?;
        self.ask(ActivateUser { id: id.into() }).await
    }

    /// Deactivates a database user on behalf of `caller` (users cannot deactivate
    /// themselves); with `revoke_key`, its key stays refused until a rotation, even after
    /// activation. The key stops working before this returns.
    pub async fn deactivate(
        &self,
        id: impl Into<String>,
        caller: &str,
        revoke_key: bool,
    ) -> Result<(), UserError> {
        self.store_loaded()?;
        self.ask(DeactivateUser {
            id: id.into(),
            revoke_key,
            caller: caller.to_owned(),
        })
        .await
    }

    /// Deletes a database user on behalf of `caller` (users cannot delete themselves); its
    /// key stops working before this returns.
    pub async fn delete(&self, id: impl Into<String>, caller: &str) -> Result<(), UserError> {
        self.store_loaded()?;
        self.ask(DeleteUser {
            id: id.into(),
            caller: caller.to_owned(),
        })
        .await
    }

    /// Every user (database users by name, then static users), gathered page by page: for
    /// small stores; a listing that may be large streams [`KeyRegistryHandle::list_page`].
    pub async fn list(&self) -> Result<Vec<UserInfo>, UserError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(after, LIST_PAGE).await?;
            all.extend(page.users);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One page of the listing: up to `limit` database users (at least one) in name order,
    /// after the user `after` (from the first without it), and on the last page the static
    /// users after them. Each page is read as the users are when it is asked for, so a user
    /// created or deleted during a listing may or may not appear in it, and none twice.
    pub async fn list_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<UserPage, UserError> {
        self.store_reachable()?;
        self.ask(ListUsers { after, limit }).await
    }

    /// One user, database or static; `None` when there is none of that name.
    pub async fn get(&self, id: impl Into<String>) -> Result<Option<UserInfo>, UserError> {
        self.store_reachable()?;
        self.ask(GetUser { id: id.into() }).await
    }

    /// Replaces the static keys with `keys` (`None`: none), for a configuration reload. A key
    /// no longer in the set is refused from the moment this returns, as after a rotation;
    /// a closed mailbox is [`UserError::Unavailable`] and changes nothing.
    pub async fn replace_static_keys(
        &self,
        keys: Option<&StaticApiKeys>,
    ) -> Result<StaticKeyChange, UserError> {
        let entries = static_entries(keys);
        self.addr
            .send(ReplaceStaticKeys { entries })
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "key registry did not answer");
                UserError::Unavailable
            })
    }

    /// Whether database keys must be refused now: the store shared by replicas has not been
    /// read within the bound (one clock read and one atomic load; never with SQLite).
    #[inline]
    fn lease_expired(&self) -> bool {
        self.lease.as_ref().is_some_and(|lease| !lease.valid())
    }

    /// The user listing and lookup answer only from a view of the store that database keys
    /// may be answered from: [`UserError::StoreUnavailable`] otherwise.
    fn store_reachable(&self) -> Result<(), UserError> {
        if self.lease_expired() {
            return Err(UserError::StoreUnavailable);
        }
        Ok(())
    }

    /// Changes need the users loaded from the store once (their checks read them); then they
    /// go to the store, which decides (unreachable: [`UserError::StoreUnavailable`]), even
    /// while database keys are fenced.
    fn store_loaded(&self) -> Result<(), UserError> {
        if self.lease.as_ref().is_some_and(|lease| lease.never_held()) {
            return Err(UserError::StoreUnavailable);
        }
        Ok(())
    }

    /// Whether the replica is ready as far as the shared store goes (always without it):
    /// see `PORTCULLIS_USER_STORE_READY_GRACE`.
    pub fn store_ready(&self) -> bool {
        self.lease.as_ref().is_none_or(|lease| lease.ready())
    }

    /// With the store shared by replicas: its lease (the bound, the view's age).
    pub fn lease(&self) -> Option<&Arc<Lease>> {
        self.lease.as_ref()
    }

    /// With the store shared by replicas: what the sync has done.
    pub fn sync_stats(&self) -> Option<&Arc<SyncStats>> {
        self.sync.as_ref().map(|(stats, _)| stats)
    }

    /// With the store shared by replicas: has the KeyRegistry reload the roles with `reload`
    /// after every roles change it reads from the log, before it reports (acknowledges) the
    /// change. Without the shared store, nothing.
    pub fn follow_roles(&self, reload: RolesReload) {
        if self.sync.is_some() {
            self.addr.do_send(FollowRoles(reload));
        }
    }

    /// With the store shared by replicas, after a change to users returned: waits until every
    /// replica holding a live lease has applied what this replica has (so the change), at
    /// most the bound (a replica that has not by then is fenced anyway). How many replicas
    /// have, this one included; `None` without the shared store or when the store cannot
    /// say.
    pub async fn acknowledge(&self) -> Option<i64> {
        let (stats, _) = self.sync.as_ref()?;
        self.await_acks(stats.applied_seq.load(Ordering::Relaxed))
            .await
    }

    /// [`KeyRegistryHandle::acknowledge`] for a change this replica committed to the store
    /// but may not have read back yet (a roles change): waits for every change committed so
    /// far, this replica's own acknowledgement included. `None` without the shared store or
    /// when the store cannot say.
    pub async fn acknowledge_committed(&self) -> Option<i64> {
        let (stats, store) = self.sync.as_ref()?;
        match store.current_seq().await {
            Ok(seq) => self.await_acks(seq).await,
            Err(err) => {
                stats.ack_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "cannot wait for the replicas' acknowledgements");
                None
            }
        }
    }

    async fn await_acks(&self, seq: i64) -> Option<i64> {
        let (stats, store) = self.sync.as_ref()?;
        let started = std::time::Instant::now();
        let acked = store.await_acks(seq).await;
        stats.ack_wait.observe(started.elapsed());
        match acked {
            Ok((acked, 0)) => Some(acked),
            Ok((acked, behind)) => {
                stats.ack_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    acked,
                    behind,
                    "replicas did not acknowledge a change within PORTCULLIS_KEY_REVOCATION_BOUND; they are fenced by now"
                );
                Some(acked)
            }
            Err(err) => {
                stats.ack_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "cannot wait for the replicas' acknowledgements");
                None
            }
        }
    }

    /// Whether database users are enabled.
    pub fn db_enabled(&self) -> bool {
        self.db_enabled
    }

    /// Database users by state, for the metrics endpoint.
    pub fn counts(&self) -> &UserCounts {
        &self.counts
    }

    /// Sends a management message; a closed mailbox is [`UserError::Unavailable`].
    async fn ask<M, T>(&self, msg: M) -> Result<T, UserError>
    where
        M: Message<Result = Result<T, UserError>> + Send + 'static,
        T: Send + 'static,
        KeyRegistry: Handler<M>,
    {
        self.addr.send(msg).await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "key registry did not answer");
            Err(UserError::Unavailable)
        })
    }

    /// Whether an answer for `key` is published.
    #[cfg(test)]
    pub(super) fn is_published(&self, key: &str) -> bool {
        self.published.0.contains_key(&digest(key.as_bytes()))
    }
}

/// A database key while the lease on the shared store is expired.
fn store_unavailable() -> Denied {
    Denied {
        method: AuthMethod::ApiKeyDb,
        reason: Reason::StoreUnavailable,
    }
}

/// An API key that matches no key.
fn denied(method: AuthMethod) -> Denied {
    Denied {
        method,
        reason: Reason::InvalidKey,
    }
}
