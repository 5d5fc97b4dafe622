//! The slowest-input measurement: with `FUZZ_TIMING=<repeats>` in the environment, each input
//! is run that many times and its fastest run kept (the noise of a shared machine only ever
//! adds time), and every new slowest input is printed as
//! `slowest unit: <ns> ns, <len> bytes, crc32 <hex>`. `fuzz/run.sh` replays the corpus this way
//! after fuzzing and fails when the slowest unit is over 1 ms. Without the variable, an input
//! runs once, untimed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static REPEATS: OnceLock<u32> = OnceLock::new();
static SLOWEST_NS: AtomicU64 = AtomicU64::new(0);

fn repeats() -> u32 {
    *REPEATS.get_or_init(|| {
        std::env::var("FUZZ_TIMING")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// Runs `check` on `data`, timed when `FUZZ_TIMING` asks for it.
pub fn run(data: &[u8], check: fn(&[u8])) {
    let repeats = repeats();
    if repeats == 0 {
        check(data);
        return;
    }
    let mut fastest = u64::MAX;
    for _ in 0..repeats {
        let start = Instant::now();
        check(data);
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        fastest = fastest.min(ns);
    }
    if fastest > SLOWEST_NS.fetch_max(fastest, Ordering::Relaxed) {
        eprintln!(
            "slowest unit: {fastest} ns, {} bytes, crc32 {:08x}",
            data.len(),
            crc32fast::hash(data)
        );
    }
}
