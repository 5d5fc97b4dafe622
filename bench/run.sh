#!/usr/bin/env bash
# Throughput of the gate, measured side by side in one run (method and bars: bench/README.md).
#
# Builds release, starts the server with ONE worker pinned to CPU 0, drives it with `wrk -t1`
# pinned to CPU 1, and prints one table: requests/s and p99 per row, and each row's ratio to
# the anonymous row (the same route through the whole gate, no credential check), and the server
# CPU time per request (user + system, from /proc/<pid>/stat). The anonymous row is also
# compared with a bare actix-web handler (no middleware at all), the row with a new OIDC token
# per request with the single-core RS256 verify rate and with its ceiling (the bare handler plus
# one RS256 check), and the credential rows with HAProxy 2.6 (one thread, `jwt_verify`, logging
# to a local syslog socket) answering the same body itself.
#
# Needs: wrk (Debian package `wrk`), taskset (util-linux), python3, haproxy (Debian package
# `haproxy`, 2.4 or later; HAPROXY=none skips its rows). Knobs: DURATION (10s), CONNECTIONS
# (32), RUNS (3, the median is reported), STATIC_KEYS (1000 keys configured), DB_USERS (100000
# database users loaded), OIDC_TOKENS (100000 pre-minted tokens), FRESH_DURATION (3s: the
# new-token row must not run out of tokens), BENCH_LOG_LEVEL (info: the access log on, as in
# production; `warn` measures without it), LOG_FORMAT (text, or json as in the Docker image),
# OTHER_FORMAT (the format of a second server measured in the same run on the anonymous and
# credential rows: the one LOG_FORMAT is not; `none` skips it; only with the access log on).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
FRESH_DURATION=${FRESH_DURATION:-3s}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
STATIC_KEYS=${STATIC_KEYS:-1000}
DB_USERS=${DB_USERS:-100000}
OIDC_TOKENS=${OIDC_TOKENS:-100000}
LOG=${BENCH_LOG_LEVEL:-info}
LOG_FORMAT=${LOG_FORMAT:-text}
HAPROXY=${HAPROXY:-haproxy}
case "$LOG_FORMAT" in
  json) OTHER_FORMAT=${OTHER_FORMAT:-text} ;;
  *) OTHER_FORMAT=${OTHER_FORMAT:-json} ;;
esac
[ "$LOG" = info ] || OTHER_FORMAT=none
LOG_LEVEL_NOTE="LOG_LEVEL=$LOG LOG_FORMAT=$LOG_FORMAT"
ROUTE=/v1/meta

command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [ "$HAPROXY" != none ] && ! command -v "$HAPROXY" >/dev/null; then
  echo "bench: haproxy is not installed (apt-get install haproxy, or HAPROXY=none)" >&2; exit 1
fi
cargo build --release --quiet -p portcullis-server --bin portcullis
cargo build --release --quiet -p portcullis-bench --bin bare --bin bench_issuer --bin seed_users
BIN=target/release/portcullis
BARE=target/release/bare
ISSUER=target/release/bench_issuer
SEED=target/release/seed_users

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

echo "bench: minting $OIDC_TOKENS OIDC tokens and measuring RS256 verification..." >&2
"$ISSUER" "$work/tokens" "$OIDC_TOKENS" >"$work/issuer.out" 2>&1 &
pids+=($!)
issuer=$(wait_line "$work/issuer.out" issuer)
verify_rate=$(wait_line "$work/issuer.out" rs256_verify_per_sec)
parsed_rate=$(wait_line "$work/issuer.out" rs256_parsed_verify_per_sec)
one_token=$(head -n1 "$work/tokens")

# Static keys, all 40 characters, all mapped to one user; the benchmark uses the last.
keys=$(python3 -c "import sys; n=int(sys.argv[1]); print(','.join('bench-key-%030d' % i for i in range(n)))" "$STATIC_KEYS")
good_key=$(python3 -c "import sys; print('bench-key-%030d' % (int(sys.argv[1]) - 1))" "$STATIC_KEYS")
wrong_key=bench-key-wrong-000000000000000000000000

