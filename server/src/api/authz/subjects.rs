//! Assignments: `/v1/authz/users/...`, `/v1/authz/groups/...` and the role's holders
//! (`/v1/authz/roles/{id}/user-assignments|users|group-assignments`). Names are used as they
//! come (a `:` or `,` in a user or group name is just a character: subjects are stored in
//! their own columns, never joined into one string).

use actix_web::{web, HttpResponse};
use portcullis_auth::rbac::{Action, BuiltInRole, Namespace, Request, RoleError, SubjectRefusal};
use portcullis_auth::Principal;
use serde::{Deserialize, Serialize};

use super::{internal, json_body, ok_json, own_namespace, paged, AuthzApi, AuthzError, RoleBody};
use crate::gate::Caller;
use crate::metrics::rbac::RbacOp;

const OIDC: &str = "oidc";

#[derive(Deserialize)]
pub(super) struct FullRoles {
    #[serde(rename = "includeFullRoles", default)]
    include_full_roles: bool,
}

#[derive(Deserialize)]
struct UserChange {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(rename = "userType", default)]
    user_type: Option<String>,
}

#[derive(Deserialize)]
struct GroupChange {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(rename = "groupType", default)]
    group_type: Option<String>,
}

#[derive(Serialize)]
struct UserAssignment {
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(rename = "userType")]
    user_type: &'static str,
}

#[derive(Serialize)]
struct GroupAssignment {
    #[serde(rename = "groupId")]
    group_id: String,
    #[serde(rename = "groupType")]
    group_type: &'static str,
}

/// The user namespace of a `userType` (422 as Weaviate's enum validation answers).
fn user_namespace(user_type: &str) -> Result<Namespace, AuthzError> {
    match user_type {
        "db" => Ok(Namespace::Db),
        "oidc" => Ok(Namespace::Oidc),
        other => Err(AuthzError::Validation {
            code: 606,
            message: format!("userType in path should be one of [db oidc], not {other:?}"),
        }),
    }
}

fn require_oidc_group_type(group_type: &str) -> Result<(), AuthzError> {
    if group_type == OIDC {
        Ok(())
    } else {
        Err(AuthzError::BadRequest(format!(
            "unknown groupType: {group_type}"
        )))
    }
}

impl AuthzApi {
    /// Whether a static or database user of this name exists.
    async fn db_user_exists(&self, id: &str) -> bool {
        self.static_users.iter().any(|u| u == id)
            || (self.keys.db_enabled() && matches!(self.keys.get(id).await, Ok(Some(_))))
    }

    /// Whether `user` shows in the caller's listings: its own name, or `read_users` on it.
    fn sees_user(&self, caller: &Principal, user: &str) -> bool {
        user == caller.username() || self.allows(caller, &Request::named(Action::ReadUsers, user))
    }

    /// The holders of `root` and `read-only` are shown to root users only.
    fn require_role_listing(&self, caller: &Principal, role: &str) -> Result<(), AuthzError> {
        let settings_role = matches!(
            BuiltInRole::parse(role),
            Some(BuiltInRole::Root | BuiltInRole::ReadOnly)
        );
        if settings_role && !self.is_root(caller) {
            return Err(super::forbidden(
                caller,
                &Request::named(Action::ReadRoles, role),
            ));
        }
        self.require_scope(caller, Action::ReadRoles, role, &[])
    }

    /// Role bodies for `names`: with permissions when `full`, each then readable by the
    /// caller unless `own`.
    async fn role_bodies(
        &self,
        caller: &Principal,
        names: Vec<String>,
        full: bool,
        own: bool,
    ) -> Result<Vec<RoleBody>, AuthzError> {
        let mut bodies = Vec::with_capacity(names.len());
        for name in names {
            if !full {
                bodies.push(RoleBody::new(name, None));
                continue;
            }
            if !own {
                self.require_scope(caller, Action::ReadRoles, &name, &[])?;
            }
            if let Some(grants) = self.roles.role(&name).await {
                bodies.push(RoleBody::new(name, Some(&grants)));
            }
        }
        Ok(bodies)
    }
}

