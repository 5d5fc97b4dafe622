//! The KeyRegistry actor: the single owner of every API key the server accepts, static keys
//! from the environment and database users' keys.
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
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use portcullis_config::StaticApiKeys;
use subtle::ConstantTimeEq;

use super::format::{self as db_key, NewKey};
use super::store::{UserRecord, UserStore, UserStoreError};
use crate::digest::{digest, DigestMap, KeyDigest};
use crate::{AuthMethod, Principal, PrincipalKind, Reason};

/// How often last-used times are written to the store (in one batch).
const LAST_USED_FLUSH: Duration = Duration::from_secs(10);

/// The meta-table fact recording that the bootstrap admin was created once.
const BOOTSTRAP_FACT: &str = "bootstrap_admin_created";

/// The bootstrap admin's user name.
pub const BOOTSTRAP_ADMIN: &str = "admin";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A published answer.
#[derive(Clone)]
struct Answer {
    principal: Principal,
    method: AuthMethod,
    /// Database users only: where the request path records the time of use.
    last_used: Option<Arc<AtomicI64>>,
}

/// The answers the registry has published. Readers never write to it.
#[derive(Clone, Default)]
struct Published(Arc<DigestMap<Answer>>);

/// Counts of database users by state, kept by the actor for the metrics endpoint.
#[derive(Debug, Default)]
pub struct UserCounts {
    /// Active database users.
    pub active: AtomicI64,
    /// Deactivated database users.
    pub inactive: AtomicI64,
}

/// A database user as the actor holds it.
struct DbUser {
    key_id: String,
    digest: KeyDigest,
    active: bool,
    revoked: bool,
    created_at_ms: i64,
    last_used: Arc<AtomicI64>,
    persisted_last_used: i64,
    principal: Principal,
}

impl DbUser {
    fn from_record(rec: UserRecord) -> (String, DbUser) {
        let last = rec.last_used_ms.unwrap_or(0);
        let user = DbUser {
            principal: Principal::new(rec.id.clone(), Vec::new(), PrincipalKind::DbUser),
            key_id: rec.key_id,
            digest: rec.key_digest,
            active: rec.active,
            revoked: rec.revoked,
            created_at_ms: rec.created_at_ms,
            last_used: Arc::new(AtomicI64::new(last)),
            persisted_last_used: last,
        };
        (rec.id, user)
    }
}

/// Database users: the store and the in-memory copy of it.
struct DbUsers {
    store: UserStore,
    users: HashMap<String, DbUser>,
    /// key id -> user id.
    by_key: HashMap<String, String>,
}

/// Failures of user management, mapped to status codes by the server.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    /// `AUTHENTICATION_DB_USERS_ENABLED` is off.
    #[error("db user management is not enabled")]
    Disabled,
    /// The name does not match `^[A-Za-z][-_0-9A-Za-z@.]{0,127}$`.
    #[error("user name must start with a letter and contain only letters, digits and -_@. (at most 128 characters)")]
    BadName,
    /// The name is reserved (`anonymous`, which admin lists use for callers without a
    /// credential: a database user of that name would share their permissions).
    #[error("user name '{0}' is reserved")]
    Reserved(String),
    /// The name belongs to a static (environment) user.
    #[error("user '{0}' is a static user from the environment and cannot be managed here")]
    StaticUser(String),
    /// A database user of that name exists.
    #[error("user '{0}' already exists")]
    Exists(String),
    /// No such database user.
    #[error("user '{0}' not found")]
    NotFound(String),
    /// Activation of an active user.
    #[error("user '{0}' is already active")]
    AlreadyActive(String),
    /// Deactivation of an inactive user.
    #[error("user '{0}' is already deactivated")]
    AlreadyInactive(String),
    /// A user deactivating or deleting itself.
    #[error("users cannot {0} themselves")]
    SelfAction(&'static str),
    /// The store failed; the change was not made.
    #[error("the user store failed; the change was not made")]
    Store,
    /// The OS random source failed; no key was made.
    #[error("could not generate a key")]
    Random,
}

/// Whether a name is acceptable for a database user (Weaviate's rule, capped at 128).
pub fn valid_user_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'@' | b'.'))
}

