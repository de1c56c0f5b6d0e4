#!/usr/bin/env bash
# timestamps.sh - one timestamp form in every API answer.  A server on a
# populated database (the demo history, a real agent's snapshots and
# heartbeats, labels edited, a rule, users and a session, tokens used and
# revoked, a dataset version, an export job, a trained and deployed model,
# the alarm budget changed, an alert acknowledged and disposed) answers
# every GET route of schema/openapi.json (and the answers of the writes made
# here); every string in them that reads as a date with a time of day must
# be RFC 3339 in UTC with Z (lib/api_times.py).  The server's PostgreSQL
# session runs in a time zone far from UTC (PGTZ), so a time formatted in
# the session's zone, or left in PostgreSQL's own text form, shows.  The
# time inputs keep taking what they took: the dataset filter's from/to with
# Z or an offset, the operational metrics' from/to.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_ml_setup
python3 "$IT_ROOT/tests/integration/lib/api_times.py" --self-test || IT_FAILS=$((IT_FAILS + 1))
ADM=$("$SERVER_BIN" token create --name adm --role admin 2>/dev/null | tail -n1 | tr -d '[:space:]')
SPARE=$("$SERVER_BIN" token create --name spare --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
[ -n "$ADM" ] && [ -n "$SPARE" ] || { it_fail "admin token"; it_finish; }
AADM=(-H "Authorization: Bearer $ADM" -H "Content-Type: application/json")
"$SERVER_BIN" demo-history >"$IT_TMP/demo.log" 2>&1 &&
    it_pass "demo history: $(tail -n1 "$IT_TMP/demo.log" | cut -c1-80)" ||
    { it_fail "demo history" "$(tail -n 3 "$IT_TMP/demo.log")"; it_finish; }
(umask 077; openssl rand 32 >"$IT_TMP/model.key")

# Kathmandu is UTC+05:45: no time of the server's session looks like UTC.
(cd "$IT_TMP/run" && PGTZ=Asia/Kathmandu exec "$SERVER_BIN" serve --port "$PORT" \
    --enroll-secret-file "$IT_TMP/enroll-secret" --model-key-file "$IT_TMP/model.key" \
    --migrations-dir "$IT_ROOT/migrations" --schema-dir "$IT_ROOT/schema") >>"$IT_TMP/server.log" 2>&1 &
IT_PIDS+=($!)
it_wait_http "$BASE/healthz" 30 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

# ---- a real agent: snapshots, a heartbeat, a device key for the signed GET ---------
DEV=ts-dev-1
mkdir -p "$IT_TMP/agent/keys" "$IT_TMP/agent/spool"
it_spawn agent "$AGENT_BIN" run --device-id "$DEV" --server "$BASE" \
    --source sim --sim-equipment bearing --sim-seed 5 --sim-speed 50 --sim-fault-every 2 \
    --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 1 --config-poll-s 1 \
    --key-dir "$IT_TMP/agent/keys" --spool "$IT_TMP/agent/spool" \
    --enroll-secret-file "$IT_TMP/enroll-secret"
AGENT_PID=${IT_PIDS[-1]}
n=0
for ((i = 0; i < 120; i++)); do
    it_http GET "$BASE/api/v1/snapshots?limit=500" "$IT_TMP/snaps.json" "${AML[@]}" >/dev/null
    n=$(it_json "$IT_TMP/snaps.json" "sum(1 for s in d['items'] if s['device_id'] == '$DEV')" 2>/dev/null || echo 0)
    [ "$n" -ge 3 ] && break
    sleep 1
done
[ "$n" -ge 3 ] && it_pass "agent $DEV uploaded $n snapshots" ||
    { it_fail "agent snapshots" "$(tail -n 3 "$IT_TMP/agent.log" | tr '\n' ' ')"; it_finish; }
SNAP=$(it_json "$IT_TMP/snaps.json" "[s['id'] for s in d['items'] if s['device_id'] == '$DEV'][0]")
DEMO_SNAP=$(it_json "$IT_TMP/snaps.json" "[s['id'] for s in d['items'] if s['device_id'] != '$DEV'][0]" 2>/dev/null)
[ -n "$DEMO_SNAP" ] || { curl -s "${AML[@]}" "$BASE/api/v1/snapshots?limit=1&demo=only" >"$IT_TMP/ds1.json"
                         DEMO_SNAP=$(it_json "$IT_TMP/ds1.json" 'd["items"][0]["id"]'); }

# ---- labels: created, edited (updated_at, history) ------------------------------
code=$(it_http POST "$BASE/api/v1/snapshots/$SNAP/labels" "$IT_TMP/ans-label-create.json" "${AOP[@]}" \
    -d '{"start_s":0,"end_s":0.5,"channels":[0],"class":"imbalance"}')
LABEL=$(it_json "$IT_TMP/ans-label-create.json" 'd["id"]' 2>/dev/null)
code2=$(it_http PATCH "$BASE/api/v1/labels/$LABEL" "$IT_TMP/ans-label-patch.json" "${AOP[@]}" \
    -d '{"notes":"edited by the timestamps test"}')
[ "$code" = 201 ] && [ "$code2" = 200 ] && it_pass "label $LABEL created and edited" ||
    it_fail "label create/edit" "$code $code2 $(cat "$IT_TMP/ans-label-create.json" "$IT_TMP/ans-label-patch.json")"

# An audit row kept before answers had one form holds the label's times in
# PostgreSQL's forms (json_build_object's offset, the text form): the history
# answers them in the one form, the same instants.
psql "$DATABASE_URL" -qAt -v ON_ERROR_STOP=1 >"$IT_TMP/psql.log" 2>&1 <<SQL
INSERT INTO label_audit (label_id, snapshot_id, action, actor, row)
SELECT label_id, snapshot_id, 'update', 'before-one-form', row || jsonb_build_object(
    'created_at', '2026-01-02T08:49:05.123456+05:45', 'updated_at', '2026-01-02 03:04:06.5+00')
FROM label_audit WHERE label_id = $LABEL ORDER BY id LIMIT 1;
SQL
it_http GET "$BASE/api/v1/labels/$LABEL/history" "$IT_TMP/history.json" "${AML[@]}" >/dev/null
got=$(it_json "$IT_TMP/history.json" '[(e["row"]["created_at"], e["row"]["updated_at"]) for e in d["items"] if e["actor"] == "before-one-form"]' 2>/dev/null)
[ "$got" = '[["2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:06.500000Z"]]' ] &&
    it_pass "label history: an audit row kept in PostgreSQL's forms answers in the one form" ||
    it_fail "label history of an old audit row" "$got $(cat "$IT_TMP/psql.log") $(head -c 600 "$IT_TMP/history.json")"

# ---- a rule, users, a session, a revoked token, an enrollment token --------------
code=$(it_http POST "$BASE/api/v1/rules" "$IT_TMP/ans-rule.json" "${AOP[@]}" \
    -d '{"name":"ts rms","expr":"rms(ch(\"accel_x\")) > 0 => imbalance"}')
RULE=$(it_json "$IT_TMP/ans-rule.json" 'd["id"]' 2>/dev/null)
[ "$code" = 201 ] && it_pass "rule $RULE created" || it_fail "rule create" "$code $(cat "$IT_TMP/ans-rule.json")"

PW=timestamps-test-pw-4821
for u in ts-operator ts-gone; do
    code=$(it_http POST "$BASE/api/v1/users" "$IT_TMP/ans-user-$u.json" "${AADM[@]}" \
        -d "{\"username\":\"$u\",\"password\":\"$PW\",\"role\":\"operator\"}")
    [ "$code" = 201 ] || it_fail "user $u" "$code $(cat "$IT_TMP/ans-user-$u.json")"
done
GONE=$(it_json "$IT_TMP/ans-user-ts-gone.json" 'd["id"]' 2>/dev/null)
it_http POST "$BASE/api/v1/users/$GONE/disable" "$IT_TMP/ans-user-disable.json" "${AADM[@]}" >/dev/null
code=$(it_http POST "$BASE/api/v1/session" "$IT_TMP/ans-session.json" -D "$IT_TMP/session.head" \
    -H 'Content-Type: application/json' -d "{\"username\":\"ts-operator\",\"password\":\"$PW\"}")
SESSION_COOKIE=$(sed -n 's/^[Ss]et-[Cc]ookie: *\([^;]*\).*/\1/p' "$IT_TMP/session.head" | head -n1)
[ "$code" = 200 ] && [ -n "$SESSION_COOKIE" ] && it_pass "users made, one disabled; a session" ||
    it_fail "session login" "$code $(cat "$IT_TMP/ans-session.json")"

curl -s -o /dev/null -H "Authorization: Bearer $SPARE" "$BASE/api/v1/models"     # last_used_at
it_http GET "$BASE/api/v1/tokens" "$IT_TMP/tokens.json" "${AADM[@]}" >/dev/null
SPARE_ID=$(it_json "$IT_TMP/tokens.json" '[t["id"] for t in d["items"] if t["name"] == "spare"][0]' 2>/dev/null)
code=$(it_http DELETE "$BASE/api/v1/tokens/$SPARE_ID" "$IT_TMP/ans-token-revoke.json" "${AADM[@]}")
[ "$code" = 200 ] && it_pass "token $SPARE_ID revoked" || it_fail "token revoke" "$code $(cat "$IT_TMP/ans-token-revoke.json")"
code=$(it_http POST "$BASE/api/v1/enrollment-tokens" "$IT_TMP/ans-enroll.json" "${AADM[@]}" \
    -d '{"site":"ts-site","expires_in":"2h"}')
[ "$code" = 201 ] || it_fail "enrollment token" "$code $(cat "$IT_TMP/ans-enroll.json")"

# ---- an alert acknowledged and disposed ----------------------------------------
code=$(it_http POST "$BASE/api/v1/alerts/$SNAP/ack" "$IT_TMP/ans-ack.json" "${AOP[@]}" -d '{}')
code2=$(it_http POST "$BASE/api/v1/alerts/$SNAP/disposition" "$IT_TMP/ans-disposition.json" "${AOP[@]}" \
    -d '{"disposition":"no_fault_found","outcome":"checked by the timestamps test"}')
[ "$code" = 200 ] && [ "$code2" = 200 ] && it_pass "alert $SNAP acknowledged and disposed" ||
    it_fail "alert ack/disposition" "$code $code2 $(cat "$IT_TMP/ans-ack.json" "$IT_TMP/ans-disposition.json")"
code=$(it_http PATCH "$BASE/api/v1/alarm-budget" "$IT_TMP/ans-budget.json" "${AADM[@]}" -d '{"per_operator_hour":7}')
[ "$code" = 200 ] || it_fail "alarm budget" "$code $(cat "$IT_TMP/ans-budget.json")"

# ---- dataset, version, export job, model, deployment -----------------------------
# The filter's time bounds: one with Z, one with an offset, as they were taken before.
DEF='{"name":"ts bearings","filter":{"sources":["human"],"min_confidence":0.5,"equipment_types":["rotating"],
 "from":"2000-01-01T00:00:00Z","to":"2999-01-01T02:00:00+02:00"},
 "window":{"length_s":0.1,"stride_s":0.05,"edge":"majority"},
 "split":{"by":"day","fractions":[0.2,0.2,0.6],"seed":3}}'
