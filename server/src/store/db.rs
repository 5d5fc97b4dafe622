//! Opening the store's SQLite file (WAL, `synchronous=FULL`), its migrations, and the two
//! connection pools: one writer, so write transactions queue in order, and several readers.

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::StoreError;

/// The store's file name under `PERSISTENCE_DATA_PATH` (users live in a file of their own).
pub const FILE_NAME: &str = "objects.db";

/// The migrations in `server/migrations/objects/`, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/objects");

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Concurrent readers (WAL lets them run beside the writer).
const READERS: u32 = 4;

/// The open store. Cheap to share: the pools are reference-counted.
#[derive(Clone, Debug)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Store {
    /// Opens (or creates) `objects.db` under `data_path`, creating the directory if missing,
    /// and applies the migrations. A file that is not a readable SQLite database stops here
    /// with [`StoreError::Unreadable`] and is not modified.
    pub async fn open(data_path: &Path) -> Result<Store, StoreError> {
        portcullis_auth::data_dir::ensure_dir(data_path).map_err(|source| {
            StoreError::Directory {
                path: data_path.to_owned(),
                source,
            }
        })?;
        let path = data_path.join(FILE_NAME);
        let unreadable = |source| StoreError::Unreadable {
            path: path.clone(),
            source,
        };
        portcullis_auth::data_dir::prepare_file(&path)
            .map_err(|e| unreadable(sqlx::Error::Io(e)))?;
        // Every write is committed with the WAL fsynced (FULL), so an acknowledged write
        // survives a crash or power loss, not only a process kill.
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(unreadable)?;
        // Read the schema before anything may write: a damaged file fails here.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&writer)
            .await
            .map_err(unreadable)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.clone(),
                source,
            })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.create_if_missing(false))
            .await
            .map_err(unreadable)?;
        tracing::info!(path = %path.display(), "document store open");
        Ok(Store { writer, reader })
    }

    /// A write transaction on the single writer connection, holding the write lock from its
    /// start (`BEGIN IMMEDIATE`), so what it reads cannot change before it writes.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The pool for reads.
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_the_directory_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a").join("b");
        let store = Store::open(&data).await.unwrap();
        assert!(data.join(FILE_NAME).exists());
        drop(store);
        Store::open(&data).await.unwrap();
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_a_database_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        let garbage = "not a database\n".repeat(300);
        std::fs::write(&file, &garbage).unwrap();
        let err = Store::open(dir.path()).await.unwrap_err();
        assert!(matches!(err, StoreError::Unreadable { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("objects.db"), "{message}");
        assert!(message.contains("left untouched"), "{message}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), garbage);
    }
}
