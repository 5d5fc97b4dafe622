#!/usr/bin/env bash
# Replicas sharing users through PostgreSQL (issue 14): three Portcullis replicas on one
# throwaway PostgreSQL cluster. Method and figures: bench/README.md ("Replicas").
#
# Measures, on the release binary (BIN to use another):
# - start-up with USERS database users in PostgreSQL (default 100,000, copied from a SQLite
#   store made by seed_users, so every key is real): the time from a replica's start to the
#   first request it serves with a key among them (A on CPU 0, B and C on CPU 1);
# - ROTATIONS rotations of one user's key on replica A, each timed two ways by
#   bench/replicas_probe.py: the rotate call's latency (it returns once every replica with a
#   live lease has applied the change: acknowledged revocation), and the time from sending it
#   to the last of the 3 replicas refusing the old key (tight loops of requests with the old
#   key on A, B and C; an upper bound on commit-to-refusal). p50 and p99 of each;
# - the servers' own commit-to-read histogram (portcullis_user_sync_propagation_seconds, the
#   database's clock): p50 and p99 by bucket;
# - with wrk (unless WRK=none): GET /v1/meta through replica A to the bench crate's `bare`
#   upstream, with the database-user key and anonymously, one server worker on CPU 0, wrk -t1
#   on CPU 1, medians of RUNS runs of DURATION, and their ratio (the bar is 0.90).
#
# Needs PostgreSQL's server binaries (Debian package postgresql), curl, python3, taskset; wrk
# for the throughput rows. Knobs: USERS (100000), ROTATIONS (1000), DURATION (10s),
# CONNECTIONS (32), RUNS (3), WRK (wrk, or none), BOUND (the revocation bound, 5s), BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-100000}
ROTATIONS=${ROTATIONS:-1000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
WRK=${WRK:-wrk}
BOUND=${BOUND:-5s}
if [ "$WRK" != none ] && ! command -v "$WRK" >/dev/null; then
  echo "replicas: wrk is not installed (apt-get install wrk, or WRK=none)" >&2; exit 1
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$PG_BIN/initdb" ] || { echo "replicas: no PostgreSQL server (apt-get install postgresql)" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p portcullis-server --bin portcullis
  BIN=target/release/portcullis
fi
if [ -z "${SEED:-}" ]; then
  cargo build --release --quiet -p portcullis-bench --bin seed_users --bin bare
  SEED=target/release/seed_users
fi
BARE=${BARE:-$(dirname "$SEED")/bare}

work=$(mktemp -d)
chmod 755 "$work"
pids=()
pg_started=
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$pg_started" ] && "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ADMIN_KEY=replicas-admin-key-0123456789abcdef
now_ms() { date +%s%3N; }
wait_line() { # wait_line <file> <prefix>: the rest of the first line starting with <prefix>
  local line
  for _ in $(seq 1 6000); do
    line=$(sed -n "s/^$2 //p" "$1" | head -n1)
    [ -n "$line" ] && { echo "$line"; return 0; }
    sleep 0.01
  done
  echo "replicas: no '$2' line in $1:" >&2; cat "$1" >&2; exit 1
}

# PostgreSQL: a throwaway cluster on a free port, as the postgres user when running as root.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/pg" && [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/pg" -U portcullis -A trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
pg_started=1
psql() { "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U portcullis -v ON_ERROR_STOP=1 -At "$@"; }
psql -d postgres -c "CREATE DATABASE bench" >/dev/null
URL="postgres://portcullis@127.0.0.1:$port/bench"

taskset -c 0 "$BARE" 127.0.0.1:0 >"$work/bare.out" 2>&1 &
pids+=($!)
bare=$(wait_line "$work/bare.out" "http listening on")

# replica <name> <cpu>: starts a replica (one worker) on <cpu>; sets its address in
# addr_<name> and its pid in pid_<name>.
replica() {
  local name=$1 cpu=$2
  taskset -c "$cpu" env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0 \
    PORTCULLIS_GRPC_ADDR=off PORTCULLIS_WORKERS=1 LOG_LEVEL=warn \
    PORTCULLIS_UPSTREAM_URL="http://$bare" PORTCULLIS_USER_STORE_URL="$URL" \
    PORTCULLIS_KEY_REVOCATION_BOUND="$BOUND" PORTCULLIS_AUTH_FAILURE_LIMIT=0 \
    AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true AUTHENTICATION_APIKEY_ENABLED=true \
    AUTHENTICATION_APIKEY_ALLOWED_KEYS="$ADMIN_KEY" AUTHENTICATION_APIKEY_USERS=root \
    AUTHENTICATION_DB_USERS_ENABLED=true \
    AUTHORIZATION_ADMINLIST_ENABLED=true AUTHORIZATION_ADMINLIST_USERS=root \
    "$BIN" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=($pid)
  printf -v "pid_$name" %s "$pid"
  printf -v "addr_$name" %s "$(wait_line "$work/$name.out" "http listening on")"
  printf -v "metrics_$name" %s "$(wait_line "$work/$name.out" "metrics listening on")"
}

# The schema: one replica's start makes it.
replica schema 0
kill "$pid_schema"; wait "$pid_schema" 2>/dev/null || true

# USERS users with real keys: seeded into SQLite by the server's own code, copied over.
echo "replicas: seeding $USERS users..." >&2
mkdir -p "$work/seed"
user_key=$("$SEED" "$work/seed" "$USERS")
python3 - "$work/seed/users.db" >"$work/users.csv" <<'EOF'
import csv, sqlite3, sys
out = csv.writer(sys.stdout)
for row in sqlite3.connect(sys.argv[1]).execute(
        "SELECT id, key_id, hex(key_digest), active, revoked, created_at_ms FROM users"):
    out.writerow([row[0], row[1], "\\x" + row[2].lower(), "t" if row[3] else "f",
                  "t" if row[4] else "f", row[5], 0])
EOF
psql -d bench -c "\copy portcullis_users (id, key_id, key_digest, active, revoked, created_at_ms, seq) FROM '$work/users.csv' WITH (FORMAT csv)" >/dev/null
echo "replicas: $(psql -d bench -c 'SELECT count(*) FROM portcullis_users') users in PostgreSQL" >&2

# Start-up: each replica's time to serve a key among USERS.
: >"$work/startup.md"
for name in a b c; do
  t0=$(now_ms)
  case $name in a) replica a 0 ;; *) replica "$name" 1 ;; esac
  addr_var=addr_$name
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $user_key" \
    "http://${!addr_var}/v1/users/own-info")" = 200 ]; do sleep 0.005; done
  printf '| replica %s: start to the first database-key request served, %s users | %s ms |\n' \
    "$name" "$USERS" "$(( $(now_ms) - t0 ))" >>"$work/startup.md"
