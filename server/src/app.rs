//! The API application: the state every worker shares ([`AppState`]) and the `App` built from
//! it ([`app`]), used by `run` for each worker and by in-process tests.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App};
use anyhow::Context;
use portcullis_auth::client::TrustedProxies;
use portcullis_auth::gatekeeper::Gatekeeper;
use portcullis_auth::rbac::{RoleRegistry, RoleStore, UserKinds};
use portcullis_auth::throttle::FailureThrottle;
use portcullis_auth::{Authorizer, KeyRegistryHandle, UserStore};
use portcullis_config::Settings;

use crate::api::authz::{self, AuthzApi};
use crate::api::meta::{self, MetaInfo, OidcWellKnown};
use crate::api::users::{self, UsersApi};
use crate::gate::{self, Gate};
use crate::metrics::Metrics;
use crate::proxy::{self, Proxy};
use crate::store::{self, Store};

/// What the API workers share, built once at start. Cloning it clones handles, not state.
#[derive(Clone)]
pub struct AppState {
    gate: web::Data<Gate>,
    meta: web::Data<MetaInfo>,
    oidc_well_known: web::Data<OidcWellKnown>,
    users: web::Data<UsersApi>,
    /// The roles API, when RBAC is on.
    authz: Option<web::Data<AuthzApi>>,
    /// Set when an upstream database is configured.
    proxy: Option<web::Data<Proxy>>,
    /// The embedded document store, when there is no upstream.
    store: Option<web::Data<Store>>,
    max_body: usize,
    max_batch_objects: usize,
}

impl AppState {
    /// Builds the state from the settings, the metrics and the running KeyRegistry: starts
    /// OpenID Connect when it is on, builds the upstream client or opens the document store.
    /// `/v1/meta` reports the configured address until [`AppState::serving_at`] names the
    /// bound one.
    pub async fn new(
        settings: &Settings,
        metrics: Arc<Metrics>,
        keys: KeyRegistryHandle,
    ) -> anyhow::Result<Self> {
        let authorizer = Arc::new(Authorizer::from_settings(&settings.authorization));
        let roles = match &settings.authorization.rbac {
            Some(rbac) => Some(Arc::new(start_roles(settings, rbac).await?)),
            None => None,
        };
        if let Some(roles) = &roles {
            crate::replicas::follow_roles(roles, &keys);
        }
        let users = web::Data::new(UsersApi {
            keys: keys.clone(),
            authorizer: authorizer.clone(),
            metrics: metrics.clone(),
        });
        metrics
            .register_db_users(keys.clone())
            .context("while registering user metrics")?;
        // OpenID Connect: the JwksRefresher starts on this (the System) arbiter; the first key
        // fetch runs in the background, so start-up never waits for the issuer.
        let oidc = match &settings.authentication.oidc {
            Some(oidc) => {
                let handle = portcullis_auth::oidc::start(oidc)
                    .context("while starting OpenID Connect (AUTHENTICATION_OIDC_*)")?;
                metrics
                    .register_oidc(handle.stats())
                    .context("while registering the OIDC metrics")?;
                Some(handle)
            }
            None => None,
        };
        let oidc_well_known = web::Data::new(OidcWellKnown::from_settings(settings));
        let mut gatekeeper = Gatekeeper::new(&settings.authentication, keys, oidc, authorizer);
        if let Some(throttle) = FailureThrottle::from_settings(&settings.throttle) {
            let throttle = Arc::new(throttle);
            metrics
                .register_throttle(throttle.clone())
                .context("while registering the throttle metrics")?;
            gatekeeper = gatekeeper.with_throttle(throttle);
        }
        let mut gate = Gate::new(gatekeeper, metrics.clone())
            .with_trusted_proxies(TrustedProxies::new(&settings.throttle.trusted_proxies))
            .with_body_timeout(settings.backend.body_timeout);
        if let Some(roles) = &roles {
            gate = gate.with_policies(roles.policies().clone());
        }
        let mut upstream_schema = None;
        if let (Some(roles), Some(rbac)) = (&roles, &settings.authorization.rbac) {
            // RBAC decides instead of the admin list (server/src/authz).
            let enforcer = Arc::new(crate::authz::Enforcer::new(
                roles.policies().clone(),
                settings.log.audit,
                !rbac.ip_in_audit_log_disabled,
            ));
            let mut rbac_gate = crate::authz::RbacGate::new(enforcer, settings.backend.max_body);
            if let Some(upstream) = &settings.backend.upstream {
                // Proxy mode: aliases are checked as their collections, auto-schema writes
                // for create_collections, by what the upstream says it has.
                let schema = Arc::new(
                    proxy::UpstreamSchema::new(upstream, metrics.upstream_connections_opened())
                        .context("while building the HTTP client for PORTCULLIS_UPSTREAM_URL")?,
                );
                rbac_gate = rbac_gate.with_schema(schema.clone());
                upstream_schema = Some(schema);
            }
            gate = gate.with_rbac(rbac_gate);
        }
        let gate = web::Data::new(gate);
        let authz = match (roles, &settings.authorization.rbac) {
            (Some(roles), Some(rbac)) => {
                let rbac_metrics = metrics
                    .register_rbac()
                    .context("while registering the RBAC metrics")?;
                rbac_metrics.set_roles(roles.policies().role_count());
                Some(web::Data::new(AuthzApi {
                    roles,
                    keys: users.keys.clone(),
                    static_users: settings
                        .authentication
                        .api_key
                        .as_ref()
                        .map(|keys| keys.users.clone())
                        .unwrap_or_default(),
                    settings: rbac.clone(),
                    oidc: settings.authentication.oidc.is_some(),
                    metrics: rbac_metrics,
                }))
            }
            _ => None,
        };
        let proxy = match &settings.backend.upstream {
            Some(upstream) => {
                let mut built = Proxy::new(upstream, metrics.clone())
                    .context("while building the HTTP client for PORTCULLIS_UPSTREAM_URL")?;
                if let Some(schema) = upstream_schema {
                    built = built.with_schema(schema);
                }
                Some(web::Data::new(built))
            }
            None => None,
        };
        // Without an upstream, the embedded document store is the database.
        let store = match settings.backend.upstream {
            Some(_) => None,
            None => Some(web::Data::new(
                Store::open(&settings.data_path)
                    .await
                    .context("while opening the document store")?,
            )),
        };
        Ok(AppState {
            gate,
            meta: web::Data::new(MetaInfo::at(settings.http_addr)),
            oidc_well_known,
            users,
            authz,
            proxy,
            store,
            max_body: settings.backend.max_body,
            max_batch_objects: settings.backend.max_batch_objects,
        })
    }

