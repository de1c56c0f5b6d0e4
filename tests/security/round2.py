#!/usr/bin/env python3
"""round2.py - the second round of the security catalogue: slow and greedy
clients, login throttling, signed heartbeats, key freshness, security
headers, query bounds, log lines, rules in UTF-8.

    round2.py [GROUP...]     (default: every group; environment as catalogue.py)

Every case answers the finding it is named after in docs/SECURITY.md and
failed before its fix.  Source addresses: the whole of 127.0.0.0/8 is
loopback on Linux, so "many clients" are sockets bound to 127.0.x.y and the
well-behaved client keeps 127.0.0.1 to itself, the way a fleet and an
attacker reach a server from different addresses.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import catalogue as cat  # noqa: E402  (result, request, psql, healthy, ...)

ENV = os.environ
HOST, PORT = cat.HOST, cat.PORT


def rss_kb():
    for line in open("/proc/%s/status" % ENV["SERVER_PID"]):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed_healthz(source="127.0.0.1", timeout=10):
    """Seconds a fresh connection from source takes to get /healthz 200, or None."""
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(HOST, PORT, timeout=timeout, source_address=(source, 0))
        c.request("GET", "/healthz")
        ok = c.getresponse().status == 200
        c.close()
    except OSError:
        return None
    return time.monotonic() - t0 if ok else None


def open_many(n, per_addr, base, first):
    """n sockets connected from base.x (x from first), per_addr per address,
    each having sent `first`.  Refused or reset sockets are left out."""
    socks = []
    for i in range(n):
        addr = "%s.%d" % (base, 2 + i // per_addr)
        s = socket.socket()
        try:
            s.bind((addr, 0))
            s.settimeout(5)
            s.connect((HOST, PORT))
            s.sendall(first)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            s.close()
    return socks


def watch(socks, seconds, every, feed, probe):
    """For `seconds`, send `feed` to each open socket every `every` seconds
    and run probe() each second; returns (closed_at list, probe results).
    A socket counts as closed when the server ends it (EOF, reset, or any
    answer: a slow client must not get its request served)."""
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    closed = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    next_feed, next_probe, probes = t0 + every, t0 + 1, []
    while time.monotonic() - t0 < seconds and len(closed) < len(socks):
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                pass
            closed[s] = time.monotonic() - t0
            sel.unregister(s)
        now = time.monotonic()
        if now >= next_feed:
            for s in socks:
                if s not in closed:
                    try:
                        s.send(feed)
                    except OSError:
                        pass
            next_feed = now + every
        if now >= next_probe:
            probes.append(probe())
            next_probe = time.monotonic() + 1
    for s in socks:
        s.close()
    return [closed.get(s) for s in socks], probes


# ---------------------------------------------------------------------------------------------
def slow_headers():
    """H1: 1,100 clients send a header line every ~10 s from 11 addresses;
    a normal client still gets /healthz within 2 s, each address holds at
    most --max-conns-per-ip, and every slow client is closed by the header
    deadline (10 s; allowed 25 s on a loaded machine)."""
    socks = open_many(1100, 100, "127.0.2", b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    closed, probes = watch(socks, 40, 9.5, b"X-Slow: 1\r\n", timed_healthz)
    worst = max((p if p is not None else 99.0) for p in probes) if probes else 99.0
    cat.result(probes and worst < 2.0,
               "H1: 1,100 slow-header clients, normal client served every second "
               "(slowest /healthz of %d: %.3f s)" % (len(probes), worst),
               "slowest %.3f s (None = failed)" % worst)
    still = sum(1 for c in closed if c is None)
    late = max((c for c in closed if c is not None), default=0.0)
    cat.result(still == 0 and late < 25.0,
               "H1: every slow-header client closed by the header deadline (last after %.1f s)"
               % late, "%d still open after 40 s, last closed after %.1f s" % (still, late))
    # Per address: 100 sockets from one address, at most 64 kept.
    socks = open_many(100, 100, "127.0.3", b"GET /healthz HTTP/1.1\r\n")
    time.sleep(1.5)
    kept = 0
    for s in socks:
        try:
            kept += s.recv(1) != b""
        except BlockingIOError:
            kept += 1
        except OSError:
            pass
        s.close()
    cat.result(kept <= 64, "H1: one address holds at most 64 connections (%d of 100 kept)" % kept,
               "%d of 100 kept" % kept)
    cat.serving("slow headers")


def greedy_bodies():
    """H2: 1,024 uploads from 16 addresses send their first 128 KiB at once,
    then a byte every 5 s: server RSS grows less than 128 MB, every one is
    cut (or refused) within 60 s, a normal client is served meanwhile."""
    max_body = int(ENV["MAX_BODY"])
    head = ("POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % max_body)
    # An envelope's first 16 bytes that declare exactly max_body bytes.
    prefix = b"PRSN\x01\x00\x00\x00" + (56).to_bytes(4, "little") + \
        (max_body - 56 - 64).to_bytes(4, "little")
    first = head.encode() + prefix + b"\0" * (128 * 1024 - len(prefix))
    rss0 = rss_kb()
    peak = [rss0]

    def probe():
        peak[0] = max(peak[0], rss_kb())
        return timed_healthz()

    socks = open_many(1024, 64, "127.0.4", first)
    closed, probes = watch(socks, 75, 5.0, b"\0", probe)
    grew = (peak[0] - rss0) // 1024
    cat.result(grew < 128, "H2: 1,024 greedy trickling uploads, server RSS grew %d MB (< 128)"
               % grew, "grew %d MB" % grew)
    late = max((c if c is not None else 999.0) for c in closed) if closed else 999.0
    cat.result(len(socks) >= 1000 and late < 60.0,
               "H2: every trickling upload cut or refused within 60 s (last after %.1f s, %d sent)"
               % (late, len(socks)), "last after %.1f s (999: never), %d sent" % (late, len(socks)))
    ok = [p for p in probes if p is not None and p < 2.0]
    cat.result(probes and len(ok) == len(probes),
               "H2: normal client served while they trickle (%d of %d /healthz under 2 s)"
               % (len(ok), len(probes)), "%d of %d under 2 s" % (len(ok), len(probes)))
    # An envelope whose own header disagrees with its Content-Length is
    # refused from its first bytes, not buffered to the end.
    bad = b"PRSN\x01\x00\x00\x00" + (56).to_bytes(4, "little") + (10).to_bytes(4, "little")
    st, data, _ = cat.request("POST", "/api/v1/snapshots", bad + b"\0" * 4096,
                              {"Content-Type": "application/octet-stream"})
    cat.result(st == 400, "H2: an envelope whose header disagrees with Content-Length -> 400",
               "got %d %s" % (st, data[:100]))
    cat.serving("greedy bodies")


# ---------------------------------------------------------------------------------------------
def headers_and_queries():
    """Low: security headers on every answer; 400 for over-long, many
    parameters; no forged log lines."""
    for path, hdrs in (("/healthz", {}), ("/", {}), ("/api/v1/nope", {}),
                       ("/api/v1/snapshots", {})):
        st, _, h = cat.request("GET", path, headers=hdrs)
        h = {k.lower(): v for k, v in h.items()}
        missing = [k for k in ("x-content-type-options", "referrer-policy",
                               "content-security-policy", "x-frame-options") if k not in h]
        fa = "frame-ancestors 'none'" in h.get("content-security-policy", "")
        cat.result(not missing and fa, "security headers on %s (%d)" % (path, st),
                   "missing %s, csp %r" % (missing, h.get("content-security-policy")))
    auth = {"Authorization": "Bearer " + ENV["TOKEN_ADMIN"]}
    st, data, _ = cat.request("GET", "/api/v1/queue?device=" + "d" * 70, headers=auth)
    cat.result(st == 400, "a 70-character device filter -> 400, not every device's rows",
               "got %d %s" % (st, data[:100]))
    st, data, _ = cat.request("GET", "/api/v1/snapshots?limit=10&device=" + "x" * 5000,
                              headers=auth)
    cat.result(st == 400, "a 5,000-character query value -> 400", "got %d %s" % (st, data[:80]))
    many = "&".join("p%d=1" % i for i in range(400))
    st, data, _ = cat.request("GET", "/api/v1/snapshots?" + many, headers=auth)
    cat.result(st == 400 and b"error" in data, "400 query parameters -> 400 with a JSON error",
               "got %d %s" % (st, data[:80]))
    # %0a and %0d in a path must not start a line of their own in the log.
    marker = "FORGED%d" % os.getpid()
    cat.request("GET", "/ui/x" + urllib.parse.quote("\n2026-01-01T00:00:00.000Z info " + marker
                                                    + "\r\n"))
    time.sleep(0.5)
    lines = open(ENV["SERVER_LOG"], errors="replace").read().splitlines()
    forged = [l for l in lines if l.startswith("2026-01-01T00:00:00.000Z info " + marker)]
    logged = [l for l in lines if marker in l]
    cat.result(not forged and logged, "%%0a in a URL cannot forge a log line (%d lines name it)"
               % len(logged), "forged: %r" % forged[:1])


def rules_utf8():
    """Low: a rule with curly quotes or é answers 400, not 500 or a closed
    connection, on validate, create and edit."""
    auth = {"Authorization": "Bearer " + ENV["TOKEN_ADMIN"], "Content-Type": "application/json"}
    exprs = ["band_energy(\u201cx\u201d) > 1", "caf\u00e9 > 1", "\u00e9", "rms(ch0) > 1 \u2014"]
    for e in exprs:
        body = json.dumps({"expr": e, "name": "r2-utf8", "weight": 1}).encode()
        st, data, _ = cat.request("POST", "/api/v1/rules/validate", body, auth)
        try:
            v = json.loads(data)
        except ValueError:
            v = {}
        # validate's contract: 200 {"valid": false, "error": {position, message}}
        clear = st == 200 and v.get("valid") is False and "ASCII" in str(v.get("error"))
        cat.result(clear, "rule validate %r -> not valid, naming the byte" % e,
                   "got %d %s" % (st, data[:120]))
        st, data, _ = cat.request("POST", "/api/v1/rules", body, auth)
        cat.result(st == 400 and b'"error"' in data, "rule create %r -> 400" % e,
                   "got %d %s" % (st, data[:120]))
    cat.serving("rules in UTF-8")


def login_from(source, user, password):
    """(status, Retry-After or None) of a login sent from source."""
    try:
        c = http.client.HTTPConnection(HOST, PORT, timeout=60, source_address=(source, 0))
        c.request("POST", "/api/v1/session", json.dumps({"username": user,
                  "password": password}), {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        ra = r.getheader("Retry-After")
        c.close()
        return r.status, ra
    except OSError:
        return 0, None


def login_throttle():
    """M1: 100 wrong passwords for one user from 5 addresses lock neither
    that user (from elsewhere) nor anyone else; the guessing pair itself
    backs off with Retry-After."""
    victim, other, pw = "sec-victim", ENV["SESSION_USER"], ENV["SESSION_PASSWORD"]
    codes = {}
    for a in range(5):
        for _ in range(20):
            st, _ = login_from("127.0.5.%d" % (2 + a), victim, "wrong-password")
            codes[st] = codes.get(st, 0) + 1
    cat.result(codes.get(429, 0) > 0 and set(codes) <= {401, 429},
               "M1: the guessing addresses are throttled (%s)" % codes, "answers %s" % codes)
    st, _ = login_from("127.0.5.20", victim, pw)
    cat.result(st == 200, "M1: after 100 failures from 5 addresses the user logs in from another",
               "got %d" % st)
    st, _ = login_from("127.0.5.2", other, pw)
    cat.result(st == 200, "M1: another user logs in, even from a guessing address (no global lock)",
               "got %d" % st)
    for _ in range(6):
        login_from("127.0.5.30", victim, "wrong-password")
    st, ra = login_from("127.0.5.30", victim, pw)
    cat.result(st == 429 and ra and int(ra) >= 1,
               "M1: the guessing pair waits, even with the right password (429, Retry-After %s)" % ra,
               "got %d, Retry-After %s" % (st, ra))


def seed_for(name):
    """A key seed of this run's own: keys are never reused across devices."""
    return hashlib.sha256(("%s-%d-%f" % (name, os.getpid(), time.time())).encode()).hexdigest()


