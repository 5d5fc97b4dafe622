//! The Portcullis server: start-up, binding and serving. The application itself (its state and
//! routes) is [`app`]; the gate in front of it [`gate`]; the handlers [`api`], [`store`] and
//! [`proxy`]; the body read deadline [`deadline`]; configuration reload on SIGHUP [`reload`]; the
//! metrics endpoint, on its own port, serves [`metrics`]; TLS on the listeners and its reloads:
//! [`tls`].

pub mod api;
pub mod app;
pub mod authz;
pub mod deadline;
pub mod error;
pub mod gate;
pub mod grpc;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod replicas;
pub mod store;
pub mod tls;

use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use portcullis_auth::{api_key, KeyRegistry, KeyRegistryHandle, UserStore};
use portcullis_config::{vars, Settings};

use crate::app::{app, AppState};
use crate::metrics::Metrics;

/// Runs the server until it is told to stop (SIGINT/SIGTERM). Must be called inside an actix
/// `System`. Prints `http listening on <addr>` (and `metrics listening on <addr>`) to standard
/// output once the sockets are bound.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new().context("while registering metrics")?);
    let tls = start_tls(&settings, &metrics)?;
    let keys = start_key_registry(&settings).await?;
    let state = AppState::new(&settings, metrics.clone(), keys).await?;

    // Bind first with a placeholder hostname, then report the real bound address.
    let listener = std::net::TcpListener::bind(settings.http_addr).with_context(|| {
        format!(
            "while binding PORTCULLIS_HTTP_ADDR {} (is another process using it?)",
            settings.http_addr
        )
    })?;
    let http_addr = listener
        .local_addr()
        .context("while reading the bound address")?;
    let state = state.serving_at(http_addr);
    let grpc = grpc::start(&settings, &state, &metrics, tls.as_deref())?;
    // Before the server reports itself started: until then SIGHUP would end the process.
    let reload_metrics = metrics
        .register_reloads()
        .context("while registering the reload metrics")?;
    reload::listen(reload::Reloader::new(
        settings.clone(),
        state.reloadable(),
        reload_metrics,
    ))
    .context("while listening for SIGHUP (configuration reload)")?;

    let api = HttpServer::new(move || app(state.clone())).workers(settings.workers);
    let api = match &tls {
        Some(tls) => api.listen_rustls_0_23(
            listener,
            tls.http_config()
                .context("while configuring TLS for HTTP")?,
        ),
        None => api.listen(listener),
    }
    .context("while starting the HTTP server")?
    .run();
    println!("http listening on {http_addr}");

    let metrics_server = if settings.metrics.enabled {
        let listener = std::net::TcpListener::bind(settings.metrics.addr).with_context(|| {
            format!(
                "while binding the metrics address {} (PORTCULLIS_METRICS_ADDR or PROMETHEUS_MONITORING_PORT)",
                settings.metrics.addr
            )
        })?;
        let addr = listener
            .local_addr()
            .context("while reading the bound address")?;
        let metrics = web::Data::from(metrics);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(metrics.clone())
                .route("/metrics", web::get().to(render_metrics))
        })
        .workers(1);
        let server = match tls.as_ref().filter(|tls| tls.metrics_listener()) {
            Some(tls) => server.listen_rustls_0_23(
                listener,
                tls.metrics_config()
                    .context("while configuring TLS for metrics")?,
            ),
            None => server.listen(listener),
        }
        .context("while starting the metrics server")?
        .run();
        println!("metrics listening on {addr}");
        Some(server)
    } else {
        None
    };

    tracing::info!(%http_addr, workers = settings.workers, "portcullis started");
    match metrics_server {
        Some(metrics_server) => {
            futures_util::future::try_join(api, metrics_server)
                .await
                .context("while serving")?;
        }
        None => api.await.context("while serving")?,
    }
    if let Some(grpc) = grpc {
        grpc.stop();
    }
    tracing::info!("portcullis stopped");
    Ok(())
}

/// Loads the TLS certificate when TLS is on (refusing a key that does not match it), registers
/// its metrics and starts its reloads (file changes and SIGHUP).
fn start_tls(settings: &Settings, metrics: &Metrics) -> anyhow::Result<Option<Arc<tls::Tls>>> {
    let Some(tls_settings) = &settings.tls else {
        return Ok(None);
    };
    let tls = Arc::new(tls::Tls::load(tls_settings).context("while loading the TLS certificate")?);
    metrics
        .register_tls(&tls)
        .context("while registering the TLS metrics")?;
    tls.spawn_reloads();
    Ok(Some(tls))
}

