#!/usr/bin/env bash
# The proxy path against a production proxy (issue 17), side by side in one run: the bench
# crate's `bare` upstream answering `GET /v1/meta`, reached straight, through HAProxy 2.6 and
# through Portcullis. Method and results: bench/README.md ("The proxy path").
#
# Every server runs on CPU 0 (the upstream and the proxy in front of it share the core, as
# they would share a machine's budget); `wrk -t1` runs on CPU 1. HAProxy: one thread, the
# bearer checked (an exact-match ACL on the static key), `Authorization` removed, the client's
# identity headers removed and the identity header set, `X-Forwarded-*` set as Portcullis sets
# them, `http-reuse always`, every request logged (`option httplog`) to a UDP syslog socket
# drained on CPU 1. Portcullis: one worker, the same static key, the access log in its default
# form (LOG_LEVEL=info, text).
#
# For each of -c32 and -c256 it prints requests/s, p99, CPU time per request of the measured
# processes (user + system from /proc/<pid>/stat; for the proxied rows the proxy alone and
# with the upstream), and the upstream connections Portcullis opened during the row (its
# metric; 0 under steady load once warm).
#
# Needs: wrk, taskset, python3, curl, haproxy (2.4 or later; HAPROXY=none skips its rows).
# Knobs: DURATION (10s), RUNS (3, medians), CONNECTION_COUNTS ("32 256"), BENCH_LOG_LEVEL
# (info), LOG_FORMAT (text).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
CONNECTION_COUNTS=${CONNECTION_COUNTS:-32 256}
LOG=${BENCH_LOG_LEVEL:-info}
LOG_FORMAT=${LOG_FORMAT:-text}
HAPROXY=${HAPROXY:-haproxy}
ROUTE=/v1/meta
KEY=bench-proxy-key-00000000000000000000000
USER_NAME=bench

command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [ "$HAPROXY" != none ] && ! command -v "$HAPROXY" >/dev/null; then
  echo "bench: haproxy is not installed (apt-get install haproxy, or HAPROXY=none)" >&2; exit 1
fi
cargo build --release --quiet -p portcullis-server --bin portcullis
cargo build --release --quiet -p portcullis-bench --bin bare
BIN=target/release/portcullis
BARE=target/release/bare

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

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
free_port() {
  python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# The upstream.
taskset -c 0 "$BARE" 127.0.0.1:0 >"$work/bare.out" 2>&1 &
bare_pid=$!
pids+=($bare_pid)
bare=$(wait_line "$work/bare.out" "http listening on")

# Portcullis in front of it.
taskset -c 0 env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0 \
  PORTCULLIS_WORKERS=1 PERSISTENCE_DATA_PATH="$work/data" \
  AUTHENTICATION_APIKEY_ENABLED=true AUTHENTICATION_APIKEY_ALLOWED_KEYS="$KEY" \
  AUTHENTICATION_APIKEY_USERS="$USER_NAME" PORTCULLIS_UPSTREAM_URL="http://$bare" \
  LOG_LEVEL="$LOG" LOG_FORMAT="$LOG_FORMAT" "$BIN" >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
pids+=($proxy_pid)
proxy=$(wait_line "$work/proxy.out" "http listening on")
metrics=$(wait_line "$work/proxy.out" "metrics listening on")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://$proxy$ROUTE")
[ "$code" = 200 ] || { echo "bench: Portcullis answered $code" >&2; cat "$work/proxy.err" >&2; exit 1; }
opened() {
  curl -sf "http://$metrics/metrics" | sed -n 's/^portcullis_upstream_connections_opened_total \([0-9.e+]*\)$/\1/p'
}

# HAProxy in front of the same upstream.
ha_pid=
if [ "$HAPROXY" != none ]; then
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
  ha_port=$(free_port)
  cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4096
  log 127.0.0.1:$syslog_port local0 info

defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 30s
  timeout server 60s

frontend gate
  bind 127.0.0.1:$ha_port
  http-request deny deny_status 401 unless { req.hdr(authorization) -m str "Bearer $KEY" }
  http-request del-header authorization
  http-request del-header x-portcullis- -m beg
  http-request del-header x-forwarded- -m beg
  http-request del-header forwarded
  http-request set-header x-portcullis-user $USER_NAME
  http-request set-header x-portcullis-groups %[str("")]
  http-request set-header x-forwarded-for %[src]
  http-request set-header x-forwarded-proto http
  http-request set-header x-forwarded-host %[req.hdr(host)]
  default_backend upstream

backend upstream
  http-reuse always
  server bare $bare
CFG
  "$HAPROXY" -c -q -f "$work/haproxy.cfg"
  taskset -c 0 "$HAPROXY" -f "$work/haproxy.cfg" -db >"$work/haproxy.out" 2>&1 &
  ha_pid=$!
  pids+=($ha_pid)
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$ha_port$ROUTE")" = 200 ] && break
    sleep 0.1
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "http://127.0.0.1:$ha_port$ROUTE")
  [ "$code" = 401 ] || { echo "bench: haproxy answered $code to a wrong key" >&2; exit 1; }