def forge_pk(seed):
    return subprocess.run([ENV["FORGE"], "pk", seed], capture_output=True, text=True,
                          check=True).stdout.strip()


def forge_sign(seed, data):
    path = os.path.join(ENV["IT_TMP"], "r2-sign-%d" % os.getpid())
    with open(path, "wb") as f:
        f.write(data)
    return subprocess.run([ENV["FORGE"], "sign", seed, path], capture_output=True, text=True,
                          check=True).stdout.strip()


def register(dev, seed):
    return cat.request("POST", "/api/v1/devices/register", json.dumps(
        {"device_id": dev, "public_key": forge_pk(seed),
         "enroll_secret": ENV["ENROLL_SECRET"]}).encode(), {"Content-Type": "application/json"})


def now_ms():
    return int(time.time() * 1000)


def heartbeat(dev, seed, body, ts, sign_dev=None, legacy=False):
    """POST a heartbeat signed as schema/devmsg.h says (built here, not by
    our C code), or the legacy way (over the body alone)."""
    msg = body if legacy else ("precursor-heartbeat-v1\n%s\n%d\n" % (sign_dev or dev, ts)).encode() + body
    h = {"Content-Type": "application/json", "X-Precursor-Device": dev,
         "X-Precursor-Signature": forge_sign(seed, msg)}
    if not legacy:
        h["X-Precursor-Timestamp"] = str(ts)
    return cat.request("POST", "/api/v1/heartbeats", body, h)


