#!/usr/bin/env bash
# datasets.sh - the ML team's path with real parts: three simulated agents
# upload snapshots, an operator labels them over the labels API, an ml token
# defines a dataset, freezes a version, exports it (twice: same sha256),
# reads the npz back with numpy when a python with numpy is present, checks
# the manifest's hashes against the archive, gets 422 for a split that
# cannot be honoured and 404 for an unknown version, cancels an export job
# (nothing left behind), and trains a model whose blob verifies with the
# key the server publishes (openssl, no code of ours).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_ml_setup
(umask 077; openssl rand 32 >"$IT_TMP/model.key")

# The server runs in IT_TMP so export jobs write under IT_TMP/var/exports.
(cd "$IT_TMP/run" && exec "$SERVER_BIN" serve --port "$PORT" --enroll-secret-file "$IT_TMP/enroll-secret" \
    --model-key-file "$IT_TMP/model.key" --migrations-dir "$IT_ROOT/migrations" \
    --schema-dir "$IT_ROOT/schema") >"$IT_TMP/server.log" 2>&1 &
IT_PIDS+=($!)
it_wait_http "$BASE/healthz" 30 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

# ---- three agents, same equipment (one channel layout) ------------------------
for d in 1 2 3; do
    mkdir -p "$IT_TMP/a$d/keys" "$IT_TMP/a$d/spool"
    it_spawn "agent$d" "$AGENT_BIN" run --device-id "ds-dev-$d" --server "$BASE" \
        --source sim --sim-equipment bearing --sim-seed "$d" --sim-speed 50 --sim-fault-every 2 \
        --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 5 \
        --key-dir "$IT_TMP/a$d/keys" --spool "$IT_TMP/a$d/spool" \
        --enroll-secret-file "$IT_TMP/enroll-secret"
done
want=4
for ((i = 0; i < 120; i++)); do
    it_http GET "$BASE/api/v1/snapshots?limit=1000" "$IT_TMP/list.json" "${AML[@]}" >/dev/null
    ok=$(python3 - "$IT_TMP/list.json" "$want" <<'EOF' 2>/dev/null
import collections, json, sys
c = collections.Counter(it["device_id"] for it in json.load(open(sys.argv[1]))["items"])
print(int(len(c) == 3 and min(c.values()) >= int(sys.argv[2])))
EOF
)
    [ "$ok" = 1 ] && break
    sleep 1
done
for p in "${IT_PIDS[@]:1}"; do kill -TERM "$p" 2>/dev/null; done
sleep 1
[ "${ok:-0}" = 1 ] && it_pass "snapshots from 3 agents" ||
    { it_fail "snapshots from 3 agents" "$(tail -n 3 "$IT_TMP/agent1.log" | tr '\n' ' ')"; it_finish; }
it_http GET "$BASE/api/v1/snapshots?limit=1000" "$IT_TMP/list.json" "${AML[@]}" >/dev/null

# ---- labels by an operator: alternate normal / imbalance per device ----------
nl=0; bad=0
while read -r id cls end_s; do
    code=$(it_http POST "$BASE/api/v1/snapshots/$id/labels" "$IT_TMP/l.json" "${AOP[@]}" \
        -d "{\"start_s\":0,\"end_s\":$end_s,\"channels\":[0],\"class\":\"$cls\"}")
    [ "$code" = 201 ] && nl=$((nl + 1)) || bad=$((bad + 1))
done < <(python3 - "$IT_TMP/list.json" <<'EOF'
import collections, json, sys
seen = collections.Counter()
for it in sorted(json.load(open(sys.argv[1]))["items"], key=lambda x: x["id"]):
    seen[it["device_id"]] += 1
    # An agent stopped mid-capture cuts a shorter window: label what is there.
    dur = (it["pre_samples"] + it["post_samples"]) / it["sample_rate"]
    print(it["id"], "imbalance" if seen[it["device_id"]] % 2 else "normal", min(1.0, dur))
EOF
)
[ "$bad" = 0 ] && [ "$nl" -ge 12 ] && it_pass "labels via the API ($nl)" || it_fail "labels via the API" "$nl ok, $bad refused: $(cat "$IT_TMP/l.json")"