server_env=(PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0 PORTCULLIS_GRPC_ADDR=off
  PORTCULLIS_WORKERS=1
  AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true AUTHENTICATION_APIKEY_ENABLED=true
  AUTHENTICATION_APIKEY_ALLOWED_KEYS="$keys" AUTHENTICATION_APIKEY_USERS=bench
  AUTHENTICATION_DB_USERS_ENABLED=true
  AUTHENTICATION_OIDC_ENABLED=true AUTHENTICATION_OIDC_ISSUER="$issuer"
  AUTHENTICATION_OIDC_CLIENT_ID=portcullis AUTHENTICATION_OIDC_USERNAME_CLAIM=preferred_username
  AUTHENTICATION_OIDC_GROUPS_CLAIM=groups)

# DB_USERS database users, stored through the server's own user store before it starts.
echo "bench: seeding $DB_USERS database users..." >&2
db_key=$("$SEED" "$work/data" "$DB_USERS")
# The second server's copy of the same users (the same key), made before either opens them.
[ "$OTHER_FORMAT" = none ] || cp -a "$work/data" "$work/data_other"

# At the default level the server is configured as in production, by LOG_LEVEL alone (RUST_LOG
# would turn off its cached level check); at another level, RUST_LOG keeps the start-up line
# that reports how long the users took to load.
log_env=(LOG_LEVEL="$LOG")
[ "$LOG" = info ] || log_env+=(RUST_LOG="$LOG,portcullis_server=info")

# Starts a Portcullis configured as above on CPU 0: data directory $1, log format $2, output
# files $work/$3.out and $work/$3.err (appended). Sets `launched_pid` and `launched` (its
# address) once it listens and the issuer's keys have loaded, so OIDC rows do not start on 503s.
launch() {
  : >"$work/$3.out"
  taskset -c 0 env -i "${server_env[@]}" PERSISTENCE_DATA_PATH="$1" "${log_env[@]}" \
    LOG_FORMAT="$2" "$BIN" >"$work/$3.out" 2>>"$work/$3.err" &
  launched_pid=$!
  pids+=($launched_pid)
  launched=$(wait_line "$work/$3.out" "http listening on")
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $one_token" "http://$launched$ROUTE")" = 200 ] && break
    sleep 0.1
  done
}
server_pid=
server=
# (Re)starts the measured server; a restart empties its verified-token cache.
start_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; fi
  launch "$work/data" "$LOG_FORMAT" server
  server_pid=$launched_pid
  server=$launched
}
start_server
# The second server: the same configuration, a copy of the users, the other log format.
other_pid=
if [ "$OTHER_FORMAT" != none ]; then
  launch "$work/data_other" "$OTHER_FORMAT" other
  other_pid=$launched_pid
  other=$launched
  for credential in "$good_key" "$db_key"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $credential" "http://$other$ROUTE")
    [ "$code" = 200 ] || { echo "bench: the $OTHER_FORMAT server answered $code to a good key" >&2; exit 1; }
  done
fi
load_ms=$(sed -n -e 's/.*keys loaded.*millis=\([0-9]*\).*/\1/p' -e 's/.*keys loaded","millis":\([0-9]*\).*/\1/p' "$work/server.err" | head -n1)
# The bare handler also serves /v1/meta/rs256: one RS256 check of the bearer token with the
# issuer's key parsed once, and nothing else (no middleware, claims or cache): the ceiling of a
# new token per request on this machine.
jwks_uri=$(curl -sf "$issuer/.well-known/openid-configuration" | python3 -c "import json, sys; print(json.load(sys.stdin)['jwks_uri'])")
curl -sf -o "$work/jwks.json" "$jwks_uri"
taskset -c 0 "$BARE" 127.0.0.1:0 "$work/jwks.json" >"$work/bare.out" 2>&1 &
bare_pid=$!
pids+=($bare_pid)
bare=$(wait_line "$work/bare.out" "http listening on")

# HAProxy, one thread on CPU 0, answering GET /v1/meta itself (`http-request return` with the
# bare handler's exact body) on three ports: no credential; a static key (the same 1000 keys,
# an exact-match ACL on the Authorization header); and a JWT (RS256 with the issuer's key in
# PEM, `jwt_verify`, and the claim checks it can express: alg, iss, aud, exp). It logs every
# request (`option httplog`) to a UDP syslog socket on 127.0.0.1, drained by a listener on
# CPU 1. Why it answers itself rather than proxying to the bare handler: bench/README.md.
ha_pid=
if [ "$HAPROXY" != none ]; then
  curl -sf -o "$work/meta.json" "http://$bare$ROUTE"
  python3 - "$work/jwks.json" "$work/issuer.pem" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
