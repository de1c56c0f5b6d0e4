#!/usr/bin/env bash
# soak.sh - a benchmark, not CI: SOAK_AGENTS (200) simulated agents against
# one server on loopback for SOAK_SECONDS (600).  Samples the server's
# resident memory every SOAK_SAMPLE_S (10) seconds, then stops the agents,
# lets every spool drain, and counts per device: snapshots stored, gaps (seqs
# below the highest stored that are missing), seqs stored twice, upload
# errors in the agent logs and error lines in the server log.
#
#   DATABASE_URL=... bench/soak.sh          (a database it may fill; default:
#                                            scripts/pg.sh newdb precursor_soak)
#
# Builds without sanitizers into build/soak.  Prints one summary line
#   agents=N seconds=S stored=N gaps=N dups=N upload_errors=N server_errors=N
#   rss_start_mb=X rss_end_mb=Y rss_max_mb=Z
# and keeps the RSS samples in build/soak/rss.csv.  The figures go to
# docs/BENCHMARKS.md with the command that made them.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
AGENTS=${SOAK_AGENTS:-200}
SECS=${SOAK_SECONDS:-600}
SAMPLE_S=${SOAK_SAMPLE_S:-10}
FAULT_EVERY=${SOAK_FAULT_EVERY:-10}     # mean seconds between triggers, per agent
RATE=${SOAK_RATE:-500}                  # simulator sample rate, Hz (200 agents share the CPU)
B=build/soak
OUT=$B/run
make --no-print-directory -j"$(nproc)" BUILD=$B $B/bin/precursor-server $B/bin/precursor-agent \
    >"$B.log" 2>&1 || { tail -n 20 "$B.log"; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
if [ -z "${DATABASE_URL:-}" ]; then
    scripts/pg.sh start >/dev/null || exit 1
    DATABASE_URL=$(scripts/pg.sh newdb precursor_soak) || exit 1
fi
. scripts/pgpass.sh
pg_hide_password "$OUT"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
SECRET=$OUT/enroll-secret
(umask 077; openssl rand -hex 24 >"$SECRET")
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
trap cleanup EXIT

$B/bin/precursor-server serve --port "$PORT" --database-url "$DATABASE_URL" \
    --enroll-secret-file "$SECRET" --threads 8 >"$OUT/server.log" 2>&1 &
SERVER=$!
pids+=($SERVER)
for ((i = 0; i < 150; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && break
    sleep 0.2
done

# agent N [flags]: agent N; the last --sim-fault-every given wins.  Always
# started with &, so it runs in a subshell: exec makes $! the agent itself,
# which the TERM at the end must reach.
agent() {
    local n=$1; shift
    exec "$B/bin/precursor-agent" run --device-id "soak-$n" --server "$BASE" --source sim \
        --sim-seed "$n" --sim-fault-every "$FAULT_EVERY" --rate "$RATE" --heartbeat-s 30 \
        --key-dir "$OUT/a$n/keys" --spool "$OUT/a$n/spool" --enroll-secret-file "$SECRET" \
        "$@" >>"$OUT/agent-$n.log" 2>&1
}
for ((i = 1; i <= AGENTS; i++)); do
    mkdir -p "$OUT/a$i"
    agent "$i" &
    pids+=($!)
done
echo "soak: $AGENTS agents for ${SECS}s against $BASE" >&2

rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status" 2>/dev/null; }
echo "t_s,rss_mb" >"$B/rss.csv"
start=$(date +%s)
while :; do
    now=$(date +%s)
    echo "$((now - start)),$(rss)" >>"$B/rss.csv"
    [ $((now - start)) -ge "$SECS" ] && break
    sleep "$SAMPLE_S"
done

# Stop the agents, then let each drain what it spooled (no new triggers).
for p in "${pids[@]:1}"; do kill -TERM "$p" 2>/dev/null; done
wait "${pids[@]:1}" 2>/dev/null
pids=($SERVER)
left() { find "$OUT" -name '*.snap' -path '*/spool/*' | wc -l; }
before_drain=$(left)
if [ "$before_drain" -gt 0 ]; then
    for ((i = 1; i <= AGENTS; i++)); do
        [ -n "$(ls "$OUT/a$i/spool" 2>/dev/null | grep '\.snap$')" ] || continue
        agent "$i" --sim-fault-every 1e9 &
        pids+=($!)
    done
    for ((t = 0; t < 120 && $(left) > 0; t++)); do sleep 1; done
    for p in "${pids[@]:1}"; do kill -TERM "$p" 2>/dev/null; done
    wait "${pids[@]:1}" 2>/dev/null
    pids=($SERVER)
fi
rss_end=$(rss)
q() { psql -X -q -tA "$DATABASE_URL" -c "$1"; }
stored=$(q "SELECT count(*) FROM snapshots WHERE device_id LIKE 'soak-%'")
gaps=$(q "SELECT coalesce(sum(mx - n), 0) FROM (SELECT max(seq) AS mx, count(DISTINCT seq) AS n
          FROM snapshots WHERE device_id LIKE 'soak-%' GROUP BY device_id) d")
dups=$(q "SELECT count(*) - count(DISTINCT (device_id, seq)) FROM snapshots WHERE device_id LIKE 'soak-%'")
devices=$(q "SELECT count(DISTINCT device_id) FROM snapshots WHERE device_id LIKE 'soak-%'")
upload_errors=$(cat "$OUT"/agent-*.log | grep -c -E '^upload: |fatal' || true)   # the exit summary's "errors 0" is not one
server_errors=$(grep -c -E ' error ' "$OUT/server.log" || true)
read -r rss_start rss_max < <(awk -F, 'NR == 2 {s = $2} NR > 1 && $2 > m {m = $2} END {print s, m}' "$B/rss.csv")
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null
pids=()
echo "agents=$AGENTS seconds=$SECS devices_stored=$devices stored=$stored gaps=$gaps dups=$dups" \
     "spooled_at_stop=$before_drain left_after_drain=$(left) upload_errors=$upload_errors" \
     "server_errors=$server_errors rss_start_mb=$rss_start rss_end_mb=$rss_end rss_max_mb=$rss_max"
