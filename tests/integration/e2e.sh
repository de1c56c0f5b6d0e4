#!/usr/bin/env bash
# e2e.sh - the whole loop with real parts: agent -> HTTP -> server -> PostgreSQL -> REST API.
#
# A real server on its own port and database, one real agent with the
# simulator at high speed and frequent faults.  Once snapshots are listed, the
# stored envelope is checked with tools that share no code with ours: openssl
# verifies the Ed25519 signature, the zstd CLI decompresses the payload.  Then
# the ingest contract: idempotent re-post, tampered and truncated envelopes
# refused and not stored, health, and authentication.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
WIRE="python3 $IT_ROOT/tests/integration/lib/wire.py"

it_setup "$SERVER_BIN" "$AGENT_BIN"
DEV=sim-e2e-1

# ---- versions: one line each, exit 0, the same build for every program -------------------
LOADGEN_BIN="$BUILD/bin/precursor-loadgen"
for b in "$SERVER_BIN" "$AGENT_BIN" "$LOADGEN_BIN"; do
    name=$(basename "$b")
    out=$("$b" --version 2>&1); rc=$?
    [ "$rc" = 0 ] && [ "$(wc -l <<<"$out")" = 1 ] &&
        grep -Eq "^$name [0-9]+\.[0-9]+\.[0-9]+[^ ]*( \(git [0-9A-Za-z._-]+\))?\$" <<<"$out" &&
        [ "${out#"$name "}" = "$("$SERVER_BIN" --version | sed 's/^precursor-server //')" ] &&
        it_pass "$name --version: $out" || it_fail "$name --version" "rc=$rc $out"
    help=$("$b" --help 2>&1)     # whole: grep -q in a pipe would cut a long help short (SIGPIPE)
    grep -q -- "--version" <<<"$help" && it_pass "$name --help mentions --version" ||
        it_fail "$name --help mentions --version"
done
AGENT_VERSION=$("$AGENT_BIN" --version | sed 's/^precursor-agent //')

# ---- server -----------------------------------------------------------------
it_migrate
it_pass migrate
TOKEN=$("$SERVER_BIN" token create --name e2e --role ml 2>"$IT_TMP/token.log" | tail -n1 | tr -d '[:space:]')
[ -n "$TOKEN" ] || { it_fail token "$(tail -n 3 "$IT_TMP/token.log")"; it_finish; }
AUTH=(-H "Authorization: Bearer $TOKEN")
(umask 077; openssl rand -hex 24 >"$IT_TMP/enroll-secret")

# A command of several subcommands names them all; a missing one is a usage error.
help=$("$SERVER_BIN" user --help 2>&1); missing=""
for c in "user add" "user disable" "user passwd"; do grep -q "$c" <<<"$help" || missing="$missing [$c]"; done
"$SERVER_BIN" token >"$IT_TMP/token-usage.log" 2>&1; rc=$?
[ -z "$missing" ] && [ "$rc" = 2 ] && grep -q "token revoke --id" "$IT_TMP/token-usage.log" &&
    it_pass "user --help lists every subcommand; token alone exits 2 naming them" ||
    it_fail "subcommand usage" "missing$missing rc=$rc $(head -n 2 "$IT_TMP/token-usage.log")"

# At a terminal, user add asks for the password and does not echo it.
out=$(python3 - "$SERVER_BIN" <<'PY' 2>&1
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "user", "add", "--username", "e2e-tty", "--role", "operator"])
seen = b""
for _ in range(100):                      # the prompt, within 10 s
    if select.select([fd], [], [], 0.1)[0]:
        seen += os.read(fd, 4096)
    if b"password for e2e-tty" in seen:
        break
os.write(fd, b"e2e-tty-secret-7391\n")
deadline = time.time() + 60                # Argon2id under sanitizers takes a while
while time.time() < deadline:
    if not select.select([fd], [], [], 1)[0]:
        continue
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    seen += d
_, st = os.waitpid(pid, 0)
print(seen.decode(errors="replace").replace("\r", ""), "status", os.waitstatus_to_exitcode(st))
PY
)
grep -q "password for e2e-tty" <<<"$out" && grep -q "created" <<<"$out" && ! grep -q "e2e-tty-secret" <<<"$out" &&
    it_pass "user add at a terminal: asks, does not echo" || it_fail "user add at a terminal" "$out"

