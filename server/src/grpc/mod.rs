//! The gRPC side of Portcullis: Weaviate's `weaviate.v1.Weaviate` service, generated from the
//! protos in server/proto ([`pb`]), behind the same gate as REST ([`gate`]), served on its own
//! listener ([`listener`]) by the embedded store ([`embedded`]) or forwarded to the upstream
//! ([`proxy`]). What it does for a client: docs/grpc.md.

pub mod embedded;
pub mod gate;
pub mod listener;
pub mod methods;
pub mod pb;
pub mod proxy;

use std::sync::Arc;

use anyhow::Context;
use portcullis_config::Settings;

use crate::app::AppState;
use crate::grpc::gate::GateShared;
use crate::grpc::listener::{Backend, GrpcServerParts, RunningGrpc};
use crate::metrics::grpc::GrpcMetrics;
use crate::metrics::Metrics;

/// Starts the gRPC listener when it is on (`PORTCULLIS_GRPC_ADDR` is not `off`), over the same
/// gate and store as the HTTP server, and prints `grpc listening on <addr>` once bound.
pub fn start(
    settings: &Settings,
    state: &AppState,
    metrics: &Metrics,
    tls: Option<&crate::tls::Tls>,
) -> anyhow::Result<Option<RunningGrpc>> {
    let Some(addr) = settings.grpc.addr else {
        tracing::info!("gRPC is off (PORTCULLIS_GRPC_ADDR=off)");
        return Ok(None);
    };
    let (gate, store, max_batch_objects) = state.grpc_parts();
    let backend = match (&settings.backend.upstream, &settings.grpc.upstream, store) {
        (Some(upstream), Some(grpc_upstream), _) => Backend::Proxy(
            proxy::GrpcProxy::new(grpc_upstream, upstream.forward_auth)
                .context("while building the gRPC upstream client")?,
        ),
        (Some(_), None, _) => Backend::NotConfigured,
        (None, _, Some(store)) => {
            Backend::Embedded(embedded::WeaviateService::new(store, max_batch_objects))
        }
        // Without an upstream the store is always open; answer rather than fail start-up.
        (None, _, None) => Backend::NotConfigured,
    };
    let shared = Arc::new(GateShared {
        gate,
        metrics: Arc::new(
            GrpcMetrics::register(metrics).context("while registering the gRPC metrics")?,
        ),
        body_timeout: settings.backend.body_timeout,
    });
    let tls = match tls {
        Some(tls) => Some(Arc::new(
            tls.grpc_config()
                .context("while configuring TLS for gRPC")?,
        )),
        None => None,
    };
    let running = listener::start(
        addr,
        settings.workers,
        GrpcServerParts {
            shared,
            backend,
            tls,
        },
    )?;
    println!("grpc listening on {}", running.addr);
    Ok(Some(running))
}
