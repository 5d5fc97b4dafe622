#!/usr/bin/env bash
# What TLS costs (issue 15): the same run, the same binary, ONE server worker pinned to CPU 0 and
# the load generator pinned to CPU 1, as bench/run.sh does.
#
# Rows: an anonymous request and a static-key request over cleartext and over TLS (`wrk -t1`,
# keep-alive connections, so the TLS rows pay record encryption, not handshakes), and the rate
# of new TLS connections (`openssl s_time`, handshakes only) with and without session
# resumption (`-new` / `-reuse`; the non-2xx column of those rows counts connections that did
# not resume, or did, against what was asked). The certificate is an ECDSA P-256 one made
# here with openssl, the common choice today. Prints a table with req/s (or handshakes/s), p99,
# the server's CPU time per request or handshake, and each TLS row's ratio to its cleartext row.
#
# Needs: wrk, taskset, openssl (command line), python3. Knobs: DURATION (10s), CONNECTIONS (32),
# RUNS (3, the median is reported), HANDSHAKE_SECONDS (10), BENCH_LOG_LEVEL (info), and BIN (a
# binary to use instead of building release, e.g. target/debug/portcullis to check the script
# itself: its numbers mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
HANDSHAKE_SECONDS=${HANDSHAKE_SECONDS:-10}
LOG=${BENCH_LOG_LEVEL:-info}
ROUTE=/v1/meta
KEY=bench-key-tls-0000000000000000000000000

for tool in wrk taskset openssl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p portcullis-server --bin portcullis
  BIN=target/release/portcullis
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Wait until a line starting with $2 appears in file $1; print the rest of that line.
wait_line() {
  local file=$1 prefix=$2
  for _ in $(seq 1 600); do
    local v
    v=$(sed -n "s/^$prefix //p" "$file" | head -n1)
    if [ -n "$v" ]; then echo "$v"; return 0; fi
    sleep 0.1
  done
  echo "bench: no '$prefix' line in $file:" >&2; cat "$file" >&2; exit 1
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
chmod 600 "$work/tls.key"

# Starts a server with one worker on CPU 0; $1 names it, the rest are extra variables. Sets
# started_pid and started_addr.
start() {
  local name=$1; shift
  mkdir -p "$work/$name"
  : >"$work/$name/out"
  taskset -c 0 env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_WORKERS=1 \
    PORTCULLIS_GRPC_ADDR=off PROMETHEUS_MONITORING_ENABLED=false \
    PERSISTENCE_DATA_PATH="$work/$name/data" AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true \
    AUTHENTICATION_APIKEY_ENABLED=true AUTHENTICATION_APIKEY_ALLOWED_KEYS="$KEY" \
    AUTHENTICATION_APIKEY_USERS=bench LOG_LEVEL="$LOG" "$@" "$BIN" \
    >"$work/$name/out" 2>"$work/$name/err" &
  started_pid=$!
  pids+=("$started_pid")
  started_addr=$(wait_line "$work/$name/out" "http listening on")
}
start plain
plain_pid=$started_pid plain=$started_addr
start tls PORTCULLIS_TLS_CERT_FILE="$work/tls.crt" PORTCULLIS_TLS_KEY_FILE="$work/tls.key"
tls_pid=$started_pid tls=$started_addr
curl -sf -o /dev/null "http://$plain$ROUTE"
curl -sf -o /dev/null --cacert "$work/tls.crt" "https://$tls$ROUTE"
curl -sf -o /dev/null --cacert "$work/tls.crt" -H "Authorization: Bearer $KEY" "https://$tls$ROUTE"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One wrk run against pid $1; prints "<req/s> <p99 ms> <non-2xx> <server CPU us per request>".
measure() {
  local pid=$1 url=$2; shift 2
  local before after
  before=$(cpu_ticks "$pid")
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$work/wrk.out"
  after=$(cpu_ticks "$pid")
  python3 - "$work/wrk.out" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
cpu_s = int(sys.argv[2]) / int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text)
p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
total = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{rps:.0f} {p99:.3f} {non2xx.group(1) if non2xx else 0} {cpu_s * 1e6 / max(total, 1):.2f}")
PY
}

