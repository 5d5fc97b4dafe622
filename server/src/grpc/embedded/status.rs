//! How the store's errors become gRPC statuses: what the store cannot do is UNIMPLEMENTED with
//! its message, a wrong request INVALID_ARGUMENT, an unknown collection NOT_FOUND, and a
//! failure of the store INTERNAL without its details.

use tonic::Status;

use crate::store::query::QueryError;
use crate::store::StoreError;

/// The status for a store error.
pub(crate) fn from_store(err: StoreError) -> Status {
    match err {
        StoreError::NotFound(message) => Status::not_found(message),
        StoreError::Invalid(message) => Status::invalid_argument(message),
        StoreError::Directory { .. }
        | StoreError::Unreadable { .. }
        | StoreError::Migrate { .. }
        | StoreError::Database(_)
        | StoreError::Corrupt(_) => {
            // The details stay in the log; the client learns only that it failed.
            tracing::error!(error = %err, "document store failure");
            Status::internal("internal error")
        }
    }
}

/// The status for a query error.
pub(crate) fn from_query(err: QueryError) -> Status {
    match err {
        QueryError::Unsupported(message) => Status::unimplemented(message),
        QueryError::Store(err) => from_store(err),
    }
}

/// UNIMPLEMENTED naming a feature the embedded store does not have.
pub(crate) fn unsupported(feature: &str) -> Status {
    Status::unimplemented(format!("{feature} is not supported by the embedded store"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn maps_store_errors_without_leaking_internals() {
        let cases = [
            (
                StoreError::NotFound("no class".into()),
                Code::NotFound,
                "no class",
            ),
            (
                StoreError::Invalid("bad".into()),
                Code::InvalidArgument,
                "bad",
            ),
            (
                StoreError::Corrupt("row 7 secret".into()),
                Code::Internal,
                "internal error",
            ),
        ];
        for (err, code, message) in cases {
            let status = from_store(err);
            assert_eq!((status.code(), status.message()), (code, message));
        }
        let status = from_query(QueryError::Unsupported("sorting x".into()));
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unimplemented, "sorting x")
        );
        let status = unsupported("group_by");
        assert_eq!(
            status.message(),
            "group_by is not supported by the embedded store"
        );
    }
}
