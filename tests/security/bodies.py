#!/usr/bin/env python3
"""bodies.py - keys the server does not know in a JSON body
(schema/openapi.json, info: "Unknown keys in request bodies").

    bodies.py      (environment as catalogue.py; SERVER_LOG for the log case)

For every route that takes a JSON body: one request whose body carries a
key the route does not know.  It must do its work as without that key
(checked in the database or by reading the thing back), and its answer must
name the key: "ignored" in a JSON object answer, the Precursor-Ignored-Keys
header (a JSON array) on a 204.  A request without such keys names nothing.
The two policies that differ are checked as they are: enrollment tokens
refuse an unknown key (400), heartbeats store the body as sent.  Then the
bounds: 180 unknown keys of 300 bytes name 16 keys of at most 64 bytes,
in one server log line of bounded length.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import catalogue as cat  # noqa: E402
import round2  # noqa: E402  (register, forge_pk, forge_sign, seed_for, now_ms, ...)

ENV = os.environ
TAG = os.getpid() % 100000
JSON = {"Content-Type": "application/json"}


def auth(role):
    return dict(JSON, Authorization="Bearer " + ENV["TOKEN_" + role.upper()])


def send(method, path, body, headers):
    return cat.request(method, path, json.dumps(body).encode() if body is not None else b"",
                       headers)


def named(st, data, headers):
    """The keys the answer says were ignored: its "ignored" member, or the
    header's array; None when it names none."""
    h = {k.lower(): v for k, v in headers.items()}
    if "precursor-ignored-keys" in h:
        return json.loads(h["precursor-ignored-keys"])
    try:
        return json.loads(data).get("ignored") if data else None
    except (ValueError, AttributeError):
        return None


def case(name, method, path, body, headers, want_status, want_ignored, done=None):
    """The request as sent and again with nothing extra is not possible for
    creations, so: this request's status, its named keys, and done() (the
    work it did, read back) must all hold."""
    st, data, h = send(method, path, body, headers)
    got = named(st, data, h)
    did = True if done is None else bool(done(st, data))
    carrier = "header" if any(k.lower() == "precursor-ignored-keys" for k in h) else "body"
    cat.result(st == want_status and got == want_ignored and did,
               "unknown keys: %s %s -> %d, %s names %s, and it did its work"
               % (method, name, want_status, carrier, want_ignored),
               "got %d, named %r, work done %s: %s" % (st, got, did, data[:160]))
    return st, data, h


def js(data):
    try:
        return json.loads(data)
    except ValueError:
        return {}


def scalar(sql):
    return cat.psql(sql).strip()


def devices_and_fleet():
    dev, seed = "bd-reg-%d" % TAG, round2.seed_for("bd-reg")
    case("/api/v1/devices/register", "POST", "/api/v1/devices/register",
         {"device_id": dev, "public_key": round2.forge_pk(seed),
          "enroll_secret": ENV["ENROLL_SECRET"], "hostname": "pump-7"}, JSON, 201, ["hostname"],
         lambda st, d: scalar("SELECT status FROM devices WHERE id = '%s'" % dev) == "active")
    # Enrollment: the token refuses an unknown key (kept: a misspelt expiry
    # must not make a token that never expires) ...
    st, data, _ = send("POST", "/api/v1/enrollment-tokens", {"uses": 2, "expires": "1h"},
                       auth("admin"))
    cat.result(st == 400 and b"expires" in data,
               "unknown keys: enrollment token with \"expires\" still refused (400 naming it)",
               "got %d %s" % (st, data[:120]))
    st, data, _ = send("POST", "/api/v1/enrollment-tokens", {"uses": 2}, auth("admin"))
    token = js(data).get("token")
    cat.result(st == 201 and token and named(st, data, {}) is None,
               "unknown keys: a known-keys body names nothing", "got %d %s" % (st, data[:120]))
    enr, eseed = "bd-enr-%d" % TAG, round2.seed_for("bd-enr")
    case("/api/v1/devices/enroll", "POST", "/api/v1/devices/enroll",
         {"token": token, "device_id": enr, "public_key": round2.forge_pk(eseed),
          "agent_version": "9.9"}, JSON, 201, ["agent_version"],
         lambda st, d: scalar("SELECT status FROM devices WHERE id = '%s'" % enr) == "pending")
    case("/api/v1/devices/{id}/approve", "POST", "/api/v1/devices/%s/approve" % enr,
         {"reason": "checked"}, auth("admin"), 200, ["reason"],
         lambda st, d: scalar("SELECT status FROM devices WHERE id = '%s'" % enr) == "active")
    # Rotation, signed by the current key.
    new_seed = round2.seed_for("bd-rot")
    k64, ts = round2.forge_pk(new_seed), round2.now_ms()
    sig = round2.forge_sign(eseed, ("precursor-rotate-v2\n%s\n%s\n%d\n" % (enr, k64, ts)).encode())
    case("/api/v1/devices/{id}/rotate", "POST", "/api/v1/devices/%s/rotate" % enr,
         {"public_key": k64, "signature": sig, "timestamp": ts, "why": "scheduled"}, JSON, 200,
         ["why"],
         lambda st, d: scalar("SELECT encode(public_key, 'base64') FROM devices WHERE id = '%s'"
                              % enr) == k64)
    # Heartbeats: the body is stored as sent, so nothing is ignored.
    body = json.dumps({"uptime_s": 7, "from_a_later_agent": True}).encode()
    st, data, h = round2.heartbeat(dev, seed, body, round2.now_ms())
    stored = scalar("SELECT body->>'from_a_later_agent' FROM heartbeats WHERE device_id = '%s'" % dev)
    cat.result(st == 204 and named(st, data, h) is None and stored == "true",
               "unknown keys: a heartbeat's extra key is stored, not ignored (204, none named)",
               "got %d, named %r, stored %r" % (st, named(st, data, h), stored))
    case("/api/v1/devices/{id}/revoke", "POST", "/api/v1/devices/%s/revoke" % enr,
         {"reason": "retired"}, auth("admin"), 200, ["reason"],
         lambda st, d: scalar("SELECT status FROM devices WHERE id = '%s'" % enr) == "revoked")
    return dev, seed