/// What a listing shows about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub id: String,
    /// True for static users from the environment (`db_env_user`).
    pub is_static: bool,
    /// Whether the user may authenticate.
    pub active: bool,
    /// Creation time (Unix ms); none for static users.
    pub created_at_ms: Option<i64>,
    /// Last successful authentication (Unix ms), if any.
    pub last_used_ms: Option<i64>,
    /// The first three characters of the current key id; none for static users.
    pub first_letters: Option<String>,
}

/// The actor. Build it with [`KeyRegistry::load`], then [`KeyRegistry::start_with_handle`].
pub struct KeyRegistry {
    /// How many static keys are published (they never change at runtime).
    static_keys: usize,
    static_users: Vec<String>,
    db: Option<DbUsers>,
    published: Published,
    counts: Arc<UserCounts>,
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
        let published = Published::default();
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

    /// Creates the `admin` database user on the first start of a store, once. Returns its key,
    /// to be shown once; `None` when it was created before (even if since deleted).
    pub async fn bootstrap_admin(&mut self) -> Result<Option<NewKey>, UserError> {
        let Some(db) = self.db.as_mut() else {
            return Err(UserError::Disabled);
        };
        let done = db.store.meta(BOOTSTRAP_FACT).await.map_err(|err| {
            tracing::error!(error = %err, "could not read the user store");
            UserError::Store
        })?;
        if done.is_some() {
            return Ok(None);
        }
        if db.users.contains_key(BOOTSTRAP_ADMIN) {
            db.store
                .set_meta(BOOTSTRAP_FACT, "existing")
                .await
                .map_err(|_| UserError::Store)?;
            return Ok(None);
        }
        let key = fresh_key(&db.by_key)?;
        let record = new_record(BOOTSTRAP_ADMIN, &key);
        db.store
            .insert_with_meta(&record, BOOTSTRAP_FACT, "created")
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "could not store the bootstrap admin");
                UserError::Store
            })?;
        self.insert_user(record);
        Ok(Some(key))
    }

    /// Starts the actor on the current arbiter and returns the handle request handlers use.
    pub fn start_with_handle(self) -> KeyRegistryHandle {
        let published = self.published.clone();
        let counts = self.counts.clone();
        let db_enabled = self.db.is_some();
        let addr = self.start();
        KeyRegistryHandle {
            addr,
            published,
            counts,
            db_enabled,
        }
    }

    fn is_static_user(&self, name: &str) -> bool {
        self.static_users.iter().any(|u| u == name)
    }

    fn insert_user(&mut self, record: UserRecord) {
        if let Some(db) = self.db.as_mut() {
            let (id, user) = DbUser::from_record(record);
            db.by_key.insert(user.key_id.clone(), id.clone());
            db.users.insert(id, user);
        }
        self.recount();
    }

    fn recount(&self) {
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

    fn db_user(&self, id: &str) -> Result<(&DbUsers, &DbUser), UserError> {
        let db = self.db.as_ref().ok_or(UserError::Disabled)?;
        if self.is_static_user(id) && !db.users.contains_key(id) {
            return Err(UserError::StaticUser(id.to_owned()));
        }
        let user = db
            .users
            .get(id)
            .ok_or_else(|| UserError::NotFound(id.to_owned()))?;
        Ok((db, user))
    }

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

fn fresh_key(by_key: &HashMap<String, String>) -> Result<NewKey, UserError> {
    // Ids carry 71 random bits; a collision is astronomically unlikely, but cheap to rule out.
    for _ in 0..4 {
        let key = db_key::generate().map_err(|err| {
            tracing::error!(error = %err, "OS random source failed");
            UserError::Random
        })?;
        if !by_key.contains_key(key.id()) {
            return Ok(key);
        }
    }
    Err(UserError::Random)
}

fn new_record(id: &str, key: &NewKey) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        key_id: key.id().to_owned(),
        key_digest: digest(key.expose().as_bytes()),
        active: true,
        revoked: false,
        created_at_ms: now_ms(),
        last_used_ms: None,
    }
}

fn store_failed(err: UserStoreError) -> UserError {
    tracing::error!(error = %err, "user store write failed; change not made");
    UserError::Store
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
pub struct Authenticate {
    /// SHA-256 of the presented key.
    pub digest: KeyDigest,
    /// The key id the key carries.
    pub key_id: String,
}

impl Handler<Authenticate> for KeyRegistry {
    type Result = Result<Principal, Reason>;

    fn handle(&mut self, msg: Authenticate, _ctx: &mut Self::Context) -> Self::Result {
        self.judge_db_key(&msg.digest, &msg.key_id)
            .map(|a| a.principal)
    }
}

/// Create a database user with a new key.
#[derive(Message)]
#[rtype(result = "Result<NewKey, UserError>")]
pub struct CreateUser {
    /// The user name.
    pub id: String,
}

type Reply<T> = AtomicResponse<KeyRegistry, Result<T, UserError>>;

fn reply_now<T: 'static>(result: Result<T, UserError>) -> Reply<T> {
    AtomicResponse::new(Box::pin(actix::fut::ready(result)))
}

