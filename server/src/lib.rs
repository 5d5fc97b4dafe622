//! The Portcullis server: the actix-web application, the gate middleware in front of it, the
//! metrics endpoint on its own port, and start-up.

pub mod credential;
pub mod error;
pub mod gate;
pub mod metrics;
pub mod request_id;
pub mod route_table;
pub mod routes;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use portcullis_auth::{Authorizer, KeyRegistry};
use portcullis_config::Settings;

use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::routes::MetaInfo;

/// Runs the server until it is told to stop (SIGINT/SIGTERM). Must be called inside an actix
/// `System`. Prints `http listening on <addr>` (and `metrics listening on <addr>`) to standard
/// output once the sockets are bound.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new().context("while registering metrics")?);
    let keys = KeyRegistry::new(settings.authentication.api_key.as_ref()).start_with_handle();
    let authorizer = Arc::new(Authorizer::from_settings(&settings.authorization));
    let gate = web::Data::new(Gate::new(&settings, keys, authorizer, metrics.clone()));

    // Bind first with a placeholder hostname, then report the real bound address.
    let listener = std::net::TcpListener::bind(settings.http_addr).with_context(|| {
        format!(
            "while binding PORTCULLIS_HTTP_ADDR {} (is another process using it?)",
            settings.http_addr
        )
    })?;
    let http_addr = listener.local_addr().context("while reading the bound address")?;
    let meta = web::Data::new(MetaInfo {
        hostname: format!("http://{http_addr}"),
    });

    let api = HttpServer::new(move || {
        App::new()
            .app_data(gate.clone())
            .app_data(meta.clone())
            .wrap(from_fn(gate::gate))
            .configure(routes::configure)
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
        let addr = listener.local_addr().context("while reading the bound address")?;
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
