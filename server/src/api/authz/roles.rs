//! `/v1/authz/roles[/{id}[/add-permissions|/remove-permissions|/has-permission]]`: roles and
//! their permissions.

use actix_web::{web, HttpResponse};
use portcullis_auth::rbac::{Action, BuiltInRole, Grant, Permission, RoleError};
use serde::Deserialize;

use super::{internal, json_body, ok_json, AuthzApi, AuthzError, RoleBody};
use crate::gate::Caller;
use crate::metrics::rbac::RbacOp;

/// Weaviate's role names: a letter, then letters, digits, `-` and `_`, at most 64 in all.
fn valid_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Compiles wire permissions; the first invalid one is a 422 naming it.
fn compile(permissions: &[Permission]) -> Result<Vec<Grant>, AuthzError> {
    permissions
        .iter()
        .map(|p| {
            Grant::from_wire(p).map_err(|err| {
                AuthzError::Unprocessable(format!("role permissions are invalid: {err}"))
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    permissions: Vec<Permission>,
}

#[derive(Deserialize)]
struct PermissionsBody {
    #[serde(default)]
    permissions: Vec<Permission>,
}

/// `GET /v1/authz/roles`: every role the caller may read, sorted; `root` only for root users.
pub(super) async fn list(api: web::Data<AuthzApi>, caller: Caller) -> HttpResponse {
    let mut bodies = Vec::new();
    for name in api.roles.role_names().await {
        if name == BuiltInRole::Root.name() && !api.is_root(&caller.0) {
            continue;
        }
        if api
            .policies()
            .role_scope(&caller.0, Action::ReadRoles, &name)
            .is_none()
        {
            continue;
        }
        if let Some(grants) = api.roles.role(&name).await {
            bodies.push(RoleBody::new(name, Some(&grants)));
        }
    }
    ok_json(&bodies)
}

/// `POST /v1/authz/roles`: 201 with an empty body.
pub(super) async fn create(
    api: web::Data<AuthzApi>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    let result = async {
        let body: CreateBody = json_body(&body)?;
        let name = body.name.unwrap_or_default();
        if name.is_empty() {
            return Err(AuthzError::BadRequest("role name is required".into()));
        }
        if !valid_role_name(&name) {
            return Err(AuthzError::BadRequest("role name is invalid".into()));
        }
        let grants = compile(&body.permissions)?;
        if BuiltInRole::parse(&name).is_some() {
            return Err(AuthzError::BadRequest(format!(
                "you cannot create role with the same name as built-in role {name}"
            )));
        }
        api.require_scope(&caller.0, Action::CreateRoles, &name, &grants)?;
        api.roles
            .create_role(&name, grants)
            .await
            .map_err(|err| match err {
                RoleError::Exists(_) => {
                    AuthzError::Conflict(format!("role with name {name} already exists"))
                }
                other => internal(other),
            })
    }
    .await;
    api.count(RbacOp::CreateRole, &result);
    api.acknowledged(result.map(|()| HttpResponse::Created().finish()))
        .await
}

/// `GET /v1/authz/roles/{id}`.
pub(super) async fn get(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, AuthzError> {
    api.require_scope(&caller.0, Action::ReadRoles, &id, &[])?;
    let grants = api.roles.role(&id).await.ok_or(AuthzError::NotFoundEmpty)?;
    Ok(ok_json(&RoleBody::new(id.into_inner(), Some(&grants))))
}

/// `DELETE /v1/authz/roles/{id}`: 204 also when the role does not exist; its assignments go
/// with it.
pub(super) async fn delete(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, AuthzError> {
    let result = async {
        if BuiltInRole::parse(&id).is_some() {
            return Err(AuthzError::BadRequest(format!(
                "you can not delete built-in role {id}"
            )));
        }
        let current = api.roles.role(&id).await.unwrap_or_default();
        api.require_scope(&caller.0, Action::DeleteRoles, &id, &current)?;
        api.roles.delete_role(&id).await.map_err(internal)
    }
    .await;
    api.count(RbacOp::DeleteRole, &result);
    api.acknowledged(result.map(|_| HttpResponse::NoContent().finish()))
        .await
}

/// `POST /v1/authz/roles/{id}/add-permissions`: 200 with an empty body.
pub(super) async fn add_permissions(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    let result = async {
        let body: PermissionsBody = json_body(&body)?;
        if BuiltInRole::parse(&id).is_some() {
            return Err(AuthzError::BadRequest(format!(
                "you can not update built-in role {id}"
            )));
        }
        if body.permissions.is_empty() {
            return Err(AuthzError::BadRequest(
                "invalid permissions role has to have at least 1 permission".into(),
            ));
        }
        let grants = compile(&body.permissions)?;
        api.require_scope(&caller.0, Action::UpdateRoles, &id, &grants)?;
        api.roles
            .add_permissions(&id, grants)
            .await
            .map_err(|err| match err {
                RoleError::NotFound(_) => AuthzError::NotFoundEmpty,
                other => internal(other),
            })
    }
    .await;
    api.count(RbacOp::AddPermissions, &result);
    api.acknowledged(result.map(|()| HttpResponse::Ok().finish()))
        .await
}

/// `POST /v1/authz/roles/{id}/remove-permissions`: removes every listed permission the role
/// holds (Weaviate stops at the first one it does not hold); the role stays when emptied.
pub(super) async fn remove_permissions(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    let result = async {
        let body: PermissionsBody = json_body(&body)?;
        if body.permissions.is_empty() {
            return Err(AuthzError::BadRequest(
                "invalid permissions role has to have at least 1 permission".into(),
            ));
        }
        let grants = compile(&body.permissions)?;
        if BuiltInRole::parse(&id).is_some() {
            return Err(AuthzError::BadRequest(format!(
                "you cannot update built-in role {id}"
            )));
        }
        api.require_scope(&caller.0, Action::UpdateRoles, &id, &grants)?;
        api.roles
            .remove_permissions(&id, &grants)
            .await
            .map_err(|err| match err {
                RoleError::NotFound(_) => AuthzError::NotFoundEmpty,
                other => internal(other),
            })
    }
    .await;
    api.count(RbacOp::RemovePermissions, &result);
    api.acknowledged(result.map(|()| HttpResponse::Ok().finish()))
        .await
}

/// `POST /v1/authz/roles/{id}/has-permission`: whether the role's permissions cover the
/// asked one (Weaviate compares the stored text exactly, so `*` did not "have" `Movie` and
/// built-in roles had nothing); an unknown role has nothing.
pub(super) async fn has_permission(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    let permission: Permission = json_body(&body)?;
    let asked = Grant::from_wire(&permission)
        .map_err(|err| AuthzError::BadRequest(format!("invalid permission: {err}")))?;
    api.require_scope(&caller.0, Action::ReadRoles, &id, &[])?;
    let held = api
        .roles
        .role(&id)
        .await
        .is_some_and(|grants| grants.iter().any(|grant| grant.covers(&asked)));
    Ok(ok_json(&held))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_weaviates_pattern() {
        for good in ["a", "Team-1_x", &"a".repeat(64)] {
            assert!(valid_role_name(good), "{good}");
        }
        for bad in ["", "1a", "-a", "a:b", "a,b", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_role_name(bad), "{bad}");
        }
    }
}
