# common.sh - shared helpers for tests/integration/*.sh (sourced, not run).
#
# Every integration test runs real processes against a real PostgreSQL.  It
# gets BUILD, DATABASE_URL and PORT from scripts/test.sh; run alone, it makes
# them itself.  Either way it_env makes a scratch database of its own on the
# server DATABASE_URL names (the private cluster without one) and drops it
# when the script exits, passed, failed or interrupted: a test never meets
# rows an earlier run or another test left, and leaves none (the role needs
# CREATEDB, as for scripts/pg.sh newdb).  Results are lines
# `PASS name` / `FAIL name: why`; the script exits non-zero on any FAIL.
# Processes started with it_spawn are stopped when the script exits.

IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${BUILD:-build/san}
case "$BUILD" in /*) ;; *) BUILD="$IT_ROOT/$BUILD" ;; esac
SERVER_BIN="$BUILD/bin/precursor-server"
AGENT_BIN="$BUILD/bin/precursor-agent"

IT_NAME=$(basename "$0" .sh)
. "$IT_ROOT/scripts/pgpass.sh"
IT_TMP=$(mktemp -d -t "precursor-$IT_NAME.XXXXXX")
IT_FAILS=0
IT_PIDS=()

it_pass() { echo "PASS $IT_NAME: $1"; }
it_fail() { echo "FAIL $IT_NAME: $1${2:+: $2}"; IT_FAILS=$((IT_FAILS + 1)); }
# it_check NAME COMMAND...: PASS when the command succeeds.
it_check() {
    local name=$1; shift
    if "$@"; then it_pass "$name"; else it_fail "$name"; fi
}
it_log() { echo "# $*" >&2; }

it_cleanup() {
    local p
    for p in "${IT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${IT_PIDS[@]}"; do
        local n=0
        while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    IT_PIDS=()
    it_drop_db
    if [ -n "${IT_KEEP:-}" ]; then
        echo "# kept $IT_TMP" >&2
    else
        rm -rf "$IT_TMP"
    fi
}

# Ends the script: exit status says whether anything failed.
it_finish() {
    it_cleanup
    trap - EXIT
    [ "$IT_FAILS" -eq 0 ]
    exit $?
}
trap 'it_cleanup' EXIT
trap 'exit 130' INT TERM

# it_spawn NAME COMMAND...: start in the background, output to $IT_TMP/NAME.log.
it_spawn() {
    local name=$1; shift
    "$@" >"$IT_TMP/$name.log" 2>&1 &
    IT_PIDS+=($!)
}

# it_free_port: a loopback port nobody listens on (the kernel's pick).
it_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The scratch database: made by it_env, dropped by it_cleanup through the
# URL it was made from (a database cannot drop itself).
IT_DB_NAME=
IT_DB_SERVER_URL=

it_drop_db() {
    [ -n "$IT_DB_NAME" ] || return 0
    if [ -n "$IT_DB_SERVER_URL" ]; then
        DATABASE_URL=$IT_DB_SERVER_URL "$IT_ROOT/scripts/pg.sh" dropdb "$IT_DB_NAME" >/dev/null 2>&1 ||
            echo "# could not drop database $IT_DB_NAME" >&2
    else
        env -u DATABASE_URL "$IT_ROOT/scripts/pg.sh" dropdb "$IT_DB_NAME" >/dev/null 2>&1 ||
            echo "# could not drop database $IT_DB_NAME" >&2
    fi
    IT_DB_NAME=
}

# A database of our own (the one given may hold an earlier run's rows,
# unless IT_DB_FRESH says scripts/test.sh just made it) and, unless given, a
# free port.  TEST_DB_TAG and the shell's pid
# keep two runs on one server apart.
it_env() {
    local tag=${TEST_DB_TAG:+_${TEST_DB_TAG//[^a-zA-Z0-9_]/_}} name url
    if [ -z "${DATABASE_URL:-}" ]; then
        "$IT_ROOT/scripts/pg.sh" start >&2 || return 1
    fi
    # scripts/test.sh has just made this script a database of its own and
    # drops it afterwards: use it as it is rather than make a second one.
    # Once: a script this one runs makes its own.
    if [ -n "${IT_DB_FRESH:-}" ] && [ -n "${DATABASE_URL:-}" ]; then
        url=$DATABASE_URL
        name=
        unset IT_DB_FRESH
    else
        name=$(tr 'A-Z' 'a-z' <<<"precursor_it_${IT_NAME//[^a-zA-Z0-9]/_}${tag}")
        name="${name:0:50}_$$"
        IT_DB_SERVER_URL=${DATABASE_URL:-}
        if [ -n "$IT_DB_SERVER_URL" ]; then
            url=$("$IT_ROOT/scripts/pg.sh" newdb "$name") || return 1
        else
            url=$(env -u DATABASE_URL "$IT_ROOT/scripts/pg.sh" newdb "$name") || return 1
        fi
    fi
    IT_DB_NAME=$name
    DATABASE_URL=$url
    if [ -z "${PORT:-}" ]; then
        PORT=$(it_free_port)
    fi
    export DATABASE_URL PORT
    # From here on the password is in $IT_TMP/pgpass, not on command lines.
    pg_hide_password "$IT_TMP"
    BASE="http://127.0.0.1:$PORT"
}

# it_wait_http URL SECONDS: until the URL answers 200.
it_wait_http() {
    local url=$1 secs=$2 i
    for ((i = 0; i < secs * 5; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

# it_json FILE EXPR: evaluate a Python expression on the JSON document `d`.
it_json() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1" "$2"
}

# it_http METHOD URL OUTFILE [curl args...]: prints the status code.
it_http() {
    local m=$1 url=$2 out=$3; shift 3
    curl -s -X "$m" -o "$out" -w '%{http_code}' "$@" "$url" 2>/dev/null || echo 000
}

# it_wait_done URL OUTFILE TRIES PAUSE [curl args...]: GET URL until its
# "status" is done or failed (a model's training, an export job), at most
# TRIES times PAUSE seconds apart; the last answer stays in OUTFILE and its
# status is printed.
it_wait_done() {
    local url=$1 out=$2 tries=$3 pause=$4 st= i; shift 4
    for ((i = 0; i < tries; i++)); do
        it_http GET "$url" "$out" "$@" >/dev/null
        st=$(it_json "$out" 'd["status"]' 2>/dev/null)
        [ "$st" = done ] || [ "$st" = failed ] && break
        sleep "$pause"
    done
    echo "$st"
}

# it_setup BIN...: the environment (it_env) and each BIN built; ends the
# script with a FAIL when either is missing, the way every test starts.
it_setup() {
    local b
    it_env || { it_fail setup "no database"; it_finish; }
    for b in "$@"; do
        [ -x "$b" ] || { it_fail setup "$b not built"; it_finish; }
    done
}

# it_migrate: the migrations applied to the test's database; ends the script
# with a FAIL and the log's last lines when they fail.
it_migrate() {
    "$SERVER_BIN" migrate >"$IT_TMP/migrate.log" 2>&1 ||
        { it_fail migrate "$(tail -n 3 "$IT_TMP/migrate.log")"; it_finish; }
}

# it_ml_setup: the set-up the ML-path tests (datasets, deploy) share: the
# environment, both binaries built, migrations applied, an ml and an operator
# token (ML, OP; curl header arrays AML, AOP), an enrollment secret in
# $IT_TMP/enroll-secret and $IT_TMP/run for the server to run in.  Ends the
# script with a FAIL when any of it is missing.
it_ml_setup() {
    it_setup "$SERVER_BIN" "$AGENT_BIN"
    it_migrate
    ML=$("$SERVER_BIN" token create --name ml --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
    OP=$("$SERVER_BIN" token create --name op --role operator 2>/dev/null | tail -n1 | tr -d '[:space:]')
    [ -n "$ML" ] && [ -n "$OP" ] || { it_fail tokens; it_finish; }
    AML=(-H "Authorization: Bearer $ML" -H "Content-Type: application/json")
    AOP=(-H "Authorization: Bearer $OP" -H "Content-Type: application/json")
    (umask 077; openssl rand -hex 24 >"$IT_TMP/enroll-secret")
    mkdir -p "$IT_TMP/run"
}