# ---- dataset and version ---------------------------------------------------------
DEF='{"name":"it bearings","filter":{"sources":["human"],"min_confidence":0.5},
 "window":{"length_s":0.25,"stride_s":0.25,"edge":"majority"},
 "split":{"by":"device","fractions":[0.2,0.2,0.6],"seed":3}}'
code=$(it_http POST "$BASE/api/v1/datasets" "$IT_TMP/op.json" "${AOP[@]}" -d "$DEF")
[ "$code" = 403 ] && it_pass "operator may not define datasets" || it_fail "operator may not define datasets" "$code"
code=$(it_http POST "$BASE/api/v1/datasets" "$IT_TMP/ds.json" "${AML[@]}" -d "$DEF")
DS=$(it_json "$IT_TMP/ds.json" 'd["id"]' 2>/dev/null)
[ "$code" = 201 ] && [ -n "$DS" ] && it_pass "dataset created ($DS)" || { it_fail "dataset created" "$code $(cat "$IT_TMP/ds.json")"; it_finish; }
code=$(it_http POST "$BASE/api/v1/datasets/$DS/versions" "$IT_TMP/v.json" "${AML[@]}")
[ "$code" = 201 ] && [ "$(it_json "$IT_TMP/v.json" 'd["version"]')" = 1 ] && it_pass "version 1 frozen" ||
    { it_fail "version 1 frozen" "$code $(cat "$IT_TMP/v.json")"; it_finish; }
code=$(it_http GET "$BASE/api/v1/datasets" "$IT_TMP/all.json" "${AML[@]}")
[ "$code" = 200 ] && [ "$(it_json "$IT_TMP/all.json" 'len(d["items"])')" -ge 1 ] && it_pass "datasets listed" || it_fail "datasets listed" "$code"

# ---- export twice, same bytes; numpy; manifest -----------------------------------------
U="$BASE/api/v1/datasets/$DS/versions/1"
it_http GET "$U/export?format=npz" "$IT_TMP/a.npz" "${AML[@]}" >"$IT_TMP/c1"
it_http GET "$U/export?format=npz" "$IT_TMP/b.npz" "${AML[@]}" >"$IT_TMP/c2"
h1=$(sha256sum <"$IT_TMP/a.npz" | cut -d' ' -f1); h2=$(sha256sum <"$IT_TMP/b.npz" | cut -d' ' -f1)
[ "$(cat "$IT_TMP/c1")" = 200 ] && [ "$h1" = "$h2" ] && [ -s "$IT_TMP/a.npz" ] &&
    it_pass "npz exported twice, identical sha256 ($h1)" || it_fail "npz identical on re-export" "$h1 vs $h2"

PY=
for p in python3 /usr/bin/python3; do "$p" -c 'import numpy' 2>/dev/null && { PY=$p; break; }; done
if [ -n "$PY" ]; then
    if "$PY" - "$IT_TMP/a.npz" <<'EOF' >"$IT_TMP/np.out" 2>&1
import json, sys, zipfile, numpy as np
d = np.load(sys.argv[1])
X, y, cls, split, groups = d["X"], d["y"], d["classes"], d["split"], d["groups"]
assert X.dtype == np.float32 and X.ndim == 3, (X.dtype, X.shape)
n = X.shape[0]
assert y.shape == (n,) and split.shape == (n,) and groups.shape == (n,) and d["snapshot_id"].shape == (n,)
assert set(cls.astype(str)) == {"imbalance", "normal"}, cls
for g in set(groups):
    assert len(set(split[groups == g])) == 1, "group %s in two splits" % g
assert np.isfinite(X).all()
m = json.loads(zipfile.ZipFile(sys.argv[1]).read("manifest.json"))
assert sum(m["class_counts"].values()) == n
print(n, X.shape)
EOF
    then it_pass "numpy.load reads it ($(cat "$IT_TMP/np.out"))"; else it_fail "numpy.load" "$(tail -n 3 "$IT_TMP/np.out")"; fi
else
    it_pass "numpy check skipped (no python with numpy)"
