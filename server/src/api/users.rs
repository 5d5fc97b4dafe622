//! The database-users API, with Weaviate's routes, bodies and status codes:
//! `/v1/users/db[/{id}[/rotate-key|/activate|/deactivate]]`. Every change is a message to the
//! KeyRegistry actor, which commits it to the user store before it answers.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpResponse};
#[cfg(test)]
use portcullis_auth::UserInfo;
use portcullis_auth::{Authorizer, KeyRegistryHandle, Principal, UserError};
use serde::Deserialize;
use serde_json::json;
#[cfg(test)]
use serde_json::Value;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use self::listing::UserView;
use crate::authz::ListFilter;
use crate::error::{ApiError, STORE_UNAVAILABLE};
use crate::gate::Caller;
// The handlers' short name for the operation label.
use crate::metrics::KeyOperation as Op;
use crate::metrics::{KeyOutcome, Metrics};

mod listing;
#[cfg(test)]
mod listing_tests;

/// What the user handlers share.
pub struct UsersApi {
    /// The KeyRegistry.
    pub keys: KeyRegistryHandle,
    /// Decides who is an admin.
    pub authorizer: Arc<Authorizer>,
    /// Where operations are counted.
    pub metrics: Arc<Metrics>,
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // One scope: a request to a route registered later passes these with one prefix
    // comparison (each pattern with a parameter costs a regex match). `/v1/users/own-info` is
    // registered before it (api/meta.rs); any other path under `/v1/users` is 404.
    cfg.service(
        web::scope("/v1/users")
            .route("/db", web::get().to(list_users))
            .route("/db/{id}", web::get().to(get_user))
            .route("/db/{id}", web::post().to(create_user))
            .route("/db/{id}", web::delete().to(delete_user))
            .route("/db/{id}/rotate-key", web::post().to(rotate_key))
            .route("/db/{id}/activate", web::post().to(activate_user))
            .route("/db/{id}/deactivate", web::post().to(deactivate_user)),
    );
}

fn user_error(err: UserError) -> ApiError {
    let message = err.to_string();
    match err {
        UserError::Disabled
        | UserError::BadName
        | UserError::Reserved(_)
        | UserError::StaticUser(_)
        | UserError::SelfAction(_) => ApiError::Unprocessable(message),
        UserError::Exists(_) | UserError::AlreadyActive(_) | UserError::AlreadyInactive(_) => {
            ApiError::Conflict(message)
        }
        UserError::NotFound(_) => ApiError::NotFoundWith(message),
        UserError::Store | UserError::Random | UserError::Unavailable | UserError::KeyInUse => {
            ApiError::Internal
        }
        UserError::StoreUnavailable => ApiError::ServiceUnavailable {
            message: STORE_UNAVAILABLE,
            retry_after: 1,
        },
    }
}

/// Refuses managing a database user named like an RBAC root user: such a user holds `root`
/// (root users apply to database users of that name), so whoever could create it, or rotate
/// or reactivate its key, would take root over. Weaviate refuses the same names.
fn refuse_root_name(
    authz: &Option<web::Data<crate::api::authz::AuthzApi>>,
    id: &str,
) -> Result<(), ApiError> {
    match authz {
        Some(authz) if authz.settings.is_root_user(id) => Err(ApiError::Unprocessable(format!(
            "user '{id}' is a root user (AUTHORIZATION_RBAC_ROOT_USERS) and cannot be \
                 managed through this API"
        ))),
        _ => Ok(()),
    }
}

impl UsersApi {
    /// Whether the caller administers users, which decides what a listing shows (static
    /// users, key prefixes). Who may call these routes at all is the gate's decision
    /// (`Access::Users`), made before any handler runs.
    fn is_admin(&self, caller: &Principal) -> bool {
        self.authorizer.manages_users(caller)
    }

    /// Management needs database users on (the gate has already checked the caller).
    fn require_enabled(&self) -> Result<(), ApiError> {
        if !self.keys.db_enabled() {
            return Err(user_error(UserError::Disabled));
        }
        Ok(())
    }

    /// Counts an operation's outcome (the user gauges are read from the KeyRegistry's counts
    /// at scrape time).
    fn count<T>(&self, op: Op, result: &Result<T, ApiError>) {
        let outcome = match result {
            Ok(_) => KeyOutcome::Ok,
            Err(ApiError::Internal) => KeyOutcome::Failed,
            Err(_) => KeyOutcome::Rejected,
        };
        self.metrics.observe_key_operation(op, outcome);
    }
}

fn with_key(status: actix_web::http::StatusCode, key: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(json!({ "apikey": key }))
}

