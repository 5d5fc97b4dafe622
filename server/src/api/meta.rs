//! Portcullis' own routes: health, the `/v1` index, meta and own-info. Every route here must
//! also be in the route table (`gate/route_table.rs`), which decides who may reach it.

use actix_web::http::{header, Method};
use actix_web::{guard, web, HttpResponse};
use serde_json::json;

use crate::api::authz::AuthzApi;
use crate::error::ApiError;
use crate::gate::{Caller, Gate};

/// The Weaviate version `/v1/meta` reports. The official clients refuse servers below 1.27.0;
/// this is the API level whose authentication routes Portcullis implements.
pub const WEAVIATE_COMPAT_VERSION: &str = "1.30.0";

/// Facts `/v1/meta` reports.
pub struct MetaInfo {
    /// `http://<bound address>`.
    pub hostname: String,
}

impl MetaInfo {
    /// The facts for a server listening on `addr`.
    pub fn at(addr: std::net::SocketAddr) -> Self {
        MetaInfo {
            hostname: format!("http://{addr}"),
        }
    }
}

/// Registers the routes on an application.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Every path here is static, so the order decides only how many resources a request
    // passes before its own: the routes requested most come first (clients ask `/v1/meta`
    // when they connect, probes the health routes every few seconds).
    cfg.service(get_or_head("/v1/meta", meta))
        .service(get_or_head("/v1/.well-known/live", live))
        .service(get_or_head("/v1/.well-known/ready", ready))
        .route("/", web::get().to(redirect_root))
        .route(
            "/v1/.well-known/openid-configuration",
            web::get().to(openid_configuration),
        )
        .route("/v1", web::get().to(index))
        .route("/v1/", web::get().to(index))
        .route("/v1/users/own-info", web::get().to(own_info))
        .default_service(web::to(not_found));
}

/// GET and HEAD of `path`, both answered by `handler`, as one resource: the router compares
/// the path once for both methods (every request to a route registered later passes one
/// resource fewer), and a request with another method still passes on to the routes after it.
fn get_or_head<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    // One guard comparing the method twice (`guard::Any` of two guards walks a list of
    // boxed guards on every request).
    web::resource(path)
        .guard(guard::fn_guard(|ctx| {
            let method = &ctx.head().method;
            method == Method::GET || method == Method::HEAD
        }))
        .to(handler)
}

async fn redirect_root() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, "/v1"))
        .finish()
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// 200 while at least one authentication method can serve and the user store shared by
/// replicas, if any, has not been unreadable for longer than its grace (see
/// [`Gate::can_serve`]), else 503 with an empty body, as Weaviate answers an unready node.
async fn ready(gate: Option<web::Data<Gate>>) -> HttpResponse {
    match gate {
        Some(gate) if !gate.can_serve() => HttpResponse::ServiceUnavailable().finish(),
        _ => HttpResponse::Ok().finish(),
    }
}

/// What `GET /v1/.well-known/openid-configuration` tells clients; `None` when OIDC is off.
/// A configuration reload replaces it ([`OidcWellKnown::replace`]); the route is read rarely,
/// so a lock is cheap enough.
pub struct OidcWellKnown(std::sync::RwLock<Option<serde_json::Value>>);

impl OidcWellKnown {
    /// From the settings: Weaviate's `href`, `clientId` and `scopes` (omitted when empty).
    pub fn from_settings(settings: &portcullis_config::Settings) -> Self {
        OidcWellKnown(std::sync::RwLock::new(Self::body(settings)))
    }

    /// Answers from now on what `settings` say (a configuration reload).
    pub fn replace(&self, settings: &portcullis_config::Settings) {
        let body = Self::body(settings);
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = body;
    }

    fn body(settings: &portcullis_config::Settings) -> Option<serde_json::Value> {
        settings.authentication.oidc.as_ref().map(|oidc| {
            let mut body = json!({
                "href": oidc.discovery_url(),
                "clientId": oidc.client_id.clone().unwrap_or_default(),
            });
            if !oidc.scopes.is_empty() {
                body["scopes"] = json!(oidc.scopes);
            }
            body
        })
    }
}

/// Where clients find the issuer: 404 with an empty body when OIDC is off (Weaviate).
async fn openid_configuration(well_known: Option<web::Data<OidcWellKnown>>) -> HttpResponse {
    let body = well_known.as_deref().and_then(|w| {
        w.0.read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    });
    match body {
        Some(body) => HttpResponse::Ok().json(body),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn index() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "links": [
            { "name": "Meta information about this instance", "href": "/v1/meta" },
            { "name": "The caller's own user information", "href": "/v1/users/own-info" },
        ]
    }))
}

/// `GET /v1/meta`: what clients read when they connect.
pub async fn meta(info: web::Data<MetaInfo>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "hostname": info.hostname,
        "version": WEAVIATE_COMPAT_VERSION,
        "modules": {},
        "portcullis": { "version": env!("CARGO_PKG_VERSION") },
    }))
}

async fn own_info(
    caller: Caller,
    authz: Option<web::Data<AuthzApi>>,
) -> Result<HttpResponse, ApiError> {
    let principal = caller.0;
    if principal.is_anonymous() {
        return Err(ApiError::NotAuthenticated(
            "anonymous callers have no user information",
        ));
    }
    // With RBAC on, the caller's roles with their permissions (its groups' too).
    let roles = match authz {
        Some(authz) => serde_json::to_value(authz.own_roles(&principal).await)
            .map_err(|_| ApiError::Internal)?,
        None => serde_json::Value::Null,
    };
    Ok(HttpResponse::Ok().json(json!({
        "username": principal.username(),
        "groups": principal.groups(),
        "roles": roles,
    })))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
