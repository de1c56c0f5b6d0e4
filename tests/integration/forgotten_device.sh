#!/usr/bin/env bash
# forgotten_device.sh - a server that forgets a device (its database rebuilt,
# or restored from a backup older than the device's registration) under the
# same URL answers it 403 `unknown_device`.  A real agent against a real
# server and PostgreSQL:
#
# - with --enroll-secret-file it registers again by itself, with the same id
#   and key, and every snapshot it made reaches the server exactly once: the
#   ones stored before the device was forgotten plus the ones stored after
#   are 1..last_seq, none twice, none dead-lettered;
# - without one it says once (not per upload) what to run, keeps its
#   snapshots in the spool, and they go up once the device is enrolled again
#   with the command it named;
# - an agent that only polls its config (nothing to upload: no trigger before
#   a warm-up longer than the run; heartbeats a day apart) learns it from a
#   config poll, registers again there within a poll or two, and its polls
#   succeed again; forgotten a second time, again; the heartbeat it sends as
#   it stops counts both.  Without a secret such an agent says once what to
#   run (one line for its polls and its uploader together);
# - a device the server knows but has not approved, or has revoked
#   (`device_not_active`), is an operator's decision: no registration.
#
# The device is forgotten the way a rebuilt database forgets it: its rows
# (devices, device_keys, its snapshots, their seqs, its heartbeat) deleted
# with psql from the test's own database, while the agent runs.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_setup "$SERVER_BIN" "$AGENT_BIN"
it_migrate
(umask 077; openssl rand -hex 24 >"$IT_TMP/enroll-secret")
ADMIN=$("$SERVER_BIN" token create --name fg-admin --role admin 2>/dev/null | tail -n1 | tr -d '[:space:]')
[ -n "$ADMIN" ] || { it_fail setup "token create"; it_finish; }
it_spawn server "$SERVER_BIN" serve --port "$PORT" --enroll-secret-file "$IT_TMP/enroll-secret"
it_wait_http "$BASE/healthz" 30 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

q() { psql "$DATABASE_URL" -XtAc "$1" 2>/dev/null; }

# forget ID: the device's rows deleted as one transaction; prints the seqs
# of its snapshots that were stored, one a line.  The device row is locked
# first, so an upload committing meanwhile waits and then finds no device
# (403 unknown_device) rather than slipping a row in between.
forget() {
    psql "$DATABASE_URL" -XqtA -v ON_ERROR_STOP=1 -v dev="$1" >"$IT_TMP/forget-$1.out" \
        2>"$IT_TMP/forget-$1.err" <<'SQL'
BEGIN;
SELECT 'locked' FROM devices WHERE id = :'dev' FOR UPDATE;
SELECT 'seq ' || seq FROM snapshots WHERE device_id = :'dev' ORDER BY seq;
DELETE FROM heartbeats WHERE device_id = :'dev';
DELETE FROM snapshots WHERE device_id = :'dev';
DELETE FROM snapshot_seqs WHERE device_id = :'dev';
DELETE FROM device_keys WHERE device_id = :'dev';
DELETE FROM devices WHERE id = :'dev';
COMMIT;
SQL
    local rc=$?
    grep -q '^locked$' "$IT_TMP/forget-$1.out" && [ $rc = 0 ] || return 1
    sed -n 's/^seq //p' "$IT_TMP/forget-$1.out"
}

# stored ID: how many snapshots of the device the server holds.
stored() { q "SELECT count(*) FROM snapshots WHERE device_id = '$1'"; }