impl Handler<CreateUser> for KeyRegistry {
    type Result = Reply<NewKey>;

    fn handle(&mut self, msg: CreateUser, _ctx: &mut Self::Context) -> Self::Result {
        let Some(db) = self.db.as_ref() else {
            return reply_now(Err(UserError::Disabled));
        };
        if !valid_user_name(&msg.id) {
            return reply_now(Err(UserError::BadName));
        }
        if msg.id == crate::principal::ANONYMOUS_USERNAME {
            return reply_now(Err(UserError::Reserved(msg.id)));
        }
        if self.is_static_user(&msg.id) {
            return reply_now(Err(UserError::StaticUser(msg.id)));
        }
        if db.users.contains_key(&msg.id) {
            return reply_now(Err(UserError::Exists(msg.id)));
        }
        let key = match fresh_key(&db.by_key) {
            Ok(key) => key,
            Err(err) => return reply_now(Err(err)),
        };
        let record = new_record(&msg.id, &key);
        let store = db.store.clone();
        AtomicResponse::new(Box::pin(
            async move { store.insert(&record).await.map(|()| record) }
                .into_actor(self)
                .map(move |stored, act, _ctx| {
                    let record = stored.map_err(store_failed)?;
                    act.insert_user(record);
                    Ok(key)
                }),
        ))
    }
}

/// Replace a database user's key; the old key stops working before the reply.
#[derive(Message)]
#[rtype(result = "Result<NewKey, UserError>")]
pub struct RotateKey {
    /// The user name.
    pub id: String,
}

impl Handler<RotateKey> for KeyRegistry {
    type Result = Reply<NewKey>;

    fn handle(&mut self, msg: RotateKey, _ctx: &mut Self::Context) -> Self::Result {
        let (db, _) = match self.db_user(&msg.id) {
            Ok(found) => found,
            Err(err) => return reply_now(Err(err)),
        };
        let key = match fresh_key(&db.by_key) {
            Ok(key) => key,
            Err(err) => return reply_now(Err(err)),
        };
        let new_digest = digest(key.expose().as_bytes());
        let store = db.store.clone();
        let id = msg.id;
        AtomicResponse::new(Box::pin(
            {
                let (id, key_id) = (id.clone(), key.id().to_owned());
                async move { store.set_key(&id, &key_id, &new_digest).await }
            }
            .into_actor(self)
            .map(move |stored, act, _ctx| {
                stored.map_err(store_failed)?;
                let published = act.published.clone();
                let db = act.db.as_mut().ok_or(UserError::Disabled)?;
                let user = db
                    .users
                    .get_mut(&id)
                    .ok_or_else(|| UserError::NotFound(id.clone()))?;
                published.0.remove(&user.digest);
                db.by_key.remove(&user.key_id);
                user.key_id = key.id().to_owned();
                user.digest = new_digest;
                user.revoked = false;
                db.by_key.insert(user.key_id.clone(), id.clone());
                Ok(key)
            }),
        ))
    }
}

/// Deactivate a database user; with `revoke_key`, its key stays revoked until a rotation.
#[derive(Message)]
#[rtype(result = "Result<(), UserError>")]
pub struct DeactivateUser {
    /// The user name.
    pub id: String,
    /// Also revoke the current key.
    pub revoke_key: bool,
    /// Who asks (users cannot deactivate themselves).
    pub caller: String,
}

/// Activate a deactivated database user.
#[derive(Message)]
#[rtype(result = "Result<(), UserError>")]
pub struct ActivateUser {
    /// The user name.
    pub id: String,
}

/// Delete a database user; its key stops working before the reply.
#[derive(Message)]
#[rtype(result = "Result<(), UserError>")]
pub struct DeleteUser {
    /// The user name.
    pub id: String,
    /// Who asks (users cannot delete themselves).
    pub caller: String,
}