done

# Rotations: latency with acknowledgement, and send-to-last-refusal.
echo "replicas: $ROTATIONS rotations..." >&2
python3 bench/replicas_probe.py "$ADMIN_KEY" "$ROTATIONS" "$addr_a" "$addr_b" "$addr_c" >"$work/probe.md"

# The servers' own commit-to-read times (histogram buckets: quantiles are bucket bounds).
server_quantiles() {
  curl -s "http://$1/metrics" | python3 -c '
import sys
buckets = []
for line in sys.stdin:
    if line.startswith("portcullis_user_sync_propagation_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
total = buckets[-1][1] if buckets else 0
def q(p):
    for le, n in buckets:
        if total and n >= p * total:
            return "<= %g ms" % (le * 1000)
    return "n/a"
print("%d changes, p50 %s, p99 %s" % (total, q(0.5), q(0.99)))'
}

# Throughput through replica A: database-user key against anonymous.
wrk_rate() {
  local args=(-t1 -c"$CONNECTIONS" -d"$DURATION")
  [ -n "$1" ] && args+=(-H "Authorization: Bearer $1")
  taskset -c 1 "$WRK" "${args[@]}" "http://$addr_a/v1/meta" |
    sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\)/\1/p'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
throughput=
if [ "$WRK" != none ]; then
  # B and C idle meanwhile (they only follow the store).
  kill -STOP "$pid_b" "$pid_c"
  : >"$work/db.r"; : >"$work/anon.r"
  for _ in $(seq 1 "$RUNS"); do
    wrk_rate "$user_key" >>"$work/db.r"
    wrk_rate "" >>"$work/anon.r"
  done
  kill -CONT "$pid_b" "$pid_c"
  db=$(median <"$work/db.r"); anon=$(median <"$work/anon.r")
  throughput=$(printf '| GET /v1/meta via replica A, database-user key | %s req/s |\n| GET /v1/meta via replica A, anonymous | %s req/s |\n| ratio (bar 0.90) | %s |\n' \
    "$db" "$anon" "$(python3 -c "print('%.3f' % ($db / $anon))")")
fi

echo
echo "| measure | value |"
echo "| --- | --- |"
cat "$work/startup.md"
cat "$work/probe.md"
for name in a b c; do
  m=metrics_$name
  echo "| replica $name, commit to read (its histogram) | $(server_quantiles "${!m}") |"
done
[ -n "$throughput" ] && echo "$throughput"
echo
echo "(USERS=$USERS ROTATIONS=$ROTATIONS BOUND=$BOUND DURATION=$DURATION RUNS=$RUNS CONNECTIONS=$CONNECTIONS)"
