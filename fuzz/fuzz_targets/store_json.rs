//! libFuzzer entry point for the `store_json` target; the checks are in `portcullis_fuzz::store_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_fuzz::timing::run(data, portcullis_fuzz::store_json::check);
});
