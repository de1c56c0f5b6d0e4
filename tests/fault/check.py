#!/usr/bin/env python3
"""check.py - the fault invariant for one device, read through the REST API.

    check.py BASE TOKEN DEVICE [--seen FILE] [--expect-kind KIND ...] [--no-gaps] [--state]

For the device: every seq in 1..last is stored exactly once or lies in a gap
the agent reported in its latest heartbeat (never both); every seq listed in
--seen (spool files observed fully written during the test) is stored, unless
a reported gap says it was deliberately dropped or quarantined; with
--expect-kind, at least one gap of each named kind was reported.

--state prints `files=N last=N hb_last=N` (spool files and last seq from the
latest heartbeat, highest stored seq) and exits 0, for drain polling.
Exit 0 when the invariant holds; the reason otherwise on stdout.
"""
import json
import sys
import urllib.request


def get(base, token, path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def snapshots(base, token, device):
    out, after = [], None
    while True:
        q = "/api/v1/snapshots?limit=500" + ("&after=" + after if after else "")
        d = get(base, token, q)
        out += [x for x in d["items"] if x.get("device_id") == device]
        after = d.get("next")
        if not after:
            return out


def find_heartbeat(obj):
    """The latest heartbeat body, wherever the device document nests it."""
    if isinstance(obj, dict):
        if "last_seq" in obj and "gaps" in obj:
            return obj
        for v in obj.values():
            h = find_heartbeat(v)
            if h is not None:
                return h
    elif isinstance(obj, list):
        for v in obj:
            h = find_heartbeat(v)
            if h is not None:
                return h
    elif isinstance(obj, str) and obj.startswith("{"):
        try:
            return find_heartbeat(json.loads(obj))
        except ValueError:
            return None
    return None


def main():
    a = sys.argv[1:]
    base, token, device = a[0].rstrip("/"), a[1], a[2]
    seen_file, kinds, state, no_gaps = None, [], False, False
    i = 3
    while i < len(a):
        if a[i] == "--seen":
            seen_file, i = a[i + 1], i + 2
        elif a[i] == "--expect-kind":
            kinds.append(a[i + 1])
            i += 2
        elif a[i] == "--no-gaps":
            no_gaps, i = True, i + 1
        elif a[i] == "--state":
            state, i = True, i + 1
        else:
            raise SystemExit("unknown argument " + a[i])

    items = snapshots(base, token, device)
    try:
        hb = find_heartbeat(get(base, token, "/api/v1/devices/" + device)) or {}
    except Exception:  # noqa: BLE001 - a device not yet registered has no document
        hb = {}
    stored = [x["seq"] for x in items]
    if state:
        print("files=%s last=%s hb_last=%s" % (hb.get("spool_files", -1), max(stored or [0]),
                                               hb.get("last_seq", -1)))
        return 0

    problems = []
    seqs = set(stored)
    if len(seqs) != len(stored):
        dup = sorted(s for s in seqs if stored.count(s) > 1)
        problems.append("seq stored twice: %s" % dup[:20])
    ids = [x["id"] for x in items]
    if len(set(ids)) != len(ids):
        problems.append("id listed twice")
    gaps = {}
    for g in hb.get("gaps", []):
        for s in range(g["first"], g["last"] + 1):
            gaps[s] = g["kind"]
    last = max([hb.get("last_seq", 0)] + stored + list(gaps))
    if not hb:
        problems.append("no heartbeat stored for the device")
    missing = [s for s in range(1, last + 1) if s not in seqs and s not in gaps]
    if missing:
        problems.append("%d seq neither stored nor reported: %s" % (len(missing), missing[:20]))
    both = [s for s in seqs if s in gaps]
    if both:
        problems.append("stored and reported as gap: %s" % both[:20])
    if seen_file:
        seen = set()
        for line in open(seen_file):
            line = line.strip().rsplit("/", 1)[-1]
            if line.endswith(".snap") and line[:-5].isdigit():
                seen.add(int(line[:-5]))
        lost = sorted(s for s in seen if s not in seqs and gaps.get(s) not in
                      ("dropped", "quarantined"))
        if lost:
            problems.append("fully spooled but never stored: %s" % lost[:20])
    if no_gaps and gaps:
        problems.append("gaps where none may be: %s" % sorted(gaps)[:20])
    for k in kinds:
        if k not in gaps.values():
            problems.append("no gap of kind %s reported" % k)
    summary = "device %s: %d stored, last %d, %d gaps %s" % (
        device, len(stored), last, len(gaps), sorted(set(gaps.values())))
    if problems:
        print(summary + ": " + "; ".join(problems))
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