/// `GET /v1/authz/roles/{id}/user-assignments`: OIDC users first, then database users, each
/// sorted; the caller sees the users it may read (and itself). Streamed a page at a time.
pub(super) async fn user_assignments(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, AuthzError> {
    api.require_role_listing(&caller.0, &id)?;
    let role = id.into_inner();
    let caller = caller.0;
    // The cursor is the namespace's letter and the last name of the page before.
    Ok(paged::json_array(move |cursor: Option<String>| {
        let (api, role, caller) = (api.clone(), role.clone(), caller.clone());
        async move {
            let (ns, after) = match cursor.as_deref() {
                Some(rest) if rest.starts_with('d') => (
                    Namespace::Db,
                    Some(rest[1..].to_owned()).filter(|s| !s.is_empty()),
                ),
                Some(rest) => (Namespace::Oidc, Some(rest[1..].to_owned())),
                None => (Namespace::Oidc, None),
            };
            let (names, next) = api
                .roles
                .holders_page(ns, &role, after.as_deref(), paged::PAGE)
                .await;
            let page: Vec<UserAssignment> = names
                .into_iter()
                .filter(|user| api.sees_user(&caller, user))
                .map(|user| {
                    let user_type = match ns {
                        Namespace::Oidc => OIDC,
                        _ if api.static_users.contains(&user) => "db_env_user",
                        _ => "db_user",
                    };
                    UserAssignment {
                        user_id: user,
                        user_type,
                    }
                })
                .collect();
            let next = match (ns, next) {
                (Namespace::Oidc, Some(after)) => Some(format!("o{after}")),
                // The database users start after the last OIDC page, from their first.
                (Namespace::Oidc, None) => Some("d".to_owned()),
                (_, Some(after)) => Some(format!("d{after}")),
                (_, None) => None,
            };
            (page, next)
        }
    }))
}

/// `GET /v1/authz/roles/{id}/users` (deprecated): database and OIDC holders merged, sorted,
/// each name once; streamed a page at a time.
pub(super) async fn role_users(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, AuthzError> {
    api.require_role_listing(&caller.0, &id)?;
    let role = id.into_inner();
    let caller = caller.0;
    Ok(paged::json_array(move |after: Option<String>| {
        let (api, role, caller) = (api.clone(), role.clone(), caller.clone());
        async move {
            let after = after.as_deref();
            let (db, db_next) = api
                .roles
                .holders_page(Namespace::Db, &role, after, paged::PAGE)
                .await;
            let (oidc, oidc_next) = api
                .roles
                .holders_page(Namespace::Oidc, &role, after, paged::PAGE)
                .await;
            // Past the end of a full page, the other namespace may hold names this page has
            // not seen yet: keep only what both pages cover.
            let bound = match (&db_next, &oidc_next) {
                (Some(a), Some(b)) => Some(a.min(b).clone()),
                (Some(a), None) | (None, Some(a)) => Some(a.clone()),
                (None, None) => None,
            };
            let mut users: Vec<String> = db
                .into_iter()
                .chain(oidc)
                .filter(|user| bound.as_ref().is_none_or(|bound| user <= bound))
                .collect();
            users.sort_unstable();
            users.dedup();
            let next = bound;
            users.retain(|user| api.sees_user(&caller, user));
            (users, next)
        }
    }))
}

/// `GET /v1/authz/roles/{id}/group-assignments`: sorted; filtered by `read_groups` (Weaviate
/// filtered by `read_users` on the group's name). Streamed a page at a time.
pub(super) async fn group_assignments(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, AuthzError> {
    api.require_role_listing(&caller.0, &id)?;
    let role = id.into_inner();
    let caller = caller.0;
    Ok(paged::json_array(move |after: Option<String>| {
        let (api, role, caller) = (api.clone(), role.clone(), caller.clone());
        async move {
            let (groups, next) = api
                .roles
                .holders_page(Namespace::Group, &role, after.as_deref(), paged::PAGE)
                .await;
            let page: Vec<GroupAssignment> = groups
                .into_iter()
                .filter(|group| api.allows(&caller, &Request::named(Action::ReadGroups, group)))
                .map(|group| GroupAssignment {
                    group_id: group,
                    group_type: OIDC,
                })
                .collect();
            (page, next)
        }
    }))
}

/// `GET /v1/authz/users/{id}/roles/{userType}`.
pub(super) async fn user_roles(
    api: web::Data<AuthzApi>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<FullRoles>,
) -> Result<HttpResponse, AuthzError> {
    let (id, user_type) = path.into_inner();
    let ns = user_namespace(&user_type)?;
    let own = id == caller.0.username() && own_namespace(&caller.0) == Some(ns);
    if !own {
        api.require(&caller.0, &Request::named(Action::ReadUsers, &id))?;
    }
    match ns {
        Namespace::Oidc if !api.oidc => {
            return Err(AuthzError::Internal(
                "user existence: oidc is not enabled".into(),
            ))
        }
        Namespace::Db if !api.db_user_exists(&id).await => return Err(AuthzError::NotFoundEmpty),
        _ => {}
    }
    let names = api.roles.roles_of(ns, &id).await;
    let bodies = api
        .role_bodies(&caller.0, names, query.include_full_roles, own)
        .await?;
    Ok(ok_json(&bodies))
}

/// `GET /v1/authz/users/{id}/roles` (deprecated): database and OIDC roles merged, with
/// permissions; the roles the caller may not read are left out (403 when that is all).
pub(super) async fn user_roles_deprecated(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, AuthzError> {
    let own = id.as_str() == caller.0.username();
    if !own {
        api.require(&caller.0, &Request::named(Action::ReadUsers, &id))?;
    }
    if !api.oidc && !api.db_user_exists(&id).await {
        return Err(AuthzError::NotFoundEmpty);
    }
    let mut names = api.roles.roles_of(Namespace::Db, &id).await;
    names.extend(api.roles.roles_of(Namespace::Oidc, &id).await);
    names.sort();
    names.dedup();
    let total = names.len();
    let mut bodies = Vec::with_capacity(total);
    for name in names {
        let readable = own
            || api
                .require_scope(&caller.0, Action::ReadRoles, &name, &[])
                .is_ok();
        if let (true, Some(grants)) = (readable, api.roles.role(&name).await) {
            bodies.push(RoleBody::new(name, Some(&grants)));
        }
    }
    if total > 0 && bodies.is_empty() {
        return Err(super::forbidden(
            &caller.0,
            &Request::named(Action::ReadRoles, "*"),
        ));
    }
    Ok(ok_json(&bodies))
}

/// The checks assign and revoke share before the caller's permission: no empty role name,
/// never `root` or `read-only`, at least one role.
fn check_roles(roles: &[String], verb: &str) -> Result<(), AuthzError> {
    if roles.iter().any(String::is_empty) {
        return Err(AuthzError::BadRequest(format!(
            "one or more of the roles you want to {verb} is empty"
        )));
    }
    let gerund = if verb == "assign" {
        "assigning"
    } else {
        "revoking"
    };
    if let Some(role) = roles
        .iter()
        .find(|role| BuiltInRole::parse(role).is_some_and(|built_in| !built_in.assignable()))
    {
        return Err(AuthzError::Forbidden(format!(
            "{gerund}: modifying '{role}' role or changing its assignments is not allowed"
        )));
    }
    if roles.is_empty() {
        return Err(AuthzError::BadRequest("roles can not be empty".into()));
    }
    Ok(())
}

async fn change_user(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: String,
    body: web::Bytes,
    assign: bool,
) -> Result<HttpResponse, AuthzError> {
    let verb = if assign { "assign" } else { "revoke" };
    let result = async {
        let body: UserChange = json_body(&body)?;
        check_roles(&body.roles, verb)?;
        let namespaces = match body.user_type.as_deref() {
            Some(user_type) => vec![user_namespace(user_type)?],
            // Weaviate's deprecated path (the Python client's revoke): both namespaces.
            None if api.oidc => vec![Namespace::Db, Namespace::Oidc],
            None => vec![Namespace::Db],
        };
        api.require(
            &caller.0,
            &Request::named(Action::AssignAndRevokeUsers, &id),
        )?;
        let only_oidc = namespaces == [Namespace::Oidc];
        let deprecated = body.user_type.is_none();
        let check = async {
            if only_oidc {
                return if api.oidc {
                    Ok(())
                } else {
                    Err(SubjectRefusal::OidcDisabled)
                };
            }
            if (deprecated && api.oidc) || api.db_user_exists(&id).await {
                Ok(())
            } else {
                Err(SubjectRefusal::Missing)
            }
        };
        api.roles
            .change_assignments(assign, &namespaces, &id, &body.roles, check)
            .await
            .map_err(|err| match err {
                RoleError::UnknownRoles if assign => {
                    AuthzError::NotFound("one or more of the roles requested doesn't exist".into())
                }
                RoleError::UnknownRoles => {
                    AuthzError::NotFound("one or more of the request roles doesn't exist".into())
                }
                RoleError::Subject(SubjectRefusal::OidcDisabled) => {
                    AuthzError::Internal("user exists: oidc is not enabled".into())
                }
                RoleError::Subject(SubjectRefusal::Missing) if assign => {
                    AuthzError::NotFound("username to assign role to doesn't exist".into())
                }
                RoleError::Subject(SubjectRefusal::Missing) => {
                    AuthzError::NotFound("username to revoke role from doesn't exist".into())
                }
                other => internal(other),
            })
    }
    .await;
    api.count(
        if assign {
            RbacOp::Assign
        } else {
            RbacOp::Revoke
        },
        &result,
    );
    api.acknowledged(result.map(|()| HttpResponse::Ok().finish()))
        .await
}

/// `POST /v1/authz/users/{id}/assign`.
pub(super) async fn assign_user(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    change_user(api, caller, id.into_inner(), body, true).await
}

/// `POST /v1/authz/users/{id}/revoke`.
pub(super) async fn revoke_user(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    change_user(api, caller, id.into_inner(), body, false).await
}

async fn change_group(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: String,
    body: web::Bytes,
    assign: bool,
) -> Result<HttpResponse, AuthzError> {
    let verb = if assign { "assign" } else { "revoke" };
    let result = async {
        let body: GroupChange = json_body(&body)?;
        check_roles(&body.roles, verb)?;
        require_oidc_group_type(body.group_type.as_deref().unwrap_or(OIDC))?;
        api.require(
            &caller.0,
            &Request::named(Action::AssignAndRevokeGroups, &id),
        )?;
        if api.settings.is_settings_group(&id) {
            return Err(AuthzError::Forbidden(format!(
                "assigning: cannot assign or revoke from root group {id}"
            )));
        }
        api.roles
            .change_assignments(assign, &[Namespace::Group], &id, &body.roles, async {
                Ok(())
            })
            .await
            .map_err(|err| match err {
                RoleError::UnknownRoles => AuthzError::NotFoundEmpty,
                other => internal(other),
            })
    }
    .await;
    api.count(
        if assign {
            RbacOp::Assign
        } else {
            RbacOp::Revoke
        },
        &result,
    );
    api.acknowledged(result.map(|()| HttpResponse::Ok().finish()))
        .await
}

/// `POST /v1/authz/groups/{id}/assign`.
pub(super) async fn assign_group(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    change_group(api, caller, id.into_inner(), body, true).await
}

/// `POST /v1/authz/groups/{id}/revoke`.
pub(super) async fn revoke_group(
    api: web::Data<AuthzApi>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AuthzError> {
    change_group(api, caller, id.into_inner(), body, false).await
}

/// `GET /v1/authz/groups/{groupType}`: groups holding a role that the caller may read,
/// sorted (Weaviate's order was a map's).
pub(super) async fn groups(
    api: web::Data<AuthzApi>,
    caller: Caller,
    group_type: web::Path<String>,
) -> Result<HttpResponse, AuthzError> {
    require_oidc_group_type(&group_type)?;
    let groups: Vec<String> = api
        .roles
        .groups()
        .await
        .into_iter()
        .filter(|group| api.allows(&caller.0, &Request::named(Action::ReadGroups, group)))
        .collect();
    Ok(ok_json(&groups))
}

/// `GET /v1/authz/groups/{id}/roles/{groupType}`: no check for the caller's own groups.
pub(super) async fn group_roles(
    api: web::Data<AuthzApi>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<FullRoles>,
) -> Result<HttpResponse, AuthzError> {
    let (id, group_type) = path.into_inner();
    require_oidc_group_type(&group_type)?;
    let own = own_namespace(&caller.0) == Some(Namespace::Oidc) && caller.0.groups().contains(&id);
    if !own {
        api.require(&caller.0, &Request::named(Action::ReadGroups, &id))?;
    }
    let names = api.roles.roles_of(Namespace::Group, &id).await;
    let bodies = api
        .role_bodies(&caller.0, names, query.include_full_roles, own)
        .await?;
    Ok(ok_json(&bodies))
}