def heartbeats_signed():
    """M2: a captured heartbeat cannot be replayed, an old one is refused,
    and the device id and timestamp are signed with the whole body."""
    dev, seed = "r2-hb-%d" % os.getpid(), seed_for("hb")
    st, data, _ = register(dev, seed)
    cat.result(st == 201, "M2: heartbeat device registers", "got %d %s" % (st, data[:100]))
    body = json.dumps({"uptime_s": 5, "spool_files": 0, "added_by_a_later_agent": [1, 2]}).encode()
    ts = now_ms()
    st, data, _ = heartbeat(dev, seed, body, ts)
    cat.result(st == 204, "M2: a fresh signed heartbeat with extra fields -> 204",
               "got %d %s" % (st, data[:100]))
    st, data, _ = heartbeat(dev, seed, body, ts)
    cat.result(st == 409, "M2: the same heartbeat replayed -> 409", "got %d %s" % (st, data[:100]))
    st, data, _ = heartbeat(dev, seed, body, ts - 1000)
    cat.result(st == 409, "M2: an older heartbeat after a newer one -> 409",
               "got %d %s" % (st, data[:100]))
    st, data, _ = heartbeat(dev, seed, body, now_ms() - 600 * 1000)
    cat.result(st == 403, "M2: a heartbeat signed 10 minutes ago -> 403", "got %d %s" % (st, data[:100]))
    st, data, _ = heartbeat(dev, seed, body, now_ms(), legacy=True)
    cat.result(st == 400, "M2: a heartbeat signed over its body alone (no timestamp) -> 400",
               "got %d %s" % (st, data[:100]))
    st, data, _ = heartbeat(dev, seed, body, now_ms(), sign_dev="r2-other")
    cat.result(st == 403, "M2: a heartbeat whose signature names another device id -> 403",
               "got %d %s" % (st, data[:100]))
    stored = cat.psql("SELECT body->>'uptime_s' || ',' || signed_ms FROM heartbeats"
                      " WHERE device_id = '%s'" % dev).strip()
    cat.result(stored == "5,%d" % ts, "M2: only the genuine heartbeat is stored (%s)" % stored,
               "stored %r" % stored)


