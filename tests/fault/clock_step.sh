#!/usr/bin/env bash
# clock_step.sh - the agent's wall clock stepped backwards and forwards while
# it triggers and uploads, as an NTP step or an RTC reset would do, and across
# a restart.  The clock is moved with libfaketime (Debian package faketime)
# reading its offset from a file, so the step happens inside a running
# process; only CLOCK_REALTIME moves (DONT_FAKE_MONOTONIC), as with a real
# step.  Afterwards: the invariant with no gaps and every seen file stored.
#
# Environment: BUILD, DATABASE_URL (as scripts/test.sh gives them).
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/faultlib.sh"
IT_NAME=fault-clock-step

LIBFT=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
    [ -f "$f" ] && { LIBFT=$f; break; }
done
[ -n "$LIBFT" ] || { it_fail setup "libfaketime not installed (Debian package faketime)"; it_finish; }

it_env >/dev/null || { it_fail setup "no database"; it_finish; }
fl_server_up

OFFSET=$IT_TMP/clock-offset
echo "+0" >"$OFFSET"
# ASan must come first among preloaded libraries unless told it need not.
FL_AGENT_WRAP=(env LD_PRELOAD="$LIBFT" FAKETIME_TIMESTAMP_FILE="$OFFSET"
    FAKETIME_CACHE_DURATION=0 FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")

# The preload works: a child sees the offset.
seen_year=$(env LD_PRELOAD="$LIBFT" FAKETIME_TIMESTAMP_FILE="$OFFSET" FAKETIME_NO_CACHE=1 \
    bash -c 'echo "-3650d" >"$FAKETIME_TIMESTAMP_FILE"; date -u +%Y')
echo "+0" >"$OFFSET"
[ "$seen_year" -lt "$(date -u +%Y)" ] && it_pass "libfaketime steps the clock (saw $seen_year)" ||
    it_fail "libfaketime steps the clock" "child saw year $seen_year"

DEV=fault-clock
: >"$IT_TMP/seen"
fl_agent_start $DEV "$BASE" --sim-fault-every 0.3
for step in -1d +365d -3650d +0 -2h +30d; do
    sleep 2
    echo "$step" >"$OFFSET"
    fl_spooled $DEV >>"$IT_TMP/seen"
done
sleep 2
# The highest seq the device has made: stored, or still in its spool.
max_seq() {
    local st f m=0
    st=$($CHECK "$BASE" "$TOKEN" "$DEV" --state 2>/dev/null) &&
        m=$(sed -E 's/.*last=([0-9]+) .*/\1/' <<<"$st")
    f=$(fl_spooled $DEV | sort | tail -n 1)
    [ -n "$f" ] && [ $((10#${f%.snap})) -gt "$m" ] && m=$((10#${f%.snap}))
    echo "$m"
}
# Restart under a clock a day behind the one it stopped with, and keep it
# there until the restarted agent has cut a snapshot (a loaded machine may
# take far longer than the few seconds an idle one needs to start and warm up).
echo "-1d" >"$OFFSET"
fl_spooled $DEV >>"$IT_TMP/seen"
fl_agent_kill9
before=$(max_seq)
fl_agent_start $DEV "$BASE" --sim-fault-every 0.3
for ((i = 0; i < 120; i++)); do
    sleep 1
    [ "$(max_seq)" -gt "$before" ] && [ "$i" -ge 2 ] && break
done
echo "+1d" >"$OFFSET"
sleep 2
fl_spooled $DEV >>"$IT_TMP/seen"
fl_agent_kill9
if grep -q -E 'AddressSanitizer|runtime error' "$IT_TMP"/agent-$DEV-*.log; then
    it_fail "agent under a stepped clock" "sanitizer report in the agent log"
fi
echo "+0" >"$OFFSET"
FL_AGENT_WRAP=()
# The agent really ran on the stepped clock: snapshots cut after the restart
# a day behind carry trigger times about a day in the past.
old=$(python3 - "$BASE" "$TOKEN" "$DEV" <<'PY'
import datetime, json, sys, urllib.request
base, token, dev = sys.argv[1:]
req = urllib.request.Request(base + "/api/v1/snapshots?limit=1000",
                             headers={"Authorization": "Bearer " + token})
items = [x for x in json.load(urllib.request.urlopen(req, timeout=30))["items"]
         if x["device_id"] == dev and x.get("trigger_time")]
now = datetime.datetime.now(datetime.timezone.utc)
print(sum(1 for x in items if (now - datetime.datetime.fromisoformat(
    x["trigger_time"].replace("Z", "+00:00"))).total_seconds() > 12 * 3600))
PY
)
[ "${old:-0}" -gt 0 ] && it_pass "agent cut snapshots on the stepped clock ($old a day behind)" ||
    it_fail "agent cut snapshots on the stepped clock" "no trigger time a day behind"
fl_verdict "clock stepped back and forward on the agent" $DEV --seen "$IT_TMP/seen" --no-gaps
it_finish