fi

code=$(it_http GET "$U/manifest" "$IT_TMP/manifest.json" "${AML[@]}")
if [ "$code" = 200 ] && python3 - "$IT_TMP/a.npz" "$IT_TMP/manifest.json" <<'EOF'
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
m = json.load(open(sys.argv[2]))
assert z.read("manifest.json") == open(sys.argv[2], "rb").read(), "manifest differs from the archive's"
for name, f in m["files"].items():
    assert hashlib.sha256(z.read(name)).hexdigest() == f["sha256"], name
assert m["channels"] and m["sample_rate"] > 0 and m["class_weights"] and m["label_sources"]["human"] > 0
EOF
then it_pass "manifest sha256 match the entries"; else it_fail "manifest" "$code"; fi

code=$(it_http GET "$U/export?format=jsonl" "$IT_TMP/a.jsonl" "${AML[@]}")
n_npz=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_windows"])' "$IT_TMP/manifest.json")
[ "$code" = 200 ] && [ "$(wc -l <"$IT_TMP/a.jsonl")" = "$n_npz" ] && it_pass "jsonl: one line per window ($n_npz)" || it_fail jsonl "$code"
code=$(it_http GET "$U/export?format=csv" "$IT_TMP/a.csv" "${AML[@]}")
[ "$code" = 200 ] && [ "$(wc -l <"$IT_TMP/a.csv")" = $((n_npz + 1)) ] && it_pass "csv: header + rows" || it_fail csv "$code"

# ---- bad input ----------------------------------------------------------------------------
code=$(it_http GET "$BASE/api/v1/datasets/$DS/versions/99/export?format=npz" "$IT_TMP/e.json" "${AML[@]}")
[ "$code" = 404 ] && [ "$(it_json "$IT_TMP/e.json" 'd["error"]["code"]')" = not_found ] &&
    it_pass "unknown version -> 404 JSON" || it_fail "unknown version -> 404" "$code"
code=$(it_http POST "$BASE/api/v1/datasets" "$IT_TMP/d2.json" "${AML[@]}" \
    -d '{"name":"impossible","window":{"length_s":0.25,"stride_s":0.25},"split":{"by":"equipment_type","fractions":[0.5,0.25,0.25]}}')
DS2=$(it_json "$IT_TMP/d2.json" 'd["id"]')
code=$(it_http POST "$BASE/api/v1/datasets/$DS2/versions" "$IT_TMP/e.json" "${AML[@]}")
msg=$(it_json "$IT_TMP/e.json" 'd["error"]["message"]' 2>/dev/null)
[ "$code" = 422 ] && case "$msg" in *'class "'*) true ;; *) false ;; esac &&
    it_pass "impossible split -> 422 naming the class ($msg)" || it_fail "impossible split -> 422" "$code $msg"

# ---- export job: progress, file, cancel leaves nothing -----------------------------------------
code=$(it_http POST "$U/export-jobs" "$IT_TMP/j.json" "${AML[@]}" -d '{"format":"npz"}')
JOB=$(it_json "$IT_TMP/j.json" 'd["id"]' 2>/dev/null)
st=$(it_wait_done "$BASE/api/v1/export-jobs/$JOB" "$IT_TMP/js.json" 100 0.1 "${AML[@]}")
it_http GET "$BASE/api/v1/export-jobs/$JOB/file" "$IT_TMP/job.npz" "${AML[@]}" >/dev/null
[ "$code" = 202 ] && [ "$st" = done ] && [ "$(it_json "$IT_TMP/js.json" 'd["percent"]')" = 100.0 ] &&
    [ "$(sha256sum <"$IT_TMP/job.npz" | cut -d' ' -f1)" = "$h1" ] &&
    it_pass "export job: done, 100 %, same bytes" || it_fail "export job" "$code $(cat "$IT_TMP/js.json")"
