//! The gRPC side of Portcullis: Weaviate's `weaviate.v1.Weaviate` service, generated from the
//! protos in server/proto ([`pb`]), and the embedded store's answers to it ([`embedded`]).

pub mod embedded;
pub mod methods;
pub mod pb;