code=$(it_http POST "$BASE/api/v1/datasets" "$IT_TMP/ans-dataset.json" "${AML[@]}" -d "$DEF")
DS=$(it_json "$IT_TMP/ans-dataset.json" 'd["id"]' 2>/dev/null)
code2=$(it_http POST "$BASE/api/v1/datasets/$DS/versions" "$IT_TMP/ans-version.json" "${AML[@]}")
[ "$code" = 201 ] && [ "$code2" = 201 ] && it_pass "dataset $DS version 1 (filter from Z, to with an offset)" ||
    { it_fail "dataset version" "$code $code2 $(cat "$IT_TMP/ans-dataset.json" "$IT_TMP/ans-version.json")"; it_finish; }
code=$(it_http POST "$BASE/api/v1/datasets/$DS/versions/1/export-jobs" "$IT_TMP/ans-job.json" "${AML[@]}" \
    -d '{"format":"jsonl"}')
JOB=$(it_json "$IT_TMP/ans-job.json" 'd["id"]' 2>/dev/null)
st=$(it_wait_done "$BASE/api/v1/export-jobs/$JOB" "$IT_TMP/job.json" 300 0.2 "${AML[@]}")
[ "$st" = done ] && it_pass "export job $JOB done" || it_fail "export job" "$code $(cat "$IT_TMP/job.json")"

