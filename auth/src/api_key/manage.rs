//! Changes to database users (create, rotate, activate, deactivate, delete, and the bootstrap
//! admin) and the two reads of them (list, get), as messages the KeyRegistry handles.
//!
//! A change is checked against the in-memory users, written to the user store, then applied
//! in memory by one `apply_*` method, which also withdraws any published answer it ends.
//! Each handler returns an `AtomicResponse`, so the mailbox is held from the check through
//! the write: nothing can change the users in between, and the apply step finds them as the
//! check left them. The messages are crate-private: callers use the handle's methods.

use std::future::Future;
use std::sync::Arc;

use actix::prelude::*;

use super::format::{self, NewKey};
use super::model::{valid_user_name, UserError, UserInfo, UserPage};
use super::now_ms;
use super::registry::{Backend, DbUsers, KeyRegistry};
use super::shared::{SharedStoreError, SharedUserStore, Written};
use super::store::{UserRecord, UserStoreError};
use super::table::{self, Slot, UserRow, UserTable};
use crate::digest::{digest, KeyDigest};

/// The meta-table fact recording that the bootstrap admin was created once.
const BOOTSTRAP_FACT: &str = "bootstrap_admin_created";

/// The bootstrap admin's user name.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Create a database user with a new key.
#[derive(Message)]
#[rtype(result = "Result<NewKey, UserError>")]
pub(crate) struct CreateUser {
    pub(crate) id: String,
}

/// Replace a database user's key; the old key stops working before the reply.
#[derive(Message)]
#[rtype(result = "Result<NewKey, UserError>")]
pub(crate) struct RotateKey {
    pub(crate) id: String,
}

/// Deactivate a database user; with `revoke_key`, its key stays revoked until a rotation.
#[derive(Message)]
#[rtype(result = "Result<(), UserError>")]
pub(crate) struct DeactivateUser {
    pub(crate) id: String,
    pub(crate) revoke_key: bool,
    /// Who asks (users cannot deactivate themselves).
    pub(crate) caller: String,
}

/// Activate a deactivated database user.
#[derive(Message)]
#[rtype(result = "Result<(), UserError>")]
pub(crate) struct ActivateUser {
    pub(crate) id: String,
}

/// Delete a database user; its key stops working before the reply.
#[derive(Message)]
#[rtype(result = "Result<(), UserError>")]
pub(crate) struct DeleteUser {
    pub(crate) id: String,
    /// Who asks (users cannot delete themselves).
    pub(crate) caller: String,
}

/// One page of the listing: up to `limit` database users in name order after `after`
/// (from the first without it); the page that reaches the end also carries the static users.
#[derive(Message)]
#[rtype(result = "Result<UserPage, UserError>")]
pub(crate) struct ListUsers {
    pub(crate) after: Option<String>,
    pub(crate) limit: usize,
}

/// One user, database or static.
#[derive(Message)]
#[rtype(result = "Result<Option<UserInfo>, UserError>")]
pub(crate) struct GetUser {
    pub(crate) id: String,
}

type Reply<T> = AtomicResponse<KeyRegistry, Result<T, UserError>>;

fn reply_now<T: 'static>(result: Result<T, UserError>) -> Reply<T> {
    AtomicResponse::new(Box::pin(actix::fut::ready(result)))
}

/// Writes with `write` (the store call, off the actor), then applies what it wrote with
/// `apply` on the actor, still inside the held mailbox.
fn write_then_apply<S: 'static, T: 'static>(
    act: &KeyRegistry,
    write: impl Future<Output = Result<S, UserStoreError>> + 'static,
    apply: impl FnOnce(&mut KeyRegistry, S) -> Result<T, UserError> + 'static,
) -> Reply<T> {
    AtomicResponse::new(Box::pin(
        write
            .into_actor(act)
            .map(move |stored, act, _ctx| apply(act, stored.map_err(store_failed)?)),
    ))
}

