#!/usr/bin/env bash
# run.sh - `make run`: PostgreSQL, the server and a simulated fleet, until Ctrl-C.
#
# Starts PostgreSQL (the private cluster under var/pg, or DATABASE_URL's),
# applies migrations, creates on first start an admin login and an API token
# for the ML team (var/demo-credentials, mode 0600) and an enrollment secret
# (var/enroll-secret), starts the server on PORT (default 8080) and simulated
# agents of different equipment types, each with its keys and spool under
# var/agents/<id>.  Logs: var/log/<name>.log.  A server or agent that exits
# is started again after a pause that doubles up to a minute (as a device's
# systemd unit with Restart=on-failure would), logged in var/log/run.log;
# PostgreSQL stays up.  Ctrl-C or SIGTERM stops every process this script
# started, and the private PostgreSQL if it started it, and exits 0.
# Env: BUILD (default build), PORT (8080), PRECURSOR_VAR (default var/: the
# tests run a stack of their own elsewhere).
set -euo pipefail
# --help prints the comment above and starts nothing.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^set /d'; exit 0 ;; esac
[ $# -eq 0 ] || { echo "run.sh: takes no arguments (PORT, DATABASE_URL from the environment; --help)" >&2; exit 2; }

# Ctrl-C goes to the terminal's whole foreground process group: to make as
# well, which then ends with "Interrupt" and status 130 whatever this script
# does.  So on a terminal the script runs itself again as a job of its own
# (set -m) that holds the terminal: Ctrl-C reaches that job only, and make
# sees its exit status.
if [ -t 0 ] && [ -z "${PRECURSOR_RUN_JOB:-}" ]; then
    set -m
    rc=0
    PRECURSOR_RUN_JOB=1 "$0" "$@" || rc=$?
    exit $rc
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
PORT=${PORT:-8080}
SERVER="$BUILD/bin/precursor-server"
AGENT="$BUILD/bin/precursor-agent"
VAR=${PRECURSOR_VAR:-$ROOT/var}
CREDS="$VAR/demo-credentials"
SECRET="$VAR/enroll-secret"
LOG="$VAR/log"
SHOWVAR=${VAR#"$ROOT"/}      # var, or the PRECURSOR_VAR named, in what is printed

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
mkdir -p "$VAR" "$LOG" "$VAR/agents" "$VAR/run"

# One entry per supervised process: its pid (0 while it waits to be started
# again), name, command (quoted for eval), when it was last started, the
# pause before the next start and when that is due.
pids=()
names=()
cmds=()
started_at=()
backoff=()
due=()
started_pg=0
stopping=0

stop_all() {
    [ $stopping -eq 1 ] && return
    stopping=1
    trap - INT TERM HUP EXIT
    say "stopping"
    local i
    # Agents first (they may be mid-upload), then the server.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        [ "${pids[$i]}" -gt 0 ] && kill -TERM "${pids[$i]}" 2>/dev/null || true
    done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        # Give each 10 s to finish, then insist.
        local n=0
        [ "${pids[$i]}" -gt 0 ] || continue
        while kill -0 "${pids[$i]}" 2>/dev/null && [ $n -lt 100 ]; do
            sleep 0.1; n=$((n + 1))
        done
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            say "${names[$i]} did not stop: killing it"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
        wait "${pids[$i]}" 2>/dev/null || true
        rm -f "$VAR/run/${names[$i]}.pid"
    done
    if [ $started_pg -eq 1 ]; then
        env -u DATABASE_URL scripts/pg.sh stop || true   # DATABASE_URL is ours by now
    fi
    say "stopped"
}
# Stopping on request (Ctrl-C, TERM, the terminal closing) is a clean end: status 0.
trap 'stop_all; exit 0' INT TERM HUP
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
    { tail -n 20 "$LOG/migrate.log" >&2; die "migrations failed ($SHOWVAR/log/migrate.log)"; }
# Once per database: months of alert history marked as demo data, so the
# rules and operational metrics pages have something to show (docs/RULES.md).
"$SERVER" demo-history >>"$LOG/demo-history.log" 2>&1 ||
    say "no demo history ($SHOWVAR/log/demo-history.log); the pages fill as the fleet runs"

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

# The ml role reads and builds datasets; labels, rules and classes need an
# operator: a token for scripts that write them.
operator_token() {
    local t
    t=$("$SERVER" token create --name operator --role operator 2>>"$LOG/setup.log" |
        tail -n1 | tr -d '[:space:]') || true
    [ -n "$t" ] || die "could not create the operator token ($SHOWVAR/log/setup.log)"
    echo "$t"
}

# Credentials belong to one database: recreate them when the database changed.
if [ ! -s "$CREDS" ] || ! grep -qxF "database_url=$DBURL" "$CREDS"; then
    say "creating the admin login and the ML team's and operators' API tokens"
    pw=$(rand 24)
    if ! printf '%s\n' "$pw" | "$SERVER" user add \
            --username admin --role admin >>"$LOG/setup.log" 2>&1; then
        tail -n 5 "$LOG/setup.log" >&2
        die "could not create the admin user ($SHOWVAR/log/setup.log); if it exists from an earlier run, use its password or a fresh database"
    fi
    token=$("$SERVER" token create --name ml-team --role ml 2>>"$LOG/setup.log" |
            tail -n1 | tr -d '[:space:]') || true
    [ -n "$token" ] || die "could not create the API token ($SHOWVAR/log/setup.log)"
    optoken=$(operator_token)
    printf 'admin_user=admin\nadmin_password=%s\napi_token=%s\noperator_token=%s\ndatabase_url=%s\n' \
        "$pw" "$token" "$optoken" "$DBURL" | write_private "$CREDS"
elif ! grep -q '^operator_token=' "$CREDS"; then
    # A file from before operator tokens: keep the rest, add one.
    say "adding an operator API token to $SHOWVAR/demo-credentials"
    optoken=$(operator_token)
    { grep -v '^database_url=' "$CREDS"; echo "operator_token=$optoken"; grep '^database_url=' "$CREDS"; } |
        write_private "$CREDS"
fi

# ---- supervised processes ------------------------------------------------
say_log() { echo "$(date -u +%FT%TZ) $*" >>"$LOG/run.log"; say "$*"; }

launch() {   # index: start entry i now
    local i=$1 argv
    # Back into words, then started directly: $! is the program itself, so
    # TERM reaches it and not a subshell around it.
    eval "argv=(${cmds[$i]})"
    "${argv[@]}" >>"$LOG/${names[$i]}.log" 2>&1 &
    pids[$i]=$!
    started_at[$i]=$SECONDS
    echo "${pids[$i]}" >"$VAR/run/${names[$i]}.pid"
}

start() {   # name, command...
    local name=$1 i=${#pids[@]}; shift
    names[$i]=$name
    cmds[$i]=$(printf '%q ' "$@")
    backoff[$i]=1
    due[$i]=0
    launch "$i"
}

# A process that exits is started again after backoff seconds: 1, 2, 4, ...
# up to 60, back to 1 once it has run for a minute.
supervise() {
    local i rc
    for i in "${!pids[@]}"; do
        if [ "${pids[$i]}" -gt 0 ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
            rc=0
            wait "${pids[$i]}" 2>/dev/null || rc=$?
            [ $((SECONDS - started_at[$i])) -ge 60 ] && backoff[$i]=1
            say_log "${names[$i]} exited (status $rc, $SHOWVAR/log/${names[$i]}.log); restarting in ${backoff[$i]} s"
            pids[$i]=0
            due[$i]=$((SECONDS + backoff[$i]))
            backoff[$i]=$((backoff[$i] * 2 > 60 ? 60 : backoff[$i] * 2))
        elif [ "${pids[$i]}" -eq 0 ] && [ "$SECONDS" -ge "${due[$i]}" ]; then
            launch "$i"
            say_log "${names[$i]} restarted (pid ${pids[$i]})"
        fi
    done
}

# ---- server ---------------------------------------------------------------
ui_args=()
for d in labeling-ui/dist labeling-ui; do
    if [ -f "$d/index.html" ]; then ui_args=(--ui-dir "$d"); break; fi
done

URL="http://127.0.0.1:$PORT"
start server "$SERVER" serve --port "$PORT" --enroll-secret-file "$SECRET" "${ui_args[@]}"
for i in $(seq 1 150); do
    curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    kill -0 "${pids[0]}" 2>/dev/null || { tail -n 20 "$LOG/server.log" >&2; die "the server exited ($SHOWVAR/log/server.log)"; }
    [ "$i" -eq 150 ] && die "the server did not answer $URL/healthz in 30 s ($SHOWVAR/log/server.log)"
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
        if [ -z "$tok" ] || ! PRECURSOR_ENROLL_TOKEN="$tok" "$AGENT" enroll --server "$URL" \
                --device-id "$id" --key-dir "$dir/keys" >>"$LOG/enroll.log" 2>&1; then
            say "$id: enrollment with a token failed ($SHOWVAR/log/enroll.log); trying the enrollment secret"
            grep -q '409' "$LOG/enroll.log" &&
                say "$id is known to the database under another key: $SHOWVAR/agents was removed but not the database; 'make stop && rm -rf $SHOWVAR' starts afresh"
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
  credentials:  $SHOWVAR/demo-credentials  (admin login, ML and operator API tokens, database URL)
  fleet:        ${#FLEET[@]} simulated agents ($SHOWVAR/agents/<id>); logs in $SHOWVAR/log/; restarted if they exit
  demo data:    months of demo history (demo-* devices), hidden unless asked:
                "show demo data" in the UI, demo=include in the API
  try:          curl -H "Authorization: Bearer \$(sed -n 's/^api_token=//p' $SHOWVAR/demo-credentials)" $URL/api/v1/snapshots
  stop:         Ctrl-C

EOF

# Until told to stop, keep every process running.
while true; do
    supervise
    sleep 1 &
    wait $! || true
done