impl KeyRegistry {
    /// Writes the new state, then applies it and withdraws the published answer.
    fn change_state(&mut self, id: String, active: bool, revoked: bool) -> Reply<()> {
        let Some(db) = self.db.as_ref() else {
            return reply_now(Err(UserError::Disabled));
        };
        let store = db.store.clone();
        AtomicResponse::new(Box::pin(
            {
                let id = id.clone();
                async move { store.set_state(&id, active, revoked).await }
            }
            .into_actor(self)
            .map(move |stored, act, _ctx| {
                stored.map_err(store_failed)?;
                let published = act.published.clone();
                let db = act.db.as_mut().ok_or(UserError::Disabled)?;
                let user = db
                    .users
                    .get_mut(&id)
                    .ok_or_else(|| UserError::NotFound(id.clone()))?;
                user.active = active;
                user.revoked = revoked;
                if !active || revoked {
                    published.0.remove(&user.digest);
                }
                act.recount();
                Ok(())
            }),
        ))
    }
}

impl Handler<DeactivateUser> for KeyRegistry {
    type Result = Reply<()>;

    fn handle(&mut self, msg: DeactivateUser, _ctx: &mut Self::Context) -> Self::Result {
        let revoked = match self.db_user(&msg.id) {
            Err(err) => return reply_now(Err(err)),
            Ok(_) if msg.caller == msg.id => {
                return reply_now(Err(UserError::SelfAction("deactivate")))
            }
            Ok((_, user)) if !user.active => {
                return reply_now(Err(UserError::AlreadyInactive(msg.id)))
            }
            Ok((_, user)) => user.revoked || msg.revoke_key,
        };
        self.change_state(msg.id, false, revoked)
    }
}

impl Handler<ActivateUser> for KeyRegistry {
    type Result = Reply<()>;

    fn handle(&mut self, msg: ActivateUser, _ctx: &mut Self::Context) -> Self::Result {
        let revoked = match self.db_user(&msg.id) {
            Err(err) => return reply_now(Err(err)),
            Ok((_, user)) if user.active => {
                return reply_now(Err(UserError::AlreadyActive(msg.id)))
            }
            Ok((_, user)) => user.revoked,
        };
        self.change_state(msg.id, true, revoked)
    }
}

impl Handler<DeleteUser> for KeyRegistry {
    type Result = Reply<()>;

    fn handle(&mut self, msg: DeleteUser, _ctx: &mut Self::Context) -> Self::Result {
        let store = match self.db_user(&msg.id) {
            Err(err) => return reply_now(Err(err)),
            Ok(_) if msg.caller == msg.id => {
                return reply_now(Err(UserError::SelfAction("delete")))
            }
            Ok((db, _)) => db.store.clone(),
        };
        let id = msg.id;
        AtomicResponse::new(Box::pin(
            {
                let id = id.clone();
                async move { store.delete(&id).await }
            }
            .into_actor(self)
            .map(move |stored, act, _ctx| {
                stored.map_err(store_failed)?;
                let published = act.published.clone();
                let db = act.db.as_mut().ok_or(UserError::Disabled)?;
                if let Some(user) = db.users.remove(&id) {
                    published.0.remove(&user.digest);
                    db.by_key.remove(&user.key_id);
                }
                act.recount();
                Ok(())
            }),
        ))
    }
}

/// List every user (database users, then static users), sorted by name.
#[derive(Message)]
#[rtype(result = "Result<Vec<UserInfo>, UserError>")]
pub struct ListUsers;

/// One user, database or static.
#[derive(Message)]
#[rtype(result = "Result<Option<UserInfo>, UserError>")]
pub struct GetUser {
    /// The user name.
    pub id: String,
}

impl KeyRegistry {
    fn info_of(&self, id: &str) -> Option<UserInfo> {
        if let Some(user) = self.db.as_ref().and_then(|db| db.users.get(id)) {
            let last = user.last_used.load(Ordering::Relaxed);
            return Some(UserInfo {
                id: id.to_owned(),
                is_static: false,
                active: user.active,
                created_at_ms: Some(user.created_at_ms),
                last_used_ms: (last > 0).then_some(last),
                first_letters: Some(db_key::first_letters(&user.key_id).to_owned()),
            });
        }
        self.is_static_user(id).then(|| UserInfo {
            id: id.to_owned(),
            is_static: true,
            active: true,
            created_at_ms: None,
            last_used_ms: None,
            first_letters: None,
        })
    }
}