/// A change to the store shared by replicas: `write` commits it (off the actor); then, still
/// inside the held mailbox, the store is read from the table's position and the read applied
/// (`sync.rs`), so the change is in the table before the reply, by the one path every change
/// from every replica takes. `done` is the reply.
fn shared_change<T: 'static>(
    act: &KeyRegistry,
    id: String,
    write: impl Future<Output = Result<Written, SharedStoreError>> + 'static,
    done: T,
) -> Reply<T> {
    let Some(sync) = act.sync.as_ref() else {
        return reply_now(Err(UserError::Disabled));
    };
    let store = sync.store.clone();
    let base = sync.position.clone();
    let run = async move {
        let written = write.await?;
        let read = match written {
            Written::Done(_) => Some(store.read(base).await),
            Written::Missing | Written::Exists => None,
        };
        Ok::<_, SharedStoreError>((written, read))
    };
    AtomicResponse::new(Box::pin(run.into_actor(act).map(
        move |result, act, ctx| match result.map_err(shared_failed)? {
            (Written::Done(seq), Some(read)) => {
                act.after_write(ctx, seq, read);
                Ok(done)
            }
            (Written::Exists, _) => Err(UserError::Exists(id)),
            _ => Err(UserError::NotFound(id)),
        },
    )))
}

fn shared_failed(err: SharedStoreError) -> UserError {
    if err.is_unavailable() {
        tracing::warn!(error = %err, "user store unreachable; change not made");
        return UserError::StoreUnavailable;
    }
    tracing::error!(error = %err, "user store write failed; change not made");
    UserError::Store
}

fn store_failed(err: UserStoreError) -> UserError {
    tracing::error!(error = %err, "user store write failed; change not made");
    UserError::Store
}

fn fresh_key(users: &UserTable) -> Result<NewKey, UserError> {
    // Ids carry 71 random bits; a collision is astronomically unlikely, but cheap to rule out.
    for _ in 0..4 {
        let key = format::generate().map_err(|err| {
            tracing::error!(error = %err, "OS random source failed");
            UserError::Random
        })?;
        if table::key_id(key.id()).is_some_and(|id| !users.key_taken(&id)) {
            return Ok(key);
        }
    }
    Err(UserError::Random)
}

/// The users and the slot of the user a change checked before its store write. The mailbox
/// is held from the check through the write, so the user is still there: the errors exist
/// for the no-`unwrap` rule, and answer as the check would have.
fn checked<'a>(
    db: Option<&'a mut DbUsers>,
    id: &str,
) -> Result<(&'a mut DbUsers, Slot), UserError> {
    let db = db.ok_or(UserError::Disabled)?;
    let slot = db
        .table
        .slot_of(id)
        .ok_or_else(|| UserError::NotFound(id.to_owned()))?;
    Ok((db, slot))
}

/// The row of a user just written to the store, or read back whole (a replica's full reload);
/// `None` for a key id not of the key format (never: every key written comes from `format`).
pub(super) fn row_of(record: UserRecord) -> Option<UserRow> {
    Some(UserRow {
        key_id: table::key_id(&record.key_id)?,
        name: Arc::from(record.id),
        digest: record.key_digest,
        active: record.active,
        revoked: record.revoked,
        created_at_ms: record.created_at_ms,
        last_used_ms: record.last_used_ms.unwrap_or(0),
        persisted_last_used_ms: record.last_used_ms.unwrap_or(0),
    })
}