def rotate(dev, signer_seed, new_seed, ts):
    k64 = forge_pk(new_seed)
    sig = forge_sign(signer_seed, ("precursor-rotate-v2\n%s\n%s\n%d\n" % (dev, k64, ts)).encode())
    body = json.dumps({"public_key": k64, "signature": sig, "timestamp": ts}).encode()
    return body, cat.request("POST", "/api/v1/devices/%s/rotate" % dev, body,
                             {"Content-Type": "application/json"})


def key_freshness():
    """M4: key freshness enforced and rotations not replayable; a new device
    cannot enroll with a known key; a revoked device stays revoked."""
    tag = os.getpid() % 100000
    dev, other = "r2-rot-%d" % tag, "r2-oth-%d" % tag
    a, b, c, d = seed_for("a"), seed_for("b"), seed_for("c"), seed_for("d")
    st1, _, _ = register(dev, a)
    st2, _, _ = register(other, c)
    cat.result(st1 == 201 and st2 == 201, "M4: two devices register", "got %d, %d" % (st1, st2))
    _, (st, data, _) = rotate(dev, a, a, now_ms())
    cat.result(st == 409, "M4: rotating to the current key -> 409", "got %d %s" % (st, data[:100]))
    _, (st, data, _) = rotate(dev, a, b, now_ms() - 600 * 1000)
    cat.result(st == 403, "M4: a rotation signed 10 minutes ago -> 403", "got %d %s" % (st, data[:100]))
    body, (st, data, _) = rotate(dev, a, b, now_ms())
    cat.result(st == 200, "M4: a fresh rotation to a new key -> 200", "got %d %s" % (st, data[:100]))
    st, data, _ = cat.request("POST", "/api/v1/devices/%s/rotate" % dev, body,
                              {"Content-Type": "application/json"})
    cat.result(st in (403, 409), "M4: the captured rotation replayed -> %d" % st,
               "got %d %s" % (st, data[:100]))
    _, (st, data, _) = rotate(dev, b, a, now_ms())
    cat.result(st == 409, "M4: rotating back to the retired key -> 409", "got %d %s" % (st, data[:100]))
    _, (st, data, _) = rotate(dev, b, c, now_ms())
    cat.result(st == 409, "M4: rotating onto another device's key -> 409",
               "got %d %s" % (st, data[:100]))
    st, data, _ = register("r2-new-%d" % tag, b)
    cat.result(st == 409, "M4: a new device id registering with an existing device's key -> 409",
               "got %d %s" % (st, data[:100]))
    st, data, _ = register("r2-new2-%d" % tag, a)
    cat.result(st == 409, "M4: a new device id registering with a retired key -> 409",
               "got %d %s" % (st, data[:100]))
    held = cat.psql("SELECT encode(public_key, 'base64') FROM devices WHERE id = '%s'" % dev).strip()
    cat.result(held == forge_pk(b), "M4: the device holds the one key it rotated to",
               "holds %r" % held)
    # Re-registering a revoked device: not "active".
    st, _, _ = cat.request("POST", "/api/v1/devices/%s/revoke" % other, b"",
                           {"Authorization": "Bearer " + ENV["TOKEN_ADMIN"]})
    st, data, _ = register(other, c)
    ok = st == 403 and b'"status":"active"' not in data
    cat.result(ok, "re-registering a revoked device -> 403, not active", "got %d %s" % (st, data[:100]))
    _, (st, data, _) = rotate(other, c, d, now_ms())
    cat.result(st == 403, "a revoked device cannot rotate -> 403", "got %d %s" % (st, data[:100]))


