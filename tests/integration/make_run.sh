#!/usr/bin/env bash
# make_run.sh - the stack `make run` brings up, as a newcomer meets it:
# scripts/run.sh started by make on a terminal of its own (a pseudo-terminal)
# with its var/ in a scratch folder, its own port and database.  Checks the
# credentials file, the live fleet's first snapshots, the README (every
# ```sh block of README.md runs as written against this stack, from a folder
# whose var/ is the stack's; no other block may talk to the stack), the
# supervisor (the server and an agent killed and started again, PostgreSQL
# untouched), and that Ctrl-C in the terminal stops everything with make's
# status 0.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_setup "$SERVER_BIN" "$AGENT_BIN"
command -v make >/dev/null || { it_fail setup "make missing"; it_finish; }

VAR="$IT_TMP/var"
STOP="$IT_TMP/stop"
printf 'run:\n\t@%s/scripts/run.sh\n' "$IT_ROOT" >"$IT_TMP/Makefile"

# Whatever happens, nothing the stack started outlives the test.
stack_cleanup() {
    local f
    touch "$STOP"
    sleep 2
    for f in "$VAR"/run/*.pid; do
        [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
    done
    it_cleanup
}
trap stack_cleanup EXIT

PRECURSOR_VAR="$VAR" BUILD="$BUILD" PORT="$PORT" DATABASE_URL="$DATABASE_URL" \
    python3 "$IT_ROOT/tests/integration/lib/ctrl_c.py" "$STOP" "$IT_TMP/make-run.log" \
    make --no-print-directory -f "$IT_TMP/Makefile" run &
RUNNER=$!

# demo-history runs before the server starts: give it time under the sanitizers.
if it_wait_http "$BASE/healthz" 300; then
    it_pass "make run: the server answers"
else
    it_fail "make run: the server answers" "$(tail -n 20 "$IT_TMP/make-run.log")"
    it_finish
fi
CREDS="$VAR/demo-credentials"
for ((i = 0; i < 100; i++)); do
    grep -q '^operator_token=' "$CREDS" 2>/dev/null && [ -s "$VAR/run/sim-motor-1.pid" ] && break
    sleep 0.2
done
mode=$(stat -c %a "$CREDS" 2>/dev/null)
keys=$(sed -n 's/=.*//p' "$CREDS" 2>/dev/null | tr '\n' ' ')
[ "$mode" = 600 ] && [ "$keys" = "admin_user admin_password api_token operator_token database_url " ] &&
    it_pass "var/demo-credentials: mode 0600, admin login, api_token, operator_token, database_url" ||
    it_fail "var/demo-credentials" "mode $mode, keys: $keys"
TOKEN=$(sed -n 's/^api_token=//p' "$CREDS")
OPTOKEN=$(sed -n 's/^operator_token=//p' "$CREDS")
code=$(it_http POST "$BASE/api/v1/taxonomy/types" "$IT_TMP/optype.json" -H "Authorization: Bearer $OPTOKEN" \
    -H 'Content-Type: application/json' -d '{"name":"doc_test_fan","description":"made by the operator token"}')
[ "$code" = 200 ] || [ "$code" = 201 ] && it_pass "the operator token writes (POST /api/v1/taxonomy/types: $code)" ||
    it_fail "the operator token writes" "$code $(cat "$IT_TMP/optype.json")"

# The live fleet uploads within a minute.
live=0
for ((i = 0; i < 120; i++)); do
    live=$(curl -s -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/snapshots?limit=50" |
        python3 -c 'import json,sys; print(sum(1 for s in json.load(sys.stdin)["items"] if s["device_id"].startswith("sim-")))' 2>/dev/null || echo 0)
    [ "$live" -ge 1 ] && break
    sleep 1
done
[ "$live" -ge 1 ] && it_pass "the simulated fleet's snapshots are listed ($live)" ||
    it_fail "the simulated fleet's snapshots are listed" "none in 120 s"

# ---- the README, as written ------------------------------------------------------
# Debian's python3 (with python3-numpy, scripts/deps.sh) first, as on a stock
# Debian 12 where the README's `python3` is /usr/bin/python3.
DOC="$IT_TMP/readme"
mkdir -p "$DOC"
ln -s "$VAR" "$DOC/var"
python3 - "$IT_ROOT/README.md" "$DOC" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)
n = 0
for lang, body in blocks:
    if lang == "sh":
        n += 1
        open("%s/block-%d.sh" % (sys.argv[2], n), "w").write(body)
    elif "var/demo-credentials" in body or "127.0.0.1" in body:
        print("untested block talks to the stack:", body.splitlines()[0])
        sys.exit(1)