impl Handler<ListUsers> for KeyRegistry {
    type Result = Result<Vec<UserInfo>, UserError>;

    fn handle(&mut self, _msg: ListUsers, _ctx: &mut Self::Context) -> Self::Result {
        let db = self.db.as_ref().ok_or(UserError::Disabled)?;
        let mut ids: Vec<&String> = db.users.keys().collect();
        ids.sort();
        let mut out: Vec<UserInfo> = ids.iter().filter_map(|id| self.info_of(id)).collect();
        for name in &self.static_users {
            if !db.users.contains_key(name) {
                out.extend(self.info_of(name));
            }
        }
        Ok(out)
    }
}

impl Handler<GetUser> for KeyRegistry {
    type Result = Result<Option<UserInfo>, UserError>;

    fn handle(&mut self, msg: GetUser, _ctx: &mut Self::Context) -> Self::Result {
        if self.db.is_none() {
            return Err(UserError::Disabled);
        }
        Ok(self.info_of(&msg.id))
    }
}

/// What request handlers hold: the actor's address and its published answers.
#[derive(Clone)]
pub struct KeyRegistryHandle {
    addr: Addr<KeyRegistry>,
    published: Published,
    counts: Arc<UserCounts>,
    db_enabled: bool,
}

impl KeyRegistryHandle {
    /// Authenticates a presented API key. A published answer costs one SHA-256 and one map
    /// read; anything else is a message to the actor. A key with the database prefix is
    /// judged only as a database key, and one with a bad shape or checksum is refused without
    /// any lookup.
    pub async fn authenticate(
        &self,
        key: &str,
    ) -> Result<(Principal, AuthMethod), (AuthMethod, Reason)> {
        let db_key_id = if self.db_enabled && db_key::looks_like_db_key(key) {
            match db_key::parse(key) {
                Ok(id) => Some(id),
                Err(_) => return Err((AuthMethod::ApiKeyDb, Reason::InvalidKey)),
            }
        } else {
            None
        };
        let presented = digest(key.as_bytes());
        if let Some(answer) = self.published.0.get(&presented) {
            if let Some(last_used) = &answer.last_used {
                last_used.store(now_ms(), Ordering::Relaxed);
            }
            return Ok((answer.principal.clone(), answer.method));
        }
        // Every static key is published: a miss on a static-shaped key is final.
        let Some(key_id) = db_key_id else {
            return Err((AuthMethod::ApiKeyStatic, Reason::InvalidKey));
        };
        let msg = Authenticate {
            digest: presented,
            key_id: key_id.to_owned(),
        };
        let method = AuthMethod::ApiKeyDb;
        match self.addr.send(msg).await {
            Ok(verdict) => verdict
                .map(|principal| (principal, method))
                .map_err(|reason| (method, reason)),
            Err(err) => {
                tracing::error!(error = %err, "key registry did not answer");
                Err((method, Reason::Internal))
            }
        }
    }

    /// The actor's address, for user management.
    pub fn addr(&self) -> &Addr<KeyRegistry> {
        &self.addr
    }

    /// Whether database users are enabled.
    pub fn db_enabled(&self) -> bool {
        self.db_enabled
    }

    /// Database users by state, for the metrics endpoint.
    pub fn counts(&self) -> &UserCounts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_config::Settings;

    fn static_keys(keys: &str, users: &str) -> StaticApiKeys {
        let settings = Settings::from_vars([
            ("AUTHENTICATION_APIKEY_ENABLED", "true"),
            ("AUTHENTICATION_APIKEY_ALLOWED_KEYS", keys),
            ("AUTHENTICATION_APIKEY_USERS", users),
        ])
        .expect("valid settings");
        settings.authentication.api_key.expect("keys enabled")
    }

    async fn with_db(dir: &std::path::Path, keys: Option<&StaticApiKeys>) -> KeyRegistryHandle {
        let store = UserStore::open(dir).await.expect("store");
        KeyRegistry::load(keys, Some(store))
            .await
            .expect("load")
            .start_with_handle()
    }

    async fn create(h: &KeyRegistryHandle, id: &str) -> String {
        h.addr()
            .send(CreateUser { id: id.into() })
            .await
            .expect("actor")
            .expect("created")
            .expose()
            .to_owned()
    }

    fn user_of(r: Result<(Principal, AuthMethod), (AuthMethod, Reason)>) -> String {
        r.map(|(p, _)| p.username().to_owned()).unwrap_or_default()
    }

