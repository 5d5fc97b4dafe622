//! The durable store of database users: a SQLite file (`users.db`) under the data path,
//! written through `sqlx` with WAL and `synchronous=FULL`, so an acknowledged change survives
//! a power cut. Only key digests are stored. The KeyRegistry actor is its only writer.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::format::NewKey;
use crate::digest::{digest, KeyDigest};

/// The file name of the user store inside the data directory.
pub const FILE_NAME: &str = "users.db";

/// Failures of the user store. Messages name the file and never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database file could not be opened (unreadable, not a database, locked).
    #[error("cannot open the user store {path}: {source} (the file is left untouched; restore it from a backup or move it away)")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: sqlx::Error,
    },
    /// The file is damaged.
    #[error("the user store {path} failed its integrity check: {detail} (the file is left untouched; restore it from a backup)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the user store {path}: {source}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("user store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored row is not valid (e.g. a digest of the wrong length).
    #[error("user store row for {user:?} is invalid: {what}")]
    BadRow {
        /// The user id.
        user: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// One stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user name.
    pub id: String,
    /// The id of the current key.
    pub key_id: String,
    /// SHA-256 of the current key.
    pub key_digest: KeyDigest,
    /// Whether the user may authenticate.
    pub active: bool,
    /// Whether the current key was revoked (survives activation until a rotation).
    pub revoked: bool,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last successful authentication, Unix milliseconds.
    pub last_used_ms: Option<i64>,
}

/// One stored user as [`UserStore::load_each`] hands it over, borrowing from the row.
#[derive(Debug, Clone, Copy)]
pub struct StoredUser<'a> {
    /// The user name.
    pub id: &'a str,
    /// The id of the current key.
    pub key_id: &'a str,
    /// SHA-256 of the current key.
    pub key_digest: KeyDigest,
    /// Whether the user may authenticate.
    pub active: bool,
    /// Whether the current key was revoked.
    pub revoked: bool,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last successful authentication, Unix milliseconds.
    pub last_used_ms: Option<i64>,
}

impl UserRecord {
    /// An active user holding a freshly generated key, created at `created_at_ms` (Unix ms):
    /// what the KeyRegistry writes for a new user, and what a seeder writes before start-up.
    pub fn new(id: &str, key: &NewKey, created_at_ms: i64) -> Self {
        UserRecord {
            id: id.to_owned(),
            key_id: key.id().to_owned(),
            key_digest: digest(key.expose().as_bytes()),
            active: true,
            revoked: false,
            created_at_ms,
            last_used_ms: None,
        }
    }
}

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct UserStore {
    pool: SqlitePool,
}

