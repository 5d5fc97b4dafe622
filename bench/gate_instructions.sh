#!/usr/bin/env bash
# Instructions per request through the gate, counted by valgrind (repeatable whatever else the
# machine runs, unlike requests/s): the release server (one worker) under `valgrind
# --tool=callgrind`, WARMUP requests, counters zeroed, then REQUESTS sequential `GET /v1/meta`
# on one keep-alive connection, dumped and divided by REQUESTS. Every thread of the process
# (the log writer included), user space only. Rows: the bench crate's bare handler; then
# Portcullis anonymous, with a static key and with a reused OIDC token (a cache hit: the bench
# crate's issuer mints it), with the access log in text, in JSON, and off (LOG_LEVEL=warn);
# and a database-user key (one of 1,000 seeded users) with the text log.
# Method and figures: bench/README.md ("Instruction counts (issue 10)").
#
# Needs: valgrind (callgrind_control), python3. Knobs: REQUESTS (5000), WARMUP (300), BIN
# (target/release/portcullis), BARE (target/release/bare), ISSUER (target/release/bench_issuer);
# each is built unless given.
# KEEP (a folder): the callgrind dumps are copied there, for callgrind_annotate. ROWS (a bash
# regular expression): only the rows whose name matches (the bare handler's name is "bare").
# CACHE_SIM=1: callgrind also simulates the host's caches (--cache-sim=yes, several times
# slower) and a column gives the instruction-cache (I1) misses per request. SEED
# (target/release/seed_users) seeds the database users of the database-user row.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-5000}
WARMUP=${WARMUP:-300}
KEY=bench-key-000000000000000000000000000000
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p portcullis-server --bin portcullis
  BIN=target/release/portcullis
fi
if [ -z "${BARE:-}" ]; then
  cargo build --release --quiet -p portcullis-bench --bin bare
  BARE=target/release/bare
fi
if [ -z "${SEED:-}" ]; then
  cargo build --release --quiet -p portcullis-bench --bin seed_users
  SEED=target/release/seed_users
fi
if [ -z "${ISSUER:-}" ]; then
  cargo build --release --quiet -p portcullis-bench --bin bench_issuer
  ISSUER=target/release/bench_issuer
fi

work=$(mktemp -d)
pid=
issuer_pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$issuer_pid" ] && kill "$issuer_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

wait_line() {
  local file=$1 prefix=$2
  for _ in $(seq 1 1200); do
    local v
    v=$(sed -n "s/^$prefix //p" "$file" | head -n1)
    if [ -n "$v" ]; then echo "$v"; return 0; fi
    sleep 0.1
  done
  echo "gate_instructions: no '$prefix' line in $file:" >&2; cat "$file" >&2; exit 1
}