impl KeyRegistry {
    /// Creates the `admin` database user on the first start of a store, once, with the key the
    /// operator `supplied` or else a generated one. Returns its key (a generated one is shown
    /// once); `None` when it was created before (even if since deleted).
    pub async fn bootstrap_admin(
        &mut self,
        supplied: Option<NewKey>,
    ) -> Result<Option<NewKey>, UserError> {
        let Some(db) = self.db.as_mut() else {
            return Err(UserError::Disabled);
        };
        let store = match &db.store {
            Backend::Local(store) => store.clone(),
            Backend::Shared(store) => {
                let store = store.clone();
                return self.bootstrap_shared_admin(store, supplied).await;
            }
        };
        let done = store.meta(BOOTSTRAP_FACT).await.map_err(|err| {
            tracing::error!(error = %err, "could not read the user store");
            UserError::Store
        })?;
        if done.is_some() {
            return Ok(None);
        }
        if db.table.get(BOOTSTRAP_ADMIN).is_some() {
            store
                .set_meta(BOOTSTRAP_FACT, "existing")
                .await
                .map_err(|_| UserError::Store)?;
            return Ok(None);
        }
        let key = match supplied {
            Some(key) if table::key_id(key.id()).is_none_or(|id| db.table.key_taken(&id)) => {
                return Err(UserError::KeyInUse)
            }
            Some(key) => key,
            None => fresh_key(&db.table)?,
        };
        let record = UserRecord::new(BOOTSTRAP_ADMIN, &key, now_ms());
        store
            .insert_with_meta(&record, BOOTSTRAP_FACT, "created")
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "could not store the bootstrap admin");
                UserError::Store
            })?;
        self.apply_create(record)?;
        Ok(Some(key))
    }

    /// [`KeyRegistry::bootstrap_admin`] on the store shared by replicas: of replicas starting
    /// at once on an empty store, exactly one creates the admin (`shared.rs`).
    async fn bootstrap_shared_admin(
        &mut self,
        store: SharedUserStore,
        supplied: Option<NewKey>,
    ) -> Result<Option<NewKey>, UserError> {
        let db = self.db.as_ref().ok_or(UserError::Disabled)?;
        let key = match supplied {
            Some(key) if table::key_id(key.id()).is_none_or(|id| db.table.key_taken(&id)) => {
                return Err(UserError::KeyInUse)
            }
            Some(key) => key,
            None => fresh_key(&db.table)?,
        };
        let record = UserRecord::new(BOOTSTRAP_ADMIN, &key, now_ms());
        let created = store
            .bootstrap(&record, BOOTSTRAP_FACT)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "could not store the bootstrap admin");
                UserError::Store
            })?;
        if created.is_none() {
            return Ok(None);
        }
        let base = self.sync.as_ref().and_then(|sync| sync.position.clone());
        match store.read(base).await {
            Ok(read) => {
                if let Some((seq, started)) = self.apply_read(read, super::sync::Via::Write) {
                    self.confirm_now(&store, seq, started).await;
                }
            }
            // The admin arrives with the first poll.
            Err(err) => tracing::warn!(error = %err, "cannot read back the bootstrap admin"),
        }
        Ok(Some(key))
    }

    /// The checks every change to an existing user starts with: database users on, not a
    /// static user, and the user exists.
    fn check_user(&self, id: &str) -> Result<(&DbUsers, bool, bool), UserError> {
        let db = self.db.as_ref().ok_or(UserError::Disabled)?;
        let user = db.table.get(id);
        if self.is_static_user(id) && user.is_none() {
            return Err(UserError::StaticUser(id.to_owned()));
        }
        let user = user.ok_or_else(|| UserError::NotFound(id.to_owned()))?;
        Ok((db, user.active, user.revoked))
    }

    /// Adds a user just written to the store.
    fn apply_create(&mut self, record: UserRecord) -> Result<(), UserError> {
        let db = self.db.as_mut().ok_or(UserError::Disabled)?;
        let name = record.id.clone();
        // The check before the write ruled both failures out; were one to happen, the user is
        // in the store and appears at the next start.
        row_of(record)
            .and_then(|row| db.table.insert(row))
            .ok_or_else(|| {
                tracing::error!("a user just stored clashes with one in memory");
                UserError::Exists(name)
            })?;
        self.publish_counts();
        Ok(())
    }

    /// Gives a user the key just written to the store; the old key's answer is withdrawn.
    fn apply_rotation(
        &mut self,
        id: &str,
        key: &NewKey,
        new_digest: KeyDigest,
    ) -> Result<(), UserError> {
        let (db, slot) = checked(self.db.as_mut(), id)?;
        let old = db.table.row(slot).map(|row| (row.digest, row.active));
        let Some((old_digest, active)) = old else {
            return Err(UserError::NotFound(id.to_owned()));
        };
        KeyRegistry::withdraw(&self.published, db, &old_digest);
        let key_id = table::key_id(key.id()).ok_or(UserError::KeyInUse)?;
        if !db.table.set_key(slot, key_id, new_digest) {
            return Err(UserError::KeyInUse);
        }
        db.table.set_state(slot, active, false);
        Ok(())
    }

    /// Sets a user's state just written to the store; a key that stops working has its
    /// answer withdrawn.
    fn apply_state(&mut self, id: &str, active: bool, revoked: bool) -> Result<(), UserError> {
        let (db, slot) = checked(self.db.as_mut(), id)?;
        if !active || revoked {
            if let Some(digest) = db.table.row(slot).map(|row| row.digest) {
                KeyRegistry::withdraw(&self.published, db, &digest);
            }
        }
        db.table.set_state(slot, active, revoked);
        self.publish_counts();
        Ok(())
    }

    /// Forgets a user just deleted from the store, and withdraws its key's answer.
    fn apply_delete(&mut self, id: &str) -> Result<(), UserError> {
        let db = self.db.as_mut().ok_or(UserError::Disabled)?;
        if let Some(digest) = db.table.get(id).map(|row| row.digest) {
            KeyRegistry::withdraw(&self.published, db, &digest);
            db.table.remove(id);
        }
        self.publish_counts();
        Ok(())
    }

    /// Writes a user's new state, then applies it.
    fn change_state(&mut self, id: String, active: bool, revoked: bool) -> Reply<()> {
        let Some(db) = self.db.as_ref() else {
            return reply_now(Err(UserError::Disabled));
        };
        let store = match &db.store {
            Backend::Local(store) => store.clone(),
            Backend::Shared(store) => {
                let store = store.clone();
                let write = {
                    let id = id.clone();
                    async move { store.set_state(&id, active, revoked).await }
                };
                return shared_change(self, id, write, ());
            }
        };
        let write = {
            let id = id.clone();
            async move { store.set_state(&id, active, revoked).await }
        };
        write_then_apply(self, write, move |act, ()| {
            act.apply_state(&id, active, revoked)
        })
    }

    fn info_of(&self, id: &str) -> Option<UserInfo> {
        if let Some(row) = self.db.as_ref().and_then(|db| db.table.get(id)) {
            return Some(self.row_info(row));
        }
        self.is_static_user(id).then(|| static_info(id))
    }

    fn row_info(&self, row: &UserRow) -> UserInfo {
        let last = self.last_used_of(row);
        UserInfo {
            id: row.name.to_string(),
            is_static: false,
            active: row.active,
            created_at_ms: Some(row.created_at_ms),
            last_used_ms: (last > 0).then_some(last),
            first_letters: Some(row.first_letters()),
        }
    }
}