PY
[ $? -eq 0 ] && it_pass "README: every block that talks to the stack is a sh block" ||
    it_fail "README: every block that talks to the stack is a sh block"
nblocks=$(ls "$DOC"/block-*.sh 2>/dev/null | wc -l)
[ "$nblocks" -ge 2 ] || it_fail "README has its sh blocks" "$nblocks found"
for f in "$DOC"/block-*.sh; do
    b=$(basename "$f" .sh)
    if (cd "$DOC" && PATH="/usr/bin:/bin:$PATH" PORT="$PORT" bash -euo pipefail "$f") \
            >"$DOC/$b.out" 2>"$DOC/$b.err"; then
        it_pass "README $b runs as written: $(head -c 100 "$DOC/$b.out" | tr '\n' ' ')"
    else
        it_fail "README $b runs as written" "$(tail -n 5 "$DOC/$b.err") $(tail -c 300 "$DOC/$b.out")"
    fi
done
# The ML snippet ends with numpy.load printing the shape of X and the classes
# (after the dataset list, which curl prints without a newline), then the
# machines in train and in test: split by device, one demo bearing in each.
last=$(grep -l "np.load" "$DOC"/block-*.sh | head -n 1)
last=${last%.sh}.out
tail -n 2 "$last" | head -n 1 | grep -Eq "\([0-9]+, [0-9]+, [0-9]+\) \[b'[a-z_]+'( b'[a-z_]+'){2,}\]$" &&
    it_pass "README's ML snippet prints the npz's shape and three or more classes: $(tail -n 2 "$last" | head -n 1)" ||
    it_fail "README's ML snippet prints a shape and several classes" "$(tail -n 3 "$last")"
tail -n 1 "$last" | grep -Eq '^train: demo-bearing-[0-9]+ test: demo-bearing-[0-9]+$' &&
    [ "$(tail -n 1 "$last" | grep -Eo 'demo-bearing-[0-9]+' | sort -u | wc -l)" = 2 ] &&
    it_pass "README's ML snippet splits by device: $(tail -n 1 "$last")" ||
    it_fail "README's ML snippet splits by device" "$(tail -n 1 "$last")"
# The five-example snippet: a few-shot model on the envelope set, its
# evaluation and the baselines' on the same windows, each with an interval.
five=$(grep -l 'kind.*fewshot' "$DOC"/block-*.sh | head -n 1)
five=${five%.sh}.out
grep -Eq '^model [0-9]+: envelope set$' "$five" &&
    grep -Eq '^fewshot \(the model.s\): accuracy [0-9]+% \[[0-9]+, [0-9]+\] on [0-9]+ windows$' "$five" &&
    grep -Eq '^3-NN \(simple spectral\): accuracy [0-9]+%' "$five" &&
    it_pass "README's five-example snippet trains on the envelope set and prints the evaluation: $(head -n 2 "$five" | tr '\n' ' ')" ||
    it_fail "README's five-example snippet" "$(head -c 400 "$five")"
grep -q '"device_id":"sim-' "$DOC/block-1.out" && ! grep -q '"demo":true' "$DOC/block-1.out" &&
    it_pass "README's listing shows the live fleet, no demo data" ||
    it_fail "README's listing shows the live fleet" "$(head -c 300 "$DOC/block-1.out")"

