//! The roles API, Weaviate's `/v1/authz` routes with its bodies, codes and messages: roles
//! and their permissions, assignments to database users, OIDC users and OIDC groups. Every
//! change goes through the RoleRegistry, which stores it and publishes it before the reply.
//! Registered only when RBAC is on, before the proxy, which would otherwise forward the paths.
//!
//! Who may call what is checked here with the published policies (the reference's per-route
//! table): role routes by the caller's role permissions and their scope (`match` may only
//! grant or remove what the caller itself holds), assignments by `assign_and_revoke_users` /
//! `_groups`, listings filtered by `read_users` / `read_groups`.

mod error;
mod paged;
mod roles;
mod subjects;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use portcullis_auth::rbac::{
    Action, Grant, Namespace, Permission, Policies, Request, RoleError, RoleRegistry, RoleScope,
};
use portcullis_auth::{KeyRegistryHandle, Principal, PrincipalKind};
use portcullis_config::RbacSettings;
use serde::Serialize;

pub use error::AuthzError;

use crate::metrics::rbac::{RbacMetrics, RbacOp, RbacResult};

/// What the roles handlers share.
pub struct AuthzApi {
    /// The single writer of roles and assignments.
    pub roles: Arc<RoleRegistry>,
    /// Which database users exist.
    pub keys: KeyRegistryHandle,
    /// The static API-key users' names.
    pub static_users: Vec<String>,
    /// The RBAC settings (root users and groups are checked by name).
    pub settings: RbacSettings,
    /// Whether OpenID Connect is on (any OIDC user name then counts as existing).
    pub oidc: bool,
    /// Where changes are counted.
    pub metrics: RbacMetrics,
}

/// Weaviate's `Role`.
#[derive(Serialize)]
pub struct RoleBody {
    name: String,
    permissions: Option<Vec<Permission>>,
}

impl RoleBody {
    fn new(name: String, grants: Option<&[Grant]>) -> Self {
        RoleBody {
            name,
            permissions: grants.map(|grants| grants.iter().map(Grant::to_wire).collect()),
        }
    }
}

impl AuthzApi {
    /// The published policies.
    pub fn policies(&self) -> &Arc<Policies> {
        self.roles.policies()
    }

    /// The roles of the caller (its user and, for OIDC callers, its groups), with their
    /// permissions, for `GET /v1/users/own-info`.
    pub async fn own_roles(&self, caller: &Principal) -> Vec<RoleBody> {
        let mut names: Vec<String> = match own_namespace(caller) {
            Some(ns) => self.roles.roles_of(ns, caller.username()).await,
            None => Vec::new(),
        };
        if caller.kind() == PrincipalKind::Oidc {
            for group in caller.groups() {
                names.extend(self.roles.roles_of(Namespace::Group, group).await);
            }
        }
        names.sort();
        names.dedup();
        let mut bodies = Vec::with_capacity(names.len());
        for name in names {
            if let Some(grants) = self.roles.role(&name).await {
                bodies.push(RoleBody::new(name, Some(&grants)));
            }
        }
        bodies
    }

    /// Whether the caller is a root user by name (Weaviate checks the name only).
    fn is_root(&self, caller: &Principal) -> bool {
        self.settings.is_root_user(caller.username())
    }

    /// Whether the caller is a root user or a member of a root group (Weaviate's
    /// `isRequestFromRootUser`): such callers see static users and the keys' first letters in
    /// the users API.
    pub(crate) fn is_root_caller(&self, caller: &Principal) -> bool {
        self.is_root(caller)
            || caller
                .groups()
                .iter()
                .any(|group| self.settings.root_groups.iter().any(|root| root == group))
    }

    /// Whether the caller's roles allow `request`.
    fn allows(&self, caller: &Principal, request: &Request<'_>) -> bool {
        self.policies().allows(caller, request)
    }

    /// Refuses unless the caller's roles allow `request` (Weaviate's 403 message).
    fn require(&self, caller: &Principal, request: &Request<'_>) -> Result<(), AuthzError> {
        if self.allows(caller, request) {
            Ok(())
        } else {
            Err(forbidden(caller, request))
        }
    }

    /// The role-management check (Weaviate's `authorizeRoleScopes`): scope `all` on the role
    /// passes; scope `match` passes only when the caller's roles cover every grant in
    /// `touched`; no role permission is a 403.
    fn require_scope(
        &self,
        caller: &Principal,
        action: Action,
        role: &str,
        touched: &[Grant],
    ) -> Result<(), AuthzError> {
        match self.policies().role_scope(caller, action, role) {
            Some(RoleScope::All) => Ok(()),
            Some(RoleScope::Match) => match touched
                .iter()
                .find(|grant| !self.policies().covers(caller, grant))
            {
                None => Ok(()),
                Some(grant) => Err(AuthzError::Forbidden(format!(
                    "can only create roles with less or equal permissions as the current user: \
                     user '{}' does not hold {}",
                    caller.username(),
                    describe_grant(grant)
                ))),
            },
            None => Err(forbidden(caller, &Request::named(action, role))),
        }
    }

    /// With the user store shared by replicas: a change's reply waits until every replica
    /// holding a live lease applied it (at most the bound), and says how many did
    /// (`docs/replicas.md`, acknowledged changes).
    async fn acknowledged(
        &self,
        reply: Result<HttpResponse, AuthzError>,
    ) -> Result<HttpResponse, AuthzError> {
        let mut response = reply?;
        let count = self.keys.acknowledge_committed().await;
        crate::api::users::replicas_acknowledged(&mut response, count);
        Ok(response)
    }

