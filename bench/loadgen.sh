#!/usr/bin/env bash
# loadgen.sh - ingest measured from outside: a real `precursor-server serve`
# and `precursor-loadgen` with a fleet of devices, envelopes signed before the
# clock starts, against binary COPY of the same bytes (bench-ingest's COPY
# baseline, 1 connection) into the same database in the same round.
#
#   DATABASE_URL=... BUILD=build/bench bench/loadgen.sh
#
# Env: DEVICES (512), SECONDS_RUN (5), ROUNDS (3), THREADS (server pool, 4),
# PRESIGN (envelopes per device; default enough for 12,000/s fleet-wide),
# OTHER_SERVER (a second server binary, e.g. the previous commit's, run
# interleaved with this build's in every round), SERVER_ARGS (more `serve`
# flags for every server, e.g. --committers 1 --batch-max 64), PERF (a file: `perf record
# -g` of this build's server during the last round), PACE (1: after the
# flat-out runs of a round, every server again paced at PACE_RATE
# snapshots/s, default half of this build's flat-out rate in that round
# (in even rounds OTHER_SERVER runs first, so neither build always follows
# the COPY baseline):
# the p99 at half the peak), DRAIN (1: after each run, wait until the
# server's features worker has caught up with what the run stored, up to
# DRAIN_MAX_S, 600 s: the next run must not pay for this one's backlog;
# drained=no on the line when it did not finish; drain_s: how long after the
# loadgen ended the last stored snapshot had its features, in seconds).
#
# Prints one line per run and the medians; each run's rate is also divided
# by the round's COPY rate.  Costs per stored snapshot, from /proc (each run
# is a fresh server process, so its counters start at zero):
#   server_cpu_us_per_snapshot   the server's CPU time when the loadgen ends
#   drained_cpu_us_per_snapshot  the same once the features worker caught up
#                                (DRAIN=1): the whole cost of a snapshot
#   pg_cpu_us_per_snapshot       PostgreSQL backends of the server's
#                                connections, at the same moment as drained
# Every device connects from 127.0.0.1, as a fleet behind one NAT does, so
# the servers run with --max-conns-per-ip 0.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build/bench}
DEVICES=${DEVICES:-512}
SECONDS_RUN=${SECONDS_RUN:-5}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-4}
PRESIGN=${PRESIGN:-$(( (12000 * SECONDS_RUN + DEVICES - 1) / DEVICES ))}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
PACE=${PACE:-0}
DRAIN=${DRAIN:-1}
: "${DATABASE_URL:?set DATABASE_URL}"
SERVERS=("$BUILD/bin/precursor-server")
[ -n "${OTHER_SERVER:-}" ] && SERVERS+=("$OTHER_SERVER")
TMP=$(mktemp -d)
SRV_PID=
cleanup() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n 8192 2>/dev/null || true

"${SERVERS[0]}" migrate >/dev/null
pw=$(openssl rand -hex 16)
user=bench-$RANDOM
printf '%s\n' "$pw" | "${SERVERS[0]}" user add --username "$user" --role admin >/dev/null
printf 'admin_user=%s\nadmin_password=%s\n' "$user" "$pw" >"$TMP/creds"

copy_rate() {
    # bench-ingest with only its baselines would run them all; the COPY
    # baseline alone is what this compares with, so run it short.
    BENCH_SECONDS=3 BENCH_RUNS=1 BENCH_ONLY=copy "$BUILD/bin/bench-ingest" 2>/dev/null |
        sed -n 's/.*baseline binary COPY, 1 connection *\([0-9]*\) rows.*/\1/p'
}

count_snapshots() { psql "$DATABASE_URL" -Atc "SELECT count(*) FROM snapshots"; }
pending_features() {
    psql "$DATABASE_URL" -Atc "SELECT count(*) FROM snapshots s WHERE NOT EXISTS
        (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)"
}
# CPU ticks of the PostgreSQL backends serving this database's clients (the
# server's connections; not ours, not an autovacuum worker that happens to
# be on the database).
pg_ticks() {
    local pids t=0 p
    pids=$(psql "$DATABASE_URL" -Atc "SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend'")
    for p in $pids; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$t"
}
per_snapshot() {  # ticks stored -> microseconds per snapshot
    awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (n > 0) ? t / hz * 1e6 / n : 0 }'
}

