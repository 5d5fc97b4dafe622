//! API keys: static keys from the environment and database users' keys.
//!
//! - `registry.rs`: the KeyRegistry actor, the only writer and the authority; it judges
//!   database keys and publishes its answers;
//! - `manage.rs`: the changes to database users, each written to the store, then applied;
//! - `handle.rs`: [`KeyRegistryHandle`], the actor's whole API, for requests and management;
//! - `statics.rs`: the static keys replaced by a configuration reload;
//! - `published.rs`: the answers and counts the actor publishes for readers;
//! - `model.rs`: users as the actor shows them, and [`UserError`];
//! - `table.rs`: users as the actor holds them, each once, in one table;
//! - `store.rs`: the durable [`UserStore`] (SQLite);
//! - `shared.rs`: the [`SharedUserStore`] of replicas (PostgreSQL), and `sync.rs`: how the
//!   actor keeps in step with it under a lease;
//! - `format.rs`: the `pcu_` key format, generation and parsing.

pub mod format;
mod handle;
mod manage;
mod model;
mod published;
mod registry;
pub mod shared;
mod statics;
pub mod store;
mod sync;
mod table;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

pub use format::NewKey;
pub use handle::{KeyLookup, KeyRegistryHandle, UnjudgedKey};
pub use manage::BOOTSTRAP_ADMIN;
pub use model::{valid_user_name, UserError, UserInfo, UserPage};
pub use published::UserCounts;
pub use registry::KeyRegistry;
pub use shared::{FullReason, Lease, SharedStoreError, SharedUserStore};
pub use statics::StaticKeyChange;
pub use store::{StoredUser, UserRecord, UserStore, UserStoreError};
pub use sync::{RolesReload, SyncStats, TimeHistogram, Via};

/// Now, in Unix milliseconds: creation and last-used times.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
