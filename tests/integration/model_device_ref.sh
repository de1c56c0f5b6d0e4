#!/usr/bin/env bash
# model_device_ref.sh - each device its own reference, end to end with real
# parts.  Three agents replay recordings of one kind of machine and upload
# scheduled baseline snapshots: dref-a runs at one set-point, dref-b at
# another (an offset and a gain on both channels), both with an injected
# fault at the end; dref-c only ever shows the fault.  Snapshots are labeled
# normal or fault by time; a few-shot model is trained on the version.  The
# server then holds, per device, the reference windows it centred that
# device on, a blob made for it (blob v2.5, bound to its id) when it has any,
# and its prediction for that device's windows.  Checked:
#   - dref-a and dref-b get blobs of their own, dref-c (no normal window: no
#     reference) none, and runs the model's;
#   - deployed to all three, each agent installs exactly the blob the server
#     made for it (its kept blob's SHA-256), dref-c the model's;
#   - a device's blob is refused by another device (offline replay);
#   - the agent, replaying each device's windows of the version (its own
#     samples, from the npz export) with the blob it was served, scores every
#     window as the server predicted for that device: the same score to the
#     scores file's 6 decimals and the same alarm decision on every window;
#   - the same for a few-shot model on the relations set, whose map the
#     server fits and the blob carries;
#   - the snapshots of the version's devices no label reached are ranked by
#     the least-certain queue with the probability the agent computes on
#     their windows with its blob (the spectral set, and the envelope set at
#     the machines' speeds).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_ml_setup
RATE=512
NOW=$(date +%s)
W=64                    # samples per window: 0.125 s, a power of two (the spectral set)

cat >"$IT_TMP/gen.py" <<'PY'
import math, random, sys
# out, start unix s, seconds, seed, offset, gain, fault_from_s (-1: none)
out, t0, secs, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
off, gain, fault = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
rate = 512
rnd = random.Random(seed)
with open(out, "w") as f:
    f.write("timestamp,vib_x,vib_y\n")
    for i in range(int(secs * rate)):
        t = i / rate
        x = 0.5 * math.sin(2 * math.pi * 29.7 * t) + 0.15 * math.sin(2 * math.pi * 59.4 * t) + rnd.gauss(0, 0.3)
        y = 0.4 * math.cos(2 * math.pi * 29.7 * t) + rnd.gauss(0, 0.25)
        if fault >= 0 and t >= fault:
            ph = (t * 37.0) % 1.0 / 37.0           # an impact every 1/37 s ringing at 180 Hz
            x += 2.5 * math.exp(-ph * 200.0) * math.sin(2 * math.pi * 180.0 * ph)
        f.write("%.6f,%.6f,%.6f\n" % (t0 + t, off + gain * x, off + gain * y))
PY
TA=$((NOW - 3000)); TB=$((NOW - 2000)); TC=$((NOW - 1000))
python3 "$IT_TMP/gen.py" "$IT_TMP/a.csv" $TA 80 1 0.0 1.0 60 &&
python3 "$IT_TMP/gen.py" "$IT_TMP/b.csv" $TB 80 2 3.0 1.6 60 &&
python3 "$IT_TMP/gen.py" "$IT_TMP/c.csv" $TC 20 3 1.0 1.2 0 ||
    { it_fail "recordings" "generator failed"; it_finish; }

(cd "$IT_TMP/run" && exec "$SERVER_BIN" serve --port "$PORT" --enroll-secret-file "$IT_TMP/enroll-secret" \
    --device-rate 0 --migrations-dir "$IT_ROOT/migrations" --schema-dir "$IT_ROOT/schema") >>"$IT_TMP/server.log" 2>&1 &
IT_PIDS+=($!)
it_wait_http "$BASE/healthz" 30 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

# Scheduled baselines tile each recording with 1 s snapshots (8 windows each).
AGENT_ARGS=(--server "$BASE" --source csv --input - --rate $RATE --detectors level --hold-off-s 1
            --max-per-hour 0 --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 1 --config-poll-s 1
            --enroll-secret-file "$IT_TMP/enroll-secret")
for d in a b c; do
    mkdir -p "$IT_TMP/$d/keys" "$IT_TMP/$d/spool"
    "$AGENT_BIN" run --device-id "dref-$d" --key-dir "$IT_TMP/$d/keys" --spool "$IT_TMP/$d/spool" \
        "${AGENT_ARGS[@]}" --capture-every-s 1 <"$IT_TMP/$d.csv" >>"$IT_TMP/$d.log" 2>&1
done
it_http GET "$BASE/api/v1/snapshots?limit=1000" "$IT_TMP/list.json" "${AML[@]}" >/dev/null
read -r NA NB NC < <(python3 - "$IT_TMP/list.json" <<'PY'
import collections, json, sys
c = collections.Counter(it["device_id"] for it in json.load(open(sys.argv[1]))["items"] if it["detector"] == "schedule")
print(c["dref-a"], c["dref-b"], c["dref-c"])
PY
)
[ "${NA:-0}" -ge 60 ] && [ "${NB:-0}" -ge 60 ] && [ "${NC:-0}" -ge 12 ] &&
    it_pass "scheduled baselines uploaded: $NA / $NB / $NC" ||
    { it_fail "scheduled baselines" "$NA/$NB/$NC $(tail -n 3 "$IT_TMP/a.log" | tr '\n' ' ')"; it_finish; }

