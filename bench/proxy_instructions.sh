#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind (repeatable whatever else the machine
# runs, unlike requests/s): the release proxy under `valgrind --tool=callgrind` in front of the
# bench crate's `bare` upstream, a static API key, the access log in its default form.
# WARMUP requests, counters zeroed, then REQUESTS sequential `GET /v1/meta` on one keep-alive
# connection; prints the proxy's instructions (every thread, user space only) per request.
#
# Needs: valgrind (callgrind_control), python3. Knobs: REQUESTS (3000), WARMUP (300),
# BENCH_LOG_LEVEL (info), KEEP (a folder to copy the callgrind dump to), BIN (target/release/portcullis; the script builds it unless BIN is
# set).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-3000}
WARMUP=${WARMUP:-300}
LOG=${BENCH_LOG_LEVEL:-info}
KEY=bench-key-000000000000000000000000000000
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p portcullis-server --bin portcullis
  BIN=target/release/portcullis
fi
[ -x target/release/bare ] || cargo build --release --quiet -p portcullis-bench --bin bare
BARE=target/release/bare

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_line() {
  local file=$1 prefix=$2
  for _ in $(seq 1 1200); do
    local v
    v=$(sed -n "s/^$prefix //p" "$file" | head -n1)
    if [ -n "$v" ]; then echo "$v"; return 0; fi
    sleep 0.1
  done
  echo "proxy_instructions: no '$prefix' line in $file:" >&2; cat "$file" >&2; exit 1
}

"$BARE" 127.0.0.1:0 >"$work/bare.out" 2>&1 &
pids+=($!)
bare=$(wait_line "$work/bare.out" "http listening on")

env -i PATH="$PATH" PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0 \
  PORTCULLIS_WORKERS=1 PERSISTENCE_DATA_PATH="$work/data" \
  AUTHENTICATION_APIKEY_ENABLED=true AUTHENTICATION_APIKEY_ALLOWED_KEYS="$KEY" \
  AUTHENTICATION_APIKEY_USERS=bench PORTCULLIS_UPSTREAM_URL="http://$bare" LOG_LEVEL="$LOG" \
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$BIN" \
  >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
pids+=($proxy_pid)
proxy=$(wait_line "$work/proxy.out" "http listening on")

# One keep-alive connection; every answer must be the upstream's 200.
drive() {
  python3 - "$proxy" "$KEY" "$1" <<'PY'
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
for _ in range(int(sys.argv[3])):
    conn.request("GET", "/v1/meta", headers={"Authorization": "Bearer " + sys.argv[2]})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"proxy_instructions: answered {r.status}")
PY
}
drive "$WARMUP"
callgrind_control -z "$proxy_pid" >/dev/null
drive "$REQUESTS"
callgrind_control -d "$proxy_pid" >/dev/null
sleep 1
total=0
for f in "$work"/cg."$proxy_pid".*; do
  n=$(sed -n 's/^summary: //p;s/^totals: //p' "$f" | head -n1)
  [ -n "$n" ] && total=$((total + n))
done
if [ -n "${KEEP:-}" ]; then cp "$work"/cg."$proxy_pid".* "$KEEP"/; fi
echo "instructions per proxied GET /v1/meta: $((total / REQUESTS)) ($REQUESTS requests, LOG_LEVEL=$LOG)"
