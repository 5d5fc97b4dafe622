//! libFuzzer entry point for the `jws` target; the checks are in `portcullis_fuzz::jws`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_fuzz::timing::run(data, portcullis_fuzz::jws::check);
});
