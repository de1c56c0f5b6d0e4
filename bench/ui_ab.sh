#!/usr/bin/env bash
# ui_ab.sh - two builds of the server and the labeling UI side by side, for
# a noisy machine: both serve the same kind of snapshot (8 channels x
# SAMPLES i16 samples, bench-ui make) from servers of their own at once, and
#   1. headless chromium loads /#/snapshot/ID on A and B alternately, RUNS
#      loads each (bench/ui_ab.cjs), so that both see the same load of the
#      machine; per side the median and p95 of the first animation frame
#      with the snapshot interactive (the probe bench/ui.cjs uses);
#   2. head-of-line (bench/ui_hol.py): on each server a spectrum of all
#      channels on one kept-alive connection and a window's samples on
#      seven others, TRIES times; the slowest of the seven per try.
#
#   BUILD_A=build/bench UI_A=labeling-ui BUILD_B=<other>/build/bench \
#   UI_B=<other>/labeling-ui bench/ui_ab.sh
#
# Env: BUILD_A, UI_A, BUILD_B, UI_B (bin/ folders and UI trees, each UI
# built by its tree's scripts/ui-build.sh), DATABASE_URL (default: a fresh
# database from scripts/pg.sh), SAMPLES (1000000), RUNS (30), TRIES (12),
# CHROMIUM.  Not a test: figures only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SAMPLES=${SAMPLES:-1000000}
abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
BUILD_A=$(abs "${BUILD_A:-build/bench}"); UI_A=$(abs "${UI_A:-labeling-ui}")
BUILD_B=$(abs "${BUILD_B:?BUILD_B: the other build}"); UI_B=$(abs "${UI_B:?UI_B: the other UI tree}")
for b in "$BUILD_A" "$BUILD_B"; do
    for x in precursor-server bench-ui; do
        [ -x "$b/bin/$x" ] || { echo "ui_ab.sh: $b/bin/$x not built" >&2; exit 1; }
    done
done
for u in "$UI_A" "$UI_B"; do
    [ -f "$u/dist/index.html" ] || { echo "ui_ab.sh: $u/dist not built (scripts/ui-build.sh of that tree)" >&2; exit 1; }
done
[ -d "$ROOT/labeling-ui/node_modules/playwright-core" ] || "$ROOT/scripts/ui-build.sh" >&2

TMP=$(mktemp -d -t precursor-bench-ui-ab.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
if [ -z "${DATABASE_URL:-}" ]; then
    "$ROOT/scripts/pg.sh" start >&2
    DATABASE_URL=$("$ROOT/scripts/pg.sh" newdb precursor_bench_ui_ab)
fi
export DATABASE_URL
"$BUILD_A/bin/precursor-server" migrate >"$TMP/migrate.log" 2>&1
SECRET=$(openssl rand -hex 24)
(umask 077; printf '%s' "$SECRET" >"$TMP/secret")

# side NAME BUILD UI: a server of its own with a user and a snapshot; prints
# its JSON description for ui_ab.cjs.
side() {
    local name=$1 build=$2 ui=$3 port pw dev pk id
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    pw=$(openssl rand -hex 12)
    echo "$pw" | "$build/bin/precursor-server" user add --username "bench-ab-$port" --role operator 2>/dev/null
    "$build/bin/precursor-server" serve --port "$port" --enroll-secret-file "$TMP/secret" --ui-dir "$ui" \
        >"$TMP/server-$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    dev="bench-ab-$port"
    pk=$("$build/bin/bench-ui" make --out "$TMP/snap-$name.bin" --device-id "$dev" --channels 8 \
         --samples "$SAMPLES" --rate 10000 2>/dev/null)
    curl -sf -H 'Content-Type: application/json' \
        -d "{\"device_id\":\"$dev\",\"public_key\":\"$pk\",\"enroll_secret\":\"$SECRET\"}" \
        "http://127.0.0.1:$port/api/v1/devices/register" >/dev/null
    id=$(curl -sf -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/snap-$name.bin" \
         "http://127.0.0.1:$port/api/v1/snapshots" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    printf '{"name":"%s","BASE":"http://127.0.0.1:%s","USERNAME":"bench-ab-%s","PASSWORD":"%s","SNAPSHOT":"%s"}' \
        "$name" "$port" "$port" "$pw" "$id"
}
# side() runs in this shell (not a subshell) so that PIDS keeps the servers
side A "$BUILD_A" "$UI_A" >"$TMP/a.json"
side B "$BUILD_B" "$UI_B" >"$TMP/b.json"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) A: $BUILD_A + $UI_A; B: $BUILD_B + $UI_B; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## page: first frame with the snapshot interactive, A and B loaded alternately"
SIDES="[$(cat "$TMP/a.json"),$(cat "$TMP/b.json")]" RUNS="${RUNS:-30}" node "$ROOT/bench/ui_ab.cjs"
echo "## head-of-line: a spectrum of every channel beside a window's samples on 7 other connections"
for f in a b; do
    python3 "$ROOT/bench/ui_hol.py" "$TMP/$f.json" "${TRIES:-12}"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