# ---- labels by time: normal before the fault, fault after; a snapshot across the edge unlabeled --
python3 - "$IT_TMP/list.json" $((TA + 60)) $((TB + 60)) $TC >"$IT_TMP/labels" <<'PY'
import datetime, json, sys
fault = {"dref-a": float(sys.argv[2]), "dref-b": float(sys.argv[3]), "dref-c": float(sys.argv[4])}
for it in json.load(open(sys.argv[1]))["items"]:
    if it["device_id"] not in fault:
        continue
    t = datetime.datetime.fromisoformat(it["trigger_time"].replace("Z", "+00:00")).timestamp()
    pre, post = it["pre_samples"] / it["sample_rate"], it["post_samples"] / it["sample_rate"]
    start, end = t - pre, t + post
    cls = "normal" if end <= fault[it["device_id"]] + 1e-3 else "bearing_outer_race" if start >= fault[it["device_id"]] - 1e-3 else None
    if cls:
        print(it["id"], pre + post, cls)
PY
while read -r id dur cls; do
    it_http POST "$BASE/api/v1/snapshots/$id/labels" "$IT_TMP/l.json" "${AOP[@]}" \
        -d "{\"start_s\":0,\"end_s\":$dur,\"channels\":[0,1],\"class\":\"$cls\"}" >/dev/null
done <"$IT_TMP/labels"
it_http POST "$BASE/api/v1/datasets" "$IT_TMP/ds.json" "${AML[@]}" -d '{"name":"dref",
  "filter":{"sources":["human"]},"window":{"length_s":0.125,"stride_s":0.125,"edge":"majority"},
  "split":{"by":"device","fractions":[1,0,0],"seed":1}}' >/dev/null
DS=$(it_json "$IT_TMP/ds.json" 'd["id"]' 2>/dev/null)
code=$(it_http POST "$BASE/api/v1/datasets/$DS/versions" "$IT_TMP/v.json" "${AML[@]}")
[ "$code" = 201 ] || { it_fail "dataset version" "$code $(cat "$IT_TMP/v.json")"; it_finish; }
code=$(it_http POST "$BASE/api/v1/models" "$IT_TMP/m.json" "${AML[@]}" -d "{\"dataset_id\":$DS,\"version\":1,\"kind\":\"fewshot\"}")
MID=$(it_json "$IT_TMP/m.json" 'd["id"]' 2>/dev/null)
st=$(it_wait_done "$BASE/api/v1/models/$MID" "$IT_TMP/model.json" 600 0.5 "${AML[@]}")
[ "$code" = 202 ] && [ "$st" = done ] && it_pass "few-shot model $MID trained ($(it_json "$IT_TMP/model.json" 'd["metrics"]["features"]["set"]') set)" ||
    { it_fail "few-shot model trained" "$code $st $(head -c 400 "$IT_TMP/model.json")"; it_finish; }

# ---- what the server holds per device --------------------------------------------------------
it_http GET "$BASE/api/v1/models/$MID/devices" "$IT_TMP/devs.json" "${AML[@]}" >/dev/null
own=$(it_json "$IT_TMP/devs.json" '" ".join("%s:%d:%d" % (x["device_id"], x["own_reference"], x["reference_windows"]) for x in d["items"])')
ok=$(it_json "$IT_TMP/devs.json" 'int(len(d["items"]) == 3 and [x["own_reference"] for x in d["items"]] == [True, True, False] and d["items"][0]["reference_windows"] >= 400 and d["items"][2]["reference_windows"] == 0 and all(x["predictions"]["learner_agrees"] == x["predictions"]["windows"] > 0 for x in d["items"]))')
[ "$ok" = 1 ] && it_pass "per device: own reference for dref-a and dref-b, none for dref-c ($own); the learner's own prediction agrees with the blob's on every window" ||
    it_fail "per-device references" "$own $(head -c 600 "$IT_TMP/devs.json")"
ok=$(it_json "$IT_TMP/model.json" 'int(d["metrics"]["device_reference"]["own_reference"] == 2 and d["metrics"]["device_reference"]["devices"] == 3)')
[ "$ok" = 1 ] && it_pass "metrics.device_reference: 2 of 3 devices with their own reference" ||
    it_fail "metrics.device_reference" "$(it_json "$IT_TMP/model.json" 'd["metrics"].get("device_reference")')"
