# common.sh - shared helpers for tests/integration/*.sh (sourced, not run).
#
# Every integration test runs real processes against a real PostgreSQL.  It
# gets BUILD, DATABASE_URL (a database of its own) and PORT from
# scripts/test.sh; run alone, it makes them itself.  Results are lines
# `PASS name` / `FAIL name: why`; the script exits non-zero on any FAIL.
# Processes started with it_spawn are stopped when the script exits.

IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${BUILD:-build/san}
case "$BUILD" in /*) ;; *) BUILD="$IT_ROOT/$BUILD" ;; esac
SERVER_BIN="$BUILD/bin/precursor-server"
AGENT_BIN="$BUILD/bin/precursor-agent"

IT_NAME=$(basename "$0" .sh)
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

# When run alone: a database of our own and a free port.
it_env() {
    if [ -z "${DATABASE_URL:-}" ]; then
        "$IT_ROOT/scripts/pg.sh" start >&2 || return 1
        DATABASE_URL=$("$IT_ROOT/scripts/pg.sh" newdb "precursor_it_${IT_NAME//[^a-z0-9]/_}") || return 1
    fi
    if [ -z "${PORT:-}" ]; then
        PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    fi
    export DATABASE_URL PORT
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
