//! The checks behind each fuzz target (`fuzz_targets/*.rs` only call them), the timing hook
//! `fuzz/run.sh` uses to find the slowest input.
//!
//! Every check panics when a property that must hold does not; libFuzzer reports the panic as
//! a crash and saves the input.

pub mod credential;
pub mod db_key;
pub mod jwks;
pub mod jws;
pub mod settings;
pub mod store_json;
pub mod timing;

/// The targets, by the name of their binary and corpus directory.
pub const TARGETS: [(&str, fn(&[u8])); 6] = [
    ("credential", credential::check),
    ("jws", jws::check),
    ("jwks", jwks::check),
    ("db_key", db_key::check),
    ("settings", settings::check),
    ("store_json", store_json::check),
];
