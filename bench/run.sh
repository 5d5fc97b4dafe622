#!/usr/bin/env bash
# Throughput of the gate, measured side by side in one run (see DESIGN.md "Performance bars").
#
# Builds release, starts the server with ONE worker pinned to CPU 0, drives it with `wrk -t1`
# pinned to CPU 1, and prints one table: requests/s and p99 per row, and each row's ratio to
# the anonymous row (the same route, the whole gate, no credential check). The anonymous row is
# also compared with a bare actix-web handler (no middleware at all).
#
# Needs: wrk (Debian package `wrk`), taskset (util-linux). Knobs: DURATION (default 10s),
# CONNECTIONS (32), RUNS (3, the median is reported), STATIC_KEYS (1000 keys configured),
# DB_USERS (100000 database users loaded), BENCH_LOG_LEVEL (warn: no per-request log line).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
STATIC_KEYS=${STATIC_KEYS:-1000}
DB_USERS=${DB_USERS:-100000}
ROUTE=/v1/meta

command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet -p portcullis-server --bin portcullis --example bare
BIN=target/release/portcullis
BARE=target/release/examples/bare

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Wait for "http listening on ADDR" in a log file; print ADDR.
wait_addr() {
  local log=$1
  for _ in $(seq 1 100); do
    local a
    a=$(sed -n 's/^http listening on //p' "$log" | head -n1)
    if [ -n "$a" ]; then echo "$a"; return 0; fi
    sleep 0.1
  done
  echo "bench: server did not start; log: $log" >&2; cat "$log" >&2; exit 1
}

# Keys k0000..kNNNN (all 40 characters), all mapped to one user; the benchmark uses the last.
keys=$(python3 -c "import sys; n=int(sys.argv[1]); print(','.join('bench-key-%030d' % i for i in range(n)))" "$STATIC_KEYS")
good_key=$(python3 -c "import sys; print('bench-key-%030d' % (int(sys.argv[1]) - 1))" "$STATIC_KEYS")
wrong_key=bench-key-wrong-000000000000000000000000

server_env=(PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0
  PORTCULLIS_WORKERS=1 PERSISTENCE_DATA_PATH="$work/data"
  AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true AUTHENTICATION_APIKEY_ENABLED=true
  AUTHENTICATION_APIKEY_ALLOWED_KEYS="$keys" AUTHENTICATION_APIKEY_USERS=bench
  AUTHENTICATION_DB_USERS_ENABLED=true)

# First start creates the user store; then seed it with DB_USERS users and restart, reading
# how long the restart took to load them.
env -i "${server_env[@]}" LOG_LEVEL=warn "$BIN" >"$work/seed.out" 2>&1 &
seed_pid=$!
wait_addr "$work/seed.out" >/dev/null
kill "$seed_pid"; wait "$seed_pid" 2>/dev/null || true
db_key=$(python3 bench/seed_users.py "$work/data/users.db" "$DB_USERS")

taskset -c 0 env -i "${server_env[@]}" LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" \
  RUST_LOG="${BENCH_LOG_LEVEL:-warn},portcullis_server=info" LOG_FORMAT=text \
  "$BIN" >"$work/server.out" 2>"$work/server.err" &
pids+=($!)
taskset -c 0 "$BARE" 127.0.0.1:0 >"$work/bare.out" 2>&1 &
pids+=($!)
server=$(wait_addr "$work/server.out")
bare=$(wait_addr "$work/bare.out")
load_ms=$(sed -n 's/.*keys loaded.*millis=\([0-9]*\).*/\1/p' "$work/server.err" | head -n1)

# One wrk run; prints "<req/s> <p99 in ms>".
measure() {
  local url=$1; shift
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$work/wrk.out"
  python3 - "$work/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text)
p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
print(f"{rps:.0f} {p99:.3f} {non2xx.group(1) if non2xx else 0}")
PY
}

rows=("bare actix-web handler, no middleware" "anonymous (no credential)" "static API key (1 of $STATIC_KEYS)" "database-user key (1 of $DB_USERS)" "wrong API key (401)")
: >"$work/results"
for run in $(seq 1 "$RUNS"); do
  echo "0 $(measure "http://$bare$ROUTE")" >>"$work/results"
  echo "1 $(measure "http://$server$ROUTE")" >>"$work/results"
  echo "2 $(measure "http://$server$ROUTE" -H "Authorization: Bearer $good_key")" >>"$work/results"
  echo "3 $(measure "http://$server$ROUTE" -H "Authorization: Bearer $db_key")" >>"$work/results"
  echo "4 $(measure "http://$server$ROUTE" -H "Authorization: Bearer $wrong_key")" >>"$work/results"
done

python3 - "$work/results" "$RUNS" "$DURATION" "$CONNECTIONS" "$load_ms" "${rows[@]}" <<'PY'
import statistics, sys
path, runs, duration, conns, load_ms, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
raw = {}
for line in open(path):
    row, rps, p99, errs = line.split()
    raw.setdefault(int(row), []).append((float(rps), float(p99), int(errs)))
med = {r: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), sum(x[2] for x in v))
       for r, v in raw.items()}
anon = med[1][0]
print(f"wrk -t1 -c{conns} -d{duration}, 1 server worker (CPU 0), wrk on CPU 1, median of {runs} runs, GET /v1/meta")
print()
print("| row | req/s | p99 ms | ratio to anonymous | non-2xx |")
print("| --- | ---: | ---: | ---: | ---: |")
for r, name in enumerate(names):
    rps, p99, errs = med[r]
    print(f"| {name} | {rps:,.0f} | {p99:.2f} | {rps / anon:.2f} | {errs} |")
print()
print(f"gate cost: anonymous / bare = {anon / med[0][0]:.2f} (aim >= 0.85)")
print(f"static key / anonymous = {med[2][0] / anon:.2f} (bar >= 0.90)")
print(f"database-user key / anonymous = {med[3][0] / anon:.2f} (bar >= 0.90)")
print(f"database users loaded at start-up in {load_ms or '?'} ms")
PY
