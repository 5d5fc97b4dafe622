#!/usr/bin/env bash
# The gRPC gate's cost (issue 12), side by side in one run (method and bars: bench/README.md,
# "gRPC").
#
# Builds release, starts Portcullis with ONE worker pinned to CPU 0 (embedded store, anonymous
# access, static keys and OIDC against the bench crate's `bench_issuer`), drives it with the
# bench crate's tonic load generator `grpc_load` pinned to CPU 1, and prints one table: calls/s,
# objects/s, p50, p99 and the server's CPU time per call (user + system, /proc/<pid>/stat) for
#   - a unary Search fetching one object by id: anonymous, a static key, a cached OIDC token;
#   - BatchObjects of BATCH_SIZE small objects: anonymous and a static key;
#   - the same Search against a second Portcullis (embedded store, anonymous), directly and
#     through a third one in proxy mode in front of it (both on CPU 0).
# Bars: key / anonymous and OIDC / anonymous >= 0.90 (Search), key / anonymous >= 0.95
# (BatchObjects, objects/s); proxy / direct is reported.
#
# Needs: taskset (util-linux), curl, python3. Knobs: DURATION (10s), WARMUP (1s), RUNS (3, the
# median is reported), CONCURRENCY (32 calls in flight for Search), BATCH_CONCURRENCY (4),
# BATCH_SIZE (1000), STATIC_KEYS (1000 keys configured), BENCH_LOG_LEVEL (info: the access
# log as in production; `warn` measures without it), LOG_FORMAT (text, or json), PROFILE
# (release; `debug` only to check the script).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-32}
BATCH_CONCURRENCY=${BATCH_CONCURRENCY:-4}
BATCH_SIZE=${BATCH_SIZE:-1000}
STATIC_KEYS=${STATIC_KEYS:-1000}
LOG=${BENCH_LOG_LEVEL:-info}
LOG_FORMAT=${LOG_FORMAT:-text}
OBJECT_ID=5b6a9c2e-0000-4000-8000-000000000001
SCHEMA='{"class":"Bench","properties":[{"name":"title","dataType":["text"]},{"name":"count","dataType":["int"]}]}'
OBJECT="{\"class\":\"Bench\",\"id\":\"$OBJECT_ID\",\"properties\":{\"title\":\"hello\",\"count\":1}}"

command -v taskset >/dev/null || { echo "bench: taskset is not installed (util-linux)" >&2; exit 1; }
# PROFILE=debug only checks that the script runs (a debug build's figures mean nothing).
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then build=(--release); else build=(); fi
cargo build "${build[@]}" --quiet -p portcullis-server --bin portcullis
cargo build "${build[@]}" --quiet -p portcullis-bench --bin grpc_load --bin bench_issuer
BIN=target/$PROFILE/portcullis
LOAD=target/$PROFILE/grpc_load
ISSUER=target/$PROFILE/bench_issuer
CLK_TCK=$(getconf CLK_TCK)

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Wait until a line starting with $2 appears in file $1; print the rest of that line.
wait_line() {
  local file=$1 prefix=$2
  for _ in $(seq 1 1800); do
    local v
    v=$(sed -n "s/^$prefix //p" "$file" | head -n1)
    if [ -n "$v" ]; then echo "$v"; return 0; fi
    sleep 0.1
  done
  echo "bench: no '$prefix' line in $file:" >&2; cat "$file" >&2; exit 1
}

# The issuer: a few tokens; one is reused, so the server verifies it once and then hits its cache.
"$ISSUER" "$work/tokens" 2 >"$work/issuer.out" 2>&1 &
pids+=($!)
issuer=$(wait_line "$work/issuer.out" issuer)
wait_line "$work/issuer.out" tokens >/dev/null
token=$(head -n1 "$work/tokens")

keys=$(python3 -c "import sys; n=int(sys.argv[1]); print(','.join('bench-key-%030d' % i for i in range(n)))" "$STATIC_KEYS")
good_key=$(python3 -c "import sys; print('bench-key-%030d' % (int(sys.argv[1]) - 1))" "$STATIC_KEYS")

