#!/usr/bin/env python3
"""api_times.py - every timestamp the REST API answers, in one form.

    api_times.py OPENAPI BASE PLAN
    api_times.py --self-test

PLAN has one line per request, tab-separated:

    get   TEMPLATE  URL-PATH  ROLE  MIN   a GET to make (ROLE names a token or the
                                          session in the environment: TOKEN_<ROLE>,
                                          SESSION_COOKIE for "session"); MIN is the
                                          fewest timestamps its answer must hold
    file  TEMPLATE  FILE      -     MIN   an answer fetched by the caller (a signed
                                          device GET, a POST's answer)
    skip  TEMPLATE  REASON                a GET route that answers no JSON

Every GET route of OPENAPI must be named by a get, file or skip line, so a
route added later without a place here fails.  Every string anywhere in an
answer that reads as a date with a time of day is a timestamp and must be
RFC 3339 in UTC with Z (YYYY-MM-DDTHH:MM:SS[.ffffff]Z), except the exact
strings a client wrote into a document the API keeps and echoes as written
(a dataset definition's filter.from/to): ECHOED in the environment, one per
line.  Prints PASS / FAIL lines; exits 1 on any FAIL.
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request

# What the API promises (schema/openapi.json, info.description).
STRICT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
# What reads as a timestamp: a date and a time of day, in any of the forms
# PostgreSQL, Python or a person would write (T or space, any offset or none).
LOOSE = re.compile(r"^\s*[+-]?\d{4,6}-\d\d-\d\d(T|t|\s+)\d\d:\d\d")

NAME = "timestamps"


def timestamps(doc, path="$"):
    """(json path, string) for every timestamp-like string in doc."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from timestamps(v, "%s.%s" % (path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from timestamps(v, "%s[%d]" % (path, i))
    elif isinstance(doc, str) and LOOSE.match(doc):
        yield path, doc


def parse_answer(body, ctype):
    """The answer's JSON documents: one, or one per line for NDJSON."""
    text = body.decode("utf-8")
    if "ndjson" in ctype:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [json.loads(text)]


def fetch(base, path, role):
    headers = {"Accept": "application/json"}
    if role == "session":
        headers["Cookie"] = os.environ["SESSION_COOKIE"]
    elif role != "-":
        headers["Authorization"] = "Bearer " + os.environ["TOKEN_" + role.upper()]
    req = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def self_test():
    """The check itself: what it must refuse and what it must take."""
    refused = ["2026-12-07T12:00:00.123456+00:00", "2026-12-07 12:00:00.123456+00",
               "2026-12-07T17:45:00.5+05:45", "2026-12-07 12:00:00", "2026-12-07T12:00:00z",
               "2026-12-07T12:00:00.1234567Z"]
    taken = ["2026-12-07T12:00:00.123456Z", "2026-12-07T12:00:00Z"]
    ignored = ["2026-12-07", "sim-2026-12-07", "12:00:00", "v2026-12-07T12:00"]
    doc = {"a": refused, "b": {"c": taken}, "d": ignored}
    found = dict((v, p) for p, v in timestamps(doc))
    ok = (set(found) == set(refused + taken) and
          not any(STRICT.match(v) for v in refused) and all(STRICT.match(v) for v in taken))
    print("%s %s: the check refuses +00:00, offsets and PostgreSQL's text form, takes Z" %
          ("PASS" if ok else "FAIL", NAME))
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    openapi, base, plan_file = sys.argv[1:4]
    spec = json.load(open(openapi))
    routes = {p for p, ops in spec["paths"].items() if "get" in ops}
    echoed = {s for s in os.environ.get("ECHOED", "").split("\n") if s}
    fails = 0
    named = set()
    seen_total = 0

    def fail(what, why):
        nonlocal fails
        fails += 1
        print("FAIL %s: %s: %s" % (NAME, what, why))

    for line in open(plan_file):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        f = line.split("\t")
        kind, template = f[0], f[1]
        if template not in routes and kind != "file":
            fail(template, "not a GET route of the API (plan out of date)")
            continue
        named.add(template)
        if kind == "skip":
            continue
        where, role, want = f[2], f[3], int(f[4])
        what = "%s %s" % (template, where if kind == "get" else os.path.basename(where))
        if kind == "get":
            status, ctype, body = fetch(base, where, role)
            if status != 200:
                fail(what, "status %d: %s" % (status, body[:200].decode("utf-8", "replace")))
                continue
        else:
            ctype, body = "application/json", open(where, "rb").read()
        try:
            docs = parse_answer(body, ctype)
        except ValueError as e:
            fail(what, "not JSON (%s): %r" % (e, body[:120]))
            continue
        found = [t for d in docs for t in timestamps(d)]
        bad = [t for t in found if not STRICT.match(t[1]) and t[1] not in echoed]
        kept = len([t for t in found if not STRICT.match(t[1])]) - len(bad)
        seen_total += len(found)
        if bad:
            fail(what, "%d of %d timestamps not RFC 3339 UTC Z, e.g. %s" %
                 (len(bad), len(found), "; ".join("%s = %r" % b for b in bad[:3])))
        elif len(found) < want:
            fail(what, "%d timestamps, expected at least %d (data not populated?)" %
                 (len(found), want))
        else:
            print("PASS %s: %s: %d timestamps, all RFC 3339 UTC Z%s" %
                  (NAME, what, len(found), " (and %d echoed as the client wrote them)" % kept
                   if kept else ""))
    for r in sorted(routes - named):
        fail(r, "GET route not walked (add it to the plan, or skip it with a reason)")
    print("# %d timestamps checked" % seen_total, file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
