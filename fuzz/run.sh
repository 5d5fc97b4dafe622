#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer on the stable toolchain and runs each for a while.
#
#   fuzz/run.sh [seconds]          every target, 20 s each by default
#   TARGETS="jws jwks" fuzz/run.sh 600
#   fuzz/run.sh build              only the build (CI starts it early, in the background)
#
# Fails on any crash, panic, timeout (libFuzzer's -timeout=1, 1 s) or out-of-memory, and when
# the slowest input of the corpus takes over 1 ms: after fuzzing, the corpus is replayed with
# FUZZ_TIMING=5 (each input run 5 times, its fastest run kept; fuzz/src/timing.rs).
#
# Built as cargo-fuzz builds without a sanitizer (`cargo fuzz build -s none`): coverage
# instrumentation through stable codegen flags (added to the fuzzed code only, by sancov-rustc),
# no -Z flag, so no nightly and no cargo-fuzz
# install. The code fuzzed forbids unsafe; AddressSanitizer would need nightly and finds
# nothing in safe Rust that a panic does not. Output: fuzz/target (git-ignored); new corpus
# entries in fuzz/target/corpus/<target>; crashes in fuzz/target/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_EACH=${1:-20}
ALL="credential jws jwks db_key settings store_json"
TARGETS=${TARGETS:-$ALL}
SLOW_LIMIT_NS=${SLOW_LIMIT_NS:-1000000}
JOBS_FLAG=${CARGO_BUILD_JOBS:+-j $CARGO_BUILD_JOBS}

HOST=$(rustc -vV | sed -n 's/^host: //p')
# libFuzzer's coverage instrumentation (what cargo-fuzz passes, as stable codegen flags) is
# added by sancov-rustc to the code fuzzed only: our crates, the targets, serde_json and
# base64; the other dependencies are compiled plain (see the wrapper).
export RUSTC_WRAPPER="$PWD/sancov-rustc"
unset RUSTFLAGS
build_start=$(date +%s)
# shellcheck disable=SC2086
cargo build --release --locked $JOBS_FLAG --target "$HOST" --target-dir target --bins
echo "fuzz build: $(( $(date +%s) - build_start )) s"
[ "$SECONDS_EACH" = build ] && exit 0
BIN=target/$HOST/release

failed=0
for target in $TARGETS; do
    work=target/corpus/$target
    artifacts=target/artifacts/$target
    mkdir -p "$work" "$artifacts" "corpus/$target"
    log=target/$target.log
    dict=()
    [ -f "dict/$target.dict" ] && dict=(-dict="dict/$target.dict")
    echo "== $target: ${SECONDS_EACH}s"
    # The first directory receives new inputs; the committed seeds are read only.
    if ! "$BIN/$target" "$work" "corpus/$target" "${dict[@]}" \
        -max_total_time="$SECONDS_EACH" -timeout=1 -rss_limit_mb=2048 -max_len=8192 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
        echo "FAILED: $target (last lines of $log; the input is in $artifacts)"
        tail -n 40 "$log"
        failed=1
        continue
    fi
    grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" \
        | sed 's/^/   /' || true
    grep -E '^#[0-9]+' "$log" | tail -n 1 | sed 's/^/   last: /' || true

    # The slowest input, each replayed 5 times.
    timing=target/$target.timing.log
    if ! FUZZ_TIMING=5 "$BIN/$target" -runs=0 "$work" "corpus/$target" >"$timing" 2>&1; then
        echo "FAILED: $target while replaying its corpus"
        tail -n 40 "$timing"
        failed=1
        continue
    fi
    slowest=$(grep '^slowest unit:' "$timing" | tail -n 1 || true)
    echo "   ${slowest:-slowest unit: none}"
    ns=$(sed -n 's/^slowest unit: \([0-9]*\) ns.*/\1/p' <<<"$slowest")
    if [ -n "$ns" ] && [ "$ns" -gt "$SLOW_LIMIT_NS" ]; then
        echo "FAILED: $target has an input over $SLOW_LIMIT_NS ns ($slowest)"
        failed=1
    fi
done
exit $failed
