#!/usr/bin/env bash
# deploy.sh - model deployment with real parts: simulated agents upload
# snapshots, an operator labels them, an ml token trains an anomaly model
# through the datasets/models API and deploys it to one device; that agent
# picks it up on its next config poll (every second here), verifies it with
# the model-signing key it pinned on first contact, and the fleet view shows
# it running.  Then the server restarts with another signing key and a model
# it signs is deployed: the agent refuses it, keeps the previous model and
# reports the refusal in its heartbeat.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_ml_setup
(umask 077; openssl rand 32 >"$IT_TMP/model-a.key"; openssl rand 32 >"$IT_TMP/model-b.key")

SERVER_PID=
start_server() {   # $1: model key file
    (cd "$IT_TMP/run" && exec "$SERVER_BIN" serve --port "$PORT" --enroll-secret-file "$IT_TMP/enroll-secret" \
        --model-key-file "$1" --migrations-dir "$IT_ROOT/migrations" \
        --schema-dir "$IT_ROOT/schema") >>"$IT_TMP/server.log" 2>&1 &
    SERVER_PID=$!
    IT_PIDS+=($SERVER_PID)
    it_wait_http "$BASE/healthz" 30
}
start_server "$IT_TMP/model-a.key" || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

# ---- three agents of one equipment type; dep-dev-1 stays for the deployment ----
for d in 1 2 3; do
    mkdir -p "$IT_TMP/a$d/keys" "$IT_TMP/a$d/spool"
    it_spawn "agent$d" "$AGENT_BIN" run --device-id "dep-dev-$d" --server "$BASE" \
        --source sim --sim-equipment bearing --sim-seed "$d" --sim-speed 50 --sim-fault-every 2 \
        --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 1 --config-poll-s 1 \
        --key-dir "$IT_TMP/a$d/keys" --spool "$IT_TMP/a$d/spool" \
        --enroll-secret-file "$IT_TMP/enroll-secret"
done
AGENT1_PID=${IT_PIDS[1]}
for ((i = 0; i < 120; i++)); do
    it_http GET "$BASE/api/v1/snapshots?limit=1000" "$IT_TMP/list.json" "${AML[@]}" >/dev/null
    ok=$(python3 - "$IT_TMP/list.json" <<'PY' 2>/dev/null
import collections, json, sys
c = collections.Counter(it["device_id"] for it in json.load(open(sys.argv[1]))["items"])
print(int(len(c) == 3 and min(c.values()) >= 4))
PY
)
    [ "$ok" = 1 ] && break
    sleep 1
done
kill -TERM "${IT_PIDS[2]}" "${IT_PIDS[3]}" 2>/dev/null
[ "${ok:-0}" = 1 ] && it_pass "snapshots from 3 agents" ||
    { it_fail "snapshots from 3 agents" "$(tail -n 3 "$IT_TMP/agent1.log" | tr '\n' ' ')"; it_finish; }
[ -s "$IT_TMP/a1/keys/model-signing.pub" ] && it_pass "agent pinned the model-signing key on first contact" ||
    it_fail "agent pinned the model-signing key" "$(grep -i model "$IT_TMP/agent1.log" | tail -n 3)"

# ---- labels, dataset, version, model ---------------------------------------------
it_http GET "$BASE/api/v1/snapshots?limit=1000" "$IT_TMP/list.json" "${AML[@]}" >/dev/null
while read -r id cls; do
    it_http POST "$BASE/api/v1/snapshots/$id/labels" "$IT_TMP/l.json" "${AOP[@]}" \
        -d "{\"start_s\":0,\"end_s\":1.0,\"channels\":[0],\"class\":\"$cls\"}" >/dev/null
done < <(python3 - "$IT_TMP/list.json" <<'PY'
import collections, json, sys
seen = collections.Counter()
for it in sorted(json.load(open(sys.argv[1]))["items"], key=lambda x: x["id"])[:60]:
    seen[it["device_id"]] += 1
    print(it["id"], "imbalance" if seen[it["device_id"]] % 2 else "normal")
PY
)
DEF='{"name":"deploy bearings","filter":{"sources":["human"],"min_confidence":0.5},
 "window":{"length_s":0.25,"stride_s":0.25,"edge":"majority"},
 "split":{"by":"device","fractions":[0.2,0.2,0.6],"seed":3}}'
it_http POST "$BASE/api/v1/datasets" "$IT_TMP/ds.json" "${AML[@]}" -d "$DEF" >/dev/null
DS=$(it_json "$IT_TMP/ds.json" 'd["id"]' 2>/dev/null)
code=$(it_http POST "$BASE/api/v1/datasets/$DS/versions" "$IT_TMP/v.json" "${AML[@]}")
[ "$code" = 201 ] || { it_fail "dataset version" "$code $(cat "$IT_TMP/v.json")"; it_finish; }

