#!/usr/bin/env bash
# A million database users (issue 16): start-up, memory, the streamed listing, management
# latency and the database-user key's throughput, on the release binary. Method and figures:
# bench/README.md ("A million database users").
#
# Seeds N users (default 1,000,000) with target/release/seed_users, then measures:
# - the time from the server's start to the first database-user request it serves (a key among
#   the N), polled with curl, and the CPU time (user + system, all threads) the server had
#   spent by then (from /proc/<pid>/stat; it moves less than wall time on a shared machine);
# - resident memory (VmRSS) after start, against a server with no users: bytes per user;
# - GET /v1/users/db as an admin: time to the first byte and in all, body size and count, and
#   the peak resident memory during it above the memory before it (VmHWM after resetting it
#   through /proc/<pid>/clear_refs);
# - POST (create), rotate-key and DELETE of a user: median and p90 latency over OPS operations
#   each, at 1,000 users and at N (curl's time_total, so without curl's own start-up);
# - with wrk (unless WRK=none): GET /v1/meta with the database-user key and anonymously, one
#   server worker on CPU 0, wrk -t1 on CPU 1, medians of RUNS runs of DURATION, and their ratio.
#
# Needs curl, python3, taskset; wrk for the throughput rows. Knobs: USERS (1000000), OPS (100),
# DURATION (10s), CONNECTIONS (32), RUNS (3), WRK (wrk, or none), BIN (the server binary).
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-1000000}
SMALL=1000
OPS=${OPS:-100}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
WRK=${WRK:-wrk}
if [ "$WRK" != none ] && ! command -v "$WRK" >/dev/null; then
  echo "million: wrk is not installed (apt-get install wrk, or WRK=none)" >&2; exit 1
fi
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p portcullis-server --bin portcullis
  cargo build --release --quiet -p portcullis-bench --bin seed_users
  BIN=target/release/portcullis
fi
SEED=${SEED:-target/release/seed_users}

work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ADMIN_KEY=million-admin-key-0123456789abcdef
now_ms() { date +%s%3N; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
# User + system CPU time of a process (every thread, exited ones included), in ms.
cpu_ms() { awk -v tck="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / tck) }' "/proc/$1/stat"; }
hwm_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# start <data-dir> <key>: starts the server on CPU 0 (one worker) and waits until <key> is
# accepted on /v1/meta; sets server, server_pid, ready_ms (start to that first success) and
# ready_cpu_ms (the server's user + system CPU time at that moment).
start() {
  local data=$1 key=$2
  : >"$work/server.out"
  local t0
  t0=$(now_ms)
  taskset -c 0 env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0 \
    PORTCULLIS_WORKERS=1 PERSISTENCE_DATA_PATH="$data" LOG_LEVEL=warn \
    AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true AUTHENTICATION_APIKEY_ENABLED=true \
    AUTHENTICATION_APIKEY_ALLOWED_KEYS="$ADMIN_KEY" AUTHENTICATION_APIKEY_USERS=root \
    AUTHENTICATION_DB_USERS_ENABLED=true \
    AUTHORIZATION_ADMINLIST_ENABLED=true AUTHORIZATION_ADMINLIST_USERS=root \
    "$BIN" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  server=
  for _ in $(seq 1 60000); do
    if [ -z "$server" ]; then
      server=$(sed -n 's/^http listening on //p' "$work/server.out" | head -n1)
    fi
    if [ -n "$server" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' \
      -H "Authorization: Bearer $key" "http://$server/v1/meta")" = 200 ]; then
      ready_ms=$(( $(now_ms) - t0 ))
      ready_cpu_ms=$(cpu_ms "$server_pid")
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { echo "million: the server exited:" >&2; cat "$work/server.err" >&2; exit 1; }
    sleep 0.005
  done
  echo "million: the server did not accept the key" >&2; exit 1
}
stop() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=; }

# Medians and 90th percentiles of the numbers on standard input (seconds), in ms.
stats() { python3 -c "
import sys
v = sorted(float(x) * 1000 for x in sys.stdin.read().split())
print('%.2f %.2f' % (v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.9))]))"; }

# ops <label>: OPS creates, then OPS rotations and OPS deletions of those users; one row each.
ops() {
  local label=$1 i
  for op in create rotate delete; do : >"$work/$op.t"; done
  for i in $(seq 1 "$OPS"); do
    curl -s -o /dev/null -w '%{time_total}\n' -X POST -H "Authorization: Bearer $ADMIN_KEY" \
      "http://$server/v1/users/db/million-op-$i" >>"$work/create.t"
  done
  for i in $(seq 1 "$OPS"); do
    curl -s -o /dev/null -w '%{time_total}\n' -X POST -H "Authorization: Bearer $ADMIN_KEY" \
      "http://$server/v1/users/db/million-op-$i/rotate-key" >>"$work/rotate.t"
  done
  for i in $(seq 1 "$OPS"); do
    curl -s -o /dev/null -w '%{time_total}\n' -X DELETE -H "Authorization: Bearer $ADMIN_KEY" \
      "http://$server/v1/users/db/million-op-$i" >>"$work/delete.t"
  done
  for op in create rotate delete; do
    read -r med p90 < <(stats <"$work/$op.t")
    printf '| %s at %s users | %s ms | %s ms |\n' "$op" "$label" "$med" "$p90" >>"$work/ops.md"
  done
}

