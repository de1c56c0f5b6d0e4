#!/usr/bin/env bash
# model_parity.sh - does a model alarm on the device as often as the server
# said it would?  The whole loop with real parts, on one source at a time:
#   1. an agent replays normal data and uploads snapshots (a scheduled
#      baseline capture, --capture-every-s, cuts one every $EVERY seconds of
#      stream time, so they tile the recording);
#   2. they are labeled normal, a dataset version is frozen and the server
#      trains an anomaly model: its threshold calibrated to the alarm budget
#      on normal windows held out of the fit, where it also measures the
#      predicted alarm fraction;
#   3. the model is deployed in shadow; the same agent replays held-back
#      normal data of the same source (each a fresh agent run that restores
#      the kept model before its first sample) and logs, when it stops,
#      windows scored and windows at or above the threshold.
# Printed per run: agent alarm fraction, the server's prediction, the ratio;
# then the median ratio.  The prediction and the agent runs are of the same
# invocation.
#
# Sources:
#   sim        the built-in bearing simulator at 2000 Hz (faults pushed out of
#              reach): train on 600 s of seed 1; held back: its next 300 s;
#              and RUNS sibling machines (seeds 11..), 300 s each.
#   cranfield  the Cranfield multiphase-flow corpus (24 channels at 1 Hz; 8 s
#              windows, the shortest the feature set takes):
#              the normal rows (label 0) before each file's first fault, the
#              first 70 % of each file's to train, the last 30 % held back
#              (RUNS replays of the same held-back stream: the agent is
#              deterministic, so they agree; one is enough to read).
# Usage: DATABASE_URL=<empty database> BUILD=build/rel bench/model_parity.sh sim|cranfield [RUNS]
# Data: $PRECURSOR_DATA, else ../shared/data relative to the checkout.
set -uo pipefail
SRC=${1:?usage: model_parity.sh sim|cranfield [RUNS]}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build/rel}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SERVER="$BUILD/bin/precursor-server" AGENT="$BUILD/bin/precursor-agent"
DATA=${PRECURSOR_DATA:-$ROOT/../shared/data}
: "${DATABASE_URL:?set DATABASE_URL to an empty database}"
export DATABASE_URL
TMP=$(mktemp -d -t precursor-bench-parity.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

"$SERVER" migrate >/dev/null 2>&1 || { echo "migrate failed" >&2; exit 1; }
ML=$("$SERVER" token create --name bench-ml --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
OP=$("$SERVER" token create --name bench-op --role operator 2>/dev/null | tail -n1 | tr -d '[:space:]')
ADM=$("$SERVER" token create --name bench-admin --role admin 2>/dev/null | tail -n1 | tr -d '[:space:]')
H() { echo "-H" "Authorization: Bearer $1" "-H" "Content-Type: application/json"; }
openssl rand -hex 24 >"$TMP/secret"
(cd "$TMP" && exec "$SERVER" serve --port "$PORT" --enroll-secret-file "$TMP/secret" \
    --migrations-dir "$ROOT/migrations" --schema-dir "$ROOT/schema") >"$TMP/server.log" 2>&1 &
PIDS+=($!)
for i in $(seq 50); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
api() {   # method path token [body] -> body on stdout
    curl -s -X "$1" -H "Authorization: Bearer $3" -H "Content-Type: application/json" ${4:+-d "$4"} "$BASE$2"
}
DEV=parity-1
mkdir -p "$TMP/keys" "$TMP/spool"
agent() {   # extra args...; stdin as given
    "$AGENT" run --device-id $DEV --server "$BASE" --key-dir "$TMP/keys" --spool "$TMP/spool" \
        --enroll-secret-file "$TMP/secret" --heartbeat-s 1 --config-poll-s 1 "$@"
}

case "$SRC" in
sim)
    RATE=2000 WIN_S=0.128 EVERY=1 PRE=0.5 BUDGET=600
    TRAIN=(--source sim --sim-equipment bearing --sim-seed 1 --sim-speed 0 --sim-fault-every 1e9 --duration 600)
    ;;
cranfield)
    RATE=1 WIN_S=8 EVERY=16 PRE=8 BUDGET=60
    ls "$DATA"/cranfield-mpf/FaultyCase*.csv >/dev/null 2>&1 ||
        { echo "no corpus in $DATA/cranfield-mpf (set PRECURSOR_DATA)" >&2; exit 1; }
    python3 - "$DATA/cranfield-mpf" "$TMP" <<'PY'