# ---- small things a newcomer trips over ---------------------------------------------
# The README's dataset (the newest named "bearings"): on a database an earlier
# run left behind, dataset 1 may be another definition.
it_http GET "$BASE/api/v1/datasets" "$IT_TMP/datasets.json" -H "Authorization: Bearer $TOKEN" >/dev/null
DSID=$(it_json "$IT_TMP/datasets.json" 'max(x["id"] for x in d["items"] if x["name"] == "bearings")' 2>/dev/null || echo 1)
code=$(it_http POST "$BASE/api/v1/datasets/$DSID/versions" "$IT_TMP/v2.json" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{}')
[ "$code" = 201 ] && it_pass "POST .../versions with a body of {} is accepted (201)" ||
    it_fail "POST .../versions with {}" "$code $(cat "$IT_TMP/v2.json")"
code=$(it_http GET "$BASE/api/v1/session" "$IT_TMP/probe.json")
[ "$code" = 200 ] && [ "$(it_json "$IT_TMP/probe.json" 'd["authenticated"]')" = False ] &&
    it_pass "the session probe without a session: 200 {\"authenticated\": false}" ||
    it_fail "the session probe" "$code $(cat "$IT_TMP/probe.json")"
code=$(it_http GET "$BASE/api/v1/models" "$IT_TMP/models.json" -H "Authorization: Bearer $TOKEN")
[ "$code" = 200 ] && it_pass "GET /api/v1/models lists models" || it_fail "GET /api/v1/models" "$code"
help=$("$SERVER_BIN" --help 2>&1)
missing=""
for c in serve migrate "user add" "token create" "enroll create" demo-history; do
    grep -q "  $c" <<<"$help" || missing="$missing [$c]"
done
[ -z "$missing" ] && it_pass "precursor-server --help lists every command" || it_fail "precursor-server --help" "missing$missing"
help=$("$AGENT_BIN" --help 2>&1)
missing=""
for c in run enroll replay; do grep -q "precursor-agent $c" <<<"$help" || missing="$missing [$c]"; done
[ -z "$missing" ] && it_pass "precursor-agent --help lists every command" || it_fail "precursor-agent --help" "missing$missing"
out=$(make --no-print-directory -C "$IT_ROOT" help 2>&1)
grep -q '^  make run' <<<"$out" && ! grep -q '?=\|:=' <<<"$out" &&
    it_pass "make help prints the targets and nothing else" || it_fail "make help" "$out"

# ---- the supervisor -----------------------------------------------------------
pg_ok() { psql -X -q -A -t "$DATABASE_URL" -c 'SELECT 1' 2>/dev/null | grep -qx 1; }
# restarted NAME OLD_PID: until NAME runs again under another pid
restarted() {
    local n
    for ((n = 0; n < 150; n++)); do
        local p
        p=$(cat "$VAR/run/$1.pid" 2>/dev/null)
        [ -n "$p" ] && [ "$p" != "$2" ] && kill -0 "$p" 2>/dev/null && { echo "$p"; return 0; }
        sleep 0.2
    done
    return 1
}
old=$(cat "$VAR/run/server.pid")
kill -KILL "$old"
if new=$(restarted server "$old") && it_wait_http "$BASE/healthz" 60; then
    it_pass "the server killed (SIGKILL) is started again and answers (pid $old -> $new)"
else
    it_fail "the server killed is started again" "$(tail -n 5 "$VAR/log/run.log" 2>/dev/null)"
fi
pg_ok && it_pass "PostgreSQL stays up while the server restarts" || it_fail "PostgreSQL stays up"
grep -q "server exited (status 137" "$VAR/log/run.log" && grep -q "server restarted" "$VAR/log/run.log" &&
    it_pass "var/log/run.log records the exit and the restart" ||
    it_fail "var/log/run.log records the exit and the restart" "$(cat "$VAR/log/run.log" 2>/dev/null)"
old=$(cat "$VAR/run/sim-pump-1.pid")
kill -TERM "$old"
new=$(restarted sim-pump-1 "$old") && it_pass "an agent that exits is started again (pid $old -> $new)" ||
    it_fail "an agent that exits is started again" "$(tail -n 5 "$VAR/log/run.log")"
# Twice in a row: the pause doubles.
old=$new
kill -KILL "$old"
restarted sim-pump-1 "$old" >/dev/null &&
    grep -q "sim-pump-1 exited (status 137.*restarting in 2 s" "$VAR/log/run.log" &&
    it_pass "a second exit waits longer (backoff 1 s, then 2 s)" ||
    it_fail "a second exit waits longer" "$(grep sim-pump-1 "$VAR/log/run.log")"

# ---- Ctrl-C ---------------------------------------------------------------------
pids=$(cat "$VAR"/run/*.pid 2>/dev/null | tr '\n' ' ')
touch "$STOP"
rc=0
wait "$RUNNER" || rc=$?
[ "$rc" -eq 0 ] && ! grep -q 'Error\|Interrupt' "$IT_TMP/make-run.log" &&
    it_pass "Ctrl-C in the terminal: make run ends with status 0" ||
    it_fail "Ctrl-C: make run ends with status 0" "status $rc: $(tail -n 5 "$IT_TMP/make-run.log")"
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
[ -z "$left" ] && [ -n "$pids" ] && it_pass "Ctrl-C stopped the server and every agent" ||
    it_fail "Ctrl-C stopped every process" "still running:$left (of $pids)"
pg_ok && it_pass "a PostgreSQL given by DATABASE_URL is left running" || it_fail "PostgreSQL left running"
it_finish
