//! The KeyRegistry actor: the single owner of every API key the server accepts, static keys
//! from the environment and database users' keys. This file holds the actor, its loading,
//! the judging of keys ([`Authenticate`]) and the flush of last-used times; the changes to
//! users are in `manage.rs`, and what callers hold is the handle (`handle.rs`).
//!
//! The actor is the only writer and the authority. What it has decided it publishes in a
//! shared map (SHA-256 digest of the key -> principal) that request handlers read without a
//! message. Static keys never change at runtime, so every one of them is published before the
//! first request and the map's silence about a static-shaped key is itself the answer (no
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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use portcullis_config::StaticApiKeys;
use subtle::ConstantTimeEq;

use super::model::DbUser;
use super::now_ms;
use super::published::{Answer, PublishedAnswers, UserCounts};
use super::store::{UserStore, UserStoreError};
use crate::digest::{digest, KeyDigest};
use crate::{AuthMethod, Principal, PrincipalKind, Reason};

/// How often last-used times are written to the store (in one batch).
const LAST_USED_FLUSH: Duration = Duration::from_secs(10);

/// Database users: the store and the in-memory copy of it.
pub(super) struct DbUsers {
    pub(super) store: UserStore,
    pub(super) users: HashMap<String, DbUser>,
    /// key id -> user id.
    pub(super) by_key: HashMap<String, String>,
}

/// The actor. Build it with [`KeyRegistry::load`], then [`KeyRegistry::start_with_handle`].
pub struct KeyRegistry {
    /// How many static keys are published (they never change at runtime).
    static_keys: usize,
    pub(super) static_users: Vec<String>,
    pub(super) db: Option<DbUsers>,
    pub(super) published: PublishedAnswers,
    pub(super) counts: Arc<UserCounts>,
}

impl KeyRegistry {
    /// A registry holding the static keys (digests only) and no database users.
    pub fn new(static_keys: Option<&StaticApiKeys>) -> Self {
        let statics: Vec<(KeyDigest, Principal)> = static_keys
            .map(|keys| {
                keys.pairs()
                    .map(|(key, user)| {
                        (
                            digest(key.expose().as_bytes()),
                            Principal::new(user, Vec::new(), PrincipalKind::StaticKey),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
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
                    last_used: None,
                },
            );
        }
        KeyRegistry {
            static_keys: statics.len(),
            static_users,
            db: None,
            published,
            counts: Arc::default(),
        }
    }

    /// A registry with static keys and, when `store` is given, every database user loaded
    /// from it.
    pub async fn load(
        static_keys: Option<&StaticApiKeys>,
        store: Option<UserStore>,
    ) -> Result<Self, UserStoreError> {
        let mut registry = Self::new(static_keys);
        if let Some(store) = store {
            let records = store.load().await?;
            let mut users = HashMap::with_capacity(records.len());
            let mut by_key = HashMap::with_capacity(records.len());
            for rec in records {
                let (id, user) = DbUser::from_record(rec);
                by_key.insert(user.key_id.clone(), id.clone());
                users.insert(id, user);
            }
            registry.db = Some(DbUsers {
                store,
                users,
                by_key,
            });
            registry.recount();
        }
        Ok(registry)
    }

    pub(super) fn is_static_user(&self, name: &str) -> bool {
        self.static_users.iter().any(|u| u == name)
    }

    /// Publishes the counts of users by state.
    pub(super) fn recount(&self) {
        let (mut active, mut inactive) = (0, 0);
        if let Some(db) = &self.db {
            for user in db.users.values() {
                if user.active {
                    active += 1;
                } else {
                    inactive += 1;
                }
            }
        }
        self.counts.active.store(active, Ordering::Relaxed);
        self.counts.inactive.store(inactive, Ordering::Relaxed);
    }

    fn judge_db_key(&mut self, presented: &KeyDigest, key_id: &str) -> Result<Answer, Reason> {
        let Some(db) = self.db.as_ref() else {
            return Err(Reason::InvalidKey);
        };
        let user = db.by_key.get(key_id).and_then(|id| db.users.get(id));
        // Compare against a dummy when the id is unknown, so both cases cost the same.
        let stored = user.map(|u| u.digest).unwrap_or([0u8; 32]);
        let matches: bool = stored.ct_eq(presented).into();
        let Some(user) = user.filter(|_| matches) else {
            return Err(Reason::InvalidKey);
        };
        if user.revoked {
            return Err(Reason::Revoked);
        }
        if !user.active {
            return Err(Reason::UserInactive);
        }
        user.last_used.store(now_ms(), Ordering::Relaxed);
        let answer = Answer {
            principal: user.principal.clone(),
            method: AuthMethod::ApiKeyDb,
            last_used: Some(user.last_used.clone()),
        };
        self.published.0.insert(*presented, answer.clone());
        Ok(answer)
    }

    /// Writes the last-used times that changed since the last flush, in the background.
    fn flush_last_used(&mut self, ctx: &mut Context<Self>) {
        let Some(db) = self.db.as_mut() else {
            return;
        };
        let mut updates = Vec::new();
        for (id, user) in db.users.iter_mut() {
            let seen = user.last_used.load(Ordering::Relaxed);
            if seen > user.persisted_last_used {
                user.persisted_last_used = seen;
                updates.push((id.clone(), seen));
            }
        }
        if updates.is_empty() {
            return;
        }
        let store = db.store.clone();
        ctx.spawn(
            async move {
                if let Err(err) = store.record_last_used(&updates).await {
                    // Best effort: the times stay in memory and are tried again next time a
                    // user is seen.
                    tracing::warn!(error = %err, users = updates.len(), "could not record last-used times");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for KeyRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(
            static_keys = self.static_keys,
            db_users = self.db.as_ref().map(|db| db.users.len()),
            "key registry started"
        );
        if self.db.is_some() {
            ctx.run_interval(LAST_USED_FLUSH, |act, ctx| act.flush_last_used(ctx));
        }
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
            .map(|a| a.principal)
    }
}