fi

cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# One wrk run; prints "<req/s> <p99 ms> <non-2xx> <CPU us/req of $1> <CPU us/req of $1 and
# the upstream> <connections opened>".
measure() {
  local pid=$1 url=$2 conns=$3
  local before before_up after after_up opened_before opened_after
  before=$(cpu_ticks "$pid"); before_up=$(cpu_ticks "$bare_pid")
  opened_before=$(opened)
  taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" "$url" >"$work/wrk.out"
  after=$(cpu_ticks "$pid"); after_up=$(cpu_ticks "$bare_pid")
  opened_after=$(opened)
  python3 - "$work/wrk.out" "$((after - before))" "$((after_up - before_up))" "$(getconf CLK_TCK)" \
    "$pid" "$bare_pid" "$opened_before" "$opened_after" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ticks, up_ticks, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
same = sys.argv[5] == sys.argv[6]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text)
p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
total = max(int(re.search(r"(\d+) requests in", text).group(1)), 1)
own = ticks / hz * 1e6 / total
both = own if same else (ticks + up_ticks) / hz * 1e6 / total
opened = float(sys.argv[8]) - float(sys.argv[7])
print(f"{rps:.0f} {p99:.3f} {non2xx.group(1) if non2xx else 0} {own:.2f} {both:.2f} {opened:.0f}")
PY
}

names=("straight to the upstream (bare)" "HAProxy 2.6, 1 thread, http-reuse always" "Portcullis proxy ($LOG, $LOG_FORMAT)")
: >"$work/results"
for run in $(seq 1 "$RUNS"); do
  for c in $CONNECTION_COUNTS; do
    echo "bench: run $run of $RUNS, -c$c" >&2
    echo "$c 0 $(measure "$bare_pid" "http://$bare$ROUTE" "$c")" >>"$work/results"
    if [ -n "$ha_pid" ]; then
      echo "$c 1 $(measure "$ha_pid" "http://127.0.0.1:$ha_port$ROUTE" "$c")" >>"$work/results"
    fi
    echo "$c 2 $(measure "$proxy_pid" "http://$proxy$ROUTE" "$c")" >>"$work/results"
  done
done

python3 - "$work/results" "$RUNS" "$DURATION" "${names[@]}" <<'PY'
import statistics, sys
path, runs, duration = sys.argv[1:4]
names = sys.argv[4:]
raw = {}
for line in open(path):
    c, row, rps, p99, errs, own, both, opened = line.split()
    raw.setdefault((int(c), int(row)), []).append(
        (float(rps), float(p99), int(errs), float(own), float(both), int(opened)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in (0, 1, 3, 4))
       + (sum(x[2] for x in v), [x[5] for x in v]) for k, v in raw.items()}
print(f"wrk -t1 -d{duration} (CPU 1), every server on CPU 0, median of {runs} runs, GET /v1/meta "
      f"with a static key")
print()
print("| connections | path | req/s | p99 ms | CPU us/req (proxy) | CPU us/req (with upstream) "
      "| beyond the upstream us/req | non-2xx | upstream connections opened per run |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for (c, row) in sorted(med):
    rps, p99, own, both, errs, opened = med[(c, row)]
    direct = med[(c, 0)][3]
    beyond = "-" if row == 0 else f"{both - direct:.2f}"
    opened = ", ".join(map(str, opened)) if row == 2 else "-"
    print(f"| {c} | {names[row]} | {rps:,.0f} | {p99:.2f} | {own:.2f} | {both:.2f} | {beyond} "
          f"| {errs} | {opened} |")
print()
for c in sorted({c for c, _ in med}):
    ours, direct = med[(c, 2)], med[(c, 0)]
    if (c, 1) in med:
        ha = med[(c, 1)]
        print(f"- -c{c}: Portcullis / HAProxy = {ours[0] / ha[0]:.2f} (bar >= 0.8); p99 "
              f"{ours[1]:.2f} ms against HAProxy's {ha[1]:.2f} ms")
    print(f"- -c{c}: Portcullis / straight to the upstream = {ours[0] / direct[0]:.2f} (reported)")
PY
