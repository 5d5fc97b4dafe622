//! Compiles Weaviate's gRPC protos (server/proto, written from Weaviate's published files) into
//! Rust with protox, a pure-Rust proto compiler, so building Portcullis needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["weaviate/v1/weaviate.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        // The client is what the end-to-end tests, the bench and the proxy tests speak with.
        .build_client(true)
        .compile_fds(files)?;
    Ok(())
}
