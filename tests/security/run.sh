#!/usr/bin/env bash
# run.sh - the security catalogue: bad input and the wrong people, against a
# real server on loopback (run by scripts/test.sh with BUILD, DATABASE_URL
# and PORT; alone, it makes them itself).
#
# Sets up what the cases need - API tokens of each role, an operator's
# browser session, an expired session, the forge helper (forge.c) - then
# runs catalogue.py (access matrix from schema/openapi.json, SQL injection,
# path traversal, oversized input, slow clients, zstd bombs, replays, a
# revoked device, forged model blobs), bodies.py (unknown keys in JSON
# bodies), round2.py and tls.sh (HTTPS and pinning).
# Prints `PASS name` / `FAIL name: why`; exits non-zero on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../integration/lib/common.sh"
IT_NAME=security
MAX_BODY=1048576

it_env >/dev/null || { it_fail setup "no database"; it_finish; }
[ -x "$SERVER_BIN" ] || { it_fail setup "$SERVER_BIN not built"; it_finish; }
"$SERVER_BIN" migrate --database-url "$DATABASE_URL" >"$IT_TMP/migrate.log" 2>&1 ||
    { it_fail migrate "$(tail -n 3 "$IT_TMP/migrate.log")"; it_finish; }
token() { "$SERVER_BIN" token create --name "sec-$1" --role "$1" 2>>"$IT_TMP/token.log" | tail -n1 | tr -d '[:space:]'; }
TOKEN_ADMIN=$(token admin) TOKEN_OPERATOR=$(token operator) TOKEN_ML=$(token ml)
# A token of its own for the revocation case (round2.py, accounts).
TOKEN_SPARE=$("$SERVER_BIN" token create --name sec-spare --role ml 2>>"$IT_TMP/token.log" | tail -n1 | tr -d '[:space:]')
[ -n "$TOKEN_ADMIN" ] && [ -n "$TOKEN_OPERATOR" ] && [ -n "$TOKEN_ML" ] ||
    { it_fail tokens "$(tail -n 3 "$IT_TMP/token.log")"; it_finish; }
PW=$(openssl rand -hex 16)
for u in sec-op sec-exp sec-victim; do
    printf '%s\n' "$PW" | "$SERVER_BIN" user add --username "$u" --role operator \
        --database-url "$DATABASE_URL" >>"$IT_TMP/user.log" 2>&1 ||
        { it_fail "user add $u" "$(tail -n 3 "$IT_TMP/user.log")"; it_finish; }
done
SECRET=$IT_TMP/enroll-secret
(umask 077; openssl rand -hex 24 >"$SECRET")

# The forge helper, linked with the same schema archive as the server.
SAN_FLAGS=
# (grep without -q reads all of nm's output: no SIGPIPE under pipefail)
nm "$BUILD/lib/libprecursor-schema.a" 2>/dev/null | grep __asan_ >/dev/null && SAN_FLAGS="-fsanitize=address,undefined"
FORGE=$IT_TMP/forge
${CC:-cc} -std=c11 -D_GNU_SOURCE -O1 -g $SAN_FLAGS -I"$IT_ROOT" "$HERE/forge.c" \
    "$BUILD/lib/libprecursor-schema.a" $(pkg-config --cflags --libs libzstd libsodium) -lm \
    -o "$FORGE" 2>"$IT_TMP/forge.log" || { it_fail "forge helper builds" "$(tail -n 3 "$IT_TMP/forge.log")"; it_finish; }

# A copy of the agent to serve: the installer case tampers with it.
AGENT_SERVED=$IT_TMP/agent-served
cp "$AGENT_BIN" "$AGENT_SERVED"
it_spawn server "$SERVER_BIN" serve --port "$PORT" --database-url "$DATABASE_URL" \
    --enroll-secret-file "$SECRET" --max-body $MAX_BODY --agent-binary "$AGENT_SERVED"
SERVER_PID=${IT_PIDS[-1]}
it_wait_http "$BASE/healthz" 60 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

# login USER: prints "COOKIE CSRF" of a new session.
login() {
    curl -s -D "$IT_TMP/h-$1" -o "$IT_TMP/b-$1" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"$PW\"}" "$BASE/api/v1/session" >/dev/null
    local c s
    c=$(grep -i -o 'prc_session=[0-9a-f]*' "$IT_TMP/h-$1" | head -n1 | cut -d= -f2)
    s=$(it_json "$IT_TMP/b-$1" 'd.get("csrf","")' 2>/dev/null)
    echo "$c $s"
}
read -r SESSION_COOKIE SESSION_CSRF <<<"$(login sec-op)"
read -r EXPIRED_COOKIE EXPIRED_CSRF <<<"$(login sec-exp)"
if [ -z "$SESSION_COOKIE" ] || [ -z "$SESSION_CSRF" ] || [ -z "$EXPIRED_COOKIE" ]; then
    it_fail "operator logs in" "$(head -c 200 "$IT_TMP/b-sec-op")"
    it_finish
