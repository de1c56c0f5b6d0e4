#!/usr/bin/env bash
# ui.sh - the labeling UI's performance benchmark (a snapshot usable within
# 300 ms, samples answered within 20 ms), not a test:
#   1. a snapshot of 8 channels x 100,000 i16 samples (bench-ui make, the
#      same wire_encode as the agent), registered and uploaded to a server of
#      our own;
#   2. headless chromium loads /#/snapshot/ID RUNS times (bench/ui.cjs) and
#      reports median / p95 of navigation -> drawn and interactive
#      (Performance API marks set by the page);
#   3. the samples endpoint at a 1,600-pixel view: N requests per run, RUNS_HTTP
#      runs, p50/p95/p99 against GET /healthz measured in the same run.
#
#   make BUILD=build/bench build/bench/bin/precursor-server build/bench/bin/bench-ui
#   BUILD=build/bench bench/ui.sh
#
# Env: BUILD (folder with bin/; an optimized build without sanitizers),
# DATABASE_URL (a database to use; default: a fresh one from scripts/pg.sh),
# RUNS (page loads, 30), N (requests per run, 500), RUNS_HTTP (5), PX (1600),
# SAMPLES (per channel, 100000; 1000000 for the million-point view), UI_DIR
# (the labeling UI to serve, labeling-ui of this tree by default: another
# tree's, with its BUILD, measures that tree with this same bench).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build/bench}
SAMPLES=${SAMPLES:-100000}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SERVER="$BUILD/bin/precursor-server"
HELPER="$BUILD/bin/bench-ui"
for b in "$SERVER" "$HELPER"; do
    [ -x "$b" ] || { echo "ui.sh: $b not built (make BUILD=${BUILD#$ROOT/} $b)" >&2; exit 1; }
done
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "ui.sh: no chromium" >&2; exit 1; }
UI_DIR=${UI_DIR:-$ROOT/labeling-ui}
if [ ! -f "$ROOT/labeling-ui/dist/index.html" ] || [ ! -d "$ROOT/labeling-ui/node_modules/playwright-core" ]; then
    "$ROOT/scripts/ui-build.sh" >&2
fi
[ -f "$UI_DIR/dist/index.html" ] || { echo "ui.sh: $UI_DIR/dist not built (scripts/ui-build.sh of that tree)" >&2; exit 1; }

TMP=$(mktemp -d -t precursor-bench-ui.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
if [ -z "${DATABASE_URL:-}" ]; then
    "$ROOT/scripts/pg.sh" start >&2
    DATABASE_URL=$("$ROOT/scripts/pg.sh" newdb precursor_bench_ui)
fi
export DATABASE_URL
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

"$SERVER" migrate >"$TMP/migrate.log" 2>&1
PASSWORD=$(openssl rand -hex 12)
echo "$PASSWORD" | "$SERVER" user add --username bench-op --role operator 2>/dev/null || true
echo "$PASSWORD" | "$SERVER" user add --username "bench-op-$PORT" --role operator 2>/dev/null
TOKEN=$("$SERVER" token create --name "bench-ui-$PORT" --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
SECRET=$(openssl rand -hex 24)
(umask 077; printf '%s' "$SECRET" >"$TMP/secret")
"$SERVER" serve --port "$PORT" --enroll-secret-file "$TMP/secret" --ui-dir "$UI_DIR" \
    >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

DEV="bench-ui-$PORT"
PK=$("$HELPER" make --out "$TMP/snap.bin" --device-id "$DEV" --channels 8 --samples "$SAMPLES" --rate 10000)
curl -sf -H 'Content-Type: application/json' \
    -d "{\"device_id\":\"$DEV\",\"public_key\":\"$PK\",\"enroll_secret\":\"$SECRET\"}" \
    "$BASE/api/v1/devices/register" >/dev/null
ID=$(curl -sf -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/snap.bin" \
    "$BASE/api/v1/snapshots" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "# $(uname -srm), $(nproc) cpus; snapshot $ID: 8 ch x $SAMPLES i16 samples ($(stat -c %s "$TMP/snap.bin") bytes uploaded)"

echo "## page: navigation -> snapshot drawn and interactive (headless chromium, 1280x800)"
BASE="$BASE" USERNAME="bench-op-$PORT" PASSWORD="$PASSWORD" SNAPSHOT="$ID" RUNS="${RUNS:-30}" \
    node "$ROOT/bench/ui.cjs"

echo "## samples endpoint, whole snapshot at px=${PX:-1600}"
"$HELPER" latency --base "$BASE" --token "$TOKEN" --snapshot "$ID" --px "${PX:-1600}" \
    --n "${N:-500}" --runs "${RUNS_HTTP:-5}"
