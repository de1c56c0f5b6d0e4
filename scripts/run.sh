#!/usr/bin/env bash
# run.sh - `make run`: PostgreSQL, the server and a simulated fleet, until Ctrl-C.
#
# Starts PostgreSQL (the private cluster under var/pg, or DATABASE_URL's),
# applies migrations, creates on first start an admin login and an API token
# for the ML team (var/demo-credentials, mode 0600) and an enrollment secret
# (var/enroll-secret), starts the server on PORT (default 8080) and simulated
# agents of different equipment types, each with its keys and spool under
# var/agents/<id>.  Logs: var/log/<name>.log.  Ctrl-C or SIGTERM stops every
# process this script started, and the private PostgreSQL if it started it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
PORT=${PORT:-8080}
SERVER="$BUILD/bin/precursor-server"
AGENT="$BUILD/bin/precursor-agent"
VAR="$ROOT/var"
CREDS="$VAR/demo-credentials"
SECRET="$VAR/enroll-secret"
LOG="$VAR/log"

# id:simulator:seed:fault-every(s):equipment type (taxonomy):site -- rare faults, but often
# enough to see some in a minute.
FLEET=(
    "sim-bearing-1:bearing:1:20:fan:plant-1"
    "sim-pump-1:pump:2:25:centrifugal_pump:plant-1"
    "sim-motor-1:motor:3:30:motor:plant-2"
)

say() { echo "run: $*" >&2; }
die() { say "$*"; exit 1; }

for b in "$SERVER" "$AGENT"; do
    [ -x "$b" ] || die "$b is missing: build with make"
done
mkdir -p "$VAR" "$LOG" "$VAR/agents"

pids=()
names=()
started_pg=0
stopping=0