fi
# The session works before it expires, so a 401 later is the expiry's doing.
code=$(curl -s -o /dev/null -w '%{http_code}' -b "prc_session=$EXPIRED_COOKIE" "$BASE/api/v1/session")
[ "$code" = 200 ] && it_pass "a fresh session is accepted" || it_fail "a fresh session is accepted" "got $code"
psql -X -q "$DATABASE_URL" -c "UPDATE sessions SET expires_at = now() - interval '1 minute'
    WHERE user_id = (SELECT id FROM users WHERE username = 'sec-exp')" >/dev/null ||
    it_fail "expire a session" "psql failed"

OPENAPI=${OPENAPI:-$IT_ROOT/schema/openapi.json}   # another copy: to see the catalogue fail
export BASE OPENAPI DATABASE_URL TOKEN_ADMIN TOKEN_OPERATOR TOKEN_ML \
    SESSION_COOKIE SESSION_CSRF EXPIRED_COOKIE EXPIRED_CSRF FORGE SERVER_PID MAX_BODY IT_TMP
export ENROLL_SECRET=$(cat "$SECRET")
# The operator's login, for the case that logging in (open to anyone) is not refused.
export SESSION_USER=sec-op SESSION_PASSWORD=$PW
python3 "$HERE/catalogue.py" || IT_FAILS=$((IT_FAILS + 1))
# Unknown keys in JSON bodies: named in each route's answer, logged once.
SERVER_LOG=$IT_TMP/server.log python3 "$HERE/bodies.py" || IT_FAILS=$((IT_FAILS + 1))
# Round two (docs/SECURITY.md, "Round two"): slow and greedy clients last,
# since they take connection slots for up to a minute.
SERVER_LOG=$IT_TMP/server.log AGENT_SERVED=$AGENT_SERVED TOKEN_SPARE=$TOKEN_SPARE SERVER_BIN=$SERVER_BIN python3 "$HERE/round2.py" ||
    IT_FAILS=$((IT_FAILS + 1))

# A forged model blob on the agent: a genuine blob from the committed corpus
# (signed by the key of seed 00 01 .. 1f, tests/unit/schema/check_model.c)
# with one parameter byte changed must fail on its signature, while the
# genuine one passes the signature (and is then refused for its channel
# layout, which is not this CSV's): so the refusal is the signature's doing.
MODEL_PK=03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8
genuine=$IT_ROOT/tests/fuzz/corpus/model/good_anomaly
csv=$IT_ROOT/tests/fuzz/corpus/csv/nab.csv
if [ -f "$genuine" ] && [ -f "$csv" ]; then
    echo "$MODEL_PK" >"$IT_TMP/model.key"
    cp "$genuine" "$IT_TMP/forged.model"
    python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-80] ^= 1
open(p, "wb").write(b)' "$IT_TMP/forged.model"
    "$AGENT_BIN" replay --input "$csv" --scores "$IT_TMP/scores-g.csv" --model "$genuine" \
        --model-key "$IT_TMP/model.key" >"$IT_TMP/model-g.log" 2>&1
    "$AGENT_BIN" replay --input "$csv" --scores "$IT_TMP/scores-f.csv" --model "$IT_TMP/forged.model" \
        --model-key "$IT_TMP/model.key" >"$IT_TMP/model-f.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q "signature does not verify" "$IT_TMP/model-f.log" &&
       ! grep -q "signature" "$IT_TMP/model-g.log" && [ ! -s "$IT_TMP/scores-f.csv" ]; then
        it_pass "agent refuses a forged model blob on its signature (exit $rc), not the genuine one"
    else
        it_fail "agent refuses a forged model blob on its signature" \
            "exit $rc: $(tail -n 1 "$IT_TMP/model-f.log"); genuine: $(tail -n 1 "$IT_TMP/model-g.log")"
    fi
else
    it_fail "forged model blob" "no genuine blob or CSV in tests/fuzz/corpus"
fi

if grep -q -E 'AddressSanitizer|runtime error|LeakSanitizer' "$IT_TMP/server.log"; then
    it_fail "server clean under sanitizers" "$(grep -m1 -E 'AddressSanitizer|runtime error|LeakSanitizer' "$IT_TMP/server.log")"
else
    it_pass "server log free of sanitizer reports"
fi
kill -TERM "$SERVER_PID" 2>/dev/null

# HTTPS and the agent's certificate checks: a server of its own.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])') \
    "$HERE/tls.sh" || IT_FAILS=$((IT_FAILS + 1))
it_finish