impl UserStore {
    /// Opens (creating if missing) `users.db` in `dir`, checks its integrity and migrates it.
    /// An existing file that cannot be read is reported, never replaced.
    pub async fn open(dir: &Path) -> Result<Self, UserStoreError> {
        crate::data_dir::ensure_dir(dir).map_err(|source| UserStoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let open_err = |source| UserStoreError::Open {
            path: path.clone(),
            source,
        };
        crate::data_dir::prepare_file(&path).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        // One connection: the actor serialises every write anyway.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let check: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&pool)
            .await
            .map_err(open_err)?;
        if check != "ok" {
            return Err(UserStoreError::Corrupt {
                path: path.clone(),
                detail: check,
            });
        }
        sqlx::migrate!("./migrations/users")
            .run(&pool)
            .await
            .map_err(|source| UserStoreError::Migrate {
                path: path.clone(),
                source,
            })?;
        Ok(UserStore { pool })
    }

    /// How many users are stored (to size the maps before a load).
    pub async fn count(&self) -> Result<usize, UserStoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Every stored user, as records (the whole store in memory: for tests and tools; the
    /// KeyRegistry loads with [`UserStore::load_each`]).
    pub async fn load(&self) -> Result<Vec<UserRecord>, UserStoreError> {
        let mut out = Vec::new();
        self.load_each(|user| {
            out.push(UserRecord {
                id: user.id.to_owned(),
                key_id: user.key_id.to_owned(),
                key_digest: user.key_digest,
                active: user.active,
                revoked: user.revoked,
                created_at_ms: user.created_at_ms,
                last_used_ms: user.last_used_ms,
            });
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Hands every stored user to `visit`, one row at a time, in name order, as the rows
    /// stream from the file: nothing but the row at hand is held, and nothing is copied that
    /// `visit` does not copy. The first error (a bad row, or `visit`'s own) stops the load.
    pub async fn load_each(
        &self,
        mut visit: impl FnMut(StoredUser<'_>) -> Result<(), UserStoreError>,
    ) -> Result<(), UserStoreError> {
        let mut rows = sqlx::query(
            "SELECT id, key_id, key_digest, active, revoked, created_at_ms, last_used_ms \
             FROM users ORDER BY id",
        )
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let id: &str = row.try_get(0)?;
            let digest: &[u8] = row.try_get(2)?;
            let key_digest = KeyDigest::try_from(digest).map_err(|_| UserStoreError::BadRow {
                user: id.to_owned(),
                what: "key digest is not 32 bytes",
            })?;
            visit(StoredUser {
                id,
                key_id: row.try_get(1)?,
                key_digest,
                active: row.try_get::<i64, _>(3)? != 0,
                revoked: row.try_get::<i64, _>(4)? != 0,
                created_at_ms: row.try_get(5)?,
                last_used_ms: row.try_get(6)?,
            })?;
        }
        Ok(())
    }

    /// Stores a new user.
    pub async fn insert(&self, user: &UserRecord) -> Result<(), UserStoreError> {
        insert_query(user).execute(&self.pool).await?;
        Ok(())
    }

    /// Stores many new users in one transaction, so a bulk load pays one sync to disk rather
    /// than one per user (the benchmark's seeder).
    /// Rows go 500 to a statement: one statement per row cost the seeder most of its time
    /// in handing each statement to SQLite's thread (52 s of CPU for a million users).
    pub async fn insert_many(&self, users: &[UserRecord]) -> Result<(), UserStoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in users.chunks(500) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO users (id, key_id, key_digest, active, revoked, created_at_ms, last_used_ms) ",
            );
            insert.push_values(chunk, |mut row, user| {
                row.push_bind(&user.id)
                    .push_bind(&user.key_id)
                    .push_bind(&user.key_digest[..])
                    .push_bind(i64::from(user.active))
                    .push_bind(i64::from(user.revoked))
                    .push_bind(user.created_at_ms)
                    .push_bind(user.last_used_ms);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a user's key and clears its revocation (a rotation).
    pub async fn set_key(
        &self,
        id: &str,
        key_id: &str,
        digest: &KeyDigest,
    ) -> Result<(), UserStoreError> {
        sqlx::query("UPDATE users SET key_id = ?, key_digest = ?, revoked = 0 WHERE id = ?")
            .bind(key_id)
            .bind(&digest[..])
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets a user's active and revoked flags.
    pub async fn set_state(
        &self,
        id: &str,
        active: bool,
        revoked: bool,
    ) -> Result<(), UserStoreError> {
        sqlx::query("UPDATE users SET active = ?, revoked = ? WHERE id = ?")
            .bind(i64::from(active))
            .bind(i64::from(revoked))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a user and, in the same transaction, its `db:` role assignments, so a user
    /// created later under the same name starts with no roles.
    pub async fn delete(&self, id: &str) -> Result<(), UserStoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM rbac_assignments WHERE namespace = 'db' AND subject = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The connection pool, for the role tables kept in the same file (`rbac/store.rs`).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Records last-used times for many users in one transaction.
    pub async fn record_last_used(&self, updates: &[(String, i64)]) -> Result<(), UserStoreError> {
        let mut tx = self.pool.begin().await?;
        for (id, at) in updates {
            sqlx::query("UPDATE users SET last_used_ms = ? WHERE id = ?")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Reads a fact from the meta table.
    pub async fn meta(&self, name: &str) -> Result<Option<String>, UserStoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Writes a fact to the meta table.
    pub async fn set_meta(&self, name: &str, value: &str) -> Result<(), UserStoreError> {
        meta_query(name, value).execute(&self.pool).await?;
        Ok(())
    }

    /// Stores a user and a meta fact in one transaction (the bootstrap admin).
    pub async fn insert_with_meta(
        &self,
        user: &UserRecord,
        name: &str,
        value: &str,
    ) -> Result<(), UserStoreError> {
        let mut tx = self.pool.begin().await?;
        insert_query(user).execute(&mut *tx).await?;
        meta_query(name, value).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The statement that writes (or overwrites) a meta fact.
fn meta_query<'a>(
    name: &'a str,
    value: &'a str,
) -> sqlx::query::Query<'a, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'a>> {
    sqlx::query(
        "INSERT INTO meta (name, value) VALUES (?, ?) \
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
}

/// The statement that stores a new user.
fn insert_query(
    user: &UserRecord,
) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    sqlx::query(
        "INSERT INTO users (id, key_id, key_digest, active, revoked, created_at_ms, last_used_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&user.id)
    .bind(&user.key_id)
    .bind(&user.key_digest[..])
    .bind(i64::from(user.active))
    .bind(i64::from(user.revoked))
    .bind(user.created_at_ms)
    .bind(user.last_used_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, key_id: &str) -> UserRecord {
        UserRecord {
            id: id.into(),
            key_id: key_id.into(),
            key_digest: digest(key_id.as_bytes()),
            active: true,
            revoked: false,
            created_at_ms: 1_700_000_000_000,
            last_used_ms: None,
        }
    }

    #[actix::test]
    async fn round_trips_users_through_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = UserStore::open(dir.path()).await.expect("open");
        store.insert(&record("alice", "k1")).await.expect("insert");
        store.insert(&record("bob", "k2")).await.expect("insert");
        store
            .set_key("alice", "k3", &digest(b"k3"))
            .await
            .expect("rotate");
        store.set_state("bob", false, true).await.expect("state");
        store
            .record_last_used(&[("alice".into(), 42)])
            .await
            .expect("last used");
        drop(store);
        let store = UserStore::open(dir.path()).await.expect("reopen");
        let mut users = store.load().await.expect("load");
        users.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(users[0].key_id, "k3");
        assert_eq!(users[0].last_used_ms, Some(42));
        assert!(!users[1].active && users[1].revoked);
        store.delete("bob").await.expect("delete");
        assert_eq!(store.load().await.expect("load").len(), 1);
    }

    #[actix::test]
    async fn refuses_a_corrupt_file_and_leaves_it_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(FILE_NAME);
        let garbage = b"this is not a sqlite database, but it is somebody's file".repeat(100);
        std::fs::write(&path, &garbage).expect("write");
        let err = UserStore::open(dir.path())
            .await
            .expect_err("corrupt store refused");
        assert!(err.to_string().contains("users.db"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), garbage);
    }

    #[actix::test]
    async fn rejects_a_duplicate_key_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = UserStore::open(dir.path()).await.expect("open");
        store.insert(&record("alice", "k1")).await.expect("insert");
        assert!(store.insert(&record("bob", "k1")).await.is_err());
    }
}