# wait_stored ID N SECS: until the server holds at least N of its snapshots.
wait_stored() {
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        [ "$(stored "$1")" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# wait_exit PID SECS: until the process has ended.
wait_exit() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# exactly_once ID BEFORE_FILE: the seqs stored now plus those in BEFORE_FILE
# (stored before the device was forgotten) are 1..last_seq of the device's
# latest heartbeat, none in both, and nothing was dropped or dead-lettered.
exactly_once() {
    q "SELECT seq FROM snapshots WHERE device_id = '$1' ORDER BY seq" >"$IT_TMP/after-$1"
    q "SELECT body FROM heartbeats WHERE device_id = '$1'" >"$IT_TMP/hb-$1.json"
    python3 - "$2" "$IT_TMP/after-$1" "$IT_TMP/hb-$1.json" <<'EOF'
import json, sys
before = [int(x) for x in open(sys.argv[1]).read().split()]
after = [int(x) for x in open(sys.argv[2]).read().split()]
hb = json.load(open(sys.argv[3]))
last = hb["last_seq"]
both = set(before) & set(after)
assert not both, "stored twice: %s" % sorted(both)
assert len(after) == len(set(after)), "duplicates after"
assert before and after, (len(before), len(after))
missing = set(range(1, last + 1)) - set(before) - set(after)
assert not missing, "never stored: %s of 1..%d" % (sorted(missing)[:20], last)
extra = (set(before) | set(after)) - set(range(1, last + 1))
assert not extra, "beyond last_seq %d: %s" % (last, sorted(extra))
assert hb["dropped"] == 0 and hb["dead_lettered"] == 0 and hb["spool_files"] == 0, hb
print("%d before, %d after, last_seq %d, reregistrations %s" %
      (len(before), len(after), last, hb.get("reregistrations")))
EOF
}

# ---- with an enrollment secret: registers again by itself ---------------------------
K1="$IT_TMP/fg-1/keys"; S1="$IT_TMP/fg-1/spool"
mkdir -p "$K1" "$S1"
# 400 s of samples at 20x: 20 s, a fault every 4 s of them; then the spool drains.
it_spawn agent1 "$AGENT_BIN" run --device-id fg-1 --server "$BASE" \
    --source sim --sim-seed 3 --sim-speed 20 --sim-fault-every 4 --duration 400 \
    --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 1 \
    --key-dir "$K1" --spool "$S1" --enroll-secret-file "$IT_TMP/enroll-secret"
A1=${IT_PIDS[-1]}
wait_stored fg-1 5 60 && it_pass "fg-1 registered and uploads ($(stored fg-1) stored)" ||
    { it_fail "fg-1 uploads" "$(tail -n 5 "$IT_TMP/agent1.log" | tr '\n' ' ')"; it_finish; }
forget fg-1 >"$IT_TMP/before-fg-1" && [ "$(q "SELECT count(*) FROM devices WHERE id = 'fg-1'")" = 0 ] &&
    it_pass "fg-1 forgotten by the database ($(wc -l <"$IT_TMP/before-fg-1") snapshots were stored)" ||
    { it_fail "forget fg-1" "$(cat "$IT_TMP/forget-fg-1.err")"; it_finish; }
n_before=$(wc -l <"$IT_TMP/before-fg-1")

# It keeps making snapshots and registers again: the device is back, with its key.
wait_stored fg-1 3 60 && grep -q "server does not know device fg-1: registering again" "$IT_TMP/agent1.log" &&
    grep -q "registered fg-1 again with $BASE" "$IT_TMP/agent1.log" &&
    it_pass "fg-1 registers again by itself and uploads again" ||
    it_fail "fg-1 registers again" "$(grep -E 'upload:|agent:' "$IT_TMP/agent1.log" | tail -n 5 | tr '\n' ' ')"
pk=$(q "SELECT encode(public_key, 'base64') FROM devices WHERE id = 'fg-1' AND status = 'active'")
[ -n "$pk" ] && [ "$pk" = "$(base64 -w0 <"$K1/device.pub")" ] &&
    it_pass "fg-1 active again with the same key" || it_fail "fg-1 same key" "'$pk'"
wait_exit "$A1" 90 || it_fail "fg-1's run ends with its input"
wait "$A1" 2>/dev/null
rc=$?
[ $rc = 0 ] && it_pass "fg-1's run exits 0" || it_fail "fg-1's run exits 0" "rc=$rc $(tail -n 3 "$IT_TMP/agent1.log" | tr '\n' ' ')"
out=$(exactly_once fg-1 "$IT_TMP/before-fg-1" 2>&1) &&
    it_pass "every fg-1 snapshot reached the server exactly once ($out)" ||
    it_fail "fg-1 snapshots exactly once" "$out"
tries=$(grep -c "server does not know device fg-1: registering again" "$IT_TMP/agent1.log")
[ "$(it_json "$IT_TMP/hb-fg-1.json" 'd["reregistrations"]')" -ge 1 ] 2>/dev/null && [ "$tries" -le 3 ] &&
    it_pass "the heartbeat counts it (tries: $tries)" ||
    it_fail "reregistrations in the heartbeat" "tries $tries, $(cat "$IT_TMP/hb-fg-1.json")"
it_http GET "$BASE/api/v1/devices/fg-1" "$IT_TMP/dev-fg-1.json" -H "Authorization: Bearer $ADMIN" >/dev/null
[ "$(it_json "$IT_TMP/dev-fg-1.json" 'd["reregistrations"]')" -ge 1 ] 2>/dev/null &&
    it_pass "GET /api/v1/devices/fg-1 shows it: reregistrations $(it_json "$IT_TMP/dev-fg-1.json" 'd["reregistrations"]')" ||
    it_fail "reregistrations in the device's fields" "$(head -c 400 "$IT_TMP/dev-fg-1.json")"
grep -q "^server=$BASE$" "$K1/registered" && grep -q "^device-id=fg-1$" "$K1/registered" &&
    grep -q "^public-key=$(base64 -w0 <"$K1/device.pub")$" "$K1/registered" &&
    it_pass "marker names the server, id and key" || it_fail "marker" "$(cat "$K1/registered")"

# wait_active ID SECS: until the server knows the device again, active.
wait_active() {
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        [ "$(q "SELECT status FROM devices WHERE id = '$1'")" = active ] && return 0
        sleep 0.2
    done
    return 1
}

tok() {
    "$SERVER_BIN" enroll create "$@" 2>/dev/null | tail -n1 | tr -d '[:space:]'
}

# ---- only the config poll notices -----------------------------------------------------
# Real-time samples that never trigger (the warm-up outlasts the run) and a
# config poll every second.  With heartbeats a day apart (one at start),
# nothing but the poll asks the server anything after the first seconds.
quiet_agent() {   # NAME ID KEYS SPOOL HEARTBEAT_S [--enroll-secret-file F]
    local name=$1 id=$2 keys=$3 spool=$4 hb=$5
    shift 5
    it_spawn "$name" "$AGENT_BIN" run --device-id "$id" --server "$BASE" \
        --source sim --sim-seed 7 --sim-speed 1 --sim-fault-every 1e9 --duration 600 \
        --warmup-s 100000000 --heartbeat-s "$hb" --config-poll-s 1 \
        --key-dir "$keys" --spool "$spool" "$@"
}
K4="$IT_TMP/fg-4/keys"; S4="$IT_TMP/fg-4/spool"
mkdir -p "$K4" "$S4"
quiet_agent agent4 fg-4 "$K4" "$S4" 86400 --enroll-secret-file "$IT_TMP/enroll-secret"
A4=${IT_PIDS[-1]}
# The first poll pins the server's model-signing key: the poll works.
for ((i = 0; i < 150; i++)); do
    [ -s "$K4/model-signing.pub" ] && [ "$(q "SELECT count(*) FROM heartbeats WHERE device_id = 'fg-4'")" = 1 ] && break
    sleep 0.2
done
[ -s "$K4/model-signing.pub" ] && wait_active fg-4 1 &&
    it_pass "fg-4 (polls only) registered, first poll answered" ||
    { it_fail "fg-4 registers and polls" "$(tail -n 5 "$IT_TMP/agent4.log" | tr '\n' ' ')"; it_finish; }
for round in 1 2; do
    forget fg-4 >/dev/null || { it_fail "forget fg-4 ($round)" "$(cat "$IT_TMP/forget-fg-4.err")"; it_finish; }
    t0=$(date +%s.%N)
    # A few poll intervals; the back-off after a registration that worked
    # starts over at its 1 s base.
    if wait_active fg-4 8; then
        it_pass "fg-4 forgotten ($round): registered again by its config poll in $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s"
    else
        it_fail "fg-4 forgotten ($round): registered again" "$(grep -E 'config poll|upload' "$IT_TMP/agent4.log" | tail -n 5 | tr '\n' ' ')"
    fi
    pk=$(q "SELECT encode(public_key, 'base64') FROM devices WHERE id = 'fg-4' AND status = 'active'")
    [ -n "$pk" ] && [ "$pk" = "$(base64 -w0 <"$K4/device.pub")" ] ||
        it_fail "fg-4 active again with the same key ($round)" "'$pk'"
    sleep 3     # three more polls, which must all be answered 200
done
kill -TERM "$A4" 2>/dev/null
wait_exit "$A4" 15 || it_fail "fg-4 stops on SIGTERM"
# Every config answer that is not 200 is a line (agent: config poll answered
# N / agent: config poll PATH: why); the retry after a registration that
# worked is not, when it is answered 200.
regs=$(grep -c "^agent: config poll: server does not know device fg-4: registering again$" "$IT_TMP/agent4.log")
oks=$(grep -c "^agent: config poll: registered fg-4 again with $BASE; polling again$" "$IT_TMP/agent4.log")
bad=$(grep -c "^agent: config poll " "$IT_TMP/agent4.log")
byup=$(grep -c "^upload: .*fg-4\|^upload: snapshot" "$IT_TMP/agent4.log")
[ "$regs" = 2 ] && [ "$oks" = 2 ] && [ "$bad" = 0 ] && [ "$byup" = 0 ] && [ "$(stored fg-4)" = 0 ] &&
    it_pass "fg-4: each time the config poll registered it again, its retry and later polls answered 200, no upload involved" ||
    it_fail "fg-4: config poll registers, then polls succeed" "regs $regs, ok $oks, failed polls $bad, uploader lines $byup, stored $(stored fg-4): $(grep -E 'config poll|upload' "$IT_TMP/agent4.log" | head -n 6 | tr '\n' ' ')"
q "SELECT body FROM heartbeats WHERE device_id = 'fg-4'" >"$IT_TMP/hb-fg-4.json"
[ "$(it_json "$IT_TMP/hb-fg-4.json" 'd["reregistrations"]')" = 2 ] 2>/dev/null &&
    [ "$(it_json "$IT_TMP/hb-fg-4.json" 'd["stopping"]')" = True ] 2>/dev/null &&
    it_pass "fg-4's last heartbeat counts both: reregistrations 2" ||
    it_fail "fg-4's last heartbeat counts them" "$(head -c 400 "$IT_TMP/hb-fg-4.json")"

# Such an agent without a secret, heartbeats every second: its polls and its
# heartbeats both see the answer, and one line between them says what to run.
K5="$IT_TMP/fg-5/keys"; S5="$IT_TMP/fg-5/spool"
mkdir -p "$K5" "$S5"
(umask 077; tok --pre-approved >"$IT_TMP/tok5")
"$AGENT_BIN" enroll --server "$BASE" --device-id fg-5 --key-dir "$K5" --token-file "$IT_TMP/tok5" \
    >"$IT_TMP/enroll5.log" 2>&1 || { it_fail "fg-5 enrolls" "$(cat "$IT_TMP/enroll5.log")"; it_finish; }
quiet_agent agent5 fg-5 "$K5" "$S5" 1
A5=${IT_PIDS[-1]}
for ((i = 0; i < 150; i++)); do
    [ -s "$K5/model-signing.pub" ] && break
    sleep 0.2
done
forget fg-5 >/dev/null || { it_fail "forget fg-5" "$(cat "$IT_TMP/forget-fg-5.err")"; it_finish; }
sleep 5
kill -TERM "$A5" 2>/dev/null
wait_exit "$A5" 15 || it_fail "fg-5 stops on SIGTERM"
hints=$(grep -c "does not know device fg-5 and the agent has no --enroll-secret-file" "$IT_TMP/agent5.log")
polls=$(grep -c "^agent: config poll answered 403: .*unknown_device" "$IT_TMP/agent5.log")
hbs=$(grep -c "^upload: heartbeat answered 403: .*unknown_device" "$IT_TMP/agent5.log")
hint=$(grep -m1 "does not know device fg-5" "$IT_TMP/agent5.log")
[ "$hints" = 1 ] && [ "$polls" -ge 3 ] && [ "$hbs" -ge 3 ] &&
    grep -qE -- "^(agent: config poll|upload): server $BASE does not know device fg-5 and the agent has no --enroll-secret-file" <<<"$hint" &&
    grep -qF -- "precursor-agent enroll --server $BASE --device-id fg-5 --key-dir $K5 --token-file PATH" <<<"$hint" &&
    ! grep -q "registering again" "$IT_TMP/agent5.log" &&
    it_pass "fg-5 (no secret): one line says what to run for $polls polls and $hbs heartbeats refused" ||
    it_fail "fg-5: one line says what to run" "$hints hints, $polls polls, $hbs heartbeats: $hint"

# ---- without a secret: says what to run, once; keeps the spool -------------------------
K2="$IT_TMP/fg-2/keys"; S2="$IT_TMP/fg-2/spool"
mkdir -p "$K2" "$S2"
(umask 077; tok --pre-approved >"$IT_TMP/tok2")
"$AGENT_BIN" enroll --server "$BASE" --device-id fg-2 --key-dir "$K2" --token-file "$IT_TMP/tok2" \
    >"$IT_TMP/enroll2.log" 2>&1 || { it_fail "fg-2 enrolls" "$(cat "$IT_TMP/enroll2.log")"; it_finish; }
# And a device that is only pending: the server knows it, an admin decides.
K3="$IT_TMP/fg-3/keys"; S3="$IT_TMP/fg-3/spool"
mkdir -p "$K3" "$S3"
(umask 077; tok >"$IT_TMP/tok3")
"$AGENT_BIN" enroll --server "$BASE" --device-id fg-3 --key-dir "$K3" --token-file "$IT_TMP/tok3" \
    >"$IT_TMP/enroll3.log" 2>&1 || { it_fail "fg-3 enrolls" "$(cat "$IT_TMP/enroll3.log")"; it_finish; }

it_spawn agent2 "$AGENT_BIN" run --device-id fg-2 --server "$BASE" \
    --source sim --sim-seed 4 --sim-speed 20 --sim-fault-every 4 --duration 200 \
    --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 1 --key-dir "$K2" --spool "$S2"
A2=${IT_PIDS[-1]}
it_spawn agent3 "$AGENT_BIN" run --device-id fg-3 --server "$BASE" \
    --source sim --sim-seed 5 --sim-speed 20 --sim-fault-every 4 --duration 200 \
    --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 1 --key-dir "$K3" --spool "$S3" \
    --enroll-secret-file "$IT_TMP/enroll-secret"
A3=${IT_PIDS[-1]}
wait_stored fg-2 3 60 || { it_fail "fg-2 uploads" "$(tail -n 5 "$IT_TMP/agent2.log" | tr '\n' ' ')"; it_finish; }
forget fg-2 >"$IT_TMP/before-fg-2" || { it_fail "forget fg-2" "$(cat "$IT_TMP/forget-fg-2.err")"; it_finish; }
# Half-way, an admin revokes the pending one.
sleep 3
code=$(it_http POST "$BASE/api/v1/devices/fg-3/revoke" "$IT_TMP/revoke.json" \
    -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" -d '{}')
[ "$code" = 200 ] || it_fail "revoke fg-3" "$code $(cat "$IT_TMP/revoke.json")"
wait_exit "$A2" 60 || it_fail "fg-2's run ends with its input"
wait_exit "$A3" 60 || it_fail "fg-3's run ends with its input"

hints=$(grep -c "server $BASE does not know device fg-2 and the agent has no --enroll-secret-file" "$IT_TMP/agent2.log")
hint=$(grep -m1 "does not know device fg-2" "$IT_TMP/agent2.log")
uploads=$(grep -c "snapshot [0-9]* answered 403.*unknown_device" "$IT_TMP/agent2.log")
[ "$hints" = 1 ] && [ "$uploads" -ge 2 ] &&
    grep -qF -- "precursor-agent enroll --server $BASE --device-id fg-2 --key-dir $K2 --token-file PATH" <<<"$hint" &&
    it_pass "no secret: one line says what to run ($uploads uploads refused)" ||
    it_fail "no secret: one line says what to run" "$hints hints, $uploads uploads: $hint"
grep -q "registering again" "$IT_TMP/agent2.log" && it_fail "no secret: no registration" ||
    it_pass "no secret: no registration tried"
waiting=$(find "$S2" -maxdepth 1 -name '*.snap' | wc -l)
[ "$waiting" -ge 1 ] && [ "$(find "$S2" -path '*dead*' -name '*.snap' | wc -l)" = 0 ] &&
    [ "$(stored fg-2)" = 0 ] &&
    it_pass "no secret: $waiting snapshots wait in the spool, none dead-lettered" ||
    it_fail "no secret: the spool kept" "$waiting waiting, $(find "$S2" | head)"

# What the line says to run, then the agent again: what waited goes up.
(umask 077; tok --pre-approved >"$IT_TMP/tok2b")
"$AGENT_BIN" enroll --server "$BASE" --device-id fg-2 --key-dir "$K2" --token-file "$IT_TMP/tok2b" \
    >"$IT_TMP/enroll2b.log" 2>&1 || it_fail "fg-2 enrolls again" "$(cat "$IT_TMP/enroll2b.log")"
timeout 60 "$AGENT_BIN" run --device-id fg-2 --server "$BASE" \
    --source sim --sim-seed 6 --sim-speed 20 --sim-fault-every 4 --duration 20 \
    --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 1 --key-dir "$K2" --spool "$S2" \
    >"$IT_TMP/agent2b.log" 2>&1
out=$(exactly_once fg-2 "$IT_TMP/before-fg-2" 2>&1) &&
    it_pass "fg-2 enrolled again: every snapshot reached the server exactly once ($out)" ||
    it_fail "fg-2 snapshots exactly once" "$out $(tail -n 3 "$IT_TMP/agent2b.log" | tr '\n' ' ')"

# Pending, then revoked: refused all along, never registered again.
refused=$(grep -c "snapshot [0-9]* answered 403.*device_not_active" "$IT_TMP/agent3.log")
[ "$refused" -ge 2 ] && ! grep -q "registering again\|registered fg-3" "$IT_TMP/agent3.log" &&
    [ "$(q "SELECT status FROM devices WHERE id = 'fg-3'")" = revoked ] && [ "$(stored fg-3)" = 0 ] &&
    [ "$(find "$S3" -maxdepth 1 -name '*.snap' | wc -l)" -ge 1 ] &&
    it_pass "pending, then revoked: $refused uploads refused, no registration, snapshots kept" ||
    it_fail "pending/revoked: no registration" "$refused refused; $(grep -E 'regist' "$IT_TMP/agent3.log" | head -3 | tr '\n' ' ') status $(q "SELECT status FROM devices WHERE id = 'fg-3'")"

for l in agent1 agent2 agent2b agent3 agent4 agent5 server; do
    if grep -q "ERROR: AddressSanitizer\|runtime error:" "$IT_TMP/$l.log"; then
        it_fail "sanitizers quiet ($l)" "$(grep -m1 -A5 'ERROR: AddressSanitizer\|runtime error:' "$IT_TMP/$l.log")"
    fi
done
it_pass "sanitizers checked"
it_finish
