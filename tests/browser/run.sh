#!/usr/bin/env bash
# run.sh - the labeling UI end to end in a real browser: its own server on a
# free port and database, a user, a real agent with the simulator at high
# speed for a few seconds to make snapshots, then label.cjs drives Debian's
# chromium through playwright-core.  Env: BUILD (folder with bin/),
# DATABASE_URL (its server: the test makes a database of its own there),
# SHOT_DIR (also copy the screenshots of the main views there, e.g.
# SHOT_DIR=docs).  Screenshots are kept as artifacts in
# $BUILD/test-artifacts/browser/.  Prints PASS/FAIL lines, exits non-zero
# on failure.
set -uo pipefail
. "$(dirname "$0")/../integration/lib/common.sh"

it_env || { it_fail setup "no database"; it_finish; }
for b in "$SERVER_BIN" "$AGENT_BIN"; do
    [ -x "$b" ] || { it_fail setup "$b not built"; it_finish; }
done
[ -x /usr/bin/chromium ] || { it_fail setup "/usr/bin/chromium missing (apt-get install chromium)"; it_finish; }
# The server serves dist/ when it exists: rebuild it when a source is newer,
# or the run would test yesterday's bundle.
if [ ! -f "$IT_ROOT/labeling-ui/dist/index.html" ] || [ ! -d "$IT_ROOT/labeling-ui/node_modules/playwright-core" ] ||
   [ -n "$(find "$IT_ROOT/labeling-ui" -maxdepth 1 -type f \( -name '*.js' -o -name '*.css' -o -name '*.html' \) \
           -newer "$IT_ROOT/labeling-ui/dist/index.html" -print -quit)" ]; then
    "$IT_ROOT/scripts/ui-build.sh" >&2 || { it_fail setup "ui-build.sh failed"; it_finish; }
fi

"$SERVER_BIN" migrate >"$IT_TMP/migrate.log" 2>&1 || { it_fail migrate "$(tail -n 3 "$IT_TMP/migrate.log")"; it_finish; }
USERNAME=operator1
PASSWORD=$(openssl rand -hex 12)
echo "$PASSWORD" | "$SERVER_BIN" user add --username "$USERNAME" --role operator 2>"$IT_TMP/user.log" ||
    { it_fail user "$(cat "$IT_TMP/user.log")"; it_finish; }
ADMIN_PASSWORD=$(openssl rand -hex 12)
echo "$ADMIN_PASSWORD" | "$SERVER_BIN" user add --username admin1 --role admin 2>>"$IT_TMP/user.log" ||
    { it_fail user "$(cat "$IT_TMP/user.log")"; it_finish; }
# an ml user: roles.cjs checks what the pages offer a role that reads labels
ML_PASSWORD=$(openssl rand -hex 12)
echo "$ML_PASSWORD" | "$SERVER_BIN" user add --username ml1 --role ml 2>>"$IT_TMP/user.log" ||
    { it_fail user "$(cat "$IT_TMP/user.log")"; it_finish; }
