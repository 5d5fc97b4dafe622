#!/usr/bin/env bash
# RBAC's cost on the request path (issue 13's benchmark row), on the release binary:
# - GET /v1/objects/{class}/{id} with a database-user key, one server worker on CPU 0 and
#   wrk -t1 on CPU 1, against (a) the admin list with the user on it and (b) RBAC with the user
#   holding 20 roles of 50 read_data permissions each (wildcards and exact names mixed, the
#   last one allowing the class), medians of RUNS runs of DURATION, and their ratio (bar >= 0.95);
# - target/release/rbac_check: time per check at 1, 100 and 1,000 permissions, and the time to
#   apply one role change while 100,000 users hold the role (stored and published).
# The audit log is off in the RBAC run (PORTCULLIS_AUDIT_LOG=off) so both runs log alike;
# AUDIT=all measures it on.
#
# Needs curl, python3, taskset, wrk. Knobs: DURATION (10s), CONNECTIONS (32), RUNS (3),
# ITERATIONS (rbac_check's per check figure, 1000000), CHANGES (rbac_check's role changes, 200),
# AUDIT (off), PROFILE (release; `debug` checks the script without a release build:
# `PROFILE=debug DURATION=1s RUNS=1 ITERATIONS=1000 CHANGES=5 bench/rbac.sh`, figures
# meaningless), BIN (the server binary; default target/$PROFILE/portcullis, built).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-3}
ITERATIONS=${ITERATIONS:-1000000}
CHANGES=${CHANGES:-200}
AUDIT=${AUDIT:-off}
PROFILE=${PROFILE:-release}
case $PROFILE in
  release) profile_flag=(--release) ;;
  debug) profile_flag=() ;;
  *) echo "rbac: PROFILE is release or debug, not $PROFILE" >&2; exit 1 ;;
esac
command -v wrk >/dev/null || { echo "rbac: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build "${profile_flag[@]}" --quiet -p portcullis-server --bin portcullis
  BIN=target/$PROFILE/portcullis
fi
cargo build "${profile_flag[@]}" --quiet -p portcullis-bench --bin rbac_check

work=$(mktemp -d)
server_pid= admin_pid= rbac_pid=
cleanup() {
  for pid in "$server_pid" "$admin_pid" "$rbac_pid"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

ADMIN_KEY=$("$BIN" generate-key)
CLASS=Movie
ID=00000000-0000-4000-8000-000000000001

# start <mode> <env...>: a server on CPU 0 with one worker; sets server.
start() {
  local mode=$1; shift
  mkdir -p "$work/$mode"
  taskset -c 0 env -i PORTCULLIS_HTTP_ADDR=127.0.0.1:0 PORTCULLIS_METRICS_ADDR=127.0.0.1:0 \
    PORTCULLIS_GRPC_ADDR=off PORTCULLIS_WORKERS=1 PERSISTENCE_DATA_PATH="$work/$mode" \
    LOG_LEVEL=warn PORTCULLIS_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY" "$@" \
    "$BIN" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  server=
  for _ in $(seq 1 2000); do
    server=$(sed -n 's/^http listening on //p' "$work/server.out" | head -n1)
    if [ -n "$server" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' \
      -H "Authorization: Bearer $ADMIN_KEY" "http://$server/v1/meta")" = 200 ]; then
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { echo "rbac: the server exited:" >&2; cat "$work/server.err" >&2; exit 1; }
    sleep 0.01
  done
  echo "rbac: the server did not start" >&2; exit 1
}
stop() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=; }

# as_admin <method> <path> [json]: the status, failing on anything but 2xx.
as_admin() {
  local code
  code=$(curl -s -o "$work/reply" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $ADMIN_KEY" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "http://$server$2")
  case $code in 2*) ;; *) echo "rbac: $1 $2 answered $code: $(cat "$work/reply")" >&2; exit 1 ;; esac
}

# seed: the class, the object and the database user bench; sets USER_KEY.
seed() {
  as_admin POST /v1/schema "{\"class\":\"$CLASS\",\"properties\":[{\"name\":\"title\",\"dataType\":[\"text\"]}]}"
  as_admin POST /v1/objects "{\"class\":\"$CLASS\",\"id\":\"$ID\",\"properties\":{\"title\":\"t\"}}"
  as_admin POST /v1/users/db/bench
  USER_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["apikey"])' "$work/reply")
}

# roles: 20 roles of 50 read_data permissions, even ones exact, odd ones prefixes; the last
# grant of the last role is the class itself. Assigned to bench.
roles() {
  local r names=()
  for r in $(seq 0 19); do
    python3 - "$r" "$CLASS" >"$work/role.json" <<'EOF'
import json, sys
r, cls = int(sys.argv[1]), sys.argv[2]
perms = []
for i in range(50):
    name = f"Col{r}x{i}" if i % 2 == 0 else f"Col{r}x{i}*"
    if r == 19 and i == 49:
        name = cls
    perms.append({"action": "read_data", "data": {"collection": name}})
print(json.dumps({"name": f"bench{r}", "permissions": perms}))
EOF
    as_admin POST /v1/authz/roles "$(cat "$work/role.json")"
    names+=("\"bench$r\"")
  done
  as_admin POST /v1/authz/users/bench/assign "{\"roles\":[$(IFS=,; echo "${names[*]}")],\"userType\":\"db\"}"
}

rate() {
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $USER_KEY" \
    "http://$server/v1/objects/$CLASS/$ID" | sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\)/\1/p'
}
median() { python3 -c "import sys; v=sorted(float(x) for x in sys.stdin.read().split()); print(v[len(v)//2])"; }

: >"$work/admin.r"; : >"$work/rbac.r"
# No authentication setting: the bootstrap admin key turns database users on (with any other
# authentication method set it would be ignored and the admin would not exist).
start admin \
  AUTHORIZATION_ADMINLIST_ENABLED=true AUTHORIZATION_ADMINLIST_USERS=admin,bench
seed
admin_server=$server admin_pid=$server_pid admin_key=$USER_KEY
server_pid=
start rbac \
  AUTHORIZATION_RBAC_ENABLED=true AUTHORIZATION_RBAC_ROOT_USERS=admin PORTCULLIS_AUDIT_LOG="$AUDIT"
seed
roles
rbac_server=$server rbac_pid=$server_pid rbac_key=$USER_KEY
curl -sf -o /dev/null -H "Authorization: Bearer $rbac_key" "http://$rbac_server/v1/objects/$CLASS/$ID" ||
  { echo "rbac: the RBAC user cannot read the object" >&2; exit 1; }
# Interleaved, so a change in the machine's load touches both alike.
for _ in $(seq 1 "$RUNS"); do
  server=$admin_server USER_KEY=$admin_key; rate >>"$work/admin.r"
  server=$rbac_server USER_KEY=$rbac_key; rate >>"$work/rbac.r"
done
kill "$admin_pid" "$rbac_pid" 2>/dev/null || true
admin_pid= rbac_pid=

admin=$(median <"$work/admin.r")
rbac=$(median <"$work/rbac.r")
echo "| GET /v1/objects/{class}/{id}, database-user key | admin list | RBAC, 20 roles x 50 permissions (audit $AUDIT) | ratio |"
echo "| --- | --- | --- | --- |"
python3 -c "import sys; a,r=float(sys.argv[1]),float(sys.argv[2]); print('| req/s, median of $RUNS x $DURATION | %.0f | %.0f | %.3f |' % (a, r, r/a))" "$admin" "$rbac"
echo
"target/$PROFILE/rbac_check" "$ITERATIONS" "$CHANGES"
