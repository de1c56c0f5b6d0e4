#!/usr/bin/env bash
# tls.sh - HTTPS on the server (--tls-cert/--tls-key) and the agent's checks
# of it (--ca-file, --pin-sha256), with a self-signed certificate made here
# by openssl.  Real server, real agents, loopback only.
#
# Cases: the server refuses half a pair and a key that is not PEM; it serves
# HTTPS to a client that trusts the certificate; a client that does not trust
# it gets no answer; plain HTTP and TLS 1.1 get no answer; an agent with
# --ca-file registers and uploads; with the right pin too; with a wrong pin,
# or without the CA, it uploads nothing and the server stores nothing; by the
# certificate's DNS name it uploads, by an address the certificate does not
# name it uploads nothing.
#
# Environment: BUILD, DATABASE_URL (as scripts/test.sh gives them).
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/../integration/lib/common.sh"
IT_NAME=security-tls

it_env >/dev/null || { it_fail setup "no database"; it_finish; }
"$SERVER_BIN" migrate --database-url "$DATABASE_URL" >"$IT_TMP/migrate.log" 2>&1 ||
    { it_fail migrate "$(tail -n 3 "$IT_TMP/migrate.log")"; it_finish; }
TOKEN=$("$SERVER_BIN" token create --name tls --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
SECRET=$IT_TMP/enroll-secret
(umask 077; openssl rand -hex 24 >"$SECRET")

C=$IT_TMP/cert.pem K=$IT_TMP/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$K" -out "$C" >"$IT_TMP/openssl.log" 2>&1 ||
    { it_fail "openssl makes a certificate" "$(tail -n 2 "$IT_TMP/openssl.log")"; it_finish; }
chmod 600 "$K"
# Another key pair: the "wrong" pin and an untrusted impostor.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$IT_TMP/other-key.pem" -out "$IT_TMP/other.pem" >/dev/null 2>&1
spki_pin() {
    echo "sha256//$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64)"
}
PIN=$(spki_pin "$C")
WRONG_PIN=$(spki_pin "$IT_TMP/other.pem")

# Refusals at start-up: exit 2 (usage), not a server without TLS.
"$SERVER_BIN" serve --port 0 --database-url "$DATABASE_URL" --tls-cert "$C" >"$IT_TMP/half.log" 2>&1
rc=$?
[ $rc -eq 2 ] && it_pass "serve refuses --tls-cert without --tls-key" ||
    it_fail "serve refuses --tls-cert without --tls-key" "exit $rc"
"$SERVER_BIN" serve --port 0 --database-url "$DATABASE_URL" --tls-cert "$C" --tls-key "$SECRET" \
    >"$IT_TMP/badkey.log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "tls-key" "$IT_TMP/badkey.log" && it_pass "serve refuses a key file that is not PEM" ||
    it_fail "serve refuses a key file that is not PEM" "exit $rc"

it_spawn server "$SERVER_BIN" serve --port "$PORT" --database-url "$DATABASE_URL" \
    --enroll-secret-file "$SECRET" --tls-cert "$C" --tls-key "$K"
S=https://127.0.0.1:$PORT
ok=0
for ((i = 0; i < 150; i++)); do
    [ "$(curl -s --cacert "$C" -o /dev/null -w '%{http_code}' "$S/healthz")" = 200 ] && { ok=1; break; }
    sleep 0.2
done
[ $ok -eq 1 ] && it_pass "HTTPS healthz 200 for a client trusting the certificate" ||
    { it_fail "HTTPS healthz" "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

curl -s -o /dev/null "$S/healthz"; rc=$?
[ $rc -eq 60 ] && it_pass "a client without the CA refuses the server (curl exit 60)" ||
    it_fail "a client without the CA refuses the server" "curl exit $rc"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")
[ "$code" != 200 ] && it_pass "plain HTTP on the HTTPS port gets no answer ($code)" ||
    it_fail "plain HTTP on the HTTPS port gets no answer" "200"
curl -s --cacert "$C" --tlsv1.0 --tls-max 1.1 -o /dev/null "$S/healthz"; rc=$?
[ $rc -ne 0 ] && it_pass "TLS 1.1 and older refused (curl exit $rc)" ||
    it_fail "TLS 1.1 and older refused" "handshake succeeded"
proto=$(curl -s --cacert "$C" -o /dev/null -w '%{scheme} %{http_version}' -v "$S/healthz" 2>&1 |
        grep -o -m1 -E 'TLSv1\.[23]')
[ -n "$proto" ] && it_pass "negotiated $proto" || it_fail "negotiated TLS 1.2 or 1.3" "none seen"

# M3: under the server's own TLS the session cookie is Secure (no proxy
# header needed) and every answer carries HSTS.
TPW=$(openssl rand -hex 16)
printf '%s\n' "$TPW" | "$SERVER_BIN" user add --username tls-op --role operator \
    --database-url "$DATABASE_URL" >"$IT_TMP/user.log" 2>&1
curl -s --cacert "$C" -D "$IT_TMP/login.h" -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"username\":\"tls-op\",\"password\":\"$TPW\"}" "$S/api/v1/session"
cookie=$(grep -i '^set-cookie: prc_session=' "$IT_TMP/login.h" | tr -d '\r')
echo "$cookie" | grep -q '; Secure' && it_pass "M3: session cookie is Secure under --tls-cert" ||
    it_fail "M3: session cookie is Secure under --tls-cert" "${cookie:-no Set-Cookie}"
grep -qi '^strict-transport-security: max-age=' "$IT_TMP/login.h" &&
    it_pass "HSTS on answers over the server's TLS" || it_fail "HSTS over TLS" "no header"

stored() {
    curl -s --cacert "$C" -H "Authorization: Bearer $TOKEN" "$S/api/v1/snapshots?limit=1000" |
        python3 -c 'import json,sys; print(sum(1 for x in json.load(sys.stdin)["items"] if x["device_id"]==sys.argv[1]))' "$1" 2>/dev/null || echo 0
}
# agent DEV SECONDS [flags]: run an agent against the HTTPS server.
agent() {
    local dev=$1 secs=$2; shift 2
    mkdir -p "$IT_TMP/$dev"
    timeout -s TERM "$secs" "$AGENT_BIN" run --device-id "$dev" --server "$S" --source sim \
        --sim-speed 20 --sim-fault-every 0.3 --pre-s 0.2 --post-s 0.2 --ring-s 2 \
        --heartbeat-s 1 --key-dir "$IT_TMP/$dev/keys" --spool "$IT_TMP/$dev/spool" \
        --enroll-secret-file "$SECRET" "$@" >"$IT_TMP/agent-$dev.log" 2>&1
}
agent tls-ca 8 --ca-file "$C"
n=$(stored tls-ca)
[ "$n" -gt 0 ] && it_pass "agent with --ca-file registers and uploads over HTTPS ($n stored)" ||
    it_fail "agent with --ca-file uploads over HTTPS" "$(tail -n 3 "$IT_TMP/agent-tls-ca.log" | tr '\n' ' ')"
agent tls-pin 8 --ca-file "$C" --pin-sha256 "$PIN"
n=$(stored tls-pin)
[ "$n" -gt 0 ] && it_pass "agent with the right --pin-sha256 uploads ($n stored)" ||
    it_fail "agent with the right pin uploads" "$(tail -n 3 "$IT_TMP/agent-tls-pin.log" | tr '\n' ' ')"
agent tls-badpin 6 --ca-file "$C" --pin-sha256 "$WRONG_PIN"
n=$(stored tls-badpin)
[ "$n" -eq 0 ] && grep -q -i "pin" "$IT_TMP/agent-tls-badpin.log" &&
    it_pass "agent with a wrong pin sends nothing (0 stored, pin mismatch logged)" ||
    it_fail "agent with a wrong pin sends nothing" "$n stored; $(tail -n 2 "$IT_TMP/agent-tls-badpin.log" | tr '\n' ' ')"
agent tls-noca 6
n=$(stored tls-noca)
[ "$n" -eq 0 ] && it_pass "agent without the CA sends nothing (0 stored)" ||
    it_fail "agent without the CA sends nothing" "$n stored"
# Names: the certificate names localhost and 127.0.0.1.  By name the agent is
# served; the same server reached as 127.0.0.2 (loopback too, when it answers
# there) is refused: the address is checked against the certificate's IP names.
S_IP=$S
S=https://localhost:$PORT
agent tls-name 8 --ca-file "$C"
S=$S_IP
n=$(stored tls-name)
[ "$n" -gt 0 ] && it_pass "agent reaching the server by its DNS name uploads ($n stored)" ||
    it_fail "agent reaching the server by name uploads" "$(tail -n 3 "$IT_TMP/agent-tls-name.log" | tr '\n' ' ')"
if [ "$(curl -sk -m 5 -o /dev/null -w '%{http_code}' "https://127.0.0.2:$PORT/healthz")" = 200 ]; then
    S=https://127.0.0.2:$PORT
    agent tls-wrongip 6 --ca-file "$C"
    S=$S_IP
    n=$(stored tls-wrongip)
    [ "$n" -eq 0 ] && grep -q "does not name 127.0.0.2" "$IT_TMP/agent-tls-wrongip.log" &&
        it_pass "agent refuses a certificate that does not name the address (0 stored)" ||
        it_fail "agent refuses a certificate that does not name the address" "$n stored; $(tail -n 2 "$IT_TMP/agent-tls-wrongip.log" | tr '\n' ' ')"
fi
"$AGENT_BIN" run --device-id x --server "$S" --pin-sha256 "sha256//short" >"$IT_TMP/pinfmt.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "pin-sha256" "$IT_TMP/pinfmt.log" && it_pass "agent refuses a malformed pin at start" ||
    it_fail "agent refuses a malformed pin at start" "exit $rc"
kill -0 "${IT_PIDS[0]}" 2>/dev/null && it_pass "server still serving after the refused handshakes" ||
    it_fail "server still serving" "$(tail -n 3 "$IT_TMP/server.log")"
it_finish