# New TLS connections per second from one openssl s_time client on CPU 1, a handshake and
# nothing else per connection; $1: -new (full handshakes) or -reuse (every connection resumes
# the first one's session), $2: -tls1_3 or -tls1_2. Resumption is measured over TLS 1.2: a TLS
# 1.3 ticket arrives after the handshake, which s_time only reads when it sends a request, and
# then every connection waits for the server's close (Nagle holds back its last record).
# Prints "<connections/s> 0 <connections not as asked> <server CPU us per connection>".
handshakes() {
  local mode=$1 version=$2 before after start end
  before=$(cpu_ticks "$tls_pid")
  start=$(date +%s.%N)
  taskset -c 1 openssl s_time -connect "$tls" "$mode" "$version" -time "$HANDSHAKE_SECONDS" \
    </dev/null >"$work/s_time.out" 2>&1 || true
  end=$(date +%s.%N)
  after=$(cpu_ticks "$tls_pid")
  python3 - "$work/s_time.out" "$((after - before))" "$(getconf CLK_TCK)" "$start" "$end" "$mode" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"(\d+) connections in \d+ real seconds", text)
if not m:
    sys.exit("bench: openssl s_time printed no count:\n" + text)
n = int(m.group(1))
secs = float(sys.argv[5]) - float(sys.argv[4])
cpu_s = int(sys.argv[2]) / int(sys.argv[3])
# s_time prints one character per connection: '*' a full handshake, 'r' a resumed one.
marks = "".join(re.findall(r"^[*r]+$", text, re.M))
wrong = marks.count("*") - 1 if sys.argv[6] == "-reuse" else marks.count("r")
print(f"{n / secs:.0f} 0 {max(wrong, 0)} {cpu_s * 1e6 / max(n, 1):.2f}")
PY
}

rows=("anonymous, cleartext"
  "anonymous, TLS"
  "static API key, cleartext"
  "static API key, TLS"
  "new TLS 1.3 connections, full handshake (s_time -new)"
  "new TLS 1.2 connections, full handshake (s_time -new)"
  "new TLS 1.2 connections, resumed session (s_time -reuse)")
: >"$work/results"
for run in $(seq 1 "$RUNS"); do
  echo "bench: run $run of $RUNS" >&2
  echo "0 $(measure "$plain_pid" "http://$plain$ROUTE")" >>"$work/results"
  echo "1 $(measure "$tls_pid" "https://$tls$ROUTE")" >>"$work/results"
  echo "2 $(measure "$plain_pid" "http://$plain$ROUTE" -H "Authorization: Bearer $KEY")" >>"$work/results"
  echo "3 $(measure "$tls_pid" "https://$tls$ROUTE" -H "Authorization: Bearer $KEY")" >>"$work/results"
  echo "4 $(handshakes -new -tls1_3)" >>"$work/results"
  echo "5 $(handshakes -new -tls1_2)" >>"$work/results"
  echo "6 $(handshakes -reuse -tls1_2)" >>"$work/results"
done

python3 - "$work/results" "$RUNS" "$DURATION" "$CONNECTIONS" "$HANDSHAKE_SECONDS" "$LOG" "${rows[@]}" <<'PY'
import statistics, sys
path, runs, duration, conns, hs, log = sys.argv[1:7]
names = sys.argv[7:]
raw = {}
for line in open(path):
    row, rate, p99, errs, cpu = line.split()
    raw.setdefault(int(row), []).append((float(rate), float(p99), int(errs), float(cpu)))
med = {r: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
           sum(x[2] for x in v), statistics.median(x[3] for x in v)) for r, v in raw.items()}
print(f"wrk -t1 -c{conns} -d{duration}, openssl s_time -time {hs}, 1 server worker (CPU 0), "
      f"client on CPU 1, median of {runs} runs, LOG_LEVEL={log}, ECDSA P-256 certificate")
print()
print("| row | rate/s | CPU us each | p99 ms | non-2xx (handshake rows: not as asked) |")
print("| --- | ---: | ---: | ---: | ---: |")
for r, name in enumerate(names):
    rate, p99, errs, cpu = med[r]
    print(f"| {name} | {rate:,.0f} | {cpu:.2f} | {p99:.2f} | {errs} |")
print()
print(f"- anonymous: TLS / cleartext = {med[1][0] / med[0][0]:.2f} (reported)")
print(f"- static key: TLS / cleartext = {med[3][0] / med[2][0]:.2f} (reported)")
print(f"- static key / anonymous: cleartext {med[2][0] / med[0][0]:.2f}, TLS "
      f"{med[3][0] / med[1][0]:.2f} (bar >= 0.90 for cleartext)")
print(f"- TLS 1.2 resumed / full handshakes = {med[6][0] / med[5][0]:.2f}")
PY
