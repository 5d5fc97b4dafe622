//! The Portcullis server: the actix-web application, the gate middleware in front of it, the
//! metrics endpoint on its own port, and start-up.

pub mod credential;
pub mod error;
pub mod gate;
pub mod metrics;
pub mod proxy;
pub mod request_id;
pub mod route_table;
pub mod routes;
pub mod store;
pub mod users;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use portcullis_auth::gatekeeper::Gatekeeper;
use portcullis_auth::{api_key, Authorizer, KeyRegistry, KeyRegistryHandle, UserStore};
use portcullis_config::Settings;

use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::routes::MetaInfo;

/// Runs the server until it is told to stop (SIGINT/SIGTERM). Must be called inside an actix
/// `System`. Prints `http listening on <addr>` (and `metrics listening on <addr>`) to standard
/// output once the sockets are bound.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new().context("while registering metrics")?);
    let keys = start_key_registry(&settings).await?;
    let authorizer = Arc::new(Authorizer::from_settings(&settings.authorization));
    let users = web::Data::new(users::UsersApi {
        keys: keys.clone(),
        authorizer: authorizer.clone(),
        metrics: users::UserMetrics::new(metrics.registry())
            .context("while registering user metrics")?,
    });
    users.metrics.set_counts(&keys);
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
    let oidc_well_known = web::Data::new(routes::OidcWellKnown::from_settings(&settings));
    let gatekeeper = Gatekeeper::new(&settings.authentication, keys, oidc, authorizer);
    let gate = web::Data::new(Gate::new(gatekeeper, metrics.clone()));
    let proxy = match &settings.backend.upstream {
        Some(upstream) => Some(web::Data::new(
            proxy::Proxy::new(upstream, metrics.clone())
                .context("while building the HTTP client for PORTCULLIS_UPSTREAM_URL")?,
        )),
        None => None,
    };
    // Without an upstream, the embedded document store is the database.
    let store = match settings.backend.upstream {
        Some(_) => None,
        None => Some(web::Data::new(
            store::Store::open(&settings.data_path)
                .await
                .context("while opening the document store")?,
        )),
    };
    let max_body = settings.backend.max_body;

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
    let meta = web::Data::new(MetaInfo {
        hostname: format!("http://{http_addr}"),
    });

    let api = HttpServer::new(move || {
        App::new()
            .app_data(gate.clone())
            .app_data(meta.clone())
            .app_data(oidc_well_known.clone())
            .app_data(users.clone())
            .wrap(from_fn(gate::gate))
            // Before Portcullis' own routes: with an upstream it claims every /v1 path they
            // do not own, and answers readiness for the upstream.
            .configure(|cfg| proxy::configure(cfg, proxy.as_ref()))
            // actix matches resources in registration order, and each pattern with a
            // parameter costs a regex match: the static routes go first.
            .configure(routes::configure)
            .configure(users::configure)
            .configure(|cfg| store::configure(cfg, store.as_ref(), max_body))
    })
    .workers(settings.workers)
    .listen(listener)
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
        .workers(1)
        .listen(listener)
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
    tracing::info!("portcullis stopped");
    Ok(())
}

/// Opens the user store (when database users are on), loads every key into the KeyRegistry,
/// creates the bootstrap admin on a first start, and starts the actor.
async fn start_key_registry(settings: &Settings) -> anyhow::Result<KeyRegistryHandle> {
    let auth = &settings.authentication;
    let store = if auth.db_users_enabled {
        Some(
            UserStore::open(&settings.data_path)
                .await
                .context("while opening the user store (PERSISTENCE_DATA_PATH)")?,
        )
    } else {
        None
    };
    let started = std::time::Instant::now();
    let mut registry = KeyRegistry::load(auth.api_key.as_ref(), store)
        .await
        .context("while loading database users")?;
    tracing::info!(millis = started.elapsed().as_millis() as u64, "keys loaded");
    if auth.bootstrap_admin {
        match registry.bootstrap_admin().await {
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
    Ok(registry.start_with_handle())
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