    #[actix::test]
    async fn accepts_each_static_key_as_its_user() {
        let handle =
            KeyRegistry::new(Some(&static_keys("k-one,k-two", "alice,bob"))).start_with_handle();
        let (p, m) = handle.authenticate("k-one").await.expect("k-one accepted");
        assert_eq!((p.username(), m), ("alice", AuthMethod::ApiKeyStatic));
        let (p, _) = handle.authenticate("k-two").await.expect("k-two accepted");
        assert_eq!(p.username(), "bob");
        assert_eq!(p.kind(), PrincipalKind::StaticKey);
    }

    #[actix::test]
    async fn maps_every_key_to_a_single_user() {
        let handle = KeyRegistry::new(Some(&static_keys("a1,a2,a3", "ops"))).start_with_handle();
        for key in ["a1", "a2", "a3"] {
            let (p, _) = handle.authenticate(key).await.expect("accepted");
            assert_eq!(p.username(), "ops");
        }
    }

    #[actix::test]
    async fn rejects_unknown_and_near_miss_keys() {
        let handle =
            KeyRegistry::new(Some(&static_keys("secret-key-0001", "alice"))).start_with_handle();
        for key in [
            "",
            "secret-key-0002",
            "secret-key-000",
            "secret-key-00011",
            "SECRET-KEY-0001",
        ] {
            assert_eq!(
                handle.authenticate(key).await.err(),
                Some((AuthMethod::ApiKeyStatic, Reason::InvalidKey)),
                "key of length {}",
                key.len()
            );
        }
    }

    #[actix::test]
    async fn database_keys_are_judged_by_the_actor_then_published() {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = with_db(dir.path(), None).await;
        let key = create(&h, "hank").await;
        let d = digest(key.as_bytes());
        assert!(
            !h.published.0.contains_key(&d),
            "not published before first use"
        );
        assert_eq!(user_of(h.authenticate(&key).await), "hank");
        assert!(
            h.published.0.contains_key(&d),
            "published after the actor accepted it"
        );
    }

    #[actix::test]
    async fn database_keys_work_until_rotated_deactivated_or_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = with_db(dir.path(), None).await;
        let key = create(&h, "carol").await;
        assert_eq!(user_of(h.authenticate(&key).await), "carol");
        assert_eq!(
            h.authenticate(&key).await.map(|a| a.1),
            Ok(AuthMethod::ApiKeyDb)
        );

        let rotated = h
            .addr()
            .send(RotateKey { id: "carol".into() })
            .await
            .expect("actor")
            .expect("rotated");
        assert_eq!(
            h.authenticate(&key).await.err(),
            Some((AuthMethod::ApiKeyDb, Reason::InvalidKey))
        );
        assert_ne!(
            &rotated.id()[..3],
            &key[4..7],
            "first letters change (almost surely)"
        );
        assert_eq!(user_of(h.authenticate(rotated.expose()).await), "carol");

        let deactivate = DeactivateUser {
            id: "carol".into(),
            revoke_key: false,
            caller: "root".into(),
        };
        h.addr()
            .send(deactivate)
            .await
            .expect("actor")
            .expect("deactivated");
        assert_eq!(
            h.authenticate(rotated.expose()).await.err(),
            Some((AuthMethod::ApiKeyDb, Reason::UserInactive))
        );
        h.addr()
            .send(ActivateUser { id: "carol".into() })
            .await
            .expect("actor")
            .expect("activated");
        assert_eq!(user_of(h.authenticate(rotated.expose()).await), "carol");

