//! libFuzzer entry point for the `jwks` target; the checks are in `portcullis_fuzz::jwks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_fuzz::timing::run(data, portcullis_fuzz::jwks::check);
});