def taxonomy(dev):
    t = "bd_type_%d" % TAG
    case("/api/v1/taxonomy/types", "POST", "/api/v1/taxonomy/types",
         {"name": t, "descripton": "typo", "shaft_hz": 24.5,
          "bearing": {"balls": 9, "ball_mm": 7.9, "pitch_mm": 38.5, "contact_deg": 0,
                      "bals": 8}},
         auth("operator"), 200, ["descripton", "bearing.bals"],
         lambda st, d: scalar("SELECT count(*) FROM equipment_types WHERE name = '%s'" % t) == "1")
    case("/api/v1/taxonomy/failure-modes", "POST", "/api/v1/taxonomy/failure-modes",
         {"equipment_type": t, "class": "imbalance", "mode": "unbalanced rotor", "severity": 3},
         auth("operator"), 201, ["severity"],
         lambda st, d: js(d).get("id") and js(d).get("class") == "imbalance")
    c = "bd_class_%d" % TAG
    case("/api/v1/taxonomy/classes", "POST", "/api/v1/taxonomy/classes",
         {"name": c, "description": "test class", "colour": "#f00"}, auth("operator"), 201,
         ["colour"],
         lambda st, d: scalar("SELECT count(*) FROM label_classes WHERE name = '%s'" % c) == "1")
    asset = "bd-asset-%d" % TAG
    case("/api/v1/taxonomy/assets", "POST", "/api/v1/taxonomy/assets",
         {"id": asset, "equipment_type": t, "site": "plant-1", "location": "hall 2"},
         auth("operator"), 200, ["location"],
         lambda st, d: scalar("SELECT equipment_type FROM assets WHERE id = '%s'" % asset) == t)
    case("/api/v1/devices/{id}/asset", "POST", "/api/v1/devices/%s/asset" % dev,
         {"asset_id": asset, "since": "2026-01-01"}, auth("operator"), 200, ["since"],
         lambda st, d: js(d).get("equipment_type") == t)


