//! The gRPC listener's own metrics: calls by method and status code, and their duration.
//! Authentication outcomes of gRPC calls count in the same series as REST's
//! ([`Metrics::observe_auth`]), so they are not repeated here.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

use super::{Metrics, Slots, HTTP_BUCKETS};
use crate::grpc::methods::{GrpcCode, GrpcMethod};

/// The gRPC metrics, registered on the server's registry beside the others.
pub struct GrpcMetrics {
    /// By method x code.
    requests: Slots<IntCounterVec, IntCounter>,
    /// By method.
    duration: Slots<HistogramVec, Histogram>,
}

impl GrpcMetrics {
    /// Creates the gRPC metrics and registers them on `metrics`' registry.
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "portcullis_grpc_requests_total",
                "gRPC calls by method (/service/Method, or other) and status code.",
            ),
            &["method", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_grpc_request_duration_seconds",
                "Time from a gRPC call's headers to its status, by method.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method"],
        )?;
        Ok(GrpcMetrics {
            requests: Slots::register(
                &metrics.registry,
                requests,
                GrpcMethod::ALL.len() * GrpcCode::ALL.len(),
            )?,
            duration: Slots::register(&metrics.registry, duration, GrpcMethod::ALL.len())?,
        })
    }

    /// Counts one finished call.
    pub fn observe(&self, method: GrpcMethod, code: GrpcCode, seconds: f64) {
        self.requests
            .get(method.index() * GrpcCode::ALL.len() + code.index(), || {
                [method.as_str(), code.as_str()]
            })
            .inc();
        self.duration
            .get(method.index(), || [method.as_str()])
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_by_closed_method_and_code() {
        let metrics = Metrics::new().expect("metrics");
        let grpc = GrpcMetrics::register(&metrics).expect("grpc metrics");
        grpc.observe(GrpcMethod::Search, GrpcCode::Unauthenticated, 0.001);
        grpc.observe(GrpcMethod::of("/x.Y/Z"), GrpcCode::Ok, 0.001);
        let text = String::from_utf8(metrics.render().expect("render")).expect("utf-8");
        assert!(text.contains(
            "portcullis_grpc_requests_total{code=\"UNAUTHENTICATED\",method=\"/weaviate.v1.Weaviate/Search\"} 1"
        ));
        assert!(text.contains("portcullis_grpc_requests_total{code=\"OK\",method=\"other\"} 1"));
        assert!(text.contains(
            "portcullis_grpc_request_duration_seconds_count{method=\"/weaviate.v1.Weaviate/Search\"} 1"
        ));
    }
}