fn static_info(id: &str) -> UserInfo {
    UserInfo {
        id: id.to_owned(),
        is_static: true,
        active: true,
        created_at_ms: None,
        last_used_ms: None,
        first_letters: None,
    }
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
        if db.table.get(&msg.id).is_some() {
            return reply_now(Err(UserError::Exists(msg.id)));
        }
        let key = match fresh_key(&db.table) {
            Ok(key) => key,
            Err(err) => return reply_now(Err(err)),
        };
        let record = UserRecord::new(&msg.id, &key, now_ms());
        let store = match &db.store {
            Backend::Local(store) => store.clone(),
            Backend::Shared(store) => {
                let store = store.clone();
                let write = async move { store.insert(&record).await };
                return shared_change(self, msg.id, write, key);
            }
        };
        let write = async move { store.insert(&record).await.map(|()| record) };
        write_then_apply(self, write, move |act, record| {
            act.apply_create(record)?;
            Ok(key)
        })
    }
}

impl Handler<RotateKey> for KeyRegistry {
    type Result = Reply<NewKey>;

    fn handle(&mut self, msg: RotateKey, _ctx: &mut Self::Context) -> Self::Result {
        let db = match self.check_user(&msg.id) {
            Ok((db, _, _)) => db,
            Err(err) => return reply_now(Err(err)),
        };
        let key = match fresh_key(&db.table) {
            Ok(key) => key,
            Err(err) => return reply_now(Err(err)),
        };
        let new_digest = digest(key.expose().as_bytes());
        let id = msg.id;
        let store = match &db.store {
            Backend::Local(store) => store.clone(),
            Backend::Shared(store) => {
                let store = store.clone();
                let write = {
                    let (id, key_id) = (id.clone(), key.id().to_owned());
                    async move { store.set_key(&id, &key_id, &new_digest).await }
                };
                return shared_change(self, id, write, key);
            }
        };
        let write = {
            let (id, key_id) = (id.clone(), key.id().to_owned());
            async move { store.set_key(&id, &key_id, &new_digest).await }
        };
        write_then_apply(self, write, move |act, ()| {
            act.apply_rotation(&id, &key, new_digest)?;
            Ok(key)
        })
    }
}