code=$(it_http POST "$BASE/api/v1/models" "$IT_TMP/ans-model.json" "${AML[@]}" -d "{\"dataset_id\":$DS,\"version\":1,\"kind\":\"anomaly\"}")
MODEL=$(it_json "$IT_TMP/ans-model.json" 'd["id"]' 2>/dev/null)
st=$(it_wait_done "$BASE/api/v1/models/$MODEL" "$IT_TMP/model.json" 600 0.2 "${AML[@]}")
[ "$st" = done ] && it_pass "model $MODEL trained" || { it_fail "model trained" "$code $(head -c 400 "$IT_TMP/model.json")"; it_finish; }
code=$(it_http POST "$BASE/api/v1/models/$MODEL/deploy" "$IT_TMP/ans-deploy.json" "${AML[@]}" -d "{\"devices\":[\"$DEV\"]}")
[ "$code" = 201 ] && it_pass "model $MODEL deployed to $DEV" || it_fail "deploy" "$code $(cat "$IT_TMP/ans-deploy.json")"
for ((i = 0; i < 150; i++)); do
    it_http GET "$BASE/api/v1/devices/$DEV" "$IT_TMP/dev.json" "${AML[@]}" >/dev/null
    [ "$(it_json "$IT_TMP/dev.json" 'd["model"]["running"]' 2>/dev/null)" = "$MODEL" ] && break; sleep 0.2