# ---- active learning: what the model makes of each snapshot of its version, least certain first
# (the queue's order: unlabeled first, then the smallest margin, the snapshots it did not predict
# after them) -------------------------------------------------------------------------------------
code=$(it_http GET "$BASE/api/v1/queue?sort=uncertain&model=$MID&limit=500&demo=include" "$IT_TMP/unc.json" "${AML[@]}")
ok=$(it_json "$IT_TMP/unc.json" 'int((lambda it, k: len([s for s in it if s["model_prediction"]]) > 0 and all(0 < s["model_prediction"]["probability"] <= 1 and 0 <= s["model_prediction"]["margin"] <= 1 for s in it if s["model_prediction"]) and all(k(a) <= k(b) for a, b in zip(it, it[1:])))(d["items"], lambda s: (s["labeled_at"] is not None, s["model_prediction"] is None, s["model_prediction"]["margin"] if s["model_prediction"] else 0)))' 2>/dev/null)
said=$(it_json "$IT_TMP/unc.json" '(lambda p: "%d snapshots predicted, margins %.3g..%.3g, %d below probability 0.9" % (len(p), min(x["margin"] for x in p), max(x["margin"] for x in p), sum(x["probability"] < 0.9 for x in p)))([s["model_prediction"] for s in d["items"] if s["model_prediction"]])' 2>/dev/null)
[ "$code" = 200 ] && [ "$ok" = 1 ] && it_pass "queue sort=uncertain&model=$MID: least certain first ($said)" ||
    it_fail "queue sort=uncertain" "$code $said $(head -c 400 "$IT_TMP/unc.json")"
it_http GET "$BASE/api/v1/models/$MID/blob" "$IT_TMP/model.blob" "${AML[@]}" >/dev/null
for d in a b; do
    it_http GET "$BASE/api/v1/models/$MID/blob?device=dref-$d" "$IT_TMP/$d.blob" "${AML[@]}" >/dev/null
done
code=$(it_http GET "$BASE/api/v1/models/$MID/blob?device=dref-c" "$IT_TMP/c.err" "${AML[@]}")
[ "$code" = 404 ] && it_pass "dref-c has no blob of its own (404): it runs the model's" || it_fail "no blob for dref-c" "$code"
it_http GET "$BASE/api/v1/models/signing-key" "$IT_TMP/key.json" "${AML[@]}" >/dev/null
it_json "$IT_TMP/key.json" 'd["public_key_hex"]' >"$IT_TMP/model.key"
cp "$IT_TMP/model.blob" "$IT_TMP/c.blob"

# ---- deployed: every agent installs the blob the server made for it ---------------------------
code=$(it_http POST "$BASE/api/v1/models/$MID/deploy" "$IT_TMP/dep.json" "${AML[@]}" -d '{"devices":["dref-a","dref-b","dref-c"]}')
[ "$code" = 201 ] || it_fail "deploy" "$code $(cat "$IT_TMP/dep.json")"
for d in a b c; do
    fifo="$IT_TMP/$d.fifo"; mkfifo "$fifo"
    "$AGENT_BIN" run --device-id "dref-$d" --key-dir "$IT_TMP/$d/keys" --spool "$IT_TMP/$d/spool" \
        "${AGENT_ARGS[@]}" --detectors model <"$fifo" >>"$IT_TMP/$d-deploy.log" 2>&1 &
    pid=$!
    exec 7>"$fifo"
    head -n 1 "$IT_TMP/$d.csv" >&7
    for ((i = 0; i < 60; i++)); do grep -q "model $MID installed" "$IT_TMP/$d-deploy.log" && break; sleep 0.5; done
    exec 7>&-
    wait "$pid"
    kept=$(sha256sum <"$IT_TMP/$d/keys/model.blob" 2>/dev/null | cut -d' ' -f1)
    want=$(sha256sum <"$IT_TMP/$d.blob" | cut -d' ' -f1)
    [ -n "$kept" ] && [ "$kept" = "$want" ] &&
        it_pass "dref-$d installed model $MID, the blob made for it ($( [ $d = c ] && echo "the model's own" || echo "its own reference"))" ||
        it_fail "dref-$d installed its blob" "kept ${kept:-none} want $want; $(grep -i model "$IT_TMP/$d-deploy.log" | tail -n 2 | tr '\n' ' ')"
done
[ "$(sha256sum <"$IT_TMP/a.blob" | cut -d' ' -f1)" != "$(sha256sum <"$IT_TMP/b.blob" | cut -d' ' -f1)" ] &&
[ "$(sha256sum <"$IT_TMP/a.blob" | cut -d' ' -f1)" != "$(sha256sum <"$IT_TMP/model.blob" | cut -d' ' -f1)" ] &&
    it_pass "the three blobs differ" || it_fail "the three blobs differ"

# ---- the device's decisions on its own windows are the server's ------------------------------
it_http GET "$BASE/api/v1/datasets/$DS/versions/1/export?format=npz" "$IT_TMP/v.npz" "${AML[@]}" >/dev/null
# npz.py NPZ OUTDIR KEEP SUFFIX: each device's windows of the export as a
# stream of their first KEEP samples (all: 0), and the export rows they are
cat >"$IT_TMP/npz.py" <<'PY'
import struct, sys, zipfile
def npy(z, name):
    b = z.read(name)
    hl = struct.unpack("<H", b[8:10])[0]
    hdr = eval(b[10:10 + hl].decode("latin1"))
    return hdr, b[10 + hl:]
