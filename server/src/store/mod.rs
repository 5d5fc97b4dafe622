//! The embedded document store: classes and objects in SQLite, served with the REST shapes of
//! Weaviate's schema, object and batch APIs, used when no upstream database is configured.
//!
//! Layout: [`db`] opens the file and owns the connections, [`schema`] the class definitions,
//! [`objects`] the objects, [`batch`] the batch body's bounded reading, [`validation`] the
//! property checks, [`routes`] the HTTP handlers, [`query`] filters, pages and counts for
//! gRPC's queries.
//! [`StoreError`] becomes an [`ApiError`] in one place, here.

pub mod batch;
pub mod db;
pub mod objects;
pub mod query;
pub mod routes;
pub mod schema;
pub mod validation;

use std::path::PathBuf;

use crate::error::ApiError;

pub use db::Store;
pub use routes::configure;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The class or object does not exist. The message names it.
    #[error("{0}")]
    NotFound(String),
    /// The request is refused: a bad name, a wrong property type, a duplicate id or class.
    /// The message is for the client and names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The data directory could not be created.
    #[error("could not create the data directory {path} (PERSISTENCE_DATA_PATH): {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store's file exists but cannot be opened or read as a database. It is never
    /// overwritten.
    #[error("the document store {path} could not be opened as a SQLite database ({source}); it was left untouched: restore it from a backup, fix its permissions, or move it aside to start with an empty store")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The database's error.
        source: sqlx::Error,
    },
    /// The store's migrations could not be applied (or the file was written by a newer
    /// Portcullis).
    #[error("could not migrate the document store {path}: {source}; it was left as it was")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// The migration error.
        source: sqlx::migrate::MigrateError,
    },
    /// A database failure while serving.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row that does not decode.
    #[error("corrupt row in the document store: {0}")]
    Corrupt(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(message) => ApiError::NotFoundWith(message),
            StoreError::Invalid(message) => ApiError::Unprocessable(message),
            StoreError::Directory { .. }
            | StoreError::Unreadable { .. }
            | StoreError::Migrate { .. }
            | StoreError::Database(_)
            | StoreError::Corrupt(_) => {
                // The details stay in the log; the client learns only that it failed.
                tracing::error!(error = %err, "document store failure");
                ApiError::Internal
            }
        }
    }
}

/// Milliseconds since the Unix epoch, Weaviate's `creationTimeUnix` unit.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    #[test]
    fn store_errors_map_to_weaviate_statuses_without_leaking_internals() {
        let cases = [
            (StoreError::NotFound("no class".into()), 404, "no class"),
            (StoreError::Invalid("bad prop".into()), 422, "bad prop"),
            (
                StoreError::Database(sqlx::Error::PoolTimedOut),
                500,
                "internal error",
            ),
            (
                StoreError::Corrupt("secret row detail".into()),
                500,
                "internal error",
            ),
        ];
        for (err, status, message) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.status_code().as_u16(), status);
            assert_eq!(api.to_string(), message);
        }
    }
}