/// Optional body of `POST /v1/users/db/{id}`.
#[derive(Deserialize, Default)]
struct CreateBody {
    #[serde(default)]
    import: bool,
}

/// Optional body of `POST /v1/users/db/{id}/deactivate`.
#[derive(Deserialize, Default)]
struct DeactivateBody {
    #[serde(default)]
    revoke_key: bool,
}

fn optional_json<T: Default + for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|_| {
        ApiError::BadRequest("request body is not valid JSON for this operation".into())
    })
}

impl UsersApi {
    /// One management operation: database users must be on, then the KeyRegistry call
    /// `change` makes (it may refuse the request body first); counted and audited. The gate
    /// has let only an administrator through.
    async fn manage<T, F>(
        &self,
        op: Op,
        caller: &Principal,
        path: &str,
        change: impl FnOnce() -> Result<F, ApiError>,
    ) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, UserError>>,
    {
        let result = async {
            self.require_enabled()?;
            change()?.await.map_err(user_error)
        }
        .await;
        self.count(op, &result);
        if result.is_ok() {
            tracing::info!(
                target: "portcullis::audit",
                actor = ?caller.username(),
                op = op.as_str(),
                path = ?path,
                "database user changed"
            );
        }
        result
    }
}

async fn create_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
    authz: Option<web::Data<crate::api::authz::AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    let key = api
        .manage(Op::Create, &caller.0, req.path(), || {
            refuse_root_name(&authz, &id)?;
            let body: CreateBody = optional_json(&body)?;
            if body.import {
                return Err(ApiError::Unprocessable(
                    "importing static keys is not supported".into(),
                ));
            }
            Ok(api.keys.create_user(id.into_inner()))
        })
        .await?;
    Ok(with_key(actix_web::http::StatusCode::CREATED, key.expose()))
}

async fn rotate_key(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
    authz: Option<web::Data<crate::api::authz::AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    let key = api
        .manage(Op::Rotate, &caller.0, req.path(), || {
            refuse_root_name(&authz, &id)?;
            Ok(api.keys.rotate_key(id.into_inner()))
        })
        .await?;
    let mut response = with_key(actix_web::http::StatusCode::OK, key.expose());
    acknowledged(&api, &mut response).await;
    Ok(response)
}

async fn deactivate_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
    authz: Option<web::Data<crate::api::authz::AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    api.manage(Op::Deactivate, &caller.0, req.path(), || {
        refuse_root_name(&authz, &id)?;
        let body: DeactivateBody = optional_json(&body)?;
        Ok(api
            .keys
            .deactivate(id.into_inner(), caller.0.username(), body.revoke_key))
    })
    .await?;
    let mut response = HttpResponse::Ok().finish();
    acknowledged(&api, &mut response).await;
    Ok(response)
}

async fn activate_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
    authz: Option<web::Data<crate::api::authz::AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    api.manage(Op::Activate, &caller.0, req.path(), || {
        refuse_root_name(&authz, &id)?;
        Ok(api.keys.activate(id.into_inner()))
    })
    .await?;
    let mut response = HttpResponse::Ok().finish();
    acknowledged(&api, &mut response).await;
    Ok(response)
}

async fn delete_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
    authz: Option<web::Data<crate::api::authz::AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    api.manage(Op::Delete, &caller.0, req.path(), || {
        refuse_root_name(&authz, &id)?;
        let id = id.into_inner();
        let delete = api.keys.delete(id.clone(), caller.0.username());
        // With RBAC on, under the roles' write lock: the store removes the user's db:
        // assignments in the user's transaction, and its published roles go before the reply.
        Ok(async move {
            match authz {
                Some(authz) => authz.roles.delete_db_user(&id, delete).await,
                None => delete.await,
            }
        })
    })
    .await?;
    let mut response = HttpResponse::NoContent().finish();
    acknowledged(&api, &mut response).await;
    Ok(response)
}

/// The header naming how many replicas applied a change before the reply
/// (`docs/replicas.md`, acknowledged revocation).
const REPLICAS_ACKNOWLEDGED: &str = "x-portcullis-replicas-acknowledged";

/// With the user store shared by replicas: waits until every replica holding a live lease
/// applied the change just made (at most the bound), and says how many did in a header.
async fn acknowledged(api: &UsersApi, response: &mut HttpResponse) {
    let count = api.keys.acknowledge().await;
    replicas_acknowledged(response, count);
}

/// Sets `X-Portcullis-Replicas-Acknowledged` to `count` (none without one).
pub(crate) fn replicas_acknowledged(response: &mut HttpResponse, count: Option<i64>) {
    if let Some(count) = count {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&count.to_string()) {
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static(REPLICAS_ACKNOWLEDGED),
                value,
            );
        }
    }
}

