#!/usr/bin/env bash
# two_servers.sh - servers are stateless: two server processes on one
# database behind a round-robin load balancer (Debian's HAProxy with health
# checks when installed; else a few lines of Python here, alternating
# backends per connection and skipping one that refuses),
# three agents uploading through it.  Every snapshot is stored once, both
# servers take uploads, and when one server is stopped the agents carry on
# through the other with nothing lost.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_setup "$SERVER_BIN" "$AGENT_BIN"
P1=$PORT; P2=$(it_free_port); LB=$(it_free_port)
it_migrate
(umask 077; openssl rand -hex 24 >"$IT_TMP/secret")
it_spawn s1 "$SERVER_BIN" serve --port "$P1" --enroll-secret-file "$IT_TMP/secret"
S1=${IT_PIDS[-1]}
it_spawn s2 "$SERVER_BIN" serve --port "$P2" --enroll-secret-file "$IT_TMP/secret"
cat >"$IT_TMP/lb.py" <<'PY'
import socket, sys, threading, itertools
port, backends = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
rr = itertools.cycle(range(len(backends)))
lock = threading.Lock()
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def handle(c):
    with lock:
        start = next(rr)
    for k in range(len(backends)):
        try:
            u = socket.create_connection(("127.0.0.1", backends[(start + k) % len(backends)]), timeout=2)
            u.settimeout(None)
            break
        except OSError:
            u = None
    if u is None:
        c.close(); return
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(256)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
PY
# A real balancer when Debian's HAProxy is installed (scripts/deps.sh), run
# as a plain foreground process on loopback; the Python proxy above otherwise.
if command -v haproxy >/dev/null 2>&1; then
    cat >"$IT_TMP/haproxy.cfg" <<CFG
global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend fe
    bind 127.0.0.1:$LB
    default_backend servers
backend servers
    balance roundrobin
    option httpchk GET /healthz
    server s1 127.0.0.1:$P1 check inter 500ms fall 2 rise 1
    server s2 127.0.0.1:$P2 check inter 500ms fall 2 rise 1
CFG
    it_spawn lb haproxy -db -f "$IT_TMP/haproxy.cfg"
    LB_KIND=haproxy
else
    it_spawn lb python3 "$IT_TMP/lb.py" "$LB" "$P1" "$P2"
    LB_KIND="own proxy (haproxy not installed)"
fi
it_wait_http "http://127.0.0.1:$P1/healthz" 30 && it_wait_http "http://127.0.0.1:$P2/healthz" 30 &&
    it_wait_http "http://127.0.0.1:$LB/healthz" 10 || { it_fail servers-up "$(tail -n 3 "$IT_TMP/s1.log" "$IT_TMP/s2.log")"; it_finish; }
it_pass "two servers and the load balancer up ($LB_KIND)"

for d in 1 2 3; do
    mkdir -p "$IT_TMP/a$d"
    it_spawn "agent$d" "$AGENT_BIN" run --device-id "lb-$d" --server "http://127.0.0.1:$LB" \
        --source sim --sim-seed "$d" --sim-speed 20 --sim-fault-every 2 --pre-s 0.2 --post-s 0.2 \
        --ring-s 2 --key-dir "$IT_TMP/a$d/keys" --spool "$IT_TMP/a$d/spool" \
        --enroll-secret-file "$IT_TMP/secret"
done
count() { psql "$DATABASE_URL" -Atc "SELECT count(DISTINCT device_id) || ' ' || count(*) FROM snapshots"; }
for ((i = 0; i < 60; i++)); do
    c=$(count); [ "${c%% *}" = 3 ] && [ "${c##* }" -ge 6 ] && break; sleep 1
done
[ "${c%% *}" = 3 ] && it_pass "three agents stored through the balancer ($c)" || it_fail "agents through the balancer" "$c"
n1=$(grep -c "POST /api/v1/snapshots 201" "$IT_TMP/s1.log"); n2=$(grep -c "POST /api/v1/snapshots 201" "$IT_TMP/s2.log")
[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] && it_pass "both servers stored uploads ($n1, $n2)" || it_fail "both servers stored" "$n1, $n2"

kill -TERM "$S1"; wait "$S1" 2>/dev/null
before=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM snapshots")
for ((i = 0; i < 30; i++)); do
    now=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM snapshots"); [ "$now" -gt "$((before + 3))" ] && break; sleep 1
done
[ "$now" -gt "$before" ] && it_pass "one server stopped: uploads go on ($before -> $now)" || it_fail "failover" "$before -> $now"
dups=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM (SELECT device_id, seq FROM snapshots GROUP BY 1, 2 HAVING count(*) > 1) x")
gaps=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM devices d WHERE d.last_seq <> (SELECT count(*) FROM snapshots s WHERE s.device_id = d.id)")
[ "$dups" = 0 ] && it_pass "no snapshot stored twice" || it_fail "duplicates" "$dups"
[ "$gaps" = 0 ] && it_pass "no sequence gaps (last_seq = count per device)" || it_fail "gaps" "$gaps devices"
it_finish