impl Handler<DeactivateUser> for KeyRegistry {
    type Result = Reply<()>;

    fn handle(&mut self, msg: DeactivateUser, _ctx: &mut Self::Context) -> Self::Result {
        let revoked = match self.check_user(&msg.id) {
            Err(err) => return reply_now(Err(err)),
            Ok(_) if msg.caller == msg.id => {
                return reply_now(Err(UserError::SelfAction("deactivate")))
            }
            Ok((_, active, _)) if !active => {
                return reply_now(Err(UserError::AlreadyInactive(msg.id)))
            }
            Ok((_, _, revoked)) => revoked || msg.revoke_key,
        };
        self.change_state(msg.id, false, revoked)
    }
}

impl Handler<ActivateUser> for KeyRegistry {
    type Result = Reply<()>;

    fn handle(&mut self, msg: ActivateUser, _ctx: &mut Self::Context) -> Self::Result {
        let revoked = match self.check_user(&msg.id) {
            Err(err) => return reply_now(Err(err)),
            Ok((_, active, _)) if active => {
                return reply_now(Err(UserError::AlreadyActive(msg.id)))
            }
            Ok((_, _, revoked)) => revoked,
        };
        self.change_state(msg.id, true, revoked)
    }
}

impl Handler<DeleteUser> for KeyRegistry {
    type Result = Reply<()>;

    fn handle(&mut self, msg: DeleteUser, _ctx: &mut Self::Context) -> Self::Result {
        let store = match self.check_user(&msg.id) {
            Err(err) => return reply_now(Err(err)),
            Ok(_) if msg.caller == msg.id => {
                return reply_now(Err(UserError::SelfAction("delete")))
            }
            Ok((db, _, _)) => db.store.clone(),
        };
        let id = msg.id;
        let store = match store {
            Backend::Local(store) => store,
            Backend::Shared(store) => {
                let write = {
                    let id = id.clone();
                    async move { store.delete(&id).await }
                };
                return shared_change(self, id, write, ());
            }
        };
        let write = {
            let id = id.clone();
            async move { store.delete(&id).await }
        };
        write_then_apply(self, write, move |act, ()| act.apply_delete(&id))
    }
}

impl Handler<ListUsers> for KeyRegistry {
    type Result = Result<UserPage, UserError>;

    fn handle(&mut self, msg: ListUsers, _ctx: &mut Self::Context) -> Self::Result {
        let db = self.db.as_ref().ok_or(UserError::Disabled)?;
        let limit = msg.limit.max(1);
        let mut users: Vec<UserInfo> = db
            .table
            .page(msg.after.as_deref(), limit)
            .map(|row| self.row_info(row))
            .collect();
        if users.len() == limit {
            let next = users.last().map(|u| u.id.clone());
            return Ok(UserPage { users, next });
        }
        // The end of the database users: the static users follow, in their configured order.
        for name in &self.static_users {
            if db.table.get(name).is_none() {
                users.push(static_info(name));
            }
        }
        Ok(UserPage { users, next: None })
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
