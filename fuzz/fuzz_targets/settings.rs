//! libFuzzer entry point for the `settings` target; the checks are in `portcullis_fuzz::settings`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_fuzz::timing::run(data, portcullis_fuzz::settings::check);
});