code=$(it_http DELETE "$BASE/api/v1/export-jobs/$JOB" "$IT_TMP/e.json" "${AML[@]}")
gone=$(it_http GET "$BASE/api/v1/export-jobs/$JOB/file" "$IT_TMP/e2.json" "${AML[@]}")
[ "$code" = 200 ] && [ "$gone" = 404 ] && it_pass "DELETE of a finished job deletes its file" ||
    it_fail "DELETE of a finished job deletes its file" "$code, then file $gone"
code=$(it_http POST "$U/export-jobs" "$IT_TMP/j.json" "${AML[@]}" -d '{"format":"npz"}')
JOB2=$(it_json "$IT_TMP/j.json" 'd["id"]' 2>/dev/null)
code=$(it_http DELETE "$BASE/api/v1/export-jobs/$JOB2" "$IT_TMP/e.json" "${AML[@]}")
sleep 1
it_http GET "$BASE/api/v1/export-jobs/$JOB2" "$IT_TMP/js.json" "${AML[@]}" >/dev/null
st=$(it_json "$IT_TMP/js.json" 'd["status"]')
left=$(ls "$IT_TMP/run/var/exports/" 2>/dev/null | grep -c "^job-$JOB2\." || true)
if [ "$code" = 202 ]; then
    [ "$st" = cancelled ] && [ "$left" = 0 ] && it_pass "cancelled job leaves nothing behind" ||
        it_fail "cancelled job" "status $st, $left files"
else
    it_pass "cancel raced completion ($code, status $st): nothing to check"
fi

# ---- a model, its blob verified by openssl with the published key -----------------------------
code=$(it_http POST "$BASE/api/v1/models" "$IT_TMP/m.json" "${AML[@]}" -d "{\"dataset_id\":$DS,\"version\":1,\"kind\":\"classifier\"}")
MID=$(it_json "$IT_TMP/m.json" 'd["id"]' 2>/dev/null)
st=$(it_wait_done "$BASE/api/v1/models/$MID" "$IT_TMP/ms.json" 100 0.2 "${AML[@]}")
[ "$code" = 202 ] && [ "$st" = done ] &&
    it_pass "model trained ($(it_json "$IT_TMP/ms.json" '"precision %s recall %s, %.2f alerts/operator-hour" % (d["metrics"]["precision"], d["metrics"]["recall"], d["metrics"]["prediction"]["expected_alerts_per_operator_hour"])'))" ||
    it_fail "model trained" "$code $(cat "$IT_TMP/ms.json")"
it_http GET "$BASE/api/v1/models/$MID/blob" "$IT_TMP/model.bin" "${AML[@]}" >/dev/null
it_http GET "$BASE/api/v1/models/signing-key" "$IT_TMP/key.json" "${AML[@]}" >/dev/null
it_json "$IT_TMP/key.json" 'd["public_key"]' | base64 -d >"$IT_TMP/pk.raw"
{ printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; cat "$IT_TMP/pk.raw"; } >"$IT_TMP/pk.der"
sz=$(stat -c %s "$IT_TMP/model.bin")
head -c $((sz - 64)) "$IT_TMP/model.bin" >"$IT_TMP/model.msg"
tail -c 64 "$IT_TMP/model.bin" >"$IT_TMP/model.sig"
if openssl pkeyutl -verify -pubin -inkey "$IT_TMP/pk.der" -keyform DER -rawin \
        -in "$IT_TMP/model.msg" -sigfile "$IT_TMP/model.sig" >/dev/null 2>&1; then
    it_pass "model blob signature verifies with the published key (openssl)"
else
    it_fail "model blob signature (openssl)"
fi
code=$(it_http GET "$BASE/api/v1/models/$MID/header" "$IT_TMP/model.h" "${AML[@]}")
printf '#include "model.h"\nint main(void) { return precursor_model_self_test() ? 0 : 1; }\n' >"$IT_TMP/selftest.c"
[ "$code" = 200 ] && cc -std=c99 -Wall -I"$IT_TMP" "$IT_TMP/selftest.c" -o "$IT_TMP/selftest" -lm 2>"$IT_TMP/cc.err" &&
    "$IT_TMP/selftest" && it_pass "model header compiles (C99) and its self test passes" ||
    it_fail "model header" "$code $(head -n 3 "$IT_TMP/cc.err")"

it_finish
