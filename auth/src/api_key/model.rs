//! Database users as the KeyRegistry shows them ([`UserInfo`], a page of them in
//! [`UserPage`]), the naming rule, and the errors of user management. How the actor holds
//! them is `table.rs`.

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
    /// The user store shared by replicas cannot be reached, or has not been read within the
    /// revocation bound; nothing was done.
    #[error("store_unavailable: the user store cannot be reached; retry later")]
    StoreUnavailable,
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

/// One page of the listing of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// Database users in name order; on the last page, the static users after them.
    pub users: Vec<UserInfo>,
    /// Where the next page starts (after this user name); `None` on the last page.
    pub next: Option<String>,
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