import csv, glob, os, sys
src, out = sys.argv[1], sys.argv[2]
train, held = [], []
for path in sorted(glob.glob(os.path.join(src, "FaultyCase*.csv"))):
    with open(path) as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    normal = []
    for r in body:              # the normal rows before the first fault
        if r[-1] != "0":
            break
        normal.append(r[1:-1])
    cut = int(len(normal) * 0.7)
    train += normal[:cut]
    held += normal[cut:]
t0 = 1700000000
for name, part in (("train", train), ("held", held)):
    with open(os.path.join(out, name + ".csv"), "w") as f:
        f.write(",".join(["timestamp"] + head[1:-1]) + "\n")
        for i, r in enumerate(part):
            f.write("%d,%s\n" % (t0 + i, ",".join(r)))
    t0 += len(part) + 3600
print("cranfield: %d normal rows to train, %d held back" % (len(train), len(held)), file=sys.stderr)
PY
    TRAIN=(--source csv --input - --rate 1)
    ;;
*) echo "unknown source $SRC" >&2; exit 2 ;;
esac
TILE=(--detectors level --capture-every-s $EVERY --pre-s $PRE --post-s $PRE --ring-s $((3 * ${PRE%.*} + 5)))

# ---- 1. upload normal snapshots -------------------------------------------------------------
if [ "$SRC" = sim ]; then agent "${TRAIN[@]}" "${TILE[@]}" >"$TMP/train.log" 2>&1
else agent "${TRAIN[@]}" "${TILE[@]}" <"$TMP/train.csv" >"$TMP/train.log" 2>&1; fi
api GET "/api/v1/snapshots?limit=1000" "$ML" >"$TMP/list.json"
# more than a page: follow the cursor
python3 - "$TMP/list.json" "$BASE" "$ML" <<'PY' >"$TMP/ids"
import json, sys, urllib.request
d = json.load(open(sys.argv[1])); items = d["items"]
while d.get("next"):
    rq = urllib.request.Request(sys.argv[2] + "/api/v1/snapshots?limit=1000&after=" + d["next"],
                                headers={"Authorization": "Bearer " + sys.argv[3]})
    d = json.load(urllib.request.urlopen(rq)); items += d["items"]
for it in items:
    print(it["id"], (it["pre_samples"] + it["post_samples"]) / it["sample_rate"], len(it["channels"]))
PY
echo "$SRC: $(wc -l <"$TMP/ids") snapshots uploaded" >&2
[ -s "$TMP/ids" ] || { echo "no snapshots: $(tail -n 3 "$TMP/train.log")" >&2; exit 1; }
while read -r id dur nch; do
    ch=$(python3 -c "print(list(range($nch)))")
    api POST "/api/v1/snapshots/$id/labels" "$OP" "{\"start_s\":0,\"end_s\":$dur,\"channels\":$ch,\"class\":\"normal\"}" >/dev/null
done <"$TMP/ids"

# ---- 2. budget, dataset, model --------------------------------------------------------------------
api PATCH /api/v1/alarm-budget "$ADM" "{\"per_operator_hour\":$BUDGET,\"devices_per_operator\":1}" >/dev/null
api POST /api/v1/datasets "$ML" "{\"name\":\"parity $SRC\",\"filter\":{\"sources\":[\"human\"]},
  \"window\":{\"length_s\":$WIN_S,\"stride_s\":$WIN_S,\"edge\":\"majority\"},
  \"split\":{\"by\":\"device\",\"fractions\":[1,0,0],\"seed\":1}}" >"$TMP/ds.json"
DS=$(jq_ "$TMP/ds.json" 'd["id"]')
api POST "/api/v1/datasets/$DS/versions" "$ML" >/dev/null
api POST /api/v1/models "$ML" "{\"dataset_id\":$DS,\"version\":1,\"kind\":\"anomaly\"}" >"$TMP/m.json"
MID=$(jq_ "$TMP/m.json" 'd["id"]')
for i in $(seq 1200); do
    api GET "/api/v1/models/$MID" "$ML" >"$TMP/ms.json"
    st=$(jq_ "$TMP/ms.json" 'd.get("status")'); [ "$st" = done ] || [ "$st" = failed ] || [ "$st" = None ] && break
    sleep 0.5
done
[ "$st" = done ] || { echo "training: $(cat "$TMP/ms.json")" >&2; exit 1; }
read -r PRED RES HELD THR UP < <(jq_ "$TMP/ms.json" '"%r %r %d %r %.4f" % (d["metrics"]["prediction"]["predicted_alarm_fraction"], d["metrics"]["prediction"]["alarm_fraction_resolution"], d["metrics"]["prediction"]["held_out_normal_windows"], d["metrics"]["prediction"]["threshold"], d["metrics"]["prediction"]["predicted_alarm_fraction_upper95"])')
echo "$SRC: model $MID, threshold $THR, predicted alarm fraction $PRED (95 % upper bound $UP) on $HELD held-out normal windows (budget $BUDGET/operator-hour, 1 device each)"

