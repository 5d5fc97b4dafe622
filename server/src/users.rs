//! The database-users API, with Weaviate's routes, bodies and status codes:
//! `/v1/users/db[/{id}[/rotate-key|/activate|/deactivate]]`. Every change is a message to the
//! KeyRegistry actor, which commits it to the user store before it answers.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpResponse};
use portcullis_auth::{Authorizer, KeyRegistryHandle, Principal, UserError, UserInfo};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::gate::Caller;

/// User-management metrics.
pub struct UserMetrics {
    db_users: IntGaugeVec,
    key_operations: IntCounterVec,
}

impl UserMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let db_users = IntGaugeVec::new(
            Opts::new("portcullis_db_users", "Database users by state."),
            &["state"],
        )?;
        let key_operations = IntCounterVec::new(
            Opts::new(
                "portcullis_key_operations_total",
                "User and key management operations by operation and result.",
            ),
            &["op", "result"],
        )?;
        registry.register(Box::new(db_users.clone()))?;
        registry.register(Box::new(key_operations.clone()))?;
        Ok(UserMetrics {
            db_users,
            key_operations,
        })
    }

    /// Publishes the current counts of database users.
    pub fn set_counts(&self, keys: &KeyRegistryHandle) {
        let counts = keys.counts();
        let load = |a: &std::sync::atomic::AtomicI64| a.load(std::sync::atomic::Ordering::Relaxed);
        self.db_users
            .with_label_values(&["active"])
            .set(load(&counts.active));
        self.db_users
            .with_label_values(&["inactive"])
            .set(load(&counts.inactive));
    }
}

/// What the user handlers share.
pub struct UsersApi {
    /// The KeyRegistry.
    pub keys: KeyRegistryHandle,
    /// Decides who is an admin.
    pub authorizer: Arc<Authorizer>,
    /// Metrics.
    pub metrics: UserMetrics,
}

/// A management operation, the `op` label.
#[derive(Clone, Copy)]
enum Op {
    Create,
    Rotate,
    Activate,
    Deactivate,
    Delete,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Rotate => "rotate",
            Op::Activate => "activate",
            Op::Deactivate => "deactivate",
            Op::Delete => "delete",
        }
    }
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/users/db", web::get().to(list_users))
        .route("/v1/users/db/{id}", web::get().to(get_user))
        .route("/v1/users/db/{id}", web::post().to(create_user))
        .route("/v1/users/db/{id}", web::delete().to(delete_user))
        .route("/v1/users/db/{id}/rotate-key", web::post().to(rotate_key))
        .route("/v1/users/db/{id}/activate", web::post().to(activate_user))
        .route(
            "/v1/users/db/{id}/deactivate",
            web::post().to(deactivate_user),
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
        UserError::Store | UserError::Random | UserError::Unavailable => ApiError::Internal,
    }
}

impl UsersApi {
    /// Whether the caller is an admin. Anonymous callers never are, even with the admin list
    /// off.
    fn is_admin(&self, caller: &Principal) -> bool {
        self.authorizer.manages_users(caller)
    }

    /// Only admins manage users.
    fn require_admin(&self, caller: &Principal, path: &str) -> Result<(), ApiError> {
        if !self.is_admin(caller) {
            return Err(ApiError::Forbidden {
                user: caller.username().to_owned(),
                verb: "manage users at",
                path: path.to_owned(),
            });
        }
        if !self.keys.db_enabled() {
            return Err(user_error(UserError::Disabled));
        }
        Ok(())
    }

    /// Counts an operation's outcome and keeps the user gauges current.
    fn count<T>(&self, op: Op, result: &Result<T, ApiError>) {
        let label = match result {
            Ok(_) => "ok",
            Err(ApiError::Internal) => "failed",
            Err(_) => "rejected",
        };
        self.metrics
            .key_operations
            .with_label_values(&[op.as_str(), label])
            .inc();
        if result.is_ok() {
            self.metrics.set_counts(&self.keys);
        }
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
    /// One management operation: the admin check, then the KeyRegistry call `change` makes
    /// (it may refuse the request body first); counted and audited.
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
            self.require_admin(caller, path)?;
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
) -> Result<HttpResponse, ApiError> {
    let key = api
        .manage(Op::Create, &caller.0, req.path(), || {
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
) -> Result<HttpResponse, ApiError> {
    let key = api
        .manage(Op::Rotate, &caller.0, req.path(), || {
            Ok(api.keys.rotate_key(id.into_inner()))
        })
        .await?;
    Ok(with_key(actix_web::http::StatusCode::OK, key.expose()))
}

async fn deactivate_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    api.manage(Op::Deactivate, &caller.0, req.path(), || {
        let body: DeactivateBody = optional_json(&body)?;
        Ok(api
            .keys
            .deactivate(id.into_inner(), caller.0.username(), body.revoke_key))
    })
    .await?;
    Ok(HttpResponse::Ok().finish())
}

async fn activate_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    api.manage(Op::Activate, &caller.0, req.path(), || {
        Ok(api.keys.activate(id.into_inner()))
    })
    .await?;
    Ok(HttpResponse::Ok().finish())
}

async fn delete_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    api.manage(Op::Delete, &caller.0, req.path(), || {
        Ok(api.keys.delete(id.into_inner(), caller.0.username()))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `?includeLastUsedTime=true`.
#[derive(Deserialize)]
struct InfoQuery {
    #[serde(rename = "includeLastUsedTime", default)]
    include_last_used_time: bool,
}

/// Weaviate's `DBUserInfo`. Admins see static users and the key's first letters.
fn user_json(info: &UserInfo, admin: bool, include_last_used: bool) -> Value {
    let mut v = json!({
        "userId": info.id,
        "dbUserType": if info.is_static { "db_env_user" } else { "db_user" },
        "roles": [],
        "active": info.active,
    });
    if let Some(created) = info.created_at_ms {
        v["createdAt"] = Value::String(rfc3339(created));
    }
    if include_last_used {
        if let Some(last) = info.last_used_ms {
            v["lastUsedAt"] = Value::String(rfc3339(last));
        }
    }
    if admin {
        if let Some(letters) = &info.first_letters {
            v["apiKeyFirstLetters"] = Value::String(letters.clone());
        }
    }
    v
}

async fn list_users(
    api: web::Data<UsersApi>,
    caller: Caller,
    query: web::Query<InfoQuery>,
) -> Result<HttpResponse, ApiError> {
    if !api.keys.db_enabled() {
        return Ok(HttpResponse::Ok().json(json!([])));
    }
    let admin = api.is_admin(&caller.0);
    let users = api.keys.list().await.map_err(user_error)?;
    let body: Vec<Value> = users
        .iter()
        .filter(|u| admin || !u.is_static)
        .map(|u| user_json(u, admin, query.include_last_used_time))
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn get_user(
    api: web::Data<UsersApi>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<InfoQuery>,
) -> Result<HttpResponse, ApiError> {
    if !api.keys.db_enabled() {
        return Err(user_error(UserError::Disabled));
    }
    let admin = api.is_admin(&caller.0);
    let id = id.into_inner();
    let info = api
        .keys
        .get(id.as_str())
        .await
        .map_err(user_error)?
        .filter(|u| admin || !u.is_static)
        .ok_or_else(|| user_error(UserError::NotFound(id)))?;
    Ok(HttpResponse::Ok().json(user_json(&info, admin, query.include_last_used_time)))
}

/// Unix milliseconds as an RFC 3339 UTC timestamp with millisecond precision.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_796_083_199_999), "2026-11-30T23:59:59.999Z");
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
