#!/usr/bin/env bash
# pg_restart.sh - PostgreSQL restarted during ingest.  The test makes a
# throwaway cluster of its own (initdb in a temporary folder, a free loopback
# port, a generated password), so restarting it disturbs no other suite.  An
# agent uploads a backlog while the database is restarted FAULT_PG_RESTARTS
# times (3) and once stopped for FAULT_PG_DOWN_S seconds (5).  While it is
# down the server must answer 503 (not crash, not 2xx); afterwards it must
# reconnect by itself, answer on every pool thread at once, and the invariant (tests/fault/check.py) must hold
# with no gaps: a refused upload stays in the agent's spool.
#
# Environment: BUILD (as scripts/test.sh gives it).  DATABASE_URL is ignored.
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/faultlib.sh"
IT_NAME=fault-pg-restart
RESTARTS=${FAULT_PG_RESTARTS:-3}
DOWN_S=${FAULT_PG_DOWN_S:-5}

pgbin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    command -v "$1"
}
# initdb refuses root: as root the cluster belongs to postgres, in a folder
# that user can reach (IT_TMP is private to us).
PG_HOME=$(mktemp -d -t precursor-pgfault.XXXXXX)
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres "$PG_HOME"
chmod 0700 "$PG_HOME"
PG_PORT=$(it_free_port)
PG_PW=$(openssl rand -hex 16)
pg_ctl_() { as_owner "$(pgbin pg_ctl)" -D "$PG_HOME/data" "$@" >>"$IT_TMP/pg_ctl.log" 2>&1; }
pg_cleanup() {
    [ -d "$PG_HOME" ] || return 0
    pg_ctl_ -m immediate -w stop
    rm -rf "$PG_HOME"
}
trap 'pg_cleanup; it_cleanup' EXIT
# it_finish (common.sh) clears the EXIT trap: the cluster goes down first.
it_finish() {
    pg_cleanup
    it_cleanup
    trap - EXIT
    [ "$IT_FAILS" -eq 0 ]
    exit $?
}

as_owner bash -c "umask 077; printf '%s\n' '$PG_PW' >'$PG_HOME/pw'"
if ! as_owner "$(pgbin initdb)" -D "$PG_HOME/data" -U postgres --auth=scram-sha-256 \
        --pwfile="$PG_HOME/pw" -E UTF8 --locale=C.UTF-8 >"$IT_TMP/initdb.log" 2>&1; then
    it_fail initdb "$(tail -n 3 "$IT_TMP/initdb.log")"
    it_finish
fi
as_owner bash -c "cat >>'$PG_HOME/data/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '.'
fsync = off
CONF
pg_ctl_ -l "$PG_HOME/server.log" -w -t 60 start || { it_fail pg-start "see $PG_HOME/server.log"; it_finish; }
export DATABASE_URL="host=127.0.0.1 port=$PG_PORT user=postgres password=$PG_PW dbname=postgres"

fl_server_up

DEV=fault-pg
fl_backlog_start $DEV
sleep 3
fl_faults $DEV "$RESTARTS" 0.5 2.0 pg_ctl_ -m fast -w -t 60 restart
ok=$FL_FAULTS_OK
[ "$ok" -eq "$RESTARTS" ] && it_pass "PostgreSQL restarted $RESTARTS times during ingest" ||
    it_fail "PostgreSQL restarted during ingest" "$ok of $RESTARTS restarts worked"

# Down for a while: the server answers 503 and keeps running.
fl_spooled $DEV >>"$IT_TMP/seen"
pg_ctl_ -m immediate -w stop
sleep 1
code=$(curl -s -o /dev/null -D "$IT_TMP/down.hdr" -w '%{http_code}' "$BASE/healthz")
[ "$code" = 503 ] && it_pass "healthz 503 while the database is down" ||
    it_fail "healthz 503 while the database is down" "got $code"
grep -qi '^Retry-After: 5' "$IT_TMP/down.hdr" && it_pass "the 503 says when to come back (Retry-After: 5)" ||
    it_fail "Retry-After on the database's 503" "$(cat "$IT_TMP/down.hdr")"
sleep "$DOWN_S"
kill -0 "$SERVER_PID" 2>/dev/null && it_pass "server survives ${DOWN_S}s without its database" ||
    it_fail "server survives without its database" "$(tail -n 3 "$IT_TMP/server-1.log")"
fl_spooled $DEV >>"$IT_TMP/seen"
pg_ctl_ -l "$PG_HOME/server.log" -w -t 60 start || it_fail pg-restart "see pg log"
it_wait_http "$BASE/healthz" 30 && it_pass "server reconnects by itself" ||
    it_fail "server reconnects by itself" "healthz not 200 within 30 s"
# Each pool thread held a connection the restart ended: the first request
# on every thread must still be answered, not refused with 503.
codes=$(for ((k = 0; k < 16; k++)); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" \
        "$BASE/api/v1/snapshots?limit=1" &
done; wait)
bad=$(printf '%s\n' "$codes" | grep -vc '^200$')
[ "$bad" -eq 0 ] && it_pass "every pool thread answers after the restart (16 requests)" ||
    it_fail "every pool thread answers after the restart" "$(printf '%s ' $codes)"
fl_agent_kill9
fl_verdict "PostgreSQL restarted and stopped during ingest" $DEV --seen "$IT_TMP/seen" --no-gaps
grep -q -E 'AddressSanitizer|runtime error' "$IT_TMP"/server-*.log &&
    it_fail "server clean under sanitizers" "$(grep -m1 -E 'AddressSanitizer|runtime error' "$IT_TMP"/server-*.log)"
it_finish