# A model key named but missing stops serve at once (exit 1), not 500s later;
# a UI folder of sources without uPlot is named in a warning before that.
mkdir -p "$IT_TMP/ui-src" && cp "$IT_ROOT/labeling-ui/index.html" "$IT_TMP/ui-src/"
timeout 30 "$SERVER_BIN" serve --port "$PORT" --model-key-file "$IT_TMP/no-such.key" \
    --ui-dir "$IT_TMP/ui-src" >"$IT_TMP/nokey.log" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q 'model-key-file' "$IT_TMP/nokey.log" &&
    it_pass "serve with an unreadable --model-key-file exits 1 at start" ||
    it_fail "serve with an unreadable --model-key-file" "rc=$rc $(tail -n 2 "$IT_TMP/nokey.log")"
grep -q "ui-src: no dist/ and no uPlot" "$IT_TMP/nokey.log" &&
    it_pass "serve warns when the labeling UI has no build and no uPlot" ||
    it_fail "serve warns about a UI without uPlot" "$(grep -i ui "$IT_TMP/nokey.log")"

it_spawn server "$SERVER_BIN" serve --port "$PORT" \
    --enroll-secret-file "$IT_TMP/enroll-secret"
if ! it_wait_http "$BASE/healthz" 30; then
    it_fail server-up "no 200 from /healthz in 30 s: $(tail -n 5 "$IT_TMP/server.log")"; it_finish
fi
code=$(it_http GET "$BASE/healthz" "$IT_TMP/h.json")
[ "$code" = 200 ] && [ "$(it_json "$IT_TMP/h.json" 'd["status"]')" = ok ] &&
    it_pass healthz || it_fail healthz "$code $(cat "$IT_TMP/h.json")"
[ "precursor-server $(it_json "$IT_TMP/h.json" 'd["version"]')" = "$("$SERVER_BIN" --version)" ] &&
    it_pass "healthz says the server's version" || it_fail "healthz version" "$(cat "$IT_TMP/h.json")"
code=$(it_http GET "$BASE/api/v1/models/999999/deployments" "$IT_TMP/nm.json" "${AUTH[@]}")
[ "$code" = 404 ] && [ "$(it_json "$IT_TMP/nm.json" 'd["error"]["code"]')" = not_found ] &&
    it_pass "deployments of a model that does not exist -> 404 JSON" ||
    it_fail "deployments of an unknown model -> 404" "$code $(cat "$IT_TMP/nm.json")"
code=$(it_http DELETE "$BASE/api/v1/snapshots" "$IT_TMP/m.json" -D "$IT_TMP/m.head")
[ "$code" = 405 ] && [ "$(it_json "$IT_TMP/m.json" 'd["error"]["code"]')" = method_not_allowed ] &&
    grep -qi '^Allow: GET, HEAD, POST' "$IT_TMP/m.head" &&
    it_pass "wrong method -> 405 JSON with Allow" || it_fail "wrong method -> 405 with Allow" "$code $(cat "$IT_TMP/m.head" "$IT_TMP/m.json")"

# ---- authentication -------------------------------------------------------------
code=$(it_http GET "$BASE/api/v1/snapshots" "$IT_TMP/e.json")
[ "$code" = 401 ] && it_json "$IT_TMP/e.json" 'd["error"]["code"]' >/dev/null 2>&1 &&
    it_pass "no token -> 401 JSON" || it_fail "no token -> 401 JSON" "got $code"
code=$(it_http GET "$BASE/api/v1/snapshots" "$IT_TMP/e.json" -H "Authorization: Bearer not-a-token")
[ "$code" = 401 ] && it_pass "bad token -> 401" || it_fail "bad token -> 401" "got $code"

# ---- agent ------------------------------------------------------------------------
mkdir -p "$IT_TMP/agent/keys" "$IT_TMP/agent/spool"
it_spawn agent "$AGENT_BIN" run --device-id "$DEV" --server "$BASE" \
    --source sim --sim-equipment bearing --sim-seed 7 --sim-speed 20 --sim-fault-every 4 \
    --pre-s 0.5 --post-s 0.5 --ring-s 5 --heartbeat-s 5 \
    --key-dir "$IT_TMP/agent/keys" --spool "$IT_TMP/agent/spool" \
    --enroll-secret-file "$IT_TMP/enroll-secret"
AGENT_PID=${IT_PIDS[-1]}

n=0
for ((i = 0; i < 90; i++)); do
    if [ "$(it_http GET "$BASE/api/v1/snapshots?limit=10" "$IT_TMP/list.json" "${AUTH[@]}")" = 200 ]; then
        n=$(it_json "$IT_TMP/list.json" 'len(d["items"])' 2>/dev/null || echo 0)
        [ "$n" -gt 0 ] && break
    fi
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 1
done
if [ "$n" -eq 0 ]; then
    it_fail "snapshots listed" "none in 90 s; agent: $(tail -n 5 "$IT_TMP/agent.log" | tr '\n' ' ') server: $(tail -n 5 "$IT_TMP/server.log" | tr '\n' ' ')"
    it_finish
