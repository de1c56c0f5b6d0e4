#!/usr/bin/env bash
# reconnect_storm.sh - a fleet coming back online at once must not knock the
# server over.
#
# STORM_DEVICES devices (default 1,000) enroll and upload signed snapshots at
# the same moment through precursor-loadgen, one connection each, as a fleet
# does after a site-wide network outage.  Backpressure may answer 429/503 with
# Retry-After (the loadgen honours it); what must hold: the server stays up
# and healthy, every device got enrolled and stored at least one snapshot,
# nothing is stored twice, and the server answers others quickly afterwards.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
N=${STORM_DEVICES:-1000}
SECS=${STORM_SECONDS:-20}
LOADGEN="$BUILD/bin/precursor-loadgen"

it_setup "$SERVER_BIN" "$LOADGEN"
it_migrate
pw=$(openssl rand -hex 16)
printf '%s\n' "$pw" | "$SERVER_BIN" user add --username storm-admin --role admin >/dev/null 2>&1 ||
    { it_fail setup "user add"; it_finish; }
(umask 077; printf 'admin_user=storm-admin\nadmin_password=%s\n' "$pw" >"$IT_TMP/creds")
TOKEN=$("$SERVER_BIN" token create --name storm --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')

# A fleet is many sockets: make room for them in this shell.
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true
# Every simulated device shares the loopback address here, so the per-address
# connection limit (a defence against one client taking every slot) is off.
it_spawn server "$SERVER_BIN" serve --port "$PORT" --max-conns-per-ip 0
SERVER_PID=${IT_PIDS[-1]}
it_wait_http "$BASE/healthz" 30 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

timeout -k 10 $((SECS + 240)) "$LOADGEN" --url "$BASE" --devices "$N" --seconds "$SECS" \
    --snapshot-bytes 4096 --credentials "$IT_TMP/creds" >"$IT_TMP/loadgen.out" 2>"$IT_TMP/loadgen.err"
rc=$?
line=$(grep -E '^snapshots_per_s=' "$IT_TMP/loadgen.out" | tail -n1)
it_log "loadgen ($N devices, ${SECS}s): ${line:-none} (exit $rc)"
[ -n "$line" ] && it_pass "loadgen finished: $line" ||
    it_fail "loadgen finished" "exit $rc: $(tail -n 5 "$IT_TMP/loadgen.err" | tr '\n' ' ')"

kill -0 "$SERVER_PID" 2>/dev/null && it_pass "server still running" || it_fail "server still running"
code=$(it_http GET "$BASE/healthz" "$IT_TMP/h.json")
[ "$code" = 200 ] && it_pass "healthz 200 after the storm" || it_fail "healthz after the storm" "$code"

q() { psql "$DATABASE_URL" -XtAc "$1" 2>/dev/null; }
devs=$(q "SELECT count(*) FROM devices WHERE id LIKE 'lg-%' OR id LIKE 'loadgen%'")
stored=$(q "SELECT count(DISTINCT device_id) FROM snapshots")
dups=$(q "SELECT count(*) FROM (SELECT device_id, seq FROM snapshots GROUP BY 1, 2 HAVING count(*) > 1) d")
it_log "devices enrolled: $devs, devices with a stored snapshot: $stored, duplicates: $dups"
[ "${stored:-0}" -ge "$N" ] && it_pass "every device stored a snapshot ($stored of $N)" ||
    it_fail "every device stored a snapshot" "$stored of $N"
[ "${dups:-1}" = 0 ] && it_pass "nothing stored twice" || it_fail "nothing stored twice" "$dups"

# Others are served promptly once the storm is over.
t=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/snapshots?limit=10")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 2.0 else 1)" "$t" &&
    it_pass "API answers in ${t}s after the storm" || it_fail "API answers promptly after the storm" "${t}s"
grep -q "ERROR: AddressSanitizer\|runtime error:" "$IT_TMP/server.log" &&
    it_fail "sanitizers quiet" "$(grep -m1 -A5 'ERROR: AddressSanitizer\|runtime error:' "$IT_TMP/server.log")" ||
    it_pass "sanitizers quiet"
it_finish