stop_all() {
    [ $stopping -eq 1 ] && return
    stopping=1
    trap - INT TERM EXIT
    say "stopping"
    local i
    # Agents first (they may be mid-upload), then the server.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
    done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        # Give each 10 s to finish, then insist.
        local n=0
        while kill -0 "${pids[$i]}" 2>/dev/null && [ $n -lt 100 ]; do
            sleep 0.1; n=$((n + 1))
        done
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            say "${names[$i]} did not stop: killing it"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
        wait "${pids[$i]}" 2>/dev/null || true
    done
    if [ $started_pg -eq 1 ]; then
        env -u DATABASE_URL scripts/pg.sh stop || true   # DATABASE_URL is ours by now
    fi
    say "stopped"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# ---- PostgreSQL and migrations ------------------------------------------
if [ -z "${DATABASE_URL:-}" ] && ! scripts/pg.sh status >/dev/null 2>&1; then
    started_pg=1
fi
scripts/pg.sh start
DBURL=$(scripts/pg.sh url)
# Through the environment, not argv: the URL may hold a password, and argv is
# visible to every user of the machine.
export DATABASE_URL="$DBURL"
"$SERVER" migrate >>"$LOG/migrate.log" 2>&1 ||
    { tail -n 20 "$LOG/migrate.log" >&2; die "migrations failed (var/log/migrate.log)"; }
# Once per database: months of alert history marked as demo data, so the
# rules and operational metrics pages have something to show (docs/RULES.md).
"$SERVER" demo-history >>"$LOG/demo-history.log" 2>&1 ||
    say "no demo history (var/log/demo-history.log); the pages fill as the fleet runs"

# ---- first start: credentials and enrollment secret ---------------------
rand() { openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | cut -c1-"$1"; }

# Written to a temporary file in the same folder, then renamed: a reader sees
# the old file or the new one, never half of one.
write_private() {
    local dest=$1 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    chmod 0600 "$tmp"
    cat >"$tmp"
    mv -f "$tmp" "$dest"
}

if [ ! -s "$SECRET" ]; then
    rand 40 | write_private "$SECRET"
fi

# Credentials belong to one database: recreate them when the database changed.
if [ ! -s "$CREDS" ] || ! grep -qxF "database_url=$DBURL" "$CREDS"; then
    say "creating the admin login and the ML team's API token"
    pw=$(rand 24)
    if ! printf '%s\n' "$pw" | "$SERVER" user add \
            --username admin --role admin >>"$LOG/setup.log" 2>&1; then
        tail -n 5 "$LOG/setup.log" >&2
        die "could not create the admin user (var/log/setup.log); if it exists from an earlier run, use its password or a fresh database"
    fi
    token=$("$SERVER" token create --name ml-team --role ml 2>>"$LOG/setup.log" |
            tail -n1 | tr -d '[:space:]') || true
    [ -n "$token" ] || die "could not create the API token (var/log/setup.log)"
    printf 'admin_user=admin\nadmin_password=%s\napi_token=%s\ndatabase_url=%s\n' \
        "$pw" "$token" "$DBURL" | write_private "$CREDS"
fi

# ---- server ---------------------------------------------------------------
start() {   # name, command...
    local name=$1; shift
    "$@" >>"$LOG/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}

ui_args=()
for d in labeling-ui/dist labeling-ui; do
    if [ -f "$d/index.html" ]; then ui_args=(--ui-dir "$d"); break; fi
done

URL="http://127.0.0.1:$PORT"
start server "$SERVER" serve --port "$PORT" --enroll-secret-file "$SECRET" "${ui_args[@]}"
for i in $(seq 1 150); do
    curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    kill -0 "${pids[0]}" 2>/dev/null || { tail -n 20 "$LOG/server.log" >&2; die "the server exited (var/log/server.log)"; }
    [ "$i" -eq 150 ] && die "the server did not answer $URL/healthz in 30 s (var/log/server.log)"
    sleep 0.2
done

# ---- fleet -----------------------------------------------------------------
for a in "${FLEET[@]}"; do
    IFS=: read -r id equipment seed every etype site <<<"$a"
    dir="$VAR/agents/$id"
    mkdir -p "$dir/keys" "$dir/spool"
    chmod 0700 "$dir/keys"
    # First start: enroll as a device in the field would, with a one-use
    # token that gives the device its equipment type and site.
    if [ ! -e "$dir/keys/registered" ]; then
        tok=$("$SERVER" enroll create --equipment-type "$etype" --site "$site" --uses 1 \
                  --expires 1h --pre-approved 2>>"$LOG/enroll.log" | tail -n 1 | tr -d '[:space:]')
        if [ -z "$tok" ] || ! "$AGENT" enroll --server "$URL" --token "$tok" --device-id "$id" \
                --key-dir "$dir/keys" >>"$LOG/enroll.log" 2>&1; then
            say "$id: enrollment with a token failed (var/log/enroll.log); trying the enrollment secret"
            grep -q '409' "$LOG/enroll.log" &&
                say "$id is known to the database under another key: var/agents was removed but not the database; 'make stop && rm -rf var' starts afresh"
        fi
    fi
    start "$id" "$AGENT" run --device-id "$id" --server "$URL" \
        --source sim --sim-equipment "$equipment" --sim-seed "$seed" \
        --sim-fault-every "$every" --config-poll-s 30 --heartbeat-s 15 \
        --key-dir "$dir/keys" --spool "$dir/spool" --enroll-secret-file "$SECRET"
done

cat <<EOF

Precursor is running.
  URL:          $URL   (labeling UI; health: $URL/healthz)
  credentials:  var/demo-credentials  (admin login, API token, database URL)
  fleet:        ${#FLEET[@]} simulated agents (var/agents/<id>); logs in var/log/
  try:          curl -H "Authorization: Bearer \$(sed -n 's/^api_token=//p' var/demo-credentials)" $URL/api/v1/snapshots
  stop:         Ctrl-C

EOF

# Wait until told to stop; a child that dies is reported, the rest keep running.
declare -A reported=()
while true; do
    for i in "${!pids[@]}"; do
        if [ -z "${reported[$i]:-}" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
            reported[$i]=1
            say "${names[$i]} exited (var/log/${names[$i]}.log)"
            [ "$i" -eq 0 ] && die "the server is gone: stopping"
        fi
    done
    sleep 1 &
    wait $! || true
done