done
kill -TERM "$AGENT_PID" 2>/dev/null
for ((i = 0; i < 100; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done

# The device-signed config GET, signed here with the agent's key (libsodium's
# 64-byte secret key: the seed, then the public key) as RFC 8410 DER for openssl.
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex("302e020100300506032b657004220420") + open(sys.argv[1],"rb").read()[:32])' \
    "$IT_TMP/agent/keys/device.key" >"$IT_TMP/device.der"
TS=$(date +%s)
printf 'precursor-get-v1\n/api/v1/devices/%s/config\n%s' "$DEV" "$TS" >"$IT_TMP/get.msg"
SIG=$(openssl pkeyutl -sign -inkey "$IT_TMP/device.der" -keyform DER -rawin -in "$IT_TMP/get.msg" | base64 -w0)
code=$(it_http GET "$BASE/api/v1/devices/$DEV/config" "$IT_TMP/ans-config.json" \
    -H "X-Precursor-Device: $DEV" -H "X-Precursor-Timestamp: $TS" -H "X-Precursor-Signature: $SIG")
[ "$code" = 200 ] && it_pass "signed config GET" || it_fail "signed config GET" "$code $(cat "$IT_TMP/ans-config.json")"

# ---- the walk: every GET route, and the answers of the writes above -------------
TZQ="from=2026-01-01&to=2026-12-31T23:59:59Z"
{
    G=$'get\t'; F=$'file\t'; S=$'skip\t'; T=$'\t'
    echo "$G/healthz${T}/healthz$T-${T}0"
    echo "$G/api/v1/openapi.json${T}/api/v1/openapi.json$T-${T}0"
    echo "$G/api/v1/snapshots${T}/api/v1/snapshots?demo=include&limit=200${T}ml${T}1"
    echo "$G/api/v1/snapshots/{id}${T}/api/v1/snapshots/$SNAP${T}ml${T}1"
    echo "$G/api/v1/snapshots/{id}${T}/api/v1/snapshots/$DEMO_SNAP${T}ml${T}1"
    echo "$S/api/v1/snapshots/{id}/raw${T}the signed envelope's bytes"
    echo "$G/api/v1/devices${T}/api/v1/devices?limit=200${T}ml${T}2"
    echo "$G/api/v1/devices/{id}${T}/api/v1/devices/$DEV${T}ml${T}2"
    echo "$S/install.sh${T}a shell script"
    echo "$S/downloads/{file}${T}agent binaries"
    echo "$S/metrics${T}Prometheus text"
    echo "$G/api/v1/session${T}/api/v1/session${T}session${T}0"
    echo "$G/api/v1/classes${T}/api/v1/classes${T}ml${T}0"
    echo "$G/api/v1/snapshots/{id}/labels${T}/api/v1/snapshots/$SNAP/labels${T}ml${T}2"
    echo "$G/api/v1/snapshots/{id}/labels${T}/api/v1/snapshots/$DEMO_SNAP/labels${T}ml${T}0"
    echo "$G/api/v1/labels/{id}/history${T}/api/v1/labels/$LABEL/history${T}ml${T}7"
    echo "$G/api/v1/snapshots/{id}/samples${T}/api/v1/snapshots/$SNAP/samples?px=64${T}ml${T}0"
    echo "$G/api/v1/snapshots/{id}/context${T}/api/v1/snapshots/$SNAP/context${T}session${T}1"
    echo "$G/api/v1/tokens${T}/api/v1/tokens${T}admin${T}3"
    echo "$G/api/v1/users${T}/api/v1/users${T}admin${T}2"
    echo "$G/api/v1/queue${T}/api/v1/queue?demo=include&limit=100${T}session${T}1"
    echo "$G/api/v1/queue${T}/api/v1/queue?demo=include&unlabeled=1&from=0&to=99999999999${T}ml${T}1"
    echo "$S/${T}the labeling UI's HTML"
    echo "$S/ui/{file}${T}the labeling UI's files"
    echo "$G/api/v1/bearings${T}/api/v1/bearings?q=62${T}ml${T}0"
    echo "$G/api/v1/taxonomy${T}/api/v1/taxonomy${T}ml${T}0"
    echo "$G/api/v1/taxonomy/types/{name}/classes${T}/api/v1/taxonomy/types/fan/classes${T}ml${T}0"
    echo "$G/api/v1/snapshots/{id}/features${T}/api/v1/snapshots/$SNAP/features${T}ml${T}0"
    echo "$G/api/v1/snapshots/{id}/spectrum${T}/api/v1/snapshots/$SNAP/spectrum?bins=64${T}ml${T}0"
    echo "$G/api/v1/snapshots/{id}/weak-label${T}/api/v1/snapshots/$SNAP/weak-label${T}ml${T}0"
    echo "$G/api/v1/rules${T}/api/v1/rules${T}ml${T}2"
    echo "$G/api/v1/rules/{id}${T}/api/v1/rules/$RULE${T}ml${T}2"
    echo "$G/api/v1/alerts${T}/api/v1/alerts?limit=200${T}ml${T}3"
    echo "$G/api/v1/alerts${T}/api/v1/alerts?ids=$SNAP${T}ml${T}2"
    echo "$G/api/v1/metrics/operational${T}/api/v1/metrics/operational?demo=include${T}ml${T}2"
    echo "$G/api/v1/metrics/operational${T}/api/v1/metrics/operational?demo=include&$TZQ${T}ml${T}2"
    echo "$G/api/v1/datasets${T}/api/v1/datasets${T}ml${T}1"
    echo "$G/api/v1/datasets/{id}${T}/api/v1/datasets/$DS${T}ml${T}2"
    echo "$G/api/v1/datasets/{id}/versions/{v}${T}/api/v1/datasets/$DS/versions/1${T}ml${T}1"
    echo "$G/api/v1/datasets/{id}/versions/{v}/export${T}/api/v1/datasets/$DS/versions/1/export?format=jsonl${T}ml${T}0"
    echo "$G/api/v1/datasets/{id}/versions/{v}/manifest${T}/api/v1/datasets/$DS/versions/1/manifest${T}ml${T}1"
    echo "$G/api/v1/export-jobs${T}/api/v1/export-jobs${T}ml${T}1"
    echo "$G/api/v1/export-jobs/{id}${T}/api/v1/export-jobs/$JOB${T}ml${T}1"
    echo "$S/api/v1/export-jobs/{id}/file${T}the export's bytes"
    echo "$G/api/v1/models${T}/api/v1/models${T}ml${T}2"
    echo "$G/api/v1/models/signing-key${T}/api/v1/models/signing-key${T}ml${T}0"
    echo "$G/api/v1/models/{id}${T}/api/v1/models/$MODEL${T}ml${T}2"
    echo "$S/api/v1/models/{id}/header${T}a C header"
    echo "$S/api/v1/models/{id}/blob${T}the model blob"
    echo "$G/api/v1/models/{id}/devices${T}/api/v1/models/$MODEL/devices${T}ml${T}0"
    echo "$G/api/v1/models/{id}/deployments${T}/api/v1/models/$MODEL/deployments${T}ml${T}1"
    echo "$G/api/v1/alarm-budget${T}/api/v1/alarm-budget${T}ml${T}1"
    echo "$G/api/v1/rollbacks${T}/api/v1/rollbacks${T}ml${T}0"
    echo "$S/api/v1/devices/{id}/model${T}the model blob (device-signed)"
    echo "$F/api/v1/devices/{id}/config${T}$IT_TMP/ans-config.json$T-${T}0"
    for a in "$IT_TMP"/ans-*.json; do
        echo "$F(answer to a write)$T$a$T-${T}0"
    done
} >"$IT_TMP/plan.tsv"
# The dataset definition is the client's document, kept and echoed as written.
walk=$(ECHOED="2999-01-01T02:00:00+02:00" TOKEN_ML=$ML TOKEN_ADMIN=$ADM SESSION_COOKIE=$SESSION_COOKIE \
    python3 "$IT_ROOT/tests/integration/lib/api_times.py" "$IT_ROOT/schema/openapi.json" "$BASE" "$IT_TMP/plan.tsv")
rc=$?
echo "$walk"
nf=$(grep -c '^FAIL' <<<"$walk")
IT_FAILS=$((IT_FAILS + nf))
[ "$rc" -ne 0 ] && [ "$nf" -eq 0 ] && it_fail "the walk" "exited $rc without a FAIL line"
it_finish