# Starts Portcullis on CPU 0 with the environment given; sets $started_pid, $started_http and
# $started_grpc. Every server binds ephemeral ports (gRPC too: 50051 may be taken).
start() {
  local name=$1
  shift
  mkdir -p "$work/$name"
  taskset -c 0 env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_GRPC_ADDR=127.0.0.1:0 \
    PORTCULLIS_WORKERS=1 PROMETHEUS_MONITORING_ENABLED=false PERSISTENCE_DATA_PATH="$work/$name" \
    "$@" "$BIN" >"$work/$name.out" 2>"$work/$name.err" &
  started_pid=$!
  pids+=($started_pid)
  started_http=$(wait_line "$work/$name.out" "http listening on")
  started_grpc=$(wait_line "$work/$name.out" "grpc listening on")
}

# The class and the one object, over REST (with a credential when $2 is given).
seed() {
  local http=$1 auth=()
  if [ -n "${2:-}" ]; then auth=(-H "Authorization: Bearer $2"); fi
  curl -sf -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' -d "$SCHEMA" "http://$http/v1/schema"
  curl -sf -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' -d "$OBJECT" "http://$http/v1/objects"
}

# The measured server.
start server AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true AUTHENTICATION_APIKEY_ENABLED=true \
  AUTHENTICATION_APIKEY_ALLOWED_KEYS="$keys" AUTHENTICATION_APIKEY_USERS=bench \
  AUTHENTICATION_OIDC_ENABLED=true AUTHENTICATION_OIDC_ISSUER="$issuer" \
  AUTHENTICATION_OIDC_CLIENT_ID=portcullis AUTHENTICATION_OIDC_USERNAME_CLAIM=preferred_username \
  AUTHENTICATION_OIDC_GROUPS_CLAIM=groups LOG_LEVEL="$LOG" LOG_FORMAT="$LOG_FORMAT"
server_pid=$started_pid
server_http=$started_http
server=$started_grpc
seed "$server_http" "$good_key"
# Wait for the issuer's keys, so the OIDC row does not start on UNAVAILABLE.
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://$server_http/v1/meta")" = 200 ] && break
  sleep 0.1
done

# An upstream (a second Portcullis, embedded store, anonymous) and a proxy in front of it over
# gRPC, both with one worker on CPU 0: the proxied row pays for both processes on the one core.
start upstream AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true LOG_LEVEL=warn
upstream_pid=$started_pid
upstream=$started_grpc
seed "$started_http"
start proxy AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true LOG_LEVEL=warn \
  PORTCULLIS_UPSTREAM_URL="http://$started_http" PORTCULLIS_UPSTREAM_GRPC_ADDR="$upstream"
proxy_pid=$started_pid
proxy=$started_grpc

# One grpc_load run on CPU 1: "<calls/s> <objects/s> <p50 ms> <p99 ms> <CPU us/call> <errors>".
measure() {
  local pids_csv=$1 addr=$2 kind=$3 auth=$4 concurrency=$5
  taskset -c 1 "$LOAD" --addr "$addr" --kind "$kind" --concurrency "$concurrency" \
    --duration "$DURATION" --warmup "$WARMUP" --authorization "$auth" --id "$OBJECT_ID" \
    --batch-size "$BATCH_SIZE" --pids "$pids_csv" --clk-tck "$CLK_TCK" >"$work/load.out" 2>"$work/load.err"
  if [ -s "$work/load.err" ]; then sed 's/^/bench: /' "$work/load.err" >&2; fi
  python3 - "$work/load.out" <<'PY'
import sys
v = dict(line.split(None, 1) for line in open(sys.argv[1]).read().splitlines())
print(v["calls_per_sec"], v["objects_per_sec"], v["p50_ms"], v["p99_ms"],
      v["cpu_us_per_call"].replace("-", "nan"), v["errors"])
PY
}