def installer():
    """M6: install.sh carries the SHA-256 of the agent it downloads and the
    model-signing key; a tampered binary is never run or installed."""
    served = ENV.get("AGENT_SERVED")
    if not served:
        cat.result(False, "M6: installer", "no AGENT_SERVED (run.sh serves a copy of the agent)")
        return
    admin = {"Authorization": "Bearer " + ENV["TOKEN_ADMIN"], "Content-Type": "application/json"}
    st, data, _ = cat.request("POST", "/api/v1/enrollment-tokens",
                              json.dumps({"uses": 5, "pre_approved": True}).encode(), admin)
    token = json.loads(data).get("token") if st in (200, 201) else None
    cat.result(bool(token), "M6: admin creates an enrollment token", "got %d %s" % (st, data[:100]))
    if not token:
        return
    genuine = open(served, "rb").read()
    want = hashlib.sha256(genuine).hexdigest()
    st, script, _ = cat.request("GET", "/install.sh?token=" + token)
    st2, key, _ = cat.request("GET", "/api/v1/models/signing-key",
                              headers={"Authorization": "Bearer " + ENV["TOKEN_ADMIN"]})
    key_hex = json.loads(key).get("public_key_hex", "") if st2 == 200 else ""
    text = script.decode(errors="replace")
    cat.result(st == 200 and ("AGENT_SHA256='%s'" % want) in text and key_hex and
               ("MODEL_KEY='%s'" % key_hex) in text,
               "M6: install.sh carries the agent's SHA-256 and the model-signing key",
               "got %d, sha in script: %s, key %r in script: %s"
               % (st, want in text, key_hex, key_hex in text))

    def run(prefix, dev):
        return subprocess.run(["sh"], input=script, capture_output=True, timeout=120,
                              env=dict(os.environ, PRECURSOR_PREFIX=prefix,
                                       PRECURSOR_DEVICE_ID=dev))

    tag = os.getpid() % 100000
    bad_prefix = os.path.join(ENV["IT_TMP"], "inst-bad-%d" % tag)
    try:
        with open(served, "ab") as f:      # a tampered download (mirror, proxy, MITM)
            f.write(b"\0evil")
        out = run(bad_prefix, "r2-tamper-%d" % tag)
    finally:
        with open(served, "wb") as f:
            f.write(genuine)
    installed = os.path.exists(os.path.join(bad_prefix, "usr/local/bin/precursor-agent"))
    enrolled = cat.psql("SELECT count(*) FROM devices WHERE id = 'r2-tamper-%d'" % tag).strip()
    cat.result(out.returncode != 0 and b"SHA-256" in out.stderr and not installed and
               enrolled == "0",
               "M6: installer refuses a tampered agent binary (exit %d, nothing installed or "
               "enrolled)" % out.returncode,
               "exit %d, installed %s, enrolled %s: %s" % (out.returncode, installed, enrolled,
                                                           out.stderr[-200:]))
    good_prefix = os.path.join(ENV["IT_TMP"], "inst-good-%d" % tag)
    out = run(good_prefix, "r2-inst-%d" % tag)
    conf = os.path.join(good_prefix, "etc/precursor/agent.conf")
    pub = os.path.join(good_prefix, "etc/precursor/model-signing.pub")
    ok = (out.returncode == 0 and os.path.exists(conf) and
          "model-key = " in open(conf).read() and
          open(pub).read().strip() == key_hex)
    cat.result(ok, "M6: the genuine binary installs, with the model-signing key in its config",
               "exit %d: %s" % (out.returncode, out.stderr[-300:]))