    /// What the gRPC listener shares with the HTTP one: the gate, the embedded store (when
    /// there is no upstream) and the batch size limit.
    pub fn grpc_parts(&self) -> (Arc<Gate>, Option<Store>, usize) {
        (
            self.gate.clone().into_inner(),
            self.store.as_ref().map(|store| store.get_ref().clone()),
            self.max_batch_objects,
        )
    }

    /// What a configuration reload replaces in this state ([`crate::reload`]).
    pub fn reloadable(&self) -> crate::reload::Reloadable {
        crate::reload::Reloadable {
            keys: self.users.keys.clone(),
            authorizer: self.users.authorizer.clone(),
            oidc: self.gate.oidc_slot().cloned(),
            well_known: self.oidc_well_known.clone(),
        }
    }

    /// The state with `/v1/meta` reporting `addr`, the address the server is bound to.
    pub fn serving_at(mut self, addr: SocketAddr) -> Self {
        self.meta = web::Data::new(MetaInfo::at(addr));
        self
    }
}

/// Opens the role tables in the user store, writes the settings' holders of the built-in
/// roles, and loads and publishes every role and assignment.
async fn start_roles(
    settings: &Settings,
    rbac: &portcullis_config::RbacSettings,
) -> anyhow::Result<RoleRegistry> {
    let store = match &settings.user_store {
        Some(shared) => RoleStore::shared(crate::replicas::open(shared, "roles").await?),
        None => RoleStore::new(
            UserStore::open(&settings.data_path)
                .await
                .context("while opening the user store for roles (PERSISTENCE_DATA_PATH)")?,
        ),
    };
    let auth = &settings.authentication;
    let kinds = UserKinds {
        db: auth.api_key.is_some() || auth.db_users_enabled,
        oidc: auth.oidc.is_some(),
    };
    RoleRegistry::open(rbac, kinds, Some(store))
        .await
        .context("while loading roles (AUTHORIZATION_RBAC_ENABLED)")
}

/// The API application over `state`: the gate in front of every route, then the proxy (when
/// there is an upstream), Portcullis' own routes and the document store.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let AppState {
        gate,
        meta,
        oidc_well_known,
        users,
        authz,
        proxy,
        store,
        max_body,
        max_batch_objects,
    } = state;
    App::new()
        .app_data(gate)
        .app_data(meta)
        .app_data(oidc_well_known)
        .app_data(users)
        // The gate also arms the body deadline (PORTCULLIS_BODY_TIMEOUT) on every route.
        .wrap(gate::layer(gate::gate))
        // Before the proxy, which would forward /v1/authz: with RBAC on the roles are ours.
        .configure(|cfg| authz::configure(cfg, authz.as_ref()))
        // Before Portcullis' own routes: with an upstream it claims every /v1 path they
        // do not own, and answers readiness for the upstream.
        .configure(|cfg| proxy::configure(cfg, proxy.as_ref()))
        // actix matches resources in registration order, and each pattern with a
        // parameter costs a regex match: the static routes go first.
        .configure(meta::configure)
        .configure(users::configure)
        .configure(|cfg| store::configure(cfg, store.as_ref(), max_body, max_batch_objects))
}

#[cfg(test)]
mod tests;
