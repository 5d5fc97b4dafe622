//! API keys: static keys from the environment and database users' keys, judged by the
//! KeyRegistry actor and stored in the user store.

pub mod format;
pub mod registry;
pub mod store;

pub use registry::{KeyRegistry, KeyRegistryHandle, UserError, UserInfo, BOOTSTRAP_ADMIN};
pub use store::{UserRecord, UserStore, UserStoreError};