TOKEN=$("$SERVER_BIN" token create --name browser-test --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
OPTOKEN=$("$SERVER_BIN" token create --name browser-operator --role operator 2>/dev/null | tail -n1 | tr -d '[:space:]')
ADMINTOKEN=$("$SERVER_BIN" token create --name browser-admin --role admin 2>/dev/null | tail -n1 | tr -d '[:space:]')
(umask 077; openssl rand -hex 24 >"$IT_TMP/enroll-secret")

it_spawn server "$SERVER_BIN" serve --port "$PORT" --enroll-secret-file "$IT_TMP/enroll-secret" \
    --ui-dir "$IT_ROOT/labeling-ui"
it_wait_http "$BASE/healthz" 30 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

mkdir -p "$IT_TMP/agent/keys" "$IT_TMP/agent/spool"
it_spawn agent "$AGENT_BIN" run --device-id pump-07 --server "$BASE" \
    --source sim --sim-equipment bearing --sim-seed 5 --sim-speed 20 --sim-fault-every 3 \
    --pre-s 0.5 --post-s 0.5 --ring-s 5 \
    --key-dir "$IT_TMP/agent/keys" --spool "$IT_TMP/agent/spool" \
    --enroll-secret-file "$IT_TMP/enroll-secret"
n=0
for ((i = 0; i < 60; i++)); do
    n=$(curl -s -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/queue?limit=5" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo 0)
    [ "$n" -ge 2 ] && break
    sleep 1
done
[ "$n" -ge 1 ] && it_pass "agent uploaded snapshots ($n)" || { it_fail snapshots "none after 60 s"; it_finish; }

ARTIFACTS="$BUILD/test-artifacts/browser"
mkdir -p "$ARTIFACTS"
BASE="$BASE" USERNAME="$USERNAME" PASSWORD="$PASSWORD" ADMIN_USERNAME=admin1 \
    ADMIN_PASSWORD="$ADMIN_PASSWORD" TOKEN="$TOKEN" ARTIFACTS="$ARTIFACTS" SHOT_DIR="${SHOT_DIR:-}" \
    node "$IT_ROOT/tests/browser/label.cjs" || IT_FAILS=$((IT_FAILS + 1))
# Months of demo history next to the live snapshots (the rules and operations
# pages need a history to show), then rules.cjs
"$SERVER_BIN" demo-history >"$IT_TMP/demo-history.log" 2>&1 ||
    it_fail demo-history "$(tail -n 3 "$IT_TMP/demo-history.log")"
BASE="$BASE" USERNAME="$USERNAME" PASSWORD="$PASSWORD" TOKEN="$TOKEN" ARTIFACTS="$ARTIFACTS" \
    SHOT_DIR="${SHOT_DIR:-}" node "$IT_ROOT/tests/browser/rules.cjs" || IT_FAILS=$((IT_FAILS + 1))
# Then every part's page and the analyst's snapshot view (pages.cjs)
BASE="$BASE" USERNAME="$USERNAME" PASSWORD="$PASSWORD" ADMIN_USERNAME=admin1 \
    ADMIN_PASSWORD="$ADMIN_PASSWORD" TOKEN="$TOKEN" OPTOKEN="$OPTOKEN" ADMINTOKEN="$ADMINTOKEN" ARTIFACTS="$ARTIFACTS" \
    SHOT_DIR="${SHOT_DIR:-}" node "$IT_ROOT/tests/browser/pages.cjs" || IT_FAILS=$((IT_FAILS + 1))
# Then what each role is offered: no write the server would refuse it (roles.cjs)
BASE="$BASE" USERNAME="$USERNAME" PASSWORD="$PASSWORD" ML_USERNAME=ml1 ML_PASSWORD="$ML_PASSWORD" \
    ADMIN_USERNAME=admin1 ADMIN_PASSWORD="$ADMIN_PASSWORD" TOKEN="$TOKEN" ARTIFACTS="$ARTIFACTS" \
    node "$IT_ROOT/tests/browser/roles.cjs" || IT_FAILS=$((IT_FAILS + 1))
# Then the server's rarer refusals, made up in the browser, shown in words (errors.cjs)
BASE="$BASE" ADMIN_USERNAME=admin1 ADMIN_PASSWORD="$ADMIN_PASSWORD" TOKEN="$TOKEN" ARTIFACTS="$ARTIFACTS" \
    node "$IT_ROOT/tests/browser/errors.cjs" || IT_FAILS=$((IT_FAILS + 1))
# Then every page again in a window 800 px wide (narrow.cjs): tables scroll
# in their own boxes, never the page
BASE="$BASE" ADMIN_USERNAME=admin1 ADMIN_PASSWORD="$ADMIN_PASSWORD" TOKEN="$TOKEN" ARTIFACTS="$ARTIFACTS" \
    node "$IT_ROOT/tests/browser/narrow.cjs" || IT_FAILS=$((IT_FAILS + 1))
# The UI (and the agent) send no key the server ignores (schema/openapi.json,
# info): the server logs one warn line per such request.  Lines "by token"
# are this script's own API calls, not the UI's.
bad=$(grep -E 'unknown keys? ignored' "$IT_TMP/server.log" | grep -v -E ' by token [0-9]+: ' | head -n 3)
if [ -z "$bad" ]; then
    it_pass "the UI sent no key the server ignores"
else
    it_fail "the UI sent no key the server ignores" "$bad"
fi
it_finish