key = next(k for k in json.load(open(sys.argv[1]))["keys"] if k.get("kty") == "RSA")
num = lambda f: int.from_bytes(base64.urlsafe_b64decode(key[f] + "=" * (-len(key[f]) % 4)), "big")
pem = RSAPublicNumbers(num("e"), num("n")).public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
open(sys.argv[2], "wb").write(pem)
PY
  python3 -c "import sys; n=int(sys.argv[1]); print('\n'.join('Bearer bench-key-%030d' % i for i in range(n)))" \
    "$STATIC_KEYS" >"$work/keys.acl"
  python3 -u -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(('127.0.0.1', 0))
print('syslog', s.getsockname()[1])
while True:
    s.recv(65536)
" >"$work/syslog.out" &
  syslog_pid=$!
  pids+=($syslog_pid)
  taskset -p -c 1 "$syslog_pid" >/dev/null
  syslog_port=$(wait_line "$work/syslog.out" syslog)
  ha_ports=$(python3 -c "
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in socks))")
  read -r ha_anon_port ha_key_port ha_jwt_port <<<"$ha_ports"
  cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4096
  log 127.0.0.1:$syslog_port local0 info
  tune.ssl.default-dh-param 2048

defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 30s
  timeout server 30s

frontend anonymous
  bind 127.0.0.1:$ha_anon_port
  http-request return status 200 content-type application/json file $work/meta.json

frontend static_key
  bind 127.0.0.1:$ha_key_port
  http-request deny deny_status 401 unless { req.hdr(authorization) -m str -f $work/keys.acl }
  http-request return status 200 content-type application/json file $work/meta.json

frontend jwt
  bind 127.0.0.1:$ha_jwt_port
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.now) date
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_header_query('\$.alg') -m str RS256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str $issuer }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m sub portcullis }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.exp','int'),sub(txn.now) -m int gt 0 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify("RS256","$work/issuer.pem") -m int 1 }
  http-request return status 200 content-type application/json file $work/meta.json
CFG
  "$HAPROXY" -c -q -f "$work/haproxy.cfg"
  taskset -c 0 "$HAPROXY" -f "$work/haproxy.cfg" -db >"$work/haproxy.out" 2>&1 &
  ha_pid=$!
  pids+=($ha_pid)
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $one_token" "http://127.0.0.1:$ha_jwt_port$ROUTE")" = 200 ] && break
    sleep 0.1
  done
  ha_check() { # port, credential ("" for none), expected status
    local code
    if [ -n "$2" ]; then
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "http://127.0.0.1:$1$ROUTE")
    else
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$ROUTE")
    fi
    [ "$code" = "$3" ] || { echo "bench: haproxy answered $code, not $3, on port $1" >&2; cat "$work/haproxy.out" >&2; exit 1; }
  }
  ha_check "$ha_anon_port" "" 200
  ha_check "$ha_key_port" "$good_key" 200
  ha_check "$ha_key_port" "$wrong_key" 401
  ha_check "$ha_key_port" "" 401
  ha_check "$ha_jwt_port" "$one_token" 200
  forged=$(python3 -c "import sys; t = sys.argv[1]; i = len(t) - 20; print(t[:i] + ('B' if t[i] == 'A' else 'A') + t[i + 1:])" "$one_token")
  ha_check "$ha_jwt_port" "$forged" 401
  ha_check "$ha_jwt_port" "" 401
fi

# The embedded store: one class and one object to read back.
OBJECT_ID=5b6a9c2e-0000-4000-8000-000000000001
OBJECT_PATH=/v1/objects/Bench/$OBJECT_ID
curl -sf -o /dev/null -H "Authorization: Bearer $good_key" -H 'Content-Type: application/json' \
  -d '{"class":"Bench","properties":[{"name":"title","dataType":["text"]}]}' "http://$server/v1/schema"
curl -sf -o /dev/null -H "Authorization: Bearer $good_key" -H 'Content-Type: application/json' \
  -d "{\"class\":\"Bench\",\"id\":\"$OBJECT_ID\",\"properties\":{\"title\":\"hello\"}}" "http://$server/v1/objects"