fi
it_pass "snapshots listed ($n after ${i}s)"

# Stop the agent so that counts below are stable.
kill -TERM "$AGENT_PID" 2>/dev/null
for ((i = 0; i < 100; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$AGENT_PID" 2>/dev/null && it_fail "agent stops on SIGTERM" || it_pass "agent stops on SIGTERM"

# Its heartbeats (the first at start, the last as it stopped) say which
# build it runs: the fleet list shows what its --version prints.
code=$(it_http GET "$BASE/api/v1/devices" "$IT_TMP/devices.json" "${AUTH[@]}")
got=$(it_json "$IT_TMP/devices.json" "[x for x in d['items'] if x['id'] == '$DEV'][0]['agent_version']" 2>/dev/null)
[ "$code" = 200 ] && [ -n "$AGENT_VERSION" ] && [ "$got" = "$AGENT_VERSION" ] &&
    it_pass "GET /api/v1/devices: agent_version $got from the heartbeat" ||
    it_fail "agent_version in GET /api/v1/devices" "$code want '$AGENT_VERSION' got '$got'"

# ---- the listed fields ---------------------------------------------------------------
it_json "$IT_TMP/list.json" 'd["items"][0]' >"$IT_TMP/item.json"
if python3 - "$IT_TMP/item.json" "$DEV" <<'EOF'
import json, sys
it = json.load(open(sys.argv[1]))
need = ["id", "device_id", "seq", "trigger_time", "sample_rate", "channels", "bytes"]
missing = [k for k in need if k not in it]
assert not missing, "missing fields %s" % missing
assert it["device_id"] == sys.argv[2], it["device_id"]
assert isinstance(it["seq"], int) and it["seq"] >= 1, it["seq"]
assert isinstance(it["sample_rate"], (int, float)) and it["sample_rate"] > 0
assert isinstance(it["bytes"], int) and it["bytes"] > 64
ch = it["channels"]
assert isinstance(ch, list) and ch and all("name" in c and "unit" in c for c in ch), ch
EOF
then it_pass "list item fields"; else it_fail "list item fields" "$(cat "$IT_TMP/item.json")"; fi
ID=$(it_json "$IT_TMP/item.json" 'd["id"]')
BYTES=$(it_json "$IT_TMP/item.json" 'd["bytes"]')
SEQ=$(it_json "$IT_TMP/item.json" 'd["seq"]')

code=$(it_http GET "$BASE/api/v1/snapshots/$ID" "$IT_TMP/one.json" "${AUTH[@]}")
[ "$code" = 200 ] && [ "$(it_json "$IT_TMP/one.json" 'd["id"]')" = "$ID" ] &&
    it_pass "get one by id" || it_fail "get one by id" "$code"

# ---- raw bytes: signature (openssl) and payload (zstd CLI) ----------------------------------
code=$(it_http GET "$BASE/api/v1/snapshots/$ID/raw" "$IT_TMP/env.bin" "${AUTH[@]}")
size=$(stat -c %s "$IT_TMP/env.bin" 2>/dev/null || echo 0)
[ "$code" = 200 ] && [ "$size" = "$BYTES" ] && it_pass "raw bytes ($size)" ||
    it_fail "raw bytes" "status $code, $size bytes, list says $BYTES"

mkdir -p "$IT_TMP/split"
if $WIRE split "$IT_TMP/env.bin" "$IT_TMP/split" >"$IT_TMP/meta.json" 2>"$IT_TMP/split.err"; then
    it_pass "envelope layout as in WIRE.md"
    [ "$(it_json "$IT_TMP/meta.json" 'd["device_id"]')" = "$DEV" ] &&
        [ "$(it_json "$IT_TMP/meta.json" 'd["seq"]')" = "$SEQ" ] &&
        it_pass "envelope device and seq match the listing" ||
        it_fail "envelope device and seq match the listing" "$(cat "$IT_TMP/meta.json")"
else
    it_fail "envelope layout as in WIRE.md" "$(cat "$IT_TMP/split.err")"
fi

code=$(it_http GET "$BASE/api/v1/devices/$DEV" "$IT_TMP/dev.json" "${AUTH[@]}")
pk=$(it_json "$IT_TMP/dev.json" 'd["public_key"]' 2>/dev/null)
if [ "$code" = 200 ] && [ "$(printf '%s' "$pk" | base64 -d 2>/dev/null | wc -c)" = 32 ]; then
    it_pass "device public key"
    # Raw Ed25519 key -> DER SubjectPublicKeyInfo (RFC 8410) for openssl.
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex("302a300506032b6570032100"))' >"$IT_TMP/pub.der"
    printf '%s' "$pk" | base64 -d >>"$IT_TMP/pub.der"
    if openssl pkeyutl -verify -pubin -inkey "$IT_TMP/pub.der" -keyform DER -rawin \
            -in "$IT_TMP/split/signed.bin" -sigfile "$IT_TMP/split/sig.bin" >"$IT_TMP/verify.out" 2>&1; then
        it_pass "openssl verifies the Ed25519 signature"
    else
        it_fail "openssl verifies the Ed25519 signature" "$(cat "$IT_TMP/verify.out")"
    fi
    # The same check must fail on one flipped bit, or it proves nothing.
    python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[60]^=1; open(sys.argv[2],"wb").write(b)' \
        "$IT_TMP/split/signed.bin" "$IT_TMP/split/signed-bad.bin"
    openssl pkeyutl -verify -pubin -inkey "$IT_TMP/pub.der" -keyform DER -rawin \
        -in "$IT_TMP/split/signed-bad.bin" -sigfile "$IT_TMP/split/sig.bin" >/dev/null 2>&1 &&
        it_fail "openssl rejects a flipped bit" || it_pass "openssl rejects a flipped bit"
else
    it_fail "device public key" "status $code: $(head -c 300 "$IT_TMP/dev.json")"
fi

if zstd -q -d -c "$IT_TMP/split/payload.bin" >"$IT_TMP/samples.bin" 2>"$IT_TMP/zstd.err"; then
    want=$(it_json "$IT_TMP/meta.json" 'd["content_bytes"]')   # v2: samples + block records
    got=$(stat -c %s "$IT_TMP/samples.bin")
    [ "$got" = "$want" ] && it_pass "zstd CLI decompresses the payload ($got bytes)" ||
        it_fail "zstd CLI decompresses the payload" "$got bytes, header says $want"
else
    it_fail "zstd CLI decompresses the payload" "$(cat "$IT_TMP/zstd.err")"
fi

# ---- ingest contract ---------------------------------------------------------------------
post() { it_http POST "$BASE/api/v1/snapshots" "$2" -H 'Content-Type: application/octet-stream' --data-binary "@$1"; }
count() { $WIRE list-all "$BASE" "$TOKEN" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
before=$(count)

code=$(post "$IT_TMP/env.bin" "$IT_TMP/again.json")
[ "$code" = 200 ] && [ "$(it_json "$IT_TMP/again.json" 'd["id"]')" = "$ID" ] &&
    it_pass "same envelope again -> 200 same id" ||
    it_fail "same envelope again -> 200 same id" "$code $(head -c 300 "$IT_TMP/again.json")"

# A new seq under the old signature: the signature must catch it.
$WIRE set-u64 "$IT_TMP/env.bin" 16 987654321 "$IT_TMP/tampered.bin"
code=$(post "$IT_TMP/tampered.bin" "$IT_TMP/tampered.json")
ecode=$(it_json "$IT_TMP/tampered.json" 'd["error"]["code"]' 2>/dev/null)
[[ "$code" == 4?? ]] && [ -n "$ecode" ] && it_pass "tampered envelope -> $code $ecode" ||
    it_fail "tampered envelope -> 4xx JSON" "$code $(head -c 300 "$IT_TMP/tampered.json")"

head -c 100 "$IT_TMP/env.bin" >"$IT_TMP/truncated.bin"
code=$(post "$IT_TMP/truncated.bin" "$IT_TMP/trunc.json")
ecode=$(it_json "$IT_TMP/trunc.json" 'd["error"]["code"]' 2>/dev/null)
[[ "$code" == 4?? ]] && [ -n "$ecode" ] && it_pass "truncated envelope -> $code $ecode" ||
    it_fail "truncated envelope -> 4xx JSON" "$code $(head -c 300 "$IT_TMP/trunc.json")"

after=$(count)
$WIRE list-all "$BASE" "$TOKEN" >"$IT_TMP/all.json"
[ "$before" = "$after" ] && ! it_json "$IT_TMP/all.json" '[x for x in d if x["seq"]==987654321]' | grep -q seq &&
    it_pass "nothing stored from bad envelopes ($after snapshots)" ||
    it_fail "nothing stored from bad envelopes" "before $before, after $after"

code=$(it_http GET "$BASE/healthz" /dev/null)
[ "$code" = 200 ] && it_pass "server still serving" || it_fail "server still serving" "$code"

it_finish
