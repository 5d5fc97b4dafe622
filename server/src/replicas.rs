//! Replicas sharing users, keys and roles through PostgreSQL (`docs/replicas.md`): opening the
//! shared store named by `PORTCULLIS_USER_STORE_URL`, and reloading the roles when another
//! replica changed them.

use std::sync::Arc;

use anyhow::Context;
use portcullis_auth::rbac::RoleRegistry;
use portcullis_auth::{KeyRegistryHandle, SharedUserStore};
use portcullis_config::{vars, UserStoreSettings};

/// Connects to the shared store and brings its schema up to date; every message shows the URL
/// with its credentials hidden.
pub(crate) async fn open(store: &UserStoreSettings, what: &str) -> anyhow::Result<SharedUserStore> {
    let shown = store.shown_url();
    SharedUserStore::connect(store.url.expose(), &shown, store.revocation_bound)
        .await
        .map(|opened| {
            opened
                .with_ready_grace(store.ready_grace)
                .with_log_retention(store.log_retention)
        })
        .with_context(|| {
            format!(
                "while opening the user store {shown} for {what} ({})",
                vars::USER_STORE_URL
            )
        })
}

/// Has the KeyRegistry reload `roles` from the shared store whenever it reads a roles change
/// in the change log (another replica, or this one, changed a role or an assignment), before
/// it acknowledges the change. Reloads run one at a time, in the order they were asked for.
pub(crate) fn follow_roles(roles: &Arc<RoleRegistry>, keys: &KeyRegistryHandle) {
    let roles = roles.clone();
    let one_at_a_time = Arc::new(tokio::sync::Mutex::new(()));
    keys.follow_roles(Arc::new(move || {
        let (roles, one_at_a_time) = (roles.clone(), one_at_a_time.clone());
        Box::pin(async move {
            let _turn = one_at_a_time.lock().await;
            roles.reload().await.map_err(|err| err.to_string())
        })
    }));
}