# ---- 3. shadow on held-back data, RUNS times ------------------------------------------------------
api POST "/api/v1/models/$MID/deploy" "$ML" "{\"devices\":[\"$DEV\"]}" >/dev/null
# Fetch and keep the model: a short paced run until it is installed.
if [ "$SRC" = sim ]; then
    agent --source sim --sim-equipment bearing --sim-seed 99 --sim-speed 1 --sim-fault-every 1e9 \
        --detectors model >"$TMP/fetch.log" 2>&1 &
else
    mkfifo "$TMP/fetch.fifo"; exec 8<>"$TMP/fetch.fifo"; head -n 1 "$TMP/held.csv" >&8
    agent --source csv --input - --rate 1 --detectors model <"$TMP/fetch.fifo" >"$TMP/fetch.log" 2>&1 &
fi
FPID=$!
for i in $(seq 120); do grep -q "model $MID installed" "$TMP/fetch.log" && break; sleep 0.5; done
kill -TERM $FPID 2>/dev/null; wait $FPID 2>/dev/null
[ "$SRC" = cranfield ] && exec 8>&-
grep -q "model $MID installed" "$TMP/fetch.log" || { echo "model not installed: $(tail -n 3 "$TMP/fetch.log")" >&2; exit 1; }
# Run the agent (args...) to its end; prints "windows above" from the
# counters it logs when it stops (exact; heartbeats may be a second old).
SHADOW_INPUT=/dev/null
shadow_run() {
    local log=$1; shift
    agent "$@" <"$SHADOW_INPUT" >"$log" 2>&1
    grep -q "restored" "$log" || echo "  ($log: the kept model was not restored)" >&2
    sed -n "s/^agent: model $MID ([a-z]*): windows \([0-9]*\), above threshold \([0-9]*\),.*/\1 \2/p" "$log" | tail -n 1
}
report() {   # label windows above
    local ratio; ratio=$(python3 -c "p = max($PRED, $RES); print('%.2f' % (($3 / max(1, $2)) / p))")
    ratios+=("$ratio")
    echo "$SRC $1: agent alarm fraction $(python3 -c "print('%.4f' % ($3 / max(1, $2)))") ($3 of $2 windows); server predicted $(python3 -c "print('%.4f' % $PRED)"); ratio agent/predicted $ratio"
}
ratios=()
if [ "$SRC" = sim ]; then
    # The same machine (seed 1) after the 600 s it was trained on: the
    # simulator is a function of seed and sample number, so a 900 s run's
    # counters minus a 600 s run's are those of its last 300 s.
    read -r W9 A9 < <(shadow_run "$TMP/same900.log" --source sim --sim-equipment bearing --sim-seed 1 \
        --sim-speed 0 --sim-fault-every 1e9 --duration 900 --detectors model)
    read -r W6 A6 < <(shadow_run "$TMP/same600.log" --source sim --sim-equipment bearing --sim-seed 1 \
        --sim-speed 0 --sim-fault-every 1e9 --duration 600 --detectors model)
    report "same machine, held-back 300 s (600..900 s)" $((W9 - W6)) $((A9 - A6))
    report "same machine, the 600 s it was trained on" "$W6" "$A6"
    same=${ratios[0]}
    # Sibling machines (other seeds: another temperature baseline, other
    # noise): what happens when a model is deployed beyond its machine.
    for r in $(seq "$RUNS"); do
        read -r W A < <(shadow_run "$TMP/sib$r.log" --source sim --sim-equipment bearing --sim-seed $((10 + r)) \
            --sim-speed 0 --sim-fault-every 1e9 --duration 300 --detectors model)
        report "sibling machine (seed $((10 + r))), 300 s" "$W" "$A"
    done
    echo "$SRC: same machine ratio $same; siblings median $(printf '%s\n' "${ratios[@]:2}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') over $RUNS"
else
    for r in $(seq "$RUNS"); do
        SHADOW_INPUT="$TMP/held.csv"
        read -r W A < <(shadow_run "$TMP/run$r.log" --source csv --input - --rate 1 --detectors model)
        report "held-back run $r" "$W" "$A"
    done
    echo "$SRC: median ratio agent/predicted $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') over $RUNS runs"
fi