z = zipfile.ZipFile(sys.argv[1])
hx, bx = npy(z, "X.npy")
hg, bg = npy(z, "groups.npy")
n, c, t = hx["shape"]
keep, sfx = int(sys.argv[3]) or t, sys.argv[4]
x = struct.unpack("<%df" % (n * c * t), bx)
groups = [bg[i * 64:(i + 1) * 64].rstrip(b"\0").decode() for i in range(n)]
for dev in sorted(set(groups)):
    rows = [i for i in range(n) if groups[i] == dev]
    with open("%s/%s%s.rows" % (sys.argv[2], dev, sfx), "w") as f:
        f.write(" ".join(map(str, rows)))
    with open("%s/%s%s.windows.csv" % (sys.argv[2], dev, sfx), "w") as f:
        f.write("timestamp,vib_x,vib_y\n")
        k = 0
        for i in rows:
            for s in range(keep):
                # the float32 values exactly (%.17g of their double)
                f.write("%.6f,%.17g,%.17g\n" % (1700000000 + k / 512.0, x[(i * c + 0) * t + s], x[(i * c + 1) * t + s]))
                k += 1
PY
python3 "$IT_TMP/npz.py" "$IT_TMP/v.npz" "$IT_TMP" 0 "" || it_fail "npz read" "see above"
# The queue's model_prediction is what the devices compute: a snapshot whose windows the
# server's per-device prediction (the device's own blob) puts all in one class has that class.
cat >"$IT_TMP/parity.py" <<'PY'
import json, struct, sys, zipfile
def npy(z, name):
    b = z.read(name)
    hl = struct.unpack("<H", b[8:10])[0]
    return eval(b[10:10 + hl].decode("latin1")), b[10 + hl:]
z = zipfile.ZipFile(sys.argv[1])
hs, bs = npy(z, "snapshot_id.npy")
hc, bc = npy(z, "classes.npy")
snap = struct.unpack("<%dq" % hs["shape"][0], bs)
classes = [bc[i * 64:(i + 1) * 64].rstrip(b"\0").decode() for i in range(hc["shape"][0])]
per, pnormal = {}, {}
for item in json.load(open(sys.argv[2]))["items"]:
    p = item["predictions"]
    if p["truncated"]:
        continue
    for r, c, sc in zip(p["rows"], p["classes"], p["scores"]):
        per.setdefault(snap[r], set()).add(c)
        # a classifier's score is 1 - P(normal) (schema/MODEL.md)
        pnormal.setdefault(snap[r], []).append(1.0 - sc)
pred = {s["id"]: s["model_prediction"] for s in json.load(open(sys.argv[3]))["items"] if s["model_prediction"]}
checked = bad = probs = 0
for sid, cs in per.items():
    if sid not in pred:
        continue
    if len(cs) == 1:
        checked += 1
        bad += pred[sid]["class"] != classes[next(iter(cs))]
    # the snapshot's mean P(normal) is its probability when the class is normal, and the
    # other's when the version has two classes
    pn = sum(pnormal[sid]) / len(pnormal[sid])
    want = pn if pred[sid]["class"] == "normal" else 1.0 - pn if len(classes) == 2 else None
    if want is not None:
        probs += 1
        bad += abs(pred[sid]["probability"] - want) > 2e-5
print(int(checked > 0 and probs > 0 and bad == 0), checked, probs, bad)
PY
read -r ok checked probs bad <<<"$(python3 "$IT_TMP/parity.py" "$IT_TMP/v.npz" "$IT_TMP/devs.json" "$IT_TMP/unc.json")"
[ "$ok" = 1 ] && it_pass "queue model_prediction: $checked snapshots whose windows the device's blob puts in one class, that class; $probs probabilities the mean of the device's P(normal) per window" ||
    it_fail "queue model_prediction == the devices'" "classes ${checked:-?} probabilities ${probs:-?} differing ${bad:-?}"
# The snapshots no label reached (the edges' unlabeled ones and the level detector's, of the
# version's devices, received before its freeze) are ranked too: each one's probability is the
# mean over its windows, cut as the version cuts its own (W samples every W from the first), of
# what the blob its device runs computes; replayed by the agent from the samples the server serves.
cat >"$IT_TMP/unl-list.py" <<'PY'
import json, struct, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
b = z.read("snapshot_id.npy")
hl = struct.unpack("<H", b[8:10])[0]
h = eval(b[10:10 + hl].decode("latin1"))
inv = set(struct.unpack("<%dq" % h["shape"][0], b[10 + hl:]))
items = [s for s in json.load(open(sys.argv[2]))["items"] if s["model_prediction"] and s["id"] not in inv]
print(len(items))
for s in items[:4]:
    p = s["model_prediction"]
    print(s["id"], s["device_id"], p["class"], "%.9g" % p["probability"])
PY
cat >"$IT_TMP/unl.py" <<'PY'
import json, sys
# samples.json windows.csv W: the snapshot's windows, W every W from its first sample
d, W = json.load(open(sys.argv[1])), int(sys.argv[3])
ch = [c["values"] for c in d["channels"]]
n = len(ch[0])
with open(sys.argv[2], "w") as f:
    f.write("timestamp,vib_x,vib_y\n")
    k = 0
    for st in range(0, n - W + 1, W):
        for s in range(st, st + W):
            f.write("%.6f,%.17g,%.17g\n" % (1700000000 + k / 512.0, ch[0][s], ch[1][s]))
            k += 1
