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
        .with_context(|| {
            format!(
                "while opening the user store {shown} for {what} ({})",
                vars::USER_STORE_URL
            )
        })
}

/// Reloads `roles` from the shared store whenever the KeyRegistry reads a roles change in
/// the change log (another replica, or this one, changed a role or an assignment).
pub(crate) fn follow_roles(roles: &Arc<RoleRegistry>, keys: &KeyRegistryHandle) {
    let Some(changed) = keys.roles_changed().cloned() else {
        return;
    };
    let roles = roles.clone();
    actix_web::rt::spawn(async move {
        loop {
            changed.notified().await;
            if let Err(err) = roles.reload().await {
                tracing::warn!(error = %err, "cannot reload the roles from the user store; retrying at the next change or poll");
            }
        }
    });
}
