//! libFuzzer entry point for the `db_key` target; the checks are in `portcullis_fuzz::db_key`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_fuzz::timing::run(data, portcullis_fuzz::db_key::check);
});