one_run() {  # server-binary label round [rate]
    local bin=$1 label=$2 round=$3 rate=${4:-0} line before
    before=$(count_snapshots)
    # shellcheck disable=SC2086
    "$bin" serve --port "$PORT" --threads "$THREADS" --device-rate 0 --max-conns-per-ip 0 \
        ${SERVER_ARGS:-} >"$TMP/server.log" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    local perf_pid=
    if [ -n "${PERF:-}" ] && [ "$label" = this ] && [ "$round" = "$ROUNDS" ] && [ "$rate" = 0 ]; then
        # The whole loadgen run: the server is idle while it enrolls and
        # presigns, so nearly every sample is from the timed part.
        perf record -g -o "$PERF" -p "$SRV_PID" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    line=$("$BUILD/bin/precursor-loadgen" --url "http://127.0.0.1:$PORT" --devices "$DEVICES" \
        --seconds "$SECONDS_RUN" --snapshot-bytes 16384 --presign "$PRESIGN" --rate "${rate%.*}" \
        --credentials "$TMP/creds" 2>"$TMP/loadgen.err" | tail -n1)
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
    # The server's CPU time over the whole run (utime + stime, clock ticks),
    # per stored snapshot: what one upload costs, whatever else ran.
    local ticks stored dticks=0 pgt=0
    ticks=$(awk '{ print $14 + $15 }' "/proc/$SRV_PID/stat")
    stored=$(( $(count_snapshots) - before ))
    local drained=yes drain_start=$EPOCHREALTIME drain_s=
    if [ "$DRAIN" = 1 ]; then
        # Until done: a server that leaves a backlog hands its cost to the
        # next run (DRAIN_MAX_S, 600, bounds a stuck one).
        local until=$((SECONDS + ${DRAIN_MAX_S:-600}))
        while [ "$(pending_features)" != 0 ]; do
            [ $SECONDS -ge $until ] && { drained=no; break; }
            sleep 0.5
        done
        drain_s=$(awk -v a="$drain_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
        dticks=$(awk '{ print $14 + $15 }' "/proc/$SRV_PID/stat")
        pgt=$(pg_ticks)
    fi
    kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=
    echo "$line server_cpu_us_per_snapshot=$(per_snapshot "$ticks" "$stored")" \
        "drained_cpu_us_per_snapshot=$(per_snapshot "$dticks" "$stored")" \
        "pg_cpu_us_per_snapshot=$(per_snapshot "$pgt" "$stored")" "drained=$drained" \
        ${drain_s:+"drain_s=$drain_s"}
}

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
declare -A rates ratios cpus dcpus pgcpus p99s p99ds
for r in $(seq "$ROUNDS"); do
    copy=$(copy_rate)
    echo "round $r: binary COPY, 1 connection: $copy rows/s (load $(cut -d' ' -f1-3 /proc/loadavg))"
    # Who goes first alternates by round: the first run follows the COPY
    # baseline's 3 s of writes and its DROP TABLE.
    order=("${!SERVERS[@]}")
    if [ $((r % 2)) = 0 ] && [ ${#SERVERS[@]} -gt 1 ]; then order=(1 0); fi
    this_rate=0
    for i in "${order[@]}"; do
        bin=${SERVERS[$i]}
        label=this; [ $i -gt 0 ] && label=other
        line=$(one_run "$bin" "$label" "$r")
        rate=$(field snapshots_per_s "$line")
        [ $i = 0 ] && this_rate=${rate:-0}
        ratio=$(awk -v a="${rate:-0}" -v b="${copy:-0}" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
        echo "  $label ($bin): $line ratio_to_copy=$ratio"
        cpus[$label]+="$(field server_cpu_us_per_snapshot "$line") "
        dcpus[$label]+="$(field drained_cpu_us_per_snapshot "$line") "
        pgcpus[$label]+="$(field pg_cpu_us_per_snapshot "$line") "
        rates[$label]+="${rate:-0} "
        ratios[$label]+="$ratio "
    done
    if [ "$PACE" = 1 ]; then
        pace=${PACE_RATE:-$(awk -v r="$this_rate" 'BEGIN { printf "%d", r / 2 }')}
        for i in "${order[@]}"; do
            bin=${SERVERS[$i]}
            label=this; [ $i -gt 0 ] && label=other
            line=$(one_run "$bin" "$label" "$r" "$pace")
            echo "  $label paced at $pace/s: $line"
            p99s[$label]+="$(field p99_ms "$line") "
            p99ds[$label]+="$(field p99_from_due_ms "$line") "
        done
    fi
done
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for label in "${!rates[@]}"; do
    echo "median $label: $(med <<<"${rates[$label]}") snapshots/s, $(med <<<"${ratios[$label]}") of the same round's COPY, server CPU $(med <<<"${cpus[$label]}") us per snapshot ($(med <<<"${dcpus[$label]}") us with the features caught up; PostgreSQL $(med <<<"${pgcpus[$label]}") us)${p99s[$label]:+, p99 paced at half: $(med <<<"${p99s[$label]}") ms ($(med <<<"${p99ds[$label]}") ms from when due)}"
done