    /// Counts a change's outcome and refreshes the role count.
    fn count<T>(&self, op: RbacOp, result: &Result<T, AuthzError>) {
        let outcome = match result {
            Ok(_) => RbacResult::Ok,
            Err(AuthzError::Internal(_)) => RbacResult::Failed,
            Err(_) => RbacResult::Rejected,
        };
        self.metrics.observe_change(op, outcome);
        self.metrics.set_roles(self.policies().role_count());
    }
}

/// The namespace of the caller's own user.
fn own_namespace(caller: &Principal) -> Option<Namespace> {
    match caller.kind() {
        PrincipalKind::StaticKey | PrincipalKind::DbUser => Some(Namespace::Db),
        PrincipalKind::Oidc => Some(Namespace::Oidc),
        PrincipalKind::Anonymous => None,
    }
}

/// A grant as Weaviate's messages show resources.
fn describe_grant(grant: &Grant) -> String {
    serde_json::to_string(&grant.to_wire()).unwrap_or_else(|_| grant.action.name().to_owned())
}

/// Weaviate's 403 for a denied check.
fn forbidden(caller: &Principal, request: &Request<'_>) -> AuthzError {
    // The same wording as the gate's refusals (one group, several groups).
    let groups = crate::authz::enforce::groups_suffix(caller);
    let domain = request.action.domain().key().unwrap_or("cluster");
    let names: Vec<&str> = request
        .values
        .iter()
        .copied()
        .filter(|v| !v.is_empty())
        .collect();
    AuthzError::Forbidden(format!(
        "rbac: authorization, forbidden action: user '{}'{groups} has insufficient permissions to {} [[Domain: {domain}, {}]]",
        caller.username(),
        request.action.name(),
        names.join(", ")
    ))
}

/// A registry failure as the API answers it (the caller maps the refusals it expects first).
/// The 503 message of a role change the user store could not take (replicas).
const ROLES_UNREACHABLE: &str =
    "store_unavailable: the user store cannot be reached, so roles cannot be changed; retry later";

fn internal(err: RoleError) -> AuthzError {
    match &err {
        RoleError::NotRead => return AuthzError::Unavailable(crate::error::ROLES_NOT_READ),
        RoleError::Store(store) if store.is_unavailable() => {
            tracing::warn!(error = %err, "user store unreachable; role change not made");
            return AuthzError::Unavailable(ROLES_UNREACHABLE);
        }
        _ => {}
    }
    tracing::error!(error = %err, "role change failed");
    AuthzError::Internal("the role store failed; nothing was changed".to_owned())
}

/// Parses a JSON body as Weaviate's request validation does: 422 with code 602.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AuthzError> {
    serde_json::from_slice(body).map_err(|err| AuthzError::Validation {
        code: 602,
        message: format!("parsing body body from \"\" failed, because {err}"),
    })
}

/// A `200` with the JSON body.
fn ok_json<T: Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok().json(value)
}

/// Registers the routes when RBAC is on (a no-op otherwise).
pub fn configure(cfg: &mut web::ServiceConfig, api: Option<&web::Data<AuthzApi>>) {
    let Some(api) = api else {
        return;
    };
    // One scope: a request to any other route passes all of these with one prefix comparison
    // (each pattern with a parameter costs a regex match), and every `/v1/authz` path is ours
    // with RBAC on: a path no route here answers is 404 (the application's default), never
    // forwarded to an upstream.
    cfg.app_data(api.clone()).service(
        web::scope("/v1/authz")
            .route("/roles", web::get().to(roles::list))
            .route("/roles", web::post().to(roles::create))
            .route("/roles/{id}", web::get().to(roles::get))
            .route("/roles/{id}", web::delete().to(roles::delete))
            .route(
                "/roles/{id}/add-permissions",
                web::post().to(roles::add_permissions),
            )
            .route(
                "/roles/{id}/remove-permissions",
                web::post().to(roles::remove_permissions),
            )
            .route(
                "/roles/{id}/has-permission",
                web::post().to(roles::has_permission),
            )
            .route(
                "/roles/{id}/user-assignments",
                web::get().to(subjects::user_assignments),
            )
            .route("/roles/{id}/users", web::get().to(subjects::role_users))
            .route(
                "/roles/{id}/group-assignments",
                web::get().to(subjects::group_assignments),
            )
            .route(
                "/users/{id}/roles/{user_type}",
                web::get().to(subjects::user_roles),
            )
            .route(
                "/users/{id}/roles",
                web::get().to(subjects::user_roles_deprecated),
            )
            .route("/users/{id}/assign", web::post().to(subjects::assign_user))
            .route("/users/{id}/revoke", web::post().to(subjects::revoke_user))
            .route(
                "/groups/{id}/assign",
                web::post().to(subjects::assign_group),
            )
            .route(
                "/groups/{id}/revoke",
                web::post().to(subjects::revoke_group),
            )
            .route(
                "/groups/{id}/roles/{group_type}",
                web::get().to(subjects::group_roles),
            )
            .route("/groups/{group_type}", web::get().to(subjects::groups)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_user_its_groups_the_action_and_the_resource() {
        let alice = Principal::new(
            "alice",
            vec!["g1".to_owned(), "g2".to_owned()],
            PrincipalKind::Oidc,
        );
        let err = forbidden(&alice, &Request::named(Action::AssignAndRevokeUsers, "bob"));
        assert_eq!(
            err.to_string(),
            "rbac: authorization, forbidden action: user 'alice' (of groups 'g1', 'g2') has \
             insufficient permissions to assign_and_revoke_users [[Domain: users, bob]]"
        );
        let bob = Principal::new("bob", Vec::new(), PrincipalKind::DbUser);
        let err = forbidden(&bob, &Request::named(Action::ReadRoles, "x"));
        assert!(
            err.to_string().starts_with(
                "rbac: authorization, forbidden action: user 'bob' has insufficient permissions to read_roles"
            ),
            "{err}"
        );
    }
}