# Sequential GET /v1/meta on one keep-alive connection; every answer must be 200. With a
# fourth argument, first waits (up to 20 s) for a 200, while the server fetches the issuer's
# keys.
drive() { # address, credential ("" for none), count, [wait]
  python3 - "$1" "$2" "$3" "${4:-}" <<'PY'
import http.client, sys, time
host, port = sys.argv[1].rsplit(":", 1)
headers = {"Authorization": "Bearer " + sys.argv[2]} if sys.argv[2] else {}
conn = http.client.HTTPConnection(host, int(port))
for _ in range(200 if sys.argv[4] else 0):
    conn.request("GET", "/v1/meta", headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status == 200:
        break
    time.sleep(0.1)
for _ in range(int(sys.argv[3])):
    conn.request("GET", "/v1/meta", headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"gate_instructions: answered {r.status}")
PY
}

# Runs one row: the command (the rest of the arguments, after its environment's NAME=value
# words) under callgrind, driven with the credential $2; prints its instructions per request.
row() { # name, credential, [NAME=value...] command...
  local name=$1 credential=$2; shift 2
  [[ "$name" =~ ${ROWS:-.} ]] || return 0
  local vars=()
  while [[ "$1" == *=* ]]; do vars+=("$1"); shift; done
  rm -f "$work"/cg.* "$work/out"
  local sim=()
  [ "${CACHE_SIM:-0}" = 1 ] && sim=(--cache-sim=yes)
  env -i PATH="$PATH" "${vars[@]}" valgrind --tool=callgrind "${sim[@]}" \
    --callgrind-out-file="$work/cg.%p" "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  local addr
  addr=$(wait_line "$work/out" "http listening on")
  drive "$addr" "$credential" "$WARMUP" wait
  callgrind_control -z "$pid" >/dev/null 2>&1
  drive "$addr" "$credential" "$REQUESTS"
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  # The totals line lists the events in order: Ir first, then (with the cache simulation)
  # Dr, Dw and I1mr.
  local total=0 i1=0 f events
  for f in "$work"/cg."$pid".*; do
    events=$(sed -n 's/^summary: //p;s/^totals: //p' "$f" | head -n1)
    [ -n "$events" ] || continue
    read -r -a events <<<"$events"
    total=$((total + events[0]))
    [ "${CACHE_SIM:-0}" = 1 ] && i1=$((i1 + events[3]))
  done
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP/$name"
    cp "$work"/cg."$pid".* "$KEEP/$name/"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  if [ "${CACHE_SIM:-0}" = 1 ]; then
    printf '| %s | %s | %s |\n' "$name" "$((total / REQUESTS))" "$((i1 / REQUESTS))"
  else
    printf '| %s | %s |\n' "$name" "$((total / REQUESTS))"
  fi
}

# The OpenID issuer (discovery and JWKS on 127.0.0.1) and one token it minted, sent on every
# request of the OIDC rows: the first request verifies it, every later one is a cache hit.
"$ISSUER" "$work/tokens" 1 >"$work/issuer.out" 2>&1 &
issuer_pid=$!
issuer=$(wait_line "$work/issuer.out" issuer)
wait_line "$work/issuer.out" rs256_verify_per_sec >/dev/null
token=$(head -n1 "$work/tokens")

server=(PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0
  PORTCULLIS_GRPC_ADDR=off PORTCULLIS_WORKERS=1 PERSISTENCE_DATA_PATH="$work/data"
  AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true AUTHENTICATION_APIKEY_ENABLED=true
  AUTHENTICATION_APIKEY_ALLOWED_KEYS="$KEY" AUTHENTICATION_APIKEY_USERS=bench
  AUTHENTICATION_OIDC_ENABLED=true AUTHENTICATION_OIDC_ISSUER="$issuer"
  AUTHENTICATION_OIDC_CLIENT_ID=portcullis AUTHENTICATION_OIDC_USERNAME_CLAIM=preferred_username
  AUTHENTICATION_OIDC_GROUPS_CLAIM=groups)

echo "valgrind --tool=callgrind, $REQUESTS sequential GET /v1/meta after $WARMUP, one keep-alive connection, one worker"
echo
if [ "${CACHE_SIM:-0}" = 1 ]; then
  echo "| row | instructions per request | I1 misses per request |"
  echo "| --- | ---: | ---: |"
else
  echo "| row | instructions per request |"
  echo "| --- | ---: |"
fi
row bare "" "$BARE" 127.0.0.1:0
for format in text json; do
  row "anonymous, log $format" "" "${server[@]}" LOG_LEVEL=info LOG_FORMAT=$format "$BIN"
  row "static key, log $format" "$KEY" "${server[@]}" LOG_LEVEL=info LOG_FORMAT=$format "$BIN"
  row "OIDC token reused, log $format" "$token" "${server[@]}" LOG_LEVEL=info LOG_FORMAT=$format "$BIN"
done
# A key of one of 1,000 database users (seeded before the server starts).
db_key=$("$SEED" "$work/users" 1000)
row "database-user key, log text" "$db_key" "${server[@]}" PERSISTENCE_DATA_PATH="$work/users" \
  AUTHENTICATION_DB_USERS_ENABLED=true LOG_LEVEL=info LOG_FORMAT=text "$BIN"
row "anonymous, log off (warn)" "" "${server[@]}" LOG_LEVEL=warn "$BIN"
row "static key, log off (warn)" "$KEY" "${server[@]}" LOG_LEVEL=warn "$BIN"
row "OIDC token reused, log off (warn)" "$token" "${server[@]}" LOG_LEVEL=warn "$BIN"