def labels_alerts_rules(dev, seed):
    st, data, _ = cat.post_env(cat.envelope("ok", 1, dev=dev, seed=seed))
    sid = js(data).get("id") if st == 201 else None
    cat.result(sid, "unknown keys: a snapshot to label", "got %d %s" % (st, data[:100]))
    if not sid:
        return None
    _, data, _ = case("/api/v1/snapshots/{id}/labels", "POST", "/api/v1/snapshots/%s/labels" % sid,
                      {"start_s": 0, "end_s": 0.001, "channels": [0], "class": "normal",
                       "lable": "imbalance"}, auth("operator"), 201, ["lable"],
                      lambda st, d: js(d).get("class") == "normal")
    lid = js(data).get("id")
    case("/api/v1/labels/{id}", "PATCH", "/api/v1/labels/%s" % lid,
         {"notes": "kept", "note": "dropped"}, auth("operator"), 200, ["note"],
         lambda st, d: scalar("SELECT notes FROM labels WHERE id = %d" % int(lid or 0)) == "kept")
    case("/api/v1/alerts/{id}/ack", "POST", "/api/v1/alerts/%s/ack" % sid, {"note": "on my way"},
         auth("operator"), 200, ["note"], lambda st, d: js(d).get("acknowledged_at"))
    case("/api/v1/alerts/{id}/disposition", "POST", "/api/v1/alerts/%s/disposition" % sid,
         {"disposition": "not_actionable", "work_order": "WO-1", "coment": "typo"},
         auth("operator"), 200, ["coment"],
         lambda st, d: scalar("SELECT work_order FROM alert_dispositions WHERE snapshot_id = %d"
                              % sid) == "WO-1")
    case("/api/v1/rules/validate", "POST", "/api/v1/rules/validate",
         {"expr": "score > 1e9 => normal", "class": "normal"}, auth("operator"), 200, ["class"],
         lambda st, d: js(d).get("valid") is True)
    name = "bd-rule-%d" % TAG
    _, data, _ = case("/api/v1/rules", "POST", "/api/v1/rules",
                      {"name": name, "expr": "score > 1e9 => normal", "weight": 2,
                       "comment": "never fires"}, auth("operator"), 201, ["comment"],
                      lambda st, d: scalar("SELECT weight FROM rules WHERE name = '%s'" % name) == "2")
    rid = js(data).get("id")
    case("/api/v1/rules/{id}", "PATCH", "/api/v1/rules/%s" % rid,
         {"enabled": False, "enable": True}, auth("operator"), 200, ["enable"],
         lambda st, d: scalar("SELECT enabled FROM rules WHERE id = %d" % int(rid or 0)) == "f")
    return sid


def datasets_models(dev):
    ml = auth("ml")
    st, data, _ = send("POST", "/api/v1/datasets", {
        "name": "bd-ds-%d" % TAG, "window": {"length_s": 0.001, "stride_s": 0.001},
        "split": {"by": "device", "fractions": [1, 0, 0], "seed": 1, "min_per_split": 1},
        "descripton": "kept as before"}, ml)
    ds = js(data).get("id")
    cat.result(st == 201 and js(data).get("ignored") == ["descripton"],
               "unknown keys: dataset definitions answer as before (201, ignored)",
               "got %d %s" % (st, data[:120]))
    _, data, _ = case("/api/v1/datasets/{id}/versions", "POST", "/api/v1/datasets/%s/versions" % ds,
                      {"note": "first"}, ml, 201, ["note"], lambda st, d: js(d).get("version") == 1)
    ver = js(data).get("version") or 1
    case("/api/v1/datasets/{id}/versions/{v}/export-jobs", "POST",
         "/api/v1/datasets/%s/versions/%s/export-jobs" % (ds, ver),
         {"format": "jsonl", "compress": True}, ml, 202, ["compress"],
         lambda st, d: scalar("SELECT format FROM export_jobs WHERE id = %d"
                              % int(js(d).get("id") or 0)) == "jsonl")
    case("/api/v1/models", "POST", "/api/v1/models",
         {"dataset_id": ds, "version": ver, "kind": "anomaly", "epochs": 3}, ml, 202, ["epochs"],
         lambda st, d: scalar("SELECT kind FROM models WHERE id = %d"
                              % int(js(d).get("id") or 0)) == "anomaly")
    # A model that has finished, to deploy (training is not what is tested).
    mid = scalar("INSERT INTO models (dataset_id, version, kind, status, blob, created_by)"
                 " VALUES (%d, %d, 'anomaly', 'done', '\\x00'::bytea, 'bodies') RETURNING id"
                 % (ds, ver)).splitlines()[0]
    case("/api/v1/models/{id}/deploy", "POST", "/api/v1/models/%s/deploy" % mid,
         {"devices": [dev], "mode": "shadow", "rollout": "canary"}, ml, 201, ["rollout"],
         lambda st, d: scalar("SELECT count(*) FROM model_deployments WHERE model_id = %s" % mid) == "1")
    st, data, _ = cat.request("GET", "/api/v1/alarm-budget", headers=ml)
    rate = js(data).get("per_operator_hour", 6)
    case("/api/v1/alarm-budget", "PATCH", "/api/v1/alarm-budget",
         {"per_operator_hour": rate, "per_hour": 1}, auth("admin"), 200, ["per_hour"],
         lambda st, d: js(d).get("per_operator_hour") == rate)


