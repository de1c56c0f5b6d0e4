# faultlib.sh - helpers for the server-side and clock fault tests
# (server_kill.sh, pg_restart.sh, clock_step.sh; sourced, not run).
#
# The same contract as tests/fault/run.sh: real server, real agents on
# loopback, and after each fault the agent is left to drain its spool and
# tests/fault/check.py asserts the invariant through the REST API (seqs
# contiguous from 1 except reported drops, nothing stored twice, every fully
# spooled file stored).  Each script runs its own server on a port of its own
# so it can kill and restart it without disturbing anyone.
FL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$FL_HERE/../integration/lib/common.sh"
CHECK="python3 $FL_HERE/check.py"

# fl_setup: migrate DATABASE_URL, make an API token and an enrollment secret.
fl_setup() {
    [ -x "$AGENT_BIN" ] || { it_fail setup "$AGENT_BIN not built"; return 1; }
    [ -x "$SERVER_BIN" ] || { it_fail setup "$SERVER_BIN not built"; return 1; }
    "$SERVER_BIN" migrate --database-url "$DATABASE_URL" >"$IT_TMP/migrate.log" 2>&1 ||
        { it_fail migrate "$(tail -n 3 "$IT_TMP/migrate.log")"; return 1; }
    TOKEN=$("$SERVER_BIN" token create --name "$IT_NAME" --role ml 2>"$IT_TMP/token.log" |
            tail -n1 | tr -d '[:space:]')
    [ -n "$TOKEN" ] || { it_fail token "$(tail -n 3 "$IT_TMP/token.log")"; return 1; }
    SECRET=$IT_TMP/enroll-secret
    (umask 077; openssl rand -hex 24 >"$SECRET")
    FL_PORT=$(it_free_port)
    BASE="http://127.0.0.1:$FL_PORT"
}

# fl_server_up: fl_setup and the server's first start; ends the script with
# a FAIL when either fails (what each fault test starts with).
fl_server_up() {
    fl_setup || it_finish
    fl_server_start || { it_fail server-up "$(tail -n 5 "$IT_TMP/server-1.log")"; it_finish; }
}

# fl_sleep_between LO HI: a random pause of LO to HI seconds, so that a
# repeated fault meets the work at a different point each time.
fl_sleep_between() {
    sleep "$(python3 -c 'import random, sys; print(round(random.uniform(float(sys.argv[1]), float(sys.argv[2])), 3))' "$1" "$2")"
}

SERVER_PID=
SERVER_RUNS=0
fl_server_start() {
    SERVER_RUNS=$((SERVER_RUNS + 1))
    it_spawn "server-$SERVER_RUNS" "$SERVER_BIN" serve --port "$FL_PORT" \
        --database-url "$DATABASE_URL" --enroll-secret-file "$SECRET"
    SERVER_PID=${IT_PIDS[-1]}
    it_wait_http "$BASE/healthz" 60
}
fl_server_kill9() {
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
}

AGENT_PID=
RUNS=0
# fl_agent_start DEV URL [extra flags]: a fast simulator that triggers often.
# FL_AGENT_WRAP (an array) may prefix the command, e.g. with env settings.
FL_AGENT_WRAP=()
fl_agent_start() {
    local dev=$1 url=$2; shift 2
    RUNS=$((RUNS + 1))
    mkdir -p "$IT_TMP/$dev/keys"
    it_spawn "agent-$dev-$RUNS" "${FL_AGENT_WRAP[@]}" "$AGENT_BIN" run --device-id "$dev" \
        --server "$url" --source sim --sim-equipment bearing --sim-seed "$RUNS" --sim-speed 20 \
        --pre-s 0.2 --post-s 0.2 --ring-s 2 --heartbeat-s 1 \
        --key-dir "$IT_TMP/$dev/keys" --spool "$IT_TMP/$dev/spool" \
        --enroll-secret-file "$SECRET" "$@"
    AGENT_PID=${IT_PIDS[-1]}
}
fl_agent_kill9() {
    kill -KILL "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID" 2>/dev/null
}
fl_agent_term() {
    local i
    kill -TERM "$AGENT_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    fl_agent_kill9
}
fl_spooled() { ls "$IT_TMP/$1/spool" 2>/dev/null | grep -E '^[0-9]{20}\.snap$' || true; }

# fl_backlog_start DEV: an agent DEV that triggers often and uploads slowly
# (20 kB/s), so a backlog waits in its spool for the server-side faults to
# meet; $IT_TMP/seen starts empty (fl_faults adds the spool files it sees).
fl_backlog_start() {
    : >"$IT_TMP/seen"
    fl_agent_start "$1" "$BASE" --sim-fault-every 0.3 --upload-max-bps 20000
}

# fl_faults DEV N LO HI COMMAND...: N times, after a random pause of LO to
# HI seconds, note DEV's spool files in $IT_TMP/seen (check.py --seen: each
# must end up stored) and run COMMAND, the fault; FL_FAULTS_OK counts the
# times COMMAND succeeded.
fl_faults() {
    local dev=$1 n=$2 lo=$3 hi=$4 k; shift 4
    FL_FAULTS_OK=0
    for ((k = 0; k < n; k++)); do
        fl_sleep_between "$lo" "$hi"
        fl_spooled "$dev" >>"$IT_TMP/seen"
        "$@" && FL_FAULTS_OK=$((FL_FAULTS_OK + 1))
    done
}

# fl_drain DEV: run the agent without injected faults until its spool is
# empty and its latest heartbeat says so and covers every stored seq.
fl_drain() {
    local dev=$1 i st files last hb
    fl_agent_start "$dev" "$BASE" --sim-fault-every 1e9
    for ((i = 0; i < 180; i++)); do
        sleep 1
        [ -z "$(fl_spooled "$dev")" ] || continue
        st=$($CHECK "$BASE" "$TOKEN" "$dev" --state 2>/dev/null) || continue
        files=$(sed -E 's/.*files=(-?[0-9]+).*/\1/' <<<"$st")
        last=$(sed -E 's/.*last=([0-9]+) .*/\1/' <<<"$st")
        hb=$(sed -E 's/.*hb_last=(-?[0-9]+).*/\1/' <<<"$st")
        if [ "$files" = 0 ] && [ "$hb" -ge "$last" ]; then
            fl_agent_term
            return 0
        fi
    done
    fl_agent_term
    return 1
}

# fl_verdict NAME DEV [check.py flags]
fl_verdict() {
    local name=$1 dev=$2 out; shift 2
    if ! fl_drain "$dev"; then
        it_fail "$name" "agent did not drain its spool in 180 s: $(tail -n 3 "$IT_TMP/agent-$dev-$RUNS.log" | tr '\n' ' ')"
        return
    fi
    if out=$($CHECK "$BASE" "$TOKEN" "$dev" "$@" 2>&1); then
        it_pass "$name ($out)"
    else
        it_fail "$name" "$out"
    fi
}

# fl_stored DEV: how many snapshots of DEV the server holds.
fl_stored() {
    $CHECK "$BASE" "$TOKEN" "$1" --state 2>/dev/null | sed -E 's/.*last=([0-9]+) .*/\1/'
}
