#!/usr/bin/env bash
# export.sh - dataset export throughput and the server's memory during it.
#
# One real server on its own database.  A simulated agent uploads a few
# snapshots; SQL then copies them into N snapshots (same envelope bytes, new
# ids and sequence numbers) and labels each whole snapshot, so a version of
# N one-second windows can be exported.  Measured in the same run:
#   - GET .../export?format=npz streamed to a file: MB/s and bytes;
#   - psql "\copy (SELECT envelope ... same rows) TO file": MB/s of PostgreSQL
#     just handing out the same snapshots (the baseline: our export also
#     decodes, converts to float32 and zips);
#   - the server's peak resident memory (VmHWM) before and after the export.
# Both are timed once the server's features worker has computed the seeded
# snapshots' features, in RUNS rounds (default 3) of export then \copy; the
# figures are per round and the medians.
# Usage: DATABASE_URL=... BUILD=build/rel [RUNS=3] bench/export.sh [N_SNAPSHOTS]
# (PERF=FILE records the server with perf during the first export;
# KEEP_NPZ=FILE keeps the first export's bytes.)
# (build without sanitizers: make BUILD=build/rel build/rel/bin/precursor-server
#  build/rel/bin/precursor-agent).  Needs psql on PATH.
set -uo pipefail
N=${1:-2000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build/rel}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SERVER="$BUILD/bin/precursor-server" AGENT="$BUILD/bin/precursor-agent"
: "${DATABASE_URL:?set DATABASE_URL to an empty database}"
export DATABASE_URL
TMP=$(mktemp -d -t precursor-bench-export.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
. "$ROOT/scripts/pgpass.sh"
pg_hide_password "$TMP"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
now() { date +%s.%N; }

"$SERVER" migrate >/dev/null 2>&1 || { echo "migrate failed" >&2; exit 1; }
TOKEN=$("$SERVER" token create --name bench --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
A=(-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json")
openssl rand -hex 24 >"$TMP/secret"
(cd "$TMP" && exec "$SERVER" serve --port "$PORT" --enroll-secret-file "$TMP/secret" \
    --migrations-dir "$ROOT/migrations" --schema-dir "$ROOT/schema") >"$TMP/server.log" 2>&1 &
SPID=$!; PIDS+=($SPID)
for i in $(seq 50); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
mkdir -p "$TMP/k" "$TMP/s"
"$AGENT" run --device-id bench-1 --server "$BASE" --source sim --sim-equipment bearing --sim-seed 1 \
    --sim-speed 50 --sim-fault-every 2 --pre-s 0.5 --post-s 0.5 --key-dir "$TMP/k" --spool "$TMP/s" \
    --enroll-secret-file "$TMP/secret" >"$TMP/agent.log" 2>&1 &
APID=$!; PIDS+=($APID)
for i in $(seq 120); do
    n=$(psql "$DATABASE_URL" -Atqc "SELECT count(*) FROM snapshots" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 3 ] && break; sleep 1
done
kill -TERM "$APID"; sleep 1
# N snapshots for a few devices (day split needs groups), copies of the seeds.
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -v n="$N" >/dev/null <<'EOF' || { echo "seeding failed" >&2; exit 1; }
-- a key of their own each (a key is one device's: migration 0061); the
-- export reads the stored envelopes and verifies no signature
INSERT INTO devices (id, public_key)
SELECT 'bench-d' || g, decode(md5('bench-d' || g || random()) || md5(random()::text), 'hex')
FROM generate_series(0, 3) g;
INSERT INTO snapshots (device_id, seq, trigger_time, sample_rate, sample_type, channel_count, channels,
    pre_samples, post_samples, detector, score, envelope, bytes, sha256)
SELECT 'bench-d' || (g % 4), 1000 + g, s.trigger_time + g * interval '1 minute', s.sample_rate, s.sample_type,
       s.channel_count, s.channels, s.pre_samples, s.post_samples, s.detector, s.score, s.envelope, s.bytes, s.sha256
FROM (SELECT * FROM snapshots ORDER BY id LIMIT 3) s, generate_series(1, :n / 3 + 1) g
LIMIT :n;
INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by)
SELECT id, 0, (pre_samples + post_samples) / sample_rate, '{0}',
       CASE WHEN id % 5 = 0 THEN 'imbalance' ELSE 'normal' END, 'bench'
FROM snapshots WHERE device_id LIKE 'bench-d%';
EOF
LEN=$(psql "$DATABASE_URL" -Atqc "SELECT min((pre_samples + post_samples) / sample_rate) FROM snapshots WHERE device_id LIKE 'bench-d%'")
DS=$(curl -s "${A[@]}" -X POST "$BASE/api/v1/datasets" -d "{\"name\":\"bench\",\"filter\":{\"sources\":[\"human\"]},
  \"window\":{\"length_s\":$LEN,\"stride_s\":$LEN},\"split\":{\"by\":\"device\",\"fractions\":[0.5,0.25,0.25]}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
t0=$(now)
curl -s "${A[@]}" -X POST "$BASE/api/v1/datasets/$DS/versions" >"$TMP/v.json"
t1=$(now)
grep -q '"version":1' "$TMP/v.json" || { echo "version failed: $(cat "$TMP/v.json")" >&2; exit 1; }
# The same conditions for both sides: the server's features worker computes
# the features of every snapshot just seeded (in this process and in its own
# PostgreSQL backend), so the export and \copy are timed only once it has
# caught up (a minute at most), and then in alternating rounds.
for i in $(seq 600); do
    left=$(psql "$DATABASE_URL" -Atqc "SELECT count(*) FROM snapshots s WHERE NOT EXISTS
        (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)" 2>/dev/null || echo 1)
    [ "${left:-1}" = 0 ] && break; sleep 0.1
done
[ "${left:-1}" = 0 ] || echo "warning: features worker still behind ($left snapshots)" >&2
hwm0=$(awk '/VmHWM/ {print $2}' /proc/$SPID/status)
RUNS=${RUNS:-3}
: >"$TMP/rounds"
for r in $(seq "$RUNS"); do
    PERF_PID=
    if [ -n "${PERF:-}" ] && [ "$r" = 1 ]; then  # PERF=FILE: perf record -g of the server during the first export
        perf record -g -o "$PERF" -p "$SPID" >/dev/null 2>&1 &
        PERF_PID=$!
        sleep 0.5
    fi
    t2=$(now)
    curl -s -o "$TMP/x.npz" "${A[@]}" "$BASE/api/v1/datasets/$DS/versions/1/export?format=npz"
    t3=$(now)
    [ -n "$PERF_PID" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null; }
    # KEEP_NPZ=FILE: keep the (first) export to compare
    [ -n "${KEEP_NPZ:-}" ] && [ "$r" = 1 ] && cp "$TMP/x.npz" "$KEEP_NPZ"
    bytes=$(stat -c %s "$TMP/x.npz")
    rm -f "$TMP/x.npz"
    t4=$(now)
    psql "$DATABASE_URL" -q -c "\\copy (SELECT s.envelope FROM snapshots s WHERE s.id IN (SELECT DISTINCT snapshot_id FROM dataset_windows WHERE dataset_id = $DS AND version = 1) ORDER BY s.id) TO '$TMP/copy.bin' WITH (FORMAT binary)"
    t5=$(now)
    cbytes=$(stat -c %s "$TMP/copy.bin")
    rm -f "$TMP/copy.bin"
    echo "$bytes $t2 $t3 $cbytes $t4 $t5 $(cut -d' ' -f1 /proc/loadavg)" >>"$TMP/rounds"
done
hwm1=$(awk '/VmHWM/ {print $2}' /proc/$SPID/status)

python3 - "$N" "$hwm0" "$hwm1" "$t0" "$t1" "$TMP/rounds" <<'EOF'
import statistics, sys
n, h0, h1, t0, t1, rounds = sys.argv[1:]
print("snapshots=%s version_create_s=%.2f" % (n, float(t1) - float(t0)))
ratios, emb, cmb = [], [], []
for i, line in enumerate(open(rounds)):
    b, t2, t3, cb, t4, t5, load = line.split()
    b, cb = int(b), int(cb)
    e, c = float(t3) - float(t2), float(t5) - float(t4)
    emb.append(b / e / 1e6); cmb.append(cb / c / 1e6); ratios.append(emb[-1] / cmb[-1])
    print("round %d: export_npz bytes=%d s=%.2f MB/s=%.1f  psql_copy_envelopes bytes=%d s=%.2f MB/s=%.1f"
          "  ratio=%.2f  load1=%s" % (i + 1, b, e, emb[-1], cb, c, cmb[-1], ratios[-1], load))
print("export_npz median MB/s=%.1f" % statistics.median(emb))
print("psql_copy_envelopes median MB/s=%.1f" % statistics.median(cmb))
print("ratio export/copy MB/s=%.2f  (median of %d rounds; export writes float32 samples, copy the zstd envelopes)"
      % (statistics.median(ratios), len(ratios)))
print("server VmHWM before=%s kB after=%s kB growth=%d kB" % (h0, h1, int(h1) - int(h0)))
EOF
