//! What the KeyRegistry publishes for readers that send it no message: the answers it has
//! given (SHA-256 of a key -> principal), read by every API-key request, and the counts of
//! database users, read by the metrics endpoint. Only the actor writes either.
//!
//! They sit apart from the actor and the handle because both name them: the actor as the
//! writer, the handle as the reader. Neither file then needs the other for them.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use super::table::Slot;
use crate::digest::DigestMap;
use crate::{AuthMethod, Principal};

/// A published answer.
pub(super) struct Answer {
    pub(super) principal: Principal,
    pub(super) method: AuthMethod,
    /// Database users only: whose key this is, and when it was last used.
    pub(super) db: Option<DbUse>,
}

/// What a database user's published answer adds: the user's row in the KeyRegistry's table
/// (valid while the answer is published: the actor withdraws the answer before it frees the
/// row), and the time of the last use, which the request path writes without a message and
/// the actor folds into the row.
pub(super) struct DbUse {
    pub(super) slot: Slot,
    /// Unix milliseconds.
    pub(super) last_used: AtomicI64,
}

/// The answers the registry has published. Readers never write to it. Cloning shares it.
#[derive(Clone, Default)]
pub(super) struct PublishedAnswers(pub(super) Arc<DigestMap<Answer>>);

/// Counts of database users by state, kept by the actor for the metrics endpoint.
#[derive(Debug, Default)]
pub struct UserCounts {
    /// Active database users.
    pub active: AtomicI64,
    /// Deactivated database users.
    pub inactive: AtomicI64,
}