# An upstream (a second Portcullis, embedded, anonymous) and a proxy in front of it, both with
# one worker on CPU 0: the proxied row pays for both processes on the one core.
mkdir -p "$work/upstream" "$work/proxy"
taskset -c 0 env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_GRPC_ADDR=off PORTCULLIS_WORKERS=1 PROMETHEUS_MONITORING_ENABLED=false \
  PERSISTENCE_DATA_PATH="$work/upstream" AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true LOG_LEVEL=warn \
  "$BIN" >"$work/upstream.out" 2>&1 &
upstream_pid=$!
pids+=($upstream_pid)
upstream=$(wait_line "$work/upstream.out" "http listening on")
curl -sf -o /dev/null -H 'Content-Type: application/json' \
  -d '{"class":"Bench","properties":[{"name":"title","dataType":["text"]}]}' "http://$upstream/v1/schema"
curl -sf -o /dev/null -H 'Content-Type: application/json' \
  -d "{\"class\":\"Bench\",\"id\":\"$OBJECT_ID\",\"properties\":{\"title\":\"hello\"}}" "http://$upstream/v1/objects"
taskset -c 0 env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_GRPC_ADDR=off PORTCULLIS_WORKERS=1 PROMETHEUS_MONITORING_ENABLED=false \
  PERSISTENCE_DATA_PATH="$work/proxy" AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true LOG_LEVEL=warn \
  PORTCULLIS_UPSTREAM_URL="http://$upstream" "$BIN" >"$work/proxy.out" 2>&1 &
proxy_pid=$!
pids+=($proxy_pid)
proxy=$(wait_line "$work/proxy.out" "http listening on")

cat >"$work/tokens.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[(i - 1) % #tokens + 1] })
end
LUA

