//! The authenticated identity a request carries once the gate has let it in.

use std::sync::Arc;

/// How a principal proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A static API key from `AUTHENTICATION_APIKEY_ALLOWED_KEYS`.
    StaticKey,
    /// A database user's runtime API key.
    DbUser,
    /// An OpenID Connect bearer token.
    Oidc,
    /// No credential, with anonymous access enabled.
    Anonymous,
}

impl PrincipalKind {
    /// A stable lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::StaticKey => "static_key",
            PrincipalKind::DbUser => "db_user",
            PrincipalKind::Oidc => "oidc",
            PrincipalKind::Anonymous => "anonymous",
        }
    }
}

#[derive(Debug)]
struct Inner {
    // Shared with the KeyRegistry's table of database users, so a principal handed out for a
    // database user does not copy its name.
    username: Arc<str>,
    groups: Vec<String>,
    kind: PrincipalKind,
}

/// An authenticated caller. Cloning is a reference-count increment, so the published answers
/// can hand out the same principal to every request without copying names.
#[derive(Clone, Debug)]
pub struct Principal(Arc<Inner>);

/// The user name Weaviate gives to callers without a credential; admin lists may name it.
pub const ANONYMOUS_USERNAME: &str = "anonymous";

impl Principal {
    /// A principal with the given name, groups and kind.
    pub fn new(username: impl Into<String>, groups: Vec<String>, kind: PrincipalKind) -> Self {
        Self::with_shared_name(Arc::from(username.into()), groups, kind)
    }

    /// A principal whose name is shared with its holder (no copy of the name).
    pub(crate) fn with_shared_name(
        username: Arc<str>,
        groups: Vec<String>,
        kind: PrincipalKind,
    ) -> Self {
        Principal(Arc::new(Inner {
            username,
            groups,
            kind,
        }))
    }

    /// The principal for a request without a credential.
    pub fn anonymous() -> Self {
        Self::new(ANONYMOUS_USERNAME, Vec::new(), PrincipalKind::Anonymous)
    }

    /// The user name (for static keys, the user the key maps to).
    pub fn username(&self) -> &str {
        &self.0.username
    }

    /// The groups the caller belongs to (empty for API-key users).
    pub fn groups(&self) -> &[String] {
        &self.0.groups
    }

    /// How the caller authenticated.
    pub fn kind(&self) -> PrincipalKind {
        self.0.kind
    }

    /// Whether this is the anonymous caller.
    pub fn is_anonymous(&self) -> bool {
        self.0.kind == PrincipalKind::Anonymous
    }
}
