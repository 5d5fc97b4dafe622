//! The gRPC methods the server knows, as a closed set: the `method` label of the gRPC metrics
//! and the verb the gate checks for each (reads: `Search`, `Aggregate`, `TenantsGet`; every
//! other call, known or not, is a write).

use portcullis_auth::Verb;

use crate::metrics::labels::label_enum;

/// The prefix of the health service's paths, which bypass the credential check.
pub const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

label_enum! {
    /// A gRPC method by its `/service/Method` path; `other` for any path not listed (a client
    /// chooses the path, so its spelling never becomes a label).
    pub enum GrpcMethod {
        /// Queries: fetch_objects, fetch_object_by_id, near*, hybrid, bm25.
        Search => "/weaviate.v1.Weaviate/Search",
        /// insert_many.
        BatchObjects => "/weaviate.v1.Weaviate/BatchObjects",
        /// Cross-reference batches.
        BatchReferences => "/weaviate.v1.Weaviate/BatchReferences",
        /// delete_many.
        BatchDelete => "/weaviate.v1.Weaviate/BatchDelete",
        /// A collection's tenants.
        TenantsGet => "/weaviate.v1.Weaviate/TenantsGet",
        /// Aggregations.
        Aggregate => "/weaviate.v1.Weaviate/Aggregate",
        /// Server-side batching (a bidirectional stream).
        BatchStream => "/weaviate.v1.Weaviate/BatchStream",
        /// The standard health check.
        HealthCheck => "/grpc.health.v1.Health/Check",
        /// The standard health watch (a server stream).
        HealthWatch => "/grpc.health.v1.Health/Watch",
        /// Any other path.
        Other => "other",
    }
}

impl GrpcMethod {
    /// The method a request path names.
    pub fn of(path: &str) -> GrpcMethod {
        GrpcMethod::ALL
            .into_iter()
            .find(|m| *m != GrpcMethod::Other && m.as_str() == path)
            .unwrap_or(GrpcMethod::Other)
    }

    /// Whether the call is the health service's, answered without a credential.
    pub fn is_health(self) -> bool {
        matches!(self, GrpcMethod::HealthCheck | GrpcMethod::HealthWatch)
    }

    /// The verb the gate checks: the three queries read, everything else writes (an unknown
    /// method may be a write the upstream knows; guessing it a read would let a read-only
    /// user through).
    pub fn verb(self) -> Verb {
        match self {
            GrpcMethod::Search | GrpcMethod::Aggregate | GrpcMethod::TenantsGet => Verb::Read,
            _ => Verb::Write,
        }
    }

    /// Whether the client sends one message (so its whole body must arrive within the body
    /// deadline) rather than a stream.
    pub fn is_unary(self) -> bool {
        !matches!(self, GrpcMethod::BatchStream | GrpcMethod::Other)
    }
}

label_enum! {
    /// The `code` label of the gRPC metrics: the status code names of the gRPC specification.
    pub enum GrpcCode {
        /// 0.
        Ok => "OK",
        /// 1.
        Cancelled => "CANCELLED",
        /// 2.
        Unknown => "UNKNOWN",
        /// 3.
        InvalidArgument => "INVALID_ARGUMENT",
        /// 4.
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        /// 5.
        NotFound => "NOT_FOUND",
        /// 6.
        AlreadyExists => "ALREADY_EXISTS",
        /// 7.
        PermissionDenied => "PERMISSION_DENIED",
        /// 8.
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        /// 9.
        FailedPrecondition => "FAILED_PRECONDITION",
        /// 10.
        Aborted => "ABORTED",
        /// 11.
        OutOfRange => "OUT_OF_RANGE",
        /// 12.
        Unimplemented => "UNIMPLEMENTED",
        /// 13.
        Internal => "INTERNAL",
        /// 14.
        Unavailable => "UNAVAILABLE",
        /// 15.
        DataLoss => "DATA_LOSS",
        /// 16.
        Unauthenticated => "UNAUTHENTICATED",
    }
}

impl GrpcCode {
    /// The code of a `grpc-status` value; an unparsable or unknown one is `UNKNOWN`, as the
    /// gRPC specification says a client must read it.
    pub fn of_header(value: &[u8]) -> GrpcCode {
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .and_then(|n| GrpcCode::ALL.get(n).copied())
            .unwrap_or(GrpcCode::Unknown)
    }

    /// The code of a tonic status code.
    pub fn of(code: tonic::Code) -> GrpcCode {
        GrpcCode::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(GrpcCode::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_queries_and_writes_everything_else() {
        assert_eq!(
            GrpcMethod::of("/weaviate.v1.Weaviate/Search"),
            GrpcMethod::Search
        );
        assert_eq!(
            GrpcMethod::of("/weaviate.v1.Weaviate/search"),
            GrpcMethod::Other
        );
        assert_eq!(GrpcMethod::of("other"), GrpcMethod::Other);
        let reads: Vec<_> = GrpcMethod::ALL
            .into_iter()
            .filter(|m| m.verb() == Verb::Read)
            .collect();
        assert_eq!(
            reads,
            [
                GrpcMethod::Search,
                GrpcMethod::TenantsGet,
                GrpcMethod::Aggregate
            ]
        );
        assert!(GrpcMethod::of(HEALTH_PREFIX.to_owned().as_str()) == GrpcMethod::Other);
        assert!(GrpcMethod::of("/grpc.health.v1.Health/Check").is_health());
    }

    #[test]
    fn codes_follow_the_specification_numbers() {
        assert_eq!(GrpcCode::of_header(b"0"), GrpcCode::Ok);
        assert_eq!(GrpcCode::of_header(b"16"), GrpcCode::Unauthenticated);
        assert_eq!(GrpcCode::of_header(b"17"), GrpcCode::Unknown);
        assert_eq!(GrpcCode::of_header(b"x"), GrpcCode::Unknown);
        for code in GrpcCode::ALL {
            let tonic = tonic::Code::from_i32(code.index() as i32);
            assert_eq!(GrpcCode::of(tonic), code);
        }
    }
}
