#!/usr/bin/env bash
# server_kill.sh - the server killed with SIGKILL during ingest, FAULT_SERVER_KILLS
# times (10): an agent uploads a backlog slowly while the server dies at random
# points (mid-request, mid-transaction) and is restarted at once.  Afterwards:
# the invariant (tests/fault/check.py) with no gaps allowed, since nothing was
# dropped on purpose, and every spool file seen during the test is stored;
# then every stored snapshot gets its features (the worker's catch-up after
# a restart: what a killed server held in memory for it is read back).
#
# Environment: BUILD, DATABASE_URL (as scripts/test.sh gives them).
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/faultlib.sh"
IT_NAME=fault-server-kill
KILLS=${FAULT_SERVER_KILLS:-10}

it_env >/dev/null || { it_fail setup "no database"; it_finish; }
fl_server_up

DEV=fault-srvkill
fl_backlog_start $DEV
sleep 2
kill_and_restart() { fl_server_kill9; fl_server_start; }
fl_faults $DEV "$KILLS" 0.3 1.5 kill_and_restart
restarts=$FL_FAULTS_OK
fl_spooled $DEV >>"$IT_TMP/seen"
before=$(fl_stored $DEV)
fl_agent_kill9
[ "$restarts" -eq "$KILLS" ] && it_pass "server restarted after each of $KILLS SIGKILLs" ||
    it_fail "server restarted after each SIGKILL" "$restarts of $KILLS"
[ "${before:-0}" -gt 0 ] && it_pass "ingest went on between kills ($before stored)" ||
    it_fail "ingest went on between kills" "nothing stored"
fl_verdict "server SIGKILL x$KILLS during ingest" $DEV --seen "$IT_TMP/seen" --no-gaps
# Every stored snapshot gets its features, also the ones whose envelope a
# killed server held in memory for its features worker: the restarted
# server's worker reads those back from the database.
pending=-1
for ((i = 0; i < 120; i++)); do
    pending=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM snapshots s WHERE s.device_id = '$DEV'
        AND NOT EXISTS (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)" 2>/dev/null)
    [ "$pending" = 0 ] && break
    sleep 0.5
done
done_n=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM snapshots s JOIN feature_jobs j
    ON j.snapshot_id = s.id WHERE s.device_id = '$DEV' AND j.error IS NULL" 2>/dev/null)
[ "$pending" = 0 ] && [ "${done_n:-0}" -gt 0 ] &&
    it_pass "features computed for every stored snapshot after the kills ($done_n)" ||
    it_fail "features computed for every stored snapshot after the kills" \
        "$pending without features, ${done_n:-?} done"
it_finish