# wrk_rate <auth header or empty>: requests/s of GET /v1/meta, one run.
wrk_rate() {
  local args=(-t1 -c"$CONNECTIONS" -d"$DURATION")
  [ -n "$1" ] && args+=(-H "Authorization: Bearer $1")
  taskset -c 1 "$WRK" "${args[@]}" "http://$server/v1/meta" |
    sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\)/\1/p'
}

echo "million: seeding an empty store and $SMALL and $USERS users..." >&2
mkdir -p "$work/empty" "$work/small" "$work/big"
empty_key=$("$SEED" "$work/empty" 1)
small_key=$("$SEED" "$work/small" "$SMALL")
t0=$(now_ms)
big_key=$("$SEED" "$work/big" "$USERS")
seed_ms=$(( $(now_ms) - t0 ))

start "$work/empty" "$empty_key"
empty_ready=$ready_ms
empty_rss=$(rss_kb "$server_pid")
stop

start "$work/small" "$small_key"
small_ready=$ready_ms
: >"$work/ops.md"
ops "$SMALL"
stop

start "$work/big" "$big_key"
big_ready=$ready_ms
big_cpu=$ready_cpu_ms
big_rss=$(rss_kb "$server_pid")
load_line=$(grep -o 'keys loaded.*' "$work/server.err" | head -n1 || true)

# The listing: reset the peak, then list; the peak's rise is what the listing cost.
echo 5 >"/proc/$server_pid/clear_refs"
before_list=$(rss_kb "$server_pid")
read -r first_byte total size < <(curl -s -o "$work/list.json" \
  -w '%{time_starttransfer} %{time_total} %{size_download}\n' \
  -H "Authorization: Bearer $ADMIN_KEY" "http://$server/v1/users/db")
peak_list=$(hwm_kb "$server_pid")
listed=$(python3 -c "import json, sys; print(len(json.load(open(sys.argv[1]))))" "$work/list.json")
rm -f "$work/list.json"
ops "$USERS"

rates=
if [ "$WRK" != none ]; then
  echo "million: wrk, $RUNS runs of $DURATION each for the key and anonymously..." >&2
  : >"$work/key.r"; : >"$work/anon.r"
  for _ in $(seq 1 "$RUNS"); do
    wrk_rate "$big_key" >>"$work/key.r"
    wrk_rate "" >>"$work/anon.r"
  done
  rates=$(python3 -c "
import sys
med = lambda f: sorted(float(x) for x in open(f).read().split())[int(sys.argv[3]) // 2]
k, a = med(sys.argv[1]), med(sys.argv[2])
print('| GET /v1/meta, database-user key (1 of %s) | %.0f req/s |  |' % (sys.argv[4], k))
print('| GET /v1/meta, anonymous | %.0f req/s |  |' % a)
print('| database-user key / anonymous (bar >= 0.90) | %.2f |  |' % (k / a))" \
    "$work/key.r" "$work/anon.r" "$RUNS" "$USERS")
fi
stop

per_user=$(( (big_rss - empty_rss) * 1024 / USERS ))
cat <<EOF
| what | figure | bar |
| --- | ---: | --- |
| seeding $USERS users | $seed_ms ms | |
| start to first database-user request, empty store | $empty_ready ms | |
| start to first database-user request, $SMALL users | $small_ready ms | |
| start to first database-user request, $USERS users | $big_ready ms | <= 2000 ms |
| server CPU time (user + system) until then, $USERS users | $big_cpu ms | well under 2000 ms |
| resident memory, empty store / $USERS users | $(( empty_rss / 1024 )) MB / $(( big_rss / 1024 )) MB | |
| resident memory per user above an empty server | $per_user B | <= 400 B |
| GET /v1/users/db: users listed, body | $listed, $(( size / 1048576 )) MB | |
| GET /v1/users/db: first byte, whole body | $(python3 -c "print('%.1f ms, %.0f ms' % ($first_byte * 1000, $total * 1000))") | first byte <= 100 ms |
| GET /v1/users/db: peak resident memory above before | $(( (peak_list - before_list) / 1024 )) MB | <= 50 MB |
EOF
echo "| operation | median | p90 |"
echo "| --- | ---: | ---: |"
cat "$work/ops.md"
[ -n "$rates" ] && { echo; echo "| throughput (one worker, wrk -t1 -c$CONNECTIONS, median of $RUNS) | figure | |"; echo "| --- | ---: | --- |"; echo "$rates"; }
[ -n "$load_line" ] && echo "server log: $load_line"
exit 0
