//! libFuzzer entry point for the `credential` target; the checks are in `portcullis_fuzz::credential`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_fuzz::timing::run(data, portcullis_fuzz::credential::check);
});