print(k // W)
PY
cat >"$IT_TMP/unl-cmp.py" <<'PY'
import csv, sys
# a classifier's score is 1 - P(normal); two classes: the other's is 1 - P(normal)
s = [float(r["anomaly_score"]) for r in csv.DictReader(open(sys.argv[1]))]
nw, W = int(sys.argv[2]), int(sys.argv[3])
pn = sum(1.0 - s[(k + 1) * W - 1] for k in range(nw)) / nw
want = pn if sys.argv[4] == "normal" else 1.0 - pn
sys.exit(0 if nw > 0 and len(s) == nw * W and abs(float(sys.argv[5]) - want) <= 2e-5 else 1)
PY
# unlabeled_compare MODEL_ID MODEL_JSON BLOB_SUFFIX: the model's predictions of the snapshots
# of version 1's devices that it does not hold, against the agents' replay of them
unlabeled_compare() {
    local mid=$1 mjson=$2 sfx=$3 n sid dev cls prob nw blob good=0 bad=0 said ok
    it_http GET "$BASE/api/v1/queue?sort=uncertain&model=$mid&limit=500&demo=include" "$IT_TMP/unc$sfx.json" "${AML[@]}" >/dev/null
    python3 "$IT_TMP/unl-list.py" "$IT_TMP/v.npz" "$IT_TMP/unc$sfx.json" >"$IT_TMP/unl$sfx.list"
    read -r n <"$IT_TMP/unl$sfx.list"
    while read -r sid dev cls prob; do
        it_http GET "$BASE/api/v1/snapshots/$sid/samples?px=4096" "$IT_TMP/unl-$sid.json" "${AML[@]}" >/dev/null
        nw=$(python3 "$IT_TMP/unl.py" "$IT_TMP/unl-$sid.json" "$IT_TMP/unl-$sid.csv" $W)
        blob="$IT_TMP/${dev#dref-}$sfx.blob"
        "$AGENT_BIN" replay --input "$IT_TMP/unl-$sid.csv" --format csv --rate $RATE --detectors model \
            --model "$blob" --model-key "$IT_TMP/model.key" --device-id "$dev" \
            --scores "$IT_TMP/unl-$sid$sfx.scores.csv" >"$IT_TMP/unl-$sid$sfx.log" 2>&1
        if python3 "$IT_TMP/unl-cmp.py" "$IT_TMP/unl-$sid$sfx.scores.csv" "${nw:-0}" $W "$cls" "$prob"; then
            good=$((good + 1))
        else
            bad=$((bad + 1))
        fi
    done < <(tail -n +2 "$IT_TMP/unl$sfx.list")
    said=$(it_json "$mjson" 'd["metrics"]["snapshot_predictions"]' 2>/dev/null)
    ok=$(it_json "$mjson" "int(d['metrics']['snapshot_predictions']['unlabeled_snapshots'] == ${n:-0})" 2>/dev/null)
    [ "${n:-0}" -gt 0 ] && [ "$good" -gt 0 ] && [ "$bad" = 0 ] && [ "$ok" = 1 ] &&
        it_pass "model $mid: $n snapshots no label reached ranked; $good replayed by their device's agent, the same probability ($said)" ||
        it_fail "model $mid: unlabeled snapshots predicted as the devices compute" "ranked ${n:-?} replayed $good differing $bad metrics $said"
}
cat >"$IT_TMP/cmp.py" <<'PY'
import csv, json, sys
item = [x for x in json.load(open(sys.argv[1]))["items"] if x["device_id"] == sys.argv[2]][0]
p, W = item["predictions"], int(sys.argv[5])
rows = list(map(int, open(sys.argv[4]).read().split()))
s = [float(r["anomaly_score"]) for r in csv.DictReader(open(sys.argv[3]))]
agent = [s[(k + 1) * W - 1] for k in range(len(s) // W)]
thr = p["threshold"]
same_rows = p["rows"] == rows[:len(p["rows"])] and p["windows"] == len(rows)
n = len(p["scores"])
worst = max(abs(a - b) for a, b in zip(agent, p["scores"]))
# the agent's printed score is rounded to 6 decimals: its decision is read
# from it only where that rounding cannot flip it
dec = sum(1 for a, b in zip(agent, p["scores"]) if abs(b - thr) > 1e-6 and (a >= thr) != (b >= thr))
alarms_agent = sum(1 for a in agent[:n] if a >= thr)
print(int(same_rows and len(agent) == n and worst <= 5.01e-7 and dec == 0), n, p["alarms"], alarms_agent, "%.1e" % worst)
PY
# replay_compare MODEL_ID DEVS_JSON BLOB_SUFFIX [WINDOWS_SUFFIX SAMPLES]: each
# device's windows through the blob it was served, against the server's
# stored prediction for it
replay_compare() {
    local mid=$1 devs=$2 sfx=$3 wsfx=${4:-} w=${5:-$W} d res ok n sa aa worst
    for d in a b c; do
        "$AGENT_BIN" replay --input "$IT_TMP/dref-$d$wsfx.windows.csv" --format csv --rate $RATE --detectors model \
            --model "$IT_TMP/$d$sfx.blob" --model-key "$IT_TMP/model.key" --device-id "dref-$d" \
            --scores "$IT_TMP/$d$sfx.scores.csv" >"$IT_TMP/$d$sfx.replay.log" 2>&1 ||
            it_fail "replay dref-$d (model $mid)" "$(tail -n 2 "$IT_TMP/$d$sfx.replay.log")"
        res=$(python3 "$IT_TMP/cmp.py" "$devs" "dref-$d" "$IT_TMP/$d$sfx.scores.csv" "$IT_TMP/dref-$d$wsfx.rows" $w)
        read -r ok n sa aa worst <<<"$res"
        [ "$ok" = 1 ] && it_pass "model $mid, dref-$d: the agent scores its $n windows as the server predicted (largest difference $worst, the scores file's rounding; alarms $aa of $n, server $sa)" ||
            it_fail "model $mid, dref-$d: agent == server per window" "$res"
    done
}
replay_compare "$MID" "$IT_TMP/devs.json" ""
unlabeled_compare "$MID" "$IT_TMP/model.json" ""
# What the reference is for: dref-b's normal windows through the model's own
# center (the pooled one) against its own (reported, not a target).
"$AGENT_BIN" replay --input "$IT_TMP/dref-b.windows.csv" --format csv --rate $RATE --detectors model \
    --model "$IT_TMP/model.blob" --model-key "$IT_TMP/model.key" --device-id dref-b \
    --scores "$IT_TMP/b-pooled.scores.csv" >/dev/null 2>&1
it_log "dref-b alarms: own reference $(python3 - "$IT_TMP/b.scores.csv" "$IT_TMP/b-pooled.scores.csv" $W <<'PY'
import csv, sys
W = int(sys.argv[3])
def alarms(p):
    s = [float(r["anomaly_score"]) for r in csv.DictReader(open(p))]
    return sum(1 for k in range(len(s) // W) if s[(k + 1) * W - 1] >= 0.5), len(s) // W
print("%d of %d windows, the model's center %d of %d" % (alarms(sys.argv[1]) + alarms(sys.argv[2])))
PY
)"

# ---- another device's blob is refused -------------------------------------------------------
"$AGENT_BIN" replay --input "$IT_TMP/dref-b.windows.csv" --format csv --rate $RATE --detectors model \
    --model "$IT_TMP/a.blob" --model-key "$IT_TMP/model.key" --device-id dref-b \
    --scores "$IT_TMP/x.scores.csv" >"$IT_TMP/wrong.log" 2>&1
rc=$?
[ $rc != 0 ] && grep -q "another device" "$IT_TMP/wrong.log" && it_pass "dref-a's blob refused on dref-b: $(tail -n 1 "$IT_TMP/wrong.log")" ||
    it_fail "another device's blob refused" "rc $rc $(tail -n 2 "$IT_TMP/wrong.log")"
"$AGENT_BIN" replay --input "$IT_TMP/dref-b.windows.csv" --format csv --rate $RATE --detectors model \
    --model "$IT_TMP/a.blob" --model-key "$IT_TMP/model.key" --scores "$IT_TMP/x.scores.csv" >"$IT_TMP/none.log" 2>&1
rc=$?
[ $rc != 0 ] && grep -q "another device" "$IT_TMP/none.log" && it_pass "a device's blob refused by a replay that names no device" ||
    it_fail "device blob refused without --device-id" "rc $rc $(tail -n 2 "$IT_TMP/none.log")"

# ---- the same for a relations model: the server fits the map of normal operation (first on
# the windows assumed normal, then with those nobody labeled a fault that it finds normal), the
# blob carries it, and the agent computes the features through it --------------------------------
code=$(it_http POST "$BASE/api/v1/models" "$IT_TMP/mr.json" "${AML[@]}" -d "{\"dataset_id\":$DS,\"version\":1,\"kind\":\"fewshot\",\"feature_set\":\"relations\"}")
MR=$(it_json "$IT_TMP/mr.json" 'd["id"]' 2>/dev/null)
st=$(it_wait_done "$BASE/api/v1/models/$MR" "$IT_TMP/modelr.json" 600 0.5 "${AML[@]}")
if [ "$code" = 202 ] && [ "$st" = done ]; then
    it_pass "relations model $MR trained (map rank $(it_json "$IT_TMP/modelr.json" 'd["metrics"]["features"]["relations"]["rank"]'), fitted on $(it_json "$IT_TMP/modelr.json" 'd["metrics"]["features"]["relations"]["fit_windows"]') windows, $(it_json "$IT_TMP/modelr.json" '"%d of them from the %d unlabeled windows of %d scheduled baselines outside the version" % tuple(d["metrics"]["features"]["relations"]["unlabeled"][k] for k in ("fit_windows", "windows", "snapshots"))'))"
    it_http GET "$BASE/api/v1/models/$MR/devices" "$IT_TMP/devsr.json" "${AML[@]}" >/dev/null
    it_http GET "$BASE/api/v1/models/$MR/blob" "$IT_TMP/cr.blob" "${AML[@]}" >/dev/null
    for d in a b; do
        it_http GET "$BASE/api/v1/models/$MR/blob?device=dref-$d" "$IT_TMP/${d}r.blob" "${AML[@]}" >/dev/null
    done
    replay_compare "$MR" "$IT_TMP/devsr.json" "r"
else
    it_fail "relations model trained" "$code $st $(head -c 400 "$IT_TMP/modelr.json")"
fi

# train_fewshot SFX DATASET: a few-shot model of the dataset's version 1, trained to its end:
# code (the POST's status), MT (its id), st (its final status), $IT_TMP/model$SFX.json
train_fewshot() {
    code=$(it_http POST "$BASE/api/v1/models" "$IT_TMP/m$1.json" "${AML[@]}" -d "{\"dataset_id\":$2,\"version\":1,\"kind\":\"fewshot\"}")
    MT=$(it_json "$IT_TMP/m$1.json" 'd["id"]' 2>/dev/null)
    st=$(it_wait_done "$BASE/api/v1/models/$MT" "$IT_TMP/model$1.json" 600 0.5 "${AML[@]}")
}
# fetch_device_blobs MODEL SFX: the model's devices listing ($IT_TMP/devs$SFX.json) and the
# blob each of dref-a, -b and -c runs ($IT_TMP/{a,b,c}$SFX.blob): its own, else the model's
fetch_device_blobs() {
    local d
    it_http GET "$BASE/api/v1/models/$1/devices" "$IT_TMP/devs$2.json" "${AML[@]}" >/dev/null
    for d in a b c; do
        [ "$(it_http GET "$BASE/api/v1/models/$1/blob?device=dref-$d" "$IT_TMP/$d$2.blob" "${AML[@]}")" = 200 ] ||
            it_http GET "$BASE/api/v1/models/$1/blob" "$IT_TMP/$d$2.blob" "${AML[@]}" >/dev/null
    done
}
# put_machines TYPE PREFIX: assets PREFIX-a, -b, -c of TYPE turning at 10, 10 and 12 Hz, and
# dref-a, -b, -c on them; prints the six answers' statuses
put_machines() {
    local d hz tx=""
    for d in a b c; do
        hz=10; [ $d = c ] && hz=12
        tx="$tx $(it_http POST "$BASE/api/v1/taxonomy/assets" "$IT_TMP/as.json" "${AOP[@]}" \
            -d "{\"id\":\"$2-$d\",\"equipment_type\":\"$1\",\"shaft_hz\":$hz}")"
        tx="$tx $(it_http POST "$BASE/api/v1/devices/dref-$d/asset" "$IT_TMP/da.json" "${AOP[@]}" \
            -d "{\"asset_id\":\"$2-$d\"}")"
    done
    echo $tx
}

# ---- windows that are not a power of two: 0.1875 s at 512 Hz is 96 samples; the spectral set
# reads all of each (zero-padded to 128), and the device, scoring every 96 samples, decides as
# the server predicted ------------------------------------------------------------------------
it_http POST "$BASE/api/v1/datasets" "$IT_TMP/ds3.json" "${AML[@]}" -d '{"name":"dref-96",
  "filter":{"sources":["human"]},"window":{"length_s":0.1875,"stride_s":0.1875,"edge":"majority"},
  "split":{"by":"device","fractions":[1,0,0],"seed":1}}' >/dev/null
D3=$(it_json "$IT_TMP/ds3.json" 'd["id"]' 2>/dev/null)
it_http POST "$BASE/api/v1/datasets/$D3/versions" "$IT_TMP/v3.json" "${AML[@]}" >/dev/null
train_fewshot 3 "$D3"
M3=$MT
ok=$(it_json "$IT_TMP/model3.json" 'int(d["metrics"]["features"]["set"] == "spectral" and d["metrics"]["features"]["window"] == 96 and d["metrics"]["features"]["hop"] == 96 and "window_reason" not in d["metrics"]["features"])' 2>/dev/null)
if [ "$code" = 202 ] && [ "$st" = done ] && [ "$ok" = 1 ]; then
    it_pass "96-sample windows: model $M3 reads the spectral set on all 96 samples of each"
    fetch_device_blobs "$M3" 3
    it_http GET "$BASE/api/v1/datasets/$D3/versions/1/export?format=npz" "$IT_TMP/v3.npz" "${AML[@]}" >/dev/null
    python3 "$IT_TMP/npz.py" "$IT_TMP/v3.npz" "$IT_TMP" 0 "-96" || it_fail "npz read (96)" "see above"
    replay_compare "$M3" "$IT_TMP/devs3.json" "3" "-96" 96
else
    it_fail "96-sample windows: spectral set on all 96" "$code $st $(head -c 600 "$IT_TMP/model3.json")"
fi

# ---- machines that turn at different speeds: dref-a and dref-b at 10 Hz, dref-c at 12 Hz, one
# bearing.  The envelope set reads each window at its own machine's defect frequencies; the
# model's blob carries the speed of most snapshots (10 Hz), and dref-c, which has no reference
# windows, gets a blob of its own all the same (the model's center, its own speed) ----------------
tx=$(it_http POST "$BASE/api/v1/taxonomy/types" "$IT_TMP/ty.json" "${AOP[@]}" -d '{"name":"dref_machine",
  "bearing":{"balls":9,"ball_mm":7.94,"pitch_mm":39.04,"contact_deg":0}}')
tx="$tx $(put_machines dref_machine dref-asset)"
[ "$tx" = "200 200 200 200 200 200 200" ] || it_fail "taxonomy: type, assets, devices' assets" "$tx $(cat "$IT_TMP/da.json")"
train_fewshot 4 "$DS"
M4=$MT
ok=$(it_json "$IT_TMP/model4.json" 'int(d["metrics"]["features"]["set"] == "envelope" and d["metrics"]["features"]["kinematics_distinct"] == 2 and abs(d["metrics"]["features"]["kinematics"]["shaft_hz"] - 10) < 1e-6 and d["metrics"]["features"]["shaft_hz_range"] == [10, 12] and d["metrics"]["device_reference"]["own_kinematics"] == 1)' 2>/dev/null)
if [ "$code" = 202 ] && [ "$st" = done ] && [ "$ok" = 1 ]; then
    it_pass "two shaft speeds: model $M4 reads the envelope set, each window at its machine's speed (the model's blob at 10 Hz)"
    fetch_device_blobs "$M4" 4
    ok=$(it_json "$IT_TMP/devs4.json" 'int([(x["own_reference"], x["own_blob"]) for x in d["items"]] == [(True, True), (True, True), (False, True)])')
    [ "$ok" = 1 ] && it_pass "dref-c, no reference windows, gets a blob of its own for its 12 Hz" ||
        it_fail "dref-c's own blob" "$(head -c 400 "$IT_TMP/devs4.json")"
    replay_compare "$M4" "$IT_TMP/devs4.json" "4"
    unlabeled_compare "$M4" "$IT_TMP/model4.json" "4"
    # dref-c's windows through the model's own blob (10 Hz) are read at the wrong defect
    # frequencies: its blob is what makes the device score as the server predicted
    it_http GET "$BASE/api/v1/models/$M4/blob" "$IT_TMP/c4m.blob" "${AML[@]}" >/dev/null
    "$AGENT_BIN" replay --input "$IT_TMP/dref-c.windows.csv" --format csv --rate $RATE --detectors model \
        --model "$IT_TMP/c4m.blob" --model-key "$IT_TMP/model.key" --device-id dref-c \
        --scores "$IT_TMP/c4m.scores.csv" >/dev/null 2>&1
    read -r ok n sa aa worst <<<"$(python3 "$IT_TMP/cmp.py" "$IT_TMP/devs4.json" dref-c "$IT_TMP/c4m.scores.csv" "$IT_TMP/dref-c.rows" $W)"
    [ "$ok" = 0 ] && [ -n "$worst" ] &&
        it_pass "dref-c through the model's 10 Hz blob scores otherwise than predicted (largest difference $worst): its own blob is what keeps the device and the server agreed" ||
        it_fail "the model's blob on dref-c differs" "ok=$ok worst=$worst"
else
    it_fail "two shaft speeds: envelope set per machine" "$code $st $(head -c 900 "$IT_TMP/model4.json")"
fi

# ---- a shaft speed without a bearing: the envelope set reads orders of the shaft, its defect
# energies 0, and the devices still score as the server predicted ---------------------------------
tx=$(it_http POST "$BASE/api/v1/taxonomy/types" "$IT_TMP/ty5.json" "${AOP[@]}" -d '{"name":"dref_nogeo"}')
tx="$tx $(put_machines dref_nogeo dref-nogeo)"
[ "$tx" = "200 200 200 200 200 200 200" ] || it_fail "taxonomy without a bearing" "$tx $(cat "$IT_TMP/da.json")"
train_fewshot 5 "$DS"
M5=$MT
ok=$(it_json "$IT_TMP/model5.json" 'int(d["metrics"]["features"]["set"] == "envelope" and d["metrics"]["features"]["kinematics"]["bearing_balls"] is None and "orders" in d["metrics"]["features"]["kinematics"]["bearing_reason"])' 2>/dev/null)
if [ "$code" = 202 ] && [ "$st" = done ] && [ "$ok" = 1 ]; then
    it_pass "no bearing geometry: model $M5 reads orders of the shaft speed ($(it_json "$IT_TMP/model5.json" 'd["metrics"]["features"]["kinematics"]["bearing_reason"]'))"
    fetch_device_blobs "$M5" 5
    replay_compare "$M5" "$IT_TMP/devs5.json" "5"
else
    it_fail "no bearing geometry: orders" "$code $st $(head -c 900 "$IT_TMP/model5.json")"
fi
it_finish