train() {   # prints the model id once trained
    local code mid st
    code=$(it_http POST "$BASE/api/v1/models" "$IT_TMP/m.json" "${AML[@]}" -d "{\"dataset_id\":$DS,\"version\":1,\"kind\":\"anomaly\"}")
    mid=$(it_json "$IT_TMP/m.json" 'd["id"]' 2>/dev/null)
    st=$(it_wait_done "$BASE/api/v1/models/$mid" "$IT_TMP/ms.json" 150 0.2 "${AML[@]}")
    [ "$code" = 202 ] && [ "$st" = done ] && echo "$mid"
}
M1=$(train)
[ -n "$M1" ] && it_pass "anomaly model $M1 trained" || { it_fail "model trained" "$(cat "$IT_TMP/ms.json")"; it_finish; }

# ---- deploy to dep-dev-1; the fleet view shows it running -----------------------------
code=$(it_http POST "$BASE/api/v1/models/$M1/deploy" "$IT_TMP/dep.json" "${AOP[@]}" -d '{"devices":["dep-dev-1"]}')
[ "$code" = 403 ] && it_pass "operator may not deploy" || it_fail "operator may not deploy" "$code"
code=$(it_http POST "$BASE/api/v1/models/$M1/deploy" "$IT_TMP/dep.json" "${AML[@]}" -d '{"devices":["dep-dev-1"]}')
[ "$code" = 201 ] && it_pass "model $M1 deployed to dep-dev-1" || { it_fail "deploy" "$code $(cat "$IT_TMP/dep.json")"; it_finish; }
running() { it_http GET "$BASE/api/v1/devices/dep-dev-1" "$IT_TMP/dev.json" "${AML[@]}" >/dev/null
            it_json "$IT_TMP/dev.json" "$1" 2>/dev/null; }
t0=$(date +%s.%N)
for ((i = 0; i < 150; i++)); do
    [ "$(running 'd["model"]["running"]')" = "$M1" ] && break; sleep 0.2
done
t1=$(date +%s.%N)
if [ "$(running 'd["model"]["running"]')" = "$M1" ] && [ "$(running 'd["model"]["assigned"]')" = "$M1" ]; then
    it_pass "device view: dep-dev-1 runs model $M1 ($(python3 -c "print('%.1f' % ($t1 - $t0))") s after deploy)"
else
    it_fail "device view shows the model running" "$(cat "$IT_TMP/dev.json") $(grep -i model "$IT_TMP/agent1.log" | tail -n 3 | tr '\n' ' ')"
fi
it_http GET "$BASE/api/v1/devices" "$IT_TMP/devs.json" "${AML[@]}" >/dev/null
[ "$(it_json "$IT_TMP/devs.json" '[x["model"]["assigned"] for x in d["items"] if x["id"] == "dep-dev-2"][0]')" = None ] &&
    it_pass "device list: model per device (dep-dev-2 has none)" || it_fail "device list model column" "$(head -c 300 "$IT_TMP/devs.json")"

# ---- another signing key: the agent refuses, keeps model M1, reports it --------------
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null
start_server "$IT_TMP/model-b.key" || { it_fail "server restart" "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }
M2=$(train)
[ -n "$M2" ] && it_pass "model $M2 trained under another signing key" || { it_fail "second model"; it_finish; }
code=$(it_http POST "$BASE/api/v1/models/$M2/deploy" "$IT_TMP/dep.json" "${AML[@]}" -d '{"equipment_type":null,"devices":["dep-dev-1"]}')
[ "$code" = 201 ] || it_fail "deploy forged" "$code $(cat "$IT_TMP/dep.json")"
for ((i = 0; i < 150; i++)); do
    [ "$(running 'd["model"]["refused"]["version"] if d["model"].get("refused") else 0')" = "$M2" ] && break; sleep 0.2
done
ref=$(running 'd["model"]["refused"]')
if [ "$(running 'd["model"]["refused"]["version"]')" = "$M2" ] && [ "$(running 'd["model"]["running"]')" = "$M1" ] &&
   [ "$(running 'd["model"]["assigned"]')" = "$M2" ]; then
    it_pass "forged blob refused, model $M1 kept, refusal reported ($ref)"
else
    it_fail "forged blob refused and reported" "$(cat "$IT_TMP/dev.json")"
fi
grep -q "deployed model $M2 refused" "$IT_TMP/agent1.log" && it_pass "agent log names the refusal" ||
    it_fail "agent log names the refusal" "$(tail -n 5 "$IT_TMP/agent1.log")"
kill -0 "$AGENT1_PID" 2>/dev/null && it_pass "agent still running" || it_fail "agent still running"
it_finish
