#!/usr/bin/env bash
# run.sh - agent-side fault tests with real processes: the agent killed with
# SIGKILL at random points while it spools, spool files truncated and
# corrupted as a power cut would leave them, the server down for a while, the
# spool's disk cap reached.  After each, tests/fault/check.py asserts through
# the REST API: the device's seqs are contiguous from 1 except for gaps the
# agent reported, nothing is stored twice, every fully spooled file arrived.
#
# Environment: BUILD, DATABASE_URL, PORT (as scripts/test.sh gives them), or
# SERVER_URL + API_TOKEN + ENROLL_SECRET_FILE to use a running server (the
# server-down test is then skipped).  FAULT_KILLS (50), FAULT_DOWN_S (30).
# Prints `PASS name` / `FAIL name: why`; exits non-zero on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# The agent helpers (start, kill, drain, verdict) are shared with the
# server-side fault tests.
. "$HERE/faultlib.sh"
IT_NAME=fault
KILLS=${FAULT_KILLS:-50}
DOWN_S=${FAULT_DOWN_S:-30}
OWN_SERVER=1

[ -x "$AGENT_BIN" ] || { it_fail setup "$AGENT_BIN not built"; it_finish; }
if [ -n "${SERVER_URL:-}" ] && [ -n "${API_TOKEN:-}" ] && [ -n "${ENROLL_SECRET_FILE:-}" ]; then
    OWN_SERVER=0
    BASE=${SERVER_URL%/}
    TOKEN=$API_TOKEN
    SECRET=$ENROLL_SECRET_FILE
else
    it_env || { it_fail setup "no database"; it_finish; }
    [ -x "$SERVER_BIN" ] || { it_fail setup "$SERVER_BIN not built"; it_finish; }
    "$SERVER_BIN" migrate --database-url "$DATABASE_URL" >"$IT_TMP/migrate.log" 2>&1 ||
        { it_fail migrate "$(tail -n 3 "$IT_TMP/migrate.log")"; it_finish; }
    TOKEN=$("$SERVER_BIN" token create --name fault --role ml 2>"$IT_TMP/token.log" | tail -n1 | tr -d '[:space:]')
    [ -n "$TOKEN" ] || { it_fail token "$(tail -n 3 "$IT_TMP/token.log")"; it_finish; }
    SECRET=$IT_TMP/enroll-secret
    (umask 077; openssl rand -hex 24 >"$SECRET")
fi

SERVER_PID=
server_start() {
    it_spawn "server-$1" "$SERVER_BIN" serve --port "$PORT" --database-url "$DATABASE_URL" \
        --enroll-secret-file "$SECRET"
    SERVER_PID=${IT_PIDS[-1]}
    it_wait_http "$BASE/healthz" 30
}
server_stop() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
}
if [ $OWN_SERVER -eq 1 ]; then
    server_start 0 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server-0.log")"; it_finish; }
fi

# A port where nothing listens: the agent spools and cannot upload.
DEAD_URL="http://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# ---- kill -9 at random points while spooling and uploading --------------------------------
DEV=fault-kill
: >"$IT_TMP/seen-kill"
fl_agent_start $DEV "$BASE" --sim-fault-every 0.3 --upload-max-bps 20000
for ((k = 0; k < KILLS; k++)); do
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.05, 0.8), 3))')"
    fl_spooled $DEV >>"$IT_TMP/seen-kill"     # renamed, so fully spooled: must arrive
    fl_agent_kill9
    fl_agent_start $DEV "$BASE" --sim-fault-every 0.3 --upload-max-bps 20000
done
fl_agent_kill9
n=$(sort -u "$IT_TMP/seen-kill" | wc -l)
it_log "kill: $KILLS kills, $n distinct spool files seen"
fl_verdict "kill -9 x$KILLS while spooling" $DEV --seen "$IT_TMP/seen-kill" --no-gaps

# ---- torn and rotten spool files (no server while they pile up) ----------------------------
DEV=fault-corrupt
fl_agent_start $DEV "$DEAD_URL" --sim-fault-every 0.3
for ((i = 0; i < 40; i++)); do [ "$(fl_spooled $DEV | wc -l)" -ge 6 ] && break; sleep 0.5; done
fl_agent_kill9
mapfile -t files < <(fl_spooled $DEV)
if [ "${#files[@]}" -lt 4 ]; then
    it_fail "corrupt spool files" "only ${#files[@]} files spooled without a server"
else
    S=$IT_TMP/$DEV/spool
    fl_spooled $DEV >"$IT_TMP/seen-corrupt"
    truncate -s 30 "$S/${files[1]}"                                  # torn inside the header
    sz=$(stat -c %s "$S/${files[2]}"); truncate -s $((sz / 2)) "$S/${files[2]}"   # torn envelope
    printf '\xff' | dd of="$S/${files[3]}" bs=1 seek=60 conv=notrunc status=none  # bit rot
    printf 'partial' >"$S/${files[0]}.tmp"                            # unfinished write
    fl_verdict "torn and corrupt spool files quarantined and reported" $DEV \
        --seen "$IT_TMP/seen-corrupt" --expect-kind quarantined
    q=$(ls "$S/quarantine" | wc -l)
    [ "$q" -eq 3 ] && [ ! -e "$S/${files[0]}.tmp" ] && it_pass "3 files in quarantine/, temp file removed" ||
        it_fail "3 files in quarantine/, temp file removed" "$q in quarantine"
fi

# ---- the server down for a while ----------------------------------------------------------------
if [ $OWN_SERVER -eq 1 ]; then
    DEV=fault-down
    fl_agent_start $DEV "$BASE" --sim-fault-every 0.3 --upload-max-bps 20000
    sleep 3
    server_stop
    sleep "$DOWN_S"
    fl_spooled $DEV >"$IT_TMP/seen-down"
    n=$(wc -l <"$IT_TMP/seen-down")
    server_start 1 || it_fail "server restarts" "$(tail -n 5 "$IT_TMP/server-1.log")"
    fl_agent_kill9
    [ "$n" -gt 0 ] && it_pass "agent spooled $n snapshots while the server was down ${DOWN_S}s" ||
        it_fail "agent spooled while the server was down" "no spool files"
    fl_verdict "server down ${DOWN_S}s, then drained" $DEV --seen "$IT_TMP/seen-down" --no-gaps
fi

# ---- the disk cap -------------------------------------------------------------------------------
DEV=fault-cap
fl_agent_start $DEV "$DEAD_URL" --sim-fault-every 0.2 --spool-cap-mb 0.03
sleep 8
fl_agent_kill9
snaps=$(for f in $(fl_spooled $DEV); do stat -c %s "$IT_TMP/$DEV/spool/$f"; done | awk '{s+=$1} END {print s+0}')
[ "$snaps" -le 31457 ] && it_pass "spool within its cap ($snaps bytes of snapshots)" ||
    it_fail "spool within its cap" "$snaps bytes > 31457"
fl_spooled $DEV >"$IT_TMP/seen-cap"
fl_verdict "cap reached: drops counted and reported" $DEV --seen "$IT_TMP/seen-cap" --expect-kind dropped

# ---- server killed, PostgreSQL restarted, agent clock stepped (scripts of their own) ---------
if [ $OWN_SERVER -eq 1 ]; then
    for s in server_kill pg_restart clock_step; do
        "$HERE/$s.sh" || IT_FAILS=$((IT_FAILS + 1))
    done
fi

it_finish
