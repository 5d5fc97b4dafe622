//! The Rust types and service traits generated from server/proto (Weaviate's `weaviate.v1`
//! package) by build.rs. The proto files are the source of truth; see their headers for the
//! upstream commit each was written from.

// Generated code: documented by the .proto files, not by rustdoc, and its shape is prost's.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    rust_2018_idioms
)]
pub mod weaviate {
    /// `weaviate.v1`: the messages and the `Weaviate` service.
    pub mod v1 {
        tonic::include_proto!("weaviate.v1");
    }
}

pub use weaviate::v1::*;