def accounts():
    admin = auth("admin")
    user, pw = "bd-user-%d" % TAG, "Walnut-Compass-%d" % TAG
    _, data, _ = case("/api/v1/users", "POST", "/api/v1/users",
                      {"username": user, "password": pw, "role": "operator",
                       "email": "x@example.com"}, admin, 201, ["email"],
                      lambda st, d: scalar("SELECT role FROM users WHERE username = '%s'"
                                           % user) == "operator")
    uid = js(data).get("id")
    pw2 = "Saffron-Meadow-%d" % TAG
    case("/api/v1/users/{id}/password", "POST", "/api/v1/users/%s/password" % uid,
         {"password": pw2, "notify": True}, admin, 204, ["notify"],
         lambda st, d: round2.session_of(user, pw2, source="127.0.7.2")[0])
    # Login: the session is made and the answer names the key.
    st, data, h = send("POST", "/api/v1/session",
                       {"username": user, "password": pw2, "remember_me": True}, JSON)
    cookie = re.search(r"prc_session=([0-9a-f]{64})", h.get("Set-Cookie", ""))
    csrf = js(data).get("csrf")
    cat.result(st == 200 and cookie and csrf and named(st, data, h) == ["remember_me"],
               "unknown keys: POST /api/v1/session -> 200, body names [remember_me], and it"
               " made the session", "got %d, named %r: %s" % (st, named(st, data, h), data[:120]))
    if not (cookie and csrf):
        return
    pw3 = "Juniper-Anchor-%d" % TAG
    hs = dict(JSON, Cookie="prc_session=" + cookie.group(1))
    hs["X-CSRF-Token"] = csrf
    case("/api/v1/session/password", "POST", "/api/v1/session/password",
         {"current_password": pw2, "new_password": pw3, "confirm": pw3}, hs, 204, ["confirm"],
         lambda st, d: round2.session_of(user, pw3, source="127.0.7.3")[0])


def bounds(sid):
    """180 unknown keys of 300 bytes (one with a newline; the body just
    under the 64 KiB limit): 16 named, each at most 64 bytes, and one log
    line naming the route and the count."""
    body = {"notes": "bounded"}
    for i in range(180):
        body[("k%03d" % i) + ("\n2026-01-01T00:00:00Z info forged" if i == 1 else "") +
             "x" * 300] = i
    st, data, h = send("POST", "/api/v1/snapshots/%s/labels" % sid,
                       dict(body, start_s=0, end_s=0.001, channels=[0], **{"class": "normal"}),
                       auth("operator"))
    got = named(st, data, h) or []
    cat.result(st == 201 and len(got) == 16 and all(len(k.encode()) <= 64 for k in got),
               "unknown keys: 180 keys of 300 bytes -> 16 named, none over 64 bytes",
               "got %d, %d named, longest %d" % (st, len(got), max((len(k) for k in got), default=0)))
    log = ENV.get("SERVER_LOG")
    if not log:
        cat.result(False, "unknown keys: log line", "no SERVER_LOG")
        return
    time.sleep(0.5)
    lines = [ln for ln in open(log, errors="replace")
             if "unknown keys ignored" in ln and "/api/v1/snapshots/%s/labels" % sid in ln]
    forged = [ln for ln in open(log, errors="replace") if ln.startswith("2026-01-01T00:00:00Z")]
    cat.result(len(lines) == 1 and "warn" in lines[0] and "180 unknown keys" in lines[0] and
               len(lines[0]) <= 2048 and not forged,
               "unknown keys: one warn line per request, route and count named, at most 2 KB,"
               " no forged line", "%d lines, %r" % (len(lines), [ln[:200] for ln in lines]))


def main():
    dev, seed = devices_and_fleet()
    taxonomy(dev)
    sid = labels_alerts_rules(dev, seed)
    datasets_models(dev)
    accounts()
    if sid:
        bounds(sid)
    cat.serving("unknown keys")
    return 1 if cat.FAILS else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (subprocess.CalledProcessError, RuntimeError) as e:
        cat.result(False, "unknown keys", str(e))
        sys.exit(1)
