#!/usr/bin/env bash
# The soak (bench/README.md, "Soak"): the release server for SOAK_SECONDS (600) at about half
# its capacity, with a mix of credentials, a database user's key rotated every second and the
# issuer's keys every minute. Fails on any 5xx, any status a request class must not get, or
# resident memory that moves by more than 10% after the warm-up. Knobs: SOAK_SECONDS,
# SOAK_RATE (requests/s; unset: half of a 5 s closed-loop probe), SOAK_WARMUP,
# SOAK_ISSUER_ROTATION, SOAK_CONNECTIONS, SOAK_WORKERS, SOAK_RSS_TOLERANCE (bench/src/bin/soak.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p portcullis-server -p portcullis-bench
export PORTCULLIS_BIN=$PWD/target/release/portcullis
exec target/release/soak