def wait_job(job, auth, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        st, data, _ = cat.request("GET", "/api/v1/export-jobs/%d" % job, headers=auth)
        status = json.loads(data).get("status") if st == 200 else None
        if status in ("done", "failed", "cancelled", "deleted"):
            return status
        time.sleep(0.3)
    return None


def export_files():
    """M5: a finished export's file is deleted on request and after the
    retention, and new jobs are refused while the files hold the quota."""
    ml = {"Authorization": "Bearer " + ENV["TOKEN_ML"], "Content-Type": "application/json"}
    admin = {"Authorization": "Bearer " + ENV["TOKEN_ADMIN"], "Content-Type": "application/json"}
    tag = os.getpid() % 100000
    # One labeled snapshot, so a version has something to export.
    dev, seed = "r2-exp-%d" % tag, seed_for("exp")
    register(dev, seed)
    st, data, _ = cat.post_env(cat.envelope("ok", 1, dev=dev, seed=seed))
    sid = json.loads(data).get("id") if st == 201 else None
    st, data, _ = cat.request("POST", "/api/v1/snapshots/%s/labels" % sid, json.dumps(
        {"start_s": 0, "end_s": 0.001, "channels": [0], "class": "normal"}).encode(), admin)
    cat.result(sid and st in (200, 201), "M5: a labeled snapshot", "got %d %s" % (st, data[:100]))
    st, data, _ = cat.request("POST", "/api/v1/datasets", json.dumps({
        "name": "r2-exports-%d" % tag,
        "window": {"length_s": 0.001, "stride_s": 0.001},
        "split": {"by": "device", "fractions": [1, 0, 0], "seed": 1,
                  "min_per_split": 1}}).encode(), ml)
    ds = json.loads(data).get("id") if st in (200, 201) else None
    st2, data2, _ = cat.request("POST", "/api/v1/datasets/%s/versions" % ds, b"", ml)
    ver = json.loads(data2).get("version") if st2 in (200, 201) else None
    cat.result(ds and ver, "M5: a dataset version to export", "got %d %s / %d %s"
               % (st, data[:80], st2, data2[:80]))
    if not (ds and ver):
        return

    def new_job():
        st, data, _ = cat.request("POST", "/api/v1/datasets/%d/versions/%d/export-jobs" % (ds, ver),
                                  json.dumps({"format": "jsonl"}).encode(), ml)
        return st, (json.loads(data).get("id") if st in (200, 201, 202) else None), data

    def on_disk(job):
        return os.path.exists("/proc/%s/cwd/var/exports/job-%d.jsonl" % (ENV["SERVER_PID"], job))

    st, job, data = new_job()
    done = job and wait_job(job, ml) == "done"
    cat.result(done and on_disk(job), "M5: an export job finishes with its file on disk",
               "got %d %s, on disk %s" % (st, data[:100], job and on_disk(job)))
    if not done:
        return
    st, data, _ = cat.request("DELETE", "/api/v1/export-jobs/%d" % job, headers=ml)
    st2, _, _ = cat.request("GET", "/api/v1/export-jobs/%d/file" % job, headers=ml)
    cat.result(st == 200 and b"deleted" in data and not on_disk(job) and st2 == 404,
               "M5: DELETE of a finished export deletes its file (then 404)",
               "DELETE %d %s, on disk %s, file %d" % (st, data[:100], on_disk(job), st2))
    # Retention: a job finished three days ago loses its file at the next sweep.
    st, job2, _ = new_job()
    if job2 and wait_job(job2, ml) == "done":
        cat.psql("UPDATE export_jobs SET finished_at = now() - interval '3 days' WHERE id = %d" % job2)
        st, _, _ = cat.request("GET", "/api/v1/export-jobs/%d/file" % job2, headers=ml)
        cat.result(st == 404 and not on_disk(job2),
                   "M5: an export past the retention (72 h) is deleted", "file %d, on disk %s"
                   % (st, on_disk(job2)))
    else:
        cat.result(False, "M5: retention", "second job did not finish")
    # Quota: kept files already holding 11 GiB refuse a new job.
    st, job3, _ = new_job()
    if job3 and wait_job(job3, ml) == "done":
        cat.psql("UPDATE export_jobs SET bytes = 11 * 1024::bigint ^ 3 WHERE id = %d" % job3)
        st, _, data = new_job()
        cat.result(st == 409 and b"quota" in data, "M5: a new export over the quota -> 409",
                   "got %d %s" % (st, data[:120]))
        cat.request("DELETE", "/api/v1/export-jobs/%d" % job3, headers=ml)
        st, job4, data = new_job()
        cat.result(st in (200, 201, 202) and job4, "M5: after a DELETE frees it, exports run again",
                   "got %d %s" % (st, data[:120]))
        if job4:
            wait_job(job4, ml)
    else:
        cat.result(False, "M5: quota", "third job did not finish")


def session_of(user, password, source="127.0.6.2"):
    """(cookie, csrf) of a new browser session, or (None, None)."""
    c = http.client.HTTPConnection(HOST, PORT, timeout=60, source_address=(source, 0))
    c.request("POST", "/api/v1/session", json.dumps({"username": user, "password": password}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    m = re.search(r"prc_session=([0-9a-f]{64})", r.getheader("Set-Cookie") or "")
    c.close()
    if r.status != 200 or not m:
        return None, None
    return m.group(1), json.loads(body).get("csrf")


def session_status(cookie):
    """200 while the session is live, else 401.  The probe itself answers
    200 {"authenticated": false} for a session that has ended (so that a
    browser logs no error before login): that counts as ended here."""
    st, data, _ = cat.request("GET", "/api/v1/session", headers={"Cookie": "prc_session=" + cookie})
    if st == 200:
        try:
            if json.loads(data).get("authenticated") is False:
                return 401
        except ValueError:
            pass
    return st


def accounts():
    """The account life cycle: password policy, sessions ended on a password
    change (also one made in SQL), own password change, token list with
    last use, revocation at once, disabled users."""
    admin = {"Authorization": "Bearer " + ENV["TOKEN_ADMIN"], "Content-Type": "application/json"}
    tag = os.getpid() % 100000
    user, pw = "r2-acct-%d" % tag, "Amber-Lantern-%d" % tag
    st, data, _ = cat.request("POST", "/api/v1/users", json.dumps(
        {"username": user, "password": "1234567890", "role": "operator"}).encode(), admin)
    cat.result(st == 400, "accounts: 1234567890 refused as a password", "got %d %s" % (st, data[:100]))
    st, data, _ = cat.request("POST", "/api/v1/users", json.dumps(
        {"username": user, "password": pw, "role": "operator"}).encode(), admin)
    uid = json.loads(data).get("id") if st == 201 else None
    cat.result(uid, "accounts: admin adds a user", "got %d %s" % (st, data[:100]))
    if not uid:
        return
    cookie, _ = session_of(user, pw)
    cat.psql("UPDATE users SET password_hash = 'changed-in-sql' WHERE id = %d" % uid)
    cat.result(cookie and session_status(cookie) == 401,
               "accounts: a password changed in SQL ends the user's sessions",
               "session %s" % (cookie and session_status(cookie)))
    pw2 = "Copper-Kettle-%d" % tag
    st, data, _ = cat.request("POST", "/api/v1/users/%d/password" % uid,
                              json.dumps({"password": pw2}).encode(), admin)
    cookie, csrf = session_of(user, pw2)
    cat.result(st == 204 and cookie, "accounts: admin resets the password; the user logs in with it",
               "reset %d %s, login %s" % (st, data[:100], bool(cookie)))
    if not cookie:
        return
    h = {"Cookie": "prc_session=" + cookie, "X-CSRF-Token": csrf, "Content-Type": "application/json"}
    st, data, _ = cat.request("POST", "/api/v1/session/password", json.dumps(
        {"current_password": pw2, "new_password": "password123"}).encode(), h)
    cat.result(st == 400, "accounts: a common new password refused", "got %d %s" % (st, data[:100]))
    pw3 = "Granite-Harbor-%d" % tag
    st, data, _ = cat.request("POST", "/api/v1/session/password", json.dumps(
        {"current_password": "wrong-" + pw2, "new_password": pw3}).encode(), h)
    cat.result(st == 403, "accounts: own change with a wrong current password -> 403", "got %d" % st)
    st, data, _ = cat.request("POST", "/api/v1/session/password", json.dumps(
        {"current_password": pw2, "new_password": pw3}).encode(), h)
    cat.result(st == 204 and session_status(cookie) == 401 and session_of(user, pw3)[0],
               "accounts: own password changed; the session ends, the new password logs in",
               "got %d %s, session %d" % (st, data[:100], session_status(cookie)))
    # Tokens: listed with their last use, revoked at once.
    spare = ENV.get("TOKEN_SPARE", "")
    st, _, _ = cat.request("GET", "/api/v1/snapshots?limit=1",
                           headers={"Authorization": "Bearer " + spare})
    st2, data, _ = cat.request("GET", "/api/v1/tokens", headers=admin)
    items = json.loads(data).get("items", []) if st2 == 200 else []
    mine = [t for t in items if t.get("name") == "sec-spare"]
    cat.result(st == 200 and mine and mine[0].get("last_used_at") and
               "token_sha256" not in data.decode() and spare not in data.decode(),
               "accounts: the token list shows the spare token's last use, never the token",
               "use %d, list %d %s" % (st, st2, mine))
    if mine:
        st, data, _ = cat.request("DELETE", "/api/v1/tokens/%d" % mine[0]["id"], headers=admin)
        st2, _, _ = cat.request("GET", "/api/v1/snapshots?limit=1",
                                headers={"Authorization": "Bearer " + spare})
        cat.result(st == 200 and st2 == 401, "accounts: a revoked token is refused at once (401)",
                   "revoke %d, then %d" % (st, st2))
    # Disabled: no login, no session.
    cookie, _ = session_of(user, pw3)
    st, data, _ = cat.request("POST", "/api/v1/users/%d/disable" % uid, b"", admin)
    cat.result(st == 200 and cookie and session_status(cookie) == 401 and
               session_of(user, pw3, source="127.0.6.3")[0] is None,
               "accounts: a disabled user's session ends and it cannot log in",
               "disable %d %s" % (st, data[:100]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def app_role():
    """Least privilege: serve --app-database-url connects as a login granted
    precursor_app (migration 0064): the server works, the role is no
    superuser and can change no schema, partition upkeep still runs."""
    server = ENV.get("SERVER_BIN")
    if not server:
        cat.result(False, "app role", "no SERVER_BIN")
        return
    tag = os.getpid() % 100000
    role, rpw = "sec_app_%d" % tag, hashlib.sha256(os.urandom(16)).hexdigest()[:24]
    cat.psql("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE precursor_app" % (role, rpw))
    owner = ENV["DATABASE_URL"]
    app = re.sub(r"(^|\s)user=\S+", r"\1user=" + role, owner)
    if "user=" not in app:
        app += " user=" + role
    app = re.sub(r"(^|\s)password=\S+", "", app)
    # Passwords through a pgpass file, never the command line.
    passfile = os.path.join(ENV["IT_TMP"], "pgpass-app")
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, ("*:*:*:%s:%s\n" % (role, rpw)).encode())
    if ENV.get("PGPASSFILE") and os.path.exists(ENV["PGPASSFILE"]):
        os.write(fd, open(ENV["PGPASSFILE"], "rb").read())
    os.close(fd)
    env = dict(os.environ, PGPASSFILE=passfile)
    logpath = os.path.join(ENV["IT_TMP"], "server-app.log")
    log = open(logpath, "wb")
    # Up to three starts: a server that exits before it answers (the free
    # port taken by another process between free_port and its bind, on a
    # busy machine) is started again on another port; one that runs but
    # does not answer is waited for up to 90 s.
    proc, up = None, False
    for _attempt in range(3):
        port = free_port()
        proc = subprocess.Popen([server, "serve", "--port", str(port), "--database-url", owner,
                                 "--app-database-url", app, "--enroll-secret-file",
                                 os.path.join(ENV["IT_TMP"], "enroll-secret")],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while not up and proc.poll() is None and time.time() < deadline:
            try:
                c = http.client.HTTPConnection(HOST, port, timeout=5)
                c.request("GET", "/healthz")
                up = c.getresponse().status == 200
                c.close()
            except OSError:
                time.sleep(0.2)
        if up or proc.poll() is None:
            break
    try:
        if not up:
            log.flush()
            tail = open(logpath, "rb").read()[-600:].decode("utf-8", "replace")
            cat.result(False, "least privilege: serve answers through --app-database-url (as %s)" % role,
                       "the server did not answer /healthz (exit %s): %s" % (proc.poll(), tail))
            return
        c = http.client.HTTPConnection(HOST, port, timeout=30)
        c.request("GET", "/api/v1/snapshots?limit=1", headers={"Authorization": "Bearer " + ENV["TOKEN_ML"]})
        st = c.getresponse().status
        c.close()
        users = cat.psql("SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity"
                         " WHERE datname = current_database() AND usename = '%s'" % role).strip()
        cat.result(up and st == 200 and users == role,
                   "least privilege: serve answers through --app-database-url (as %s)" % role,
                   "healthz up %s, snapshots %d, connections as %r" % (up, st, users))

        def as_app(sql):
            out = subprocess.run(["psql", "-X", "-q", "-tA", app, "-c", sql], env=env,
                                 capture_output=True, text=True, timeout=60)
            return out.returncode, (out.stdout + out.stderr).strip()

        rc, out = as_app("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        cat.result(rc == 0 and out == "f", "least privilege: the serving role is no superuser",
                   "rc %d %s" % (rc, out[:100]))
        rc1, out1 = as_app("CREATE TABLE sec_app_probe (x int)")
        rc2, out2 = as_app("DROP TABLE users")
        rc3, out3 = as_app("ALTER TABLE devices ADD COLUMN sec_probe int")
        denied = ("permission denied" in out1 and "must be owner" in out2 + out3 or
                  "permission denied" in out2 + out3)
        cat.result(rc1 != 0 and rc2 != 0 and rc3 != 0 and denied,
                   "least privilege: the serving role can create, drop and alter no table",
                   "%s | %s | %s" % (out1[:80], out2[:80], out3[:80]))
        rc, out = as_app("SELECT snapshots_maintain(0)")
        cat.result(rc == 0, "least privilege: partition upkeep still runs (as the owner)",
                   "rc %d %s" % (rc, out[:120]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        cat.psql("DROP ROLE IF EXISTS %s" % role)     # roles outlive the test database


GROUPS = {
    "headers": headers_and_queries,
    "login": login_throttle,
    "heartbeats": heartbeats_signed,
    "keys": key_freshness,
    "installer": installer,
    "exports": export_files,
    "accounts": accounts,
    "app_role": app_role,
    "rules": rules_utf8,
    "slow_headers": slow_headers,
    "greedy_bodies": greedy_bodies,
}
ORDER = ["headers", "login", "heartbeats", "keys", "installer", "exports", "accounts", "app_role", "rules", "slow_headers", "greedy_bodies"]


def main(argv):
    for g in argv or ORDER:
        try:
            GROUPS[g]()
        except Exception as e:  # one group's crash is its FAIL, not the end of the rest
            cat.result(False, "group %s" % g, "%s: %s" % (type(e).__name__, e))
    return 1 if cat.FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