# CPU time (user + system, clock ticks) the processes $* have used so far.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# One wrk run against the processes $1 (comma-separated pids); prints "<req/s> <p99 in ms>
# <non-2xx> <requests> <server CPU us per request>".
measure() {
  local pids_csv=$1 url=$2 duration=$3; shift 3
  local before after
  # The access log goes to a file: what the rows before wrote is flushed to disk first, so its
  # writeback does not slow whichever row comes next (about 3% in back-to-back A/B runs).
  sync
  # Then the access logs start again from empty (the servers append, so they write from the new
  # end), as a rotated log would: on this VM a server's CPU per request grows with its log's
  # size in the page cache (anonymous 6.7 us on a new file, 9.1 us at 6.5 GB, 6.7-7.2 again
  # once it was truncated), which made each row pay for the rows before it on that server, and
  # the second server, never restarted, pay most. HAProxy's log goes to a listener that
  # discards it. The start-up lines were read before the first row.
  : >"$work/server.err"
  if [ -n "$other_pid" ]; then : >"$work/other.err"; fi
  before=$(cpu_ticks ${pids_csv//,/ })
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$duration" --latency "$@" "$url" >"$work/wrk.out"
  after=$(cpu_ticks ${pids_csv//,/ })
  python3 - "$work/wrk.out" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
cpu_s = int(sys.argv[2]) / int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text)
p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
total = re.search(r"(\d+) requests in", text)
print(f"{rps:.0f} {p99:.3f} {non2xx.group(1) if non2xx else 0} {total.group(1)} "
      f"{cpu_s * 1e6 / max(int(total.group(1)), 1):.2f}")
PY
}

# One server's block of rows: a bare-handler sample (row $1), then on the server $2 (address
# $3) the anonymous row, the two keys in this run's order and a reused token, as rows $4 + 1,
# 2, 3 and 4. Each server's anonymous row is compared with the bare sample just before it.
server_rows() {
  local bare_row=$1 pid=$2 addr=$3 base=$4 row key
  echo "$bare_row $(measure "$bare_pid" "http://$bare$ROUTE" "$DURATION")" >>"$work/results"
  echo "$((base + 1)) $(measure "$pid" "http://$addr$ROUTE" "$DURATION")" >>"$work/results"
  for row in "${key_rows[@]}"; do
    key=$good_key; [ "$row" = 3 ] && key=$db_key
    echo "$((base + row)) $(measure "$pid" "http://$addr$ROUTE" "$DURATION" -H "Authorization: Bearer $key")" >>"$work/results"
  done
  echo "$((base + 4)) $(measure "$pid" "http://$addr$ROUTE" "$DURATION" -H "Authorization: Bearer $one_token")" >>"$work/results"
}

rows=("bare actix-web handler, no middleware"
  "anonymous (no credential)"
  "static API key (1 of $STATIC_KEYS)"
  "database-user key (1 of $DB_USERS)"
  "OIDC token, reused (cache hit)"
  "OIDC token, new per request (RS256 verify)"
  "wrong API key (401)"
  "store: GET $OBJECT_PATH, anonymous"
  "store: GET $OBJECT_PATH, static API key"
  "upstream Portcullis direct: GET object"
  "through the proxy: GET object"
  "ceiling: bare handler + one RS256 check, new token per request"
  "HAProxy 2.6, no credential (answers itself, syslog on)"
  "HAProxy 2.6, static API key (ACL, 1 of $STATIC_KEYS)"
  "HAProxy 2.6, jwt_verify RS256, reused token"
  "HAProxy 2.6, jwt_verify RS256, new token per request"
  "anonymous, $OTHER_FORMAT log"
  "static API key, $OTHER_FORMAT log"
  "database-user key, $OTHER_FORMAT log"
  "OIDC token, reused, $OTHER_FORMAT log"
  "bare actix-web handler, again: before the $OTHER_FORMAT server's rows")
: >"$work/results"
for run in $(seq 1 "$RUNS"); do
  echo "bench: run $run of $RUNS" >&2
  # The static-key and database-user rows swap places every other run, so neither always
  # runs in the other's wake (bench/README.md, the nineteenth run); so do the two servers'
  # blocks, since the second block's anonymous row came out 0.04-0.06 under the first's
  # whichever format it logged (the twentieth to twenty-second runs).
  if [ $((run % 2)) = 1 ]; then key_rows=(2 3); else key_rows=(3 2); fi
  if [ -z "$other_pid" ]; then
    server_rows 0 "$server_pid" "$server" 0
  elif [ $((run % 2)) = 1 ]; then
    server_rows 0 "$server_pid" "$server" 0
    server_rows 20 "$other_pid" "$other" 15
  else
    server_rows 20 "$other_pid" "$other" 15
    server_rows 0 "$server_pid" "$server" 0
  fi
  echo "6 $(measure "$server_pid" "http://$server$ROUTE" "$DURATION" -H "Authorization: Bearer $wrong_key")" >>"$work/results"
  echo "7 $(measure "$server_pid" "http://$server$OBJECT_PATH" "$DURATION")" >>"$work/results"
  echo "8 $(measure "$server_pid" "http://$server$OBJECT_PATH" "$DURATION" -H "Authorization: Bearer $good_key")" >>"$work/results"
  echo "9 $(measure "$upstream_pid" "http://$upstream$OBJECT_PATH" "$DURATION")" >>"$work/results"
  echo "10 $(measure "$proxy_pid,$upstream_pid" "http://$proxy$OBJECT_PATH" "$DURATION")" >>"$work/results"
  if [ -n "$ha_pid" ]; then
    echo "12 $(measure "$ha_pid" "http://127.0.0.1:$ha_anon_port$ROUTE" "$DURATION")" >>"$work/results"
    echo "13 $(measure "$ha_pid" "http://127.0.0.1:$ha_key_port$ROUTE" "$DURATION" -H "Authorization: Bearer $good_key")" >>"$work/results"
    echo "14 $(measure "$ha_pid" "http://127.0.0.1:$ha_jwt_port$ROUTE" "$FRESH_DURATION" -H "Authorization: Bearer $one_token")" >>"$work/results"
    echo "15 $(measure "$ha_pid" "http://127.0.0.1:$ha_jwt_port$ROUTE" "$FRESH_DURATION" -s "$work/tokens.lua")" >>"$work/results"
  fi
  start_server   # empty the token cache: every token below is new to the server
  echo "5 $(measure "$server_pid" "http://$server$ROUTE" "$FRESH_DURATION" -s "$work/tokens.lua")" >>"$work/results"
  echo "11 $(measure "$bare_pid" "http://$bare$ROUTE/rs256" "$FRESH_DURATION" -s "$work/tokens.lua")" >>"$work/results"
done

python3 - "$work/results" "$RUNS" "$DURATION" "$CONNECTIONS" "$load_ms" "$verify_rate" "$OIDC_TOKENS" "$FRESH_DURATION" "$parsed_rate" "$LOG_LEVEL_NOTE" "${rows[@]}" <<'PY'
import statistics, sys
path, runs, duration, conns, load_ms, verify, ntokens, fresh, parsed, log = sys.argv[1:11]
names = sys.argv[11:]
raw = {}
for line in open(path):
    row, rps, p99, errs, total, cpu = line.split()
    raw.setdefault(int(row), []).append((float(rps), float(p99), int(errs), int(total), float(cpu)))
med = {r: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
           sum(x[2] for x in v), max(x[3] for x in v), statistics.median(x[4] for x in v))
       for r, v in raw.items()}


def paired(row, base):
    """Each run's ratio of `row` to `base` (measured side by side in that run) and their
    median: the machine's speed drifts between runs more than between neighbouring rows."""
    ratios = [a[0] / b[0] for a, b in zip(raw[row], raw[base])]
    return statistics.median(ratios), ", ".join(f"{x:.2f}" for x in ratios)


def bar(label, row, base, what):
    m, each = paired(row, base)
    print(f"- {label} = {m:.2f} (per run: {each}) ({what})")

print(f"wrk -t1 -c{conns} -d{duration} (new-token and HAProxy jwt rows: -d{fresh}), 1 server "
      f"worker (CPU 0), wrk on CPU 1, median of {runs} runs, {log}")
print()
print("The first seven rows, the HAProxy rows and the last five request GET /v1/meta; every ratio "
      "column is to the anonymous /v1/meta row (the four rows of a second server logging in the "
      "other format: to its own anonymous row), the median of each run's ratio. CPU: the "
      "server's user + system time per request (for the proxy row, both processes).")
print()
other_anon = med[16][0] if 16 in med else None
print("| row | req/s | CPU us/req | p99 ms | ratio to anonymous | non-2xx |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for r, name in enumerate(names):
    if r not in med:
        continue
    rps, p99, errs, _, cpu = med[r]
    # The second server's rows: their ratio is to its own anonymous row.
    base = 16 if 16 <= r <= 19 else 1
    print(f"| {name} | {rps:,.0f} | {cpu:.2f} | {p99:.2f} | {paired(r, base)[0]:.2f} | {errs} |")
print()
verify = float(verify)
bar("gate cost: anonymous / bare", 1, 0, "bar >= 0.85")
bar("store object, static key / anonymous", 8, 7, "bar >= 0.90")
bar("proxy / direct to the same upstream", 10, 9, "reported; no bar")
bar("static key / anonymous", 2, 1, "bar >= 0.90")
bar("database-user key / anonymous", 3, 1, "bar >= 0.90")
bar("OIDC cache hit / anonymous", 4, 1, "bar >= 0.90")
parsed = float(parsed)
print(f"- OIDC new token per request / single-core RS256 verify rate, jsonwebtoken decode "
      f"({verify:,.0f}/s) = {med[5][0] / verify:.2f} (reported; the first bar was >= 0.80)")
print(f"- OIDC new token per request / single-core RS256 signature check with a pre-parsed key "
      f"({parsed:,.0f}/s) = {med[5][0] / parsed:.2f}")
print(f"- ceiling (bare handler + one RS256 check) / jsonwebtoken verify rate = "
      f"{med[11][0] / verify:.2f}: the most any server can reach against that rate here")
bar("OIDC new token per request / ceiling", 5, 11, "bar >= 0.85")
if 13 in med:
    bar("static key / HAProxy static key", 2, 13, "bar > 1.0")
    bar("OIDC cache hit / HAProxy static key", 4, 13, "bar > 1.0")
    bar("OIDC new token per request / HAProxy jwt_verify, new token", 5, 15, "bar >= 1.0")
    bar("HAProxy no credential / bare handler", 12, 0, "reported")
if other_anon is not None:
    other = names[16].split(", ")[1]
    bar(f"{other}: anonymous / bare (the sample just before it)", 16, 20, "bar >= 0.85")
    for r, what in ((17, "static key"), (18, "database-user key"), (19, "OIDC cache hit")):
        bar(f"{other}: {what} / its anonymous", r, 16, "bar >= 0.90")
if med[5][3] > int(ntokens):
    print(f"- WARNING: the new-token row sent {med[5][3]} requests but only {ntokens} tokens "
          f"exist, so some were cache hits; raise OIDC_TOKENS or lower FRESH_DURATION")
print(f"- {names[3].split('(')[1].rstrip(')').split(' of ')[1]} database users loaded at start-up in {load_ms or '?'} ms")
PY
