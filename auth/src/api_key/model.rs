//! Database users as the KeyRegistry holds them ([`DbUser`]) and shows them ([`UserInfo`]),
//! the naming rule, and the errors of user management.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use super::store::UserRecord;
use crate::digest::KeyDigest;
use crate::{Principal, PrincipalKind};

/// A database user as the actor holds it.
pub(super) struct DbUser {
    pub(super) key_id: String,
    pub(super) digest: KeyDigest,
    pub(super) active: bool,
    pub(super) revoked: bool,
    pub(super) created_at_ms: i64,
    /// Written by the request path on every accepted key (through the published answer).
    pub(super) last_used: Arc<AtomicI64>,
    /// The last-used time the store holds; the flush writes only users past it.
    pub(super) persisted_last_used: i64,
    pub(super) principal: Principal,
}

impl DbUser {
    /// The user of a stored record, with its name.
    pub(super) fn from_record(rec: UserRecord) -> (String, DbUser) {
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
    /// The KeyRegistry actor did not answer (its mailbox is closed); nothing was done.
    #[error("the key registry did not answer")]
    Unavailable,
    /// An operator-supplied key has the id of another user's key.
    #[error("the supplied key's id is already another user's key")]
    KeyInUse,
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

#[cfg(test)]
mod tests {
    use super::*;

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