rows=(
  "Search by id, anonymous"
  "Search by id, static API key (1 of $STATIC_KEYS)"
  "Search by id, OIDC token (cache hit)"
  "BatchObjects of $BATCH_SIZE, anonymous"
  "BatchObjects of $BATCH_SIZE, static API key"
  "upstream Portcullis direct: Search by id"
  "through the gRPC proxy: Search by id"
)
: >"$work/results"
for run in $(seq 1 "$RUNS"); do
  echo "bench: run $run of $RUNS" >&2
  echo "0 $(measure "$server_pid" "$server" search-by-id "" "$CONCURRENCY")" >>"$work/results"
  echo "1 $(measure "$server_pid" "$server" search-by-id "Bearer $good_key" "$CONCURRENCY")" >>"$work/results"
  echo "2 $(measure "$server_pid" "$server" search-by-id "Bearer $token" "$CONCURRENCY")" >>"$work/results"
  echo "3 $(measure "$server_pid" "$server" batch "" "$BATCH_CONCURRENCY")" >>"$work/results"
  echo "4 $(measure "$server_pid" "$server" batch "Bearer $good_key" "$BATCH_CONCURRENCY")" >>"$work/results"
  echo "5 $(measure "$upstream_pid" "$upstream" search-by-id "" "$CONCURRENCY")" >>"$work/results"
  echo "6 $(measure "$proxy_pid,$upstream_pid" "$proxy" search-by-id "" "$CONCURRENCY")" >>"$work/results"
done

python3 - "$work/results" "$RUNS" "$DURATION" "$CONCURRENCY" "$BATCH_CONCURRENCY" "LOG_LEVEL=$LOG LOG_FORMAT=$LOG_FORMAT" "${rows[@]}" <<'PY'
import math, statistics, sys
path, runs, duration, conc, batch_conc, log = sys.argv[1:7]
names = sys.argv[7:]
raw = {}
for line in open(path):
    row, cps, ops, p50, p99, cpu, errs = line.split()
    raw.setdefault(int(row), []).append((float(cps), float(ops), float(p50), float(p99), float(cpu), int(errs)))
med = {r: tuple(statistics.median(x[i] for x in v) for i in range(5)) + (sum(x[5] for x in v),)
       for r, v in raw.items()}
print(f"grpc_load (tonic, one thread, CPU 1), {duration} after a warm-up, {conc} Search calls or "
      f"{batch_conc} BatchObjects calls in flight over one HTTP/2 connection; 1 server worker "
      f"(CPU 0), median of {runs} runs, {log}")
print()
print("CPU: the server's user + system time per call (for the proxy row, both processes).")
print()
print("| row | calls/s | objects/s | p50 ms | p99 ms | CPU us/call | ratio | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
base = {0: 0, 1: 0, 2: 0, 3: 3, 4: 3, 5: 5, 6: 5}
for r, name in enumerate(names):
    if r not in med:
        continue
    cps, ops, p50, p99, cpu, errs = med[r]
    ratio = ops / med[base[r]][1] if med[base[r]][1] else float("nan")
    cpu_text = "-" if math.isnan(cpu) else f"{cpu:.2f}"
    print(f"| {name} | {cps:,.0f} | {ops:,.0f} | {p50:.2f} | {p99:.2f} | {cpu_text} | {ratio:.2f} | {errs} |")
print()
ratio = lambda a, b: med[a][1] / med[b][1] if med[b][1] else float("nan")
print(f"- Search, static key / anonymous = {ratio(1, 0):.2f} (bar >= 0.90)")
print(f"- Search, OIDC cache hit / anonymous = {ratio(2, 0):.2f} (bar >= 0.90)")
print(f"- BatchObjects objects/s, static key / anonymous = {ratio(4, 3):.2f} (bar >= 0.95)")
print(f"- proxy / direct to the same upstream = {ratio(6, 5):.2f} (reported; no bar)")
if any(m[5] for m in med.values()):
    print("- WARNING: some calls failed (the errors column); the first error of each run is above")
PY