        let delete = DeleteUser {
            id: "carol".into(),
            caller: "root".into(),
        };
        h.addr()
            .send(delete)
            .await
            .expect("actor")
            .expect("deleted");
        assert_eq!(
            h.authenticate(rotated.expose()).await.err(),
            Some((AuthMethod::ApiKeyDb, Reason::InvalidKey))
        );
    }

    #[actix::test]
    async fn a_revoked_key_stays_revoked_after_activation_until_rotation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = with_db(dir.path(), None).await;
        let key = create(&h, "dave").await;
        let deactivate = DeactivateUser {
            id: "dave".into(),
            revoke_key: true,
            caller: "root".into(),
        };
        h.addr()
            .send(deactivate)
            .await
            .expect("actor")
            .expect("deactivated");
        h.addr()
            .send(ActivateUser { id: "dave".into() })
            .await
            .expect("actor")
            .expect("activated");
        assert_eq!(
            h.authenticate(&key).await.err(),
            Some((AuthMethod::ApiKeyDb, Reason::Revoked))
        );
        let rotated = h
            .addr()
            .send(RotateKey { id: "dave".into() })
            .await
            .expect("actor")
            .expect("rotated");
        assert_eq!(user_of(h.authenticate(rotated.expose()).await), "dave");
    }

    #[actix::test]
    async fn management_errors_name_the_rule() {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = with_db(dir.path(), Some(&static_keys("static-key", "envuser"))).await;
        create(&h, "erin").await;
        let send_create = |id: &str| h.addr().send(CreateUser { id: id.into() });
        assert_eq!(
            send_create("erin").await.expect("actor").err(),
            Some(UserError::Exists("erin".into()))
        );
        assert_eq!(
            send_create("envuser").await.expect("actor").err(),
            Some(UserError::StaticUser("envuser".into()))
        );
        assert_eq!(
            send_create("anonymous").await.expect("actor").err(),
            Some(UserError::Reserved("anonymous".into()))
        );
        for bad in ["", "1abc", "a b", "a:b", "аdmin", &"a".repeat(129)] {
            assert_eq!(
                send_create(bad).await.expect("actor").err(),
                Some(UserError::BadName),
                "{bad:?}"
            );
        }
        let rotate = h
            .addr()
            .send(RotateKey {
                id: "nobody".into(),
            })
            .await
            .expect("actor");
        assert_eq!(rotate.err(), Some(UserError::NotFound("nobody".into())));
        let rotate = h
            .addr()
            .send(RotateKey {
                id: "envuser".into(),
            })
            .await
            .expect("actor");
        assert_eq!(rotate.err(), Some(UserError::StaticUser("envuser".into())));
        let own = DeactivateUser {
            id: "erin".into(),
            revoke_key: false,
            caller: "erin".into(),
        };
        assert_eq!(
            h.addr().send(own).await.expect("actor").err(),
            Some(UserError::SelfAction("deactivate"))
        );
        let activate = h
            .addr()
            .send(ActivateUser { id: "erin".into() })
            .await
            .expect("actor");
        assert_eq!(
            activate.err(),
            Some(UserError::AlreadyActive("erin".into()))
        );
    }

    #[actix::test]
    async fn malformed_database_keys_are_refused_without_a_lookup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = with_db(dir.path(), None).await;
        let key = create(&h, "frank").await;
        let mut bad = key.clone().into_bytes();
        bad[30] = if bad[30] == b'x' { b'y' } else { b'x' };
        let bad = String::from_utf8(bad).expect("ascii");
        assert_eq!(
            h.authenticate(&bad).await.err(),
            Some((AuthMethod::ApiKeyDb, Reason::InvalidKey))
        );
    }

    #[actix::test]
    async fn changes_survive_a_reload_from_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (old, new) = {
            let h = with_db(dir.path(), None).await;
            let old = create(&h, "gina").await;
            let new = h
                .addr()
                .send(RotateKey { id: "gina".into() })
                .await
                .expect("actor")
                .expect("rotated");
            (old, new.expose().to_owned())
        };
        let h = with_db(dir.path(), None).await;
        assert_eq!(user_of(h.authenticate(&new).await), "gina");
        assert!(h.authenticate(&old).await.is_err());
    }

    #[actix::test]
    async fn bootstrap_creates_admin_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = UserStore::open(dir.path()).await.expect("store");
        let mut registry = KeyRegistry::load(None, Some(store.clone()))
            .await
            .expect("load");
        let key = registry
            .bootstrap_admin()
            .await
            .expect("bootstrap")
            .expect("a key");
        let h = registry.start_with_handle();
        assert_eq!(user_of(h.authenticate(key.expose()).await), BOOTSTRAP_ADMIN);
        let mut again = KeyRegistry::load(None, Some(store)).await.expect("load");
        assert!(again.bootstrap_admin().await.expect("bootstrap").is_none());
    }

    #[test]
    fn user_names_follow_weaviates_rule() {
        for good in ["a", "Alice", "a-b_c@d.e", &"a".repeat(128)] {
            assert!(valid_user_name(good), "{good:?}");
        }
        for bad in [
            "",
            "_a",
            "9a",
            "a b",
            "a:b",
            "a\u{0}",
            "аdmin",
            &"a".repeat(129),
        ] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }
}