/// `?includeLastUsedTime=true`.
#[derive(Deserialize)]
struct InfoQuery {
    #[serde(rename = "includeLastUsedTime", default)]
    include_last_used_time: bool,
}

/// Weaviate's `DBUserInfo` as a JSON value. Admins see static users and the key's first
/// letters.
#[cfg(test)]
fn user_json(info: &UserInfo, admin: bool, include_last_used: bool) -> Value {
    serde_json::to_value(UserView::new(info, admin, include_last_used)).unwrap_or(Value::Null)
}

/// Streams the listing, a page of users at a time (`listing.rs`): the first page is read
/// before the response starts, so a KeyRegistry that does not answer is still a 500.
async fn list_users(
    api: web::Data<UsersApi>,
    caller: Caller,
    query: web::Query<InfoQuery>,
    filter: Option<web::ReqData<ListFilter>>,
    authz: Option<web::Data<crate::api::authz::AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    if !api.keys.db_enabled() {
        return Ok(HttpResponse::Ok().json(json!([])));
    }
    let admin =
        api.is_admin(&caller.0) || authz.as_ref().is_some_and(|a| a.is_root_caller(&caller.0));
    let first = api
        .keys
        .list_page(None, listing::PAGE)
        .await
        .map_err(user_error)?;
    let roles = match authz {
        Some(authz) => Some(Arc::clone(&authz.roles)),
        None => None,
    };
    let body = listing::body(
        api.keys.clone(),
        first,
        admin,
        query.include_last_used_time,
        filter.map(web::ReqData::into_inner),
        roles,
    );
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .streaming(body))
}

async fn get_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<InfoQuery>,
    authz: Option<web::Data<crate::api::authz::AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    if !api.keys.db_enabled() {
        return Err(user_error(UserError::Disabled));
    }
    let admin =
        api.is_admin(&caller.0) || authz.as_ref().is_some_and(|a| a.is_root_caller(&caller.0));
    let id = id.into_inner();
    let info = api
        .keys
        .get(id.as_str())
        .await
        .map_err(user_error)?
        .filter(|u| admin || !u.is_static)
        .ok_or_else(|| user_error(UserError::NotFound(id)))?;
    let roles = match authz {
        Some(authz) => {
            authz
                .roles
                .roles_of(portcullis_auth::rbac::Namespace::Db, &info.id)
                .await
        }
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok()
        .json(UserView::new(&info, admin, query.include_last_used_time).with_roles(roles)))
}

/// Weaviate's timestamps: RFC 3339 in UTC, always with milliseconds.
const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Unix milliseconds as an RFC 3339 UTC timestamp with millisecond precision; `None` past the
/// years 0 to 9999, which no clock of ours produces.
fn rfc3339(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(TIMESTAMP).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_timestamps() {
        for (ms, formatted) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_796_083_199_999, "2026-11-30T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(rfc3339(ms).as_deref(), Some(formatted), "{ms}");
        }
        assert_eq!(rfc3339(253_402_300_800_000), None, "the year 10000");
    }

    #[test]
    fn user_errors_map_to_weaviates_status_codes() {
        use actix_web::ResponseError;
        let cases = [
            (UserError::Disabled, 422),
            (UserError::BadName, 422),
            (UserError::Reserved("anonymous".into()), 422),
            (UserError::StaticUser("s".into()), 422),
            (UserError::SelfAction("delete"), 422),
            (UserError::Exists("x".into()), 409),
            (UserError::AlreadyActive("x".into()), 409),
            (UserError::AlreadyInactive("x".into()), 409),
            (UserError::NotFound("x".into()), 404),
            (UserError::Store, 500),
            (UserError::StoreUnavailable, 503),
            (UserError::Random, 500),
            (UserError::Unavailable, 500),
        ];
        for (err, status) in cases {
            let text = err.to_string();
            assert_eq!(user_error(err).status_code().as_u16(), status, "{text}");
        }
    }

    #[test]
    fn non_admins_see_no_first_letters() {
        let info = UserInfo {
            id: "u".into(),
            is_static: false,
            active: true,
            created_at_ms: Some(0),
            last_used_ms: Some(1000),
            first_letters: Some("abc".into()),
        };
        assert_eq!(user_json(&info, true, false)["apiKeyFirstLetters"], "abc");
        assert!(user_json(&info, false, false)
            .get("apiKeyFirstLetters")
            .is_none());
        assert!(user_json(&info, true, false).get("lastUsedAt").is_none());
        assert_eq!(
            user_json(&info, true, true)["lastUsedAt"],
            "1970-01-01T00:00:01.000Z"
        );
    }
}