/// Opens the user store (when database users are on), loads every key into the KeyRegistry,
/// creates the bootstrap admin on a first start, and starts the actor.
pub(crate) async fn start_key_registry(settings: &Settings) -> anyhow::Result<KeyRegistryHandle> {
    let auth = &settings.authentication;
    let started = std::time::Instant::now();
    let mut registry = match (&settings.user_store, auth.db_users_enabled) {
        (Some(shared), true) => {
            let store = replicas::open(shared, "database users").await?;
            KeyRegistry::load_shared(auth.api_key.as_ref(), store)
                .await
                .with_context(|| {
                    format!("while loading database users from {}", shared.shown_url())
                })?
        }
        _ => {
            let store = if auth.db_users_enabled {
                Some(
                    UserStore::open(&settings.data_path)
                        .await
                        .context("while opening the user store (PERSISTENCE_DATA_PATH)")?,
                )
            } else {
                None
            };
            KeyRegistry::load(auth.api_key.as_ref(), store)
                .await
                .context("while loading database users")?
        }
    };
    tracing::info!(millis = started.elapsed().as_millis() as u64, "keys loaded");
    let awaiting_store = registry.awaiting_store();
    if auth.bootstrap_admin && awaiting_store {
        tracing::warn!(
            "the user store cannot be reached, so the bootstrap admin is not checked for now; \
             on a store's first start, the first replica that starts while it answers creates it"
        );
    }
    if auth.bootstrap_admin && !awaiting_store {
        let supplied = match &auth.bootstrap_admin_key {
            Some(key) => Some(api_key::NewKey::supplied(key.expose()).map_err(|_| {
                anyhow::anyhow!(
                    "{} is not a database key (pcu_ format, with its checksum); generate one \
                     with `portcullis generate-key`",
                    vars::BOOTSTRAP_ADMIN_KEY
                )
            })?),
            None => None,
        };
        let operator_key = supplied.is_some();
        match registry.bootstrap_admin(supplied).await {
            Ok(Some(_)) if operator_key => tracing::info!(
                "no authentication method was configured, so database users are on and an admin \
                 user was created with the key from {}",
                vars::BOOTSTRAP_ADMIN_KEY
            ),
            Ok(Some(key)) => {
                // Shown once, on standard output, never logged.
                println!(
                    "portcullis: no authentication method was configured, so database users are \
                     on and an admin user was created.\n\
                     portcullis: its API key, shown only this once:\n\n    {}\n\n\
                     portcullis: use it as  curl -H 'Authorization: Bearer <key>' http://<addr>/v1/meta\n\
                     portcullis: create more users with  POST /v1/users/db/<name>",
                    key.expose()
                );
            }
            Ok(None) if operator_key => tracing::warn!(
                "the bootstrap admin was created on an earlier start, so {} is not applied; \
                 rotate its key with POST /v1/users/db/admin/rotate-key instead",
                vars::BOOTSTRAP_ADMIN_KEY
            ),
            Ok(None) => tracing::info!("bootstrap admin was created on an earlier start"),
            Err(err) => {
                return Err(anyhow::anyhow!(err)).context("while creating the bootstrap admin")
            }
        }
        if settings
            .authorization
            .admin_list
            .as_ref()
            .is_some_and(|list| !list.users.iter().any(|u| u == api_key::BOOTSTRAP_ADMIN))
        {
            tracing::warn!(
                "the admin list is on but does not name the bootstrap user `admin`; it cannot manage users"
            );
        }
    }
    let handle = registry.start_with_handle();
    // Without the admin list only the database user `admin` manages users (the bootstrap
    // admin). Say so at start when no such user exists: nobody could create one.
    if auth.db_users_enabled
        && !awaiting_store
        && settings.authorization.admin_list.is_none()
        && !matches!(handle.get(api_key::BOOTSTRAP_ADMIN).await, Ok(Some(_)))
    {
        tracing::warn!(
            "database users are on without the admin list and there is no database user `admin`: \
             nobody can manage users; name administrators with AUTHORIZATION_ADMINLIST_ENABLED=true \
             and AUTHORIZATION_ADMINLIST_USERS"
        );
    }
    Ok(handle)
}

async fn render_metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.render() {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "could not encode metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
