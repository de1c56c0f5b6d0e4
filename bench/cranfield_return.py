#!/usr/bin/env python3
"""cranfield_return.py [DIR] - does the Cranfield rig return to its pre-event
state after an event's labelled end?  (docs/BENCHMARKS.md, detectors, sixth
round: why rules that treat the seconds after an end as a return to normal
cannot tell them from onsets.)

DIR defaults to $CRANFIELD_DIR, else ../shared/data/cranfield-mpf.  Each
channel is measured in its 2-98 % range over the run.  Per event:

  distance  the 24 channels' rms distance from the pre-event state (mean of
            the 120 s before the start), over the same distance of the fault
            state (the 120 s before the end), for 20-s means at +30, +120,
            +300 and +600 s after the end; and whether the first 60 s after
            the end go beyond 1.05 of the fault state's distance
  cosine    the first 30 s after the end: the move from the state of the
            40..5 s before the end against the way back to the pre-event state;
            an onset: the same against the state 10 minutes before it

Prints per event and a summary (min / median / max).  Plain Python, no
numpy; reads only the corpus."""
import collections
import csv
import math
import os
import statistics
import sys

NCH = 24


def load(path):
    with open(path) as f:
        rows = csv.reader(f)
        next(rows)
        return [[float(v) for v in row[1:1 + NCH]] for row in rows]


def quantile(values, q):
    values = sorted(values)
    return values[int(q * (len(values) - 1))]


def mean_of(x, a, b):
    return [sum(x[t][c] for t in range(a, b)) / (b - a) for c in range(NCH)]


def cosine(u, v):
    nu = math.sqrt(sum(a * a for a in u))
    nv = math.sqrt(sum(a * a for a in v))
    return sum(a * b for a, b in zip(u, v)) / (nu * nv + 1e-12)


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        'CRANFIELD_DIR', '../shared/data/cranfield-mpf')
    events_csv = os.path.join(data, 'events.csv')
    if not os.path.exists(events_csv):
        print('cranfield_return: SKIP: no corpus at %s (events.csv)' % data)
        return 0
    events = collections.defaultdict(list)
    with open(events_csv) as f:
        for r in csv.DictReader(f):
            events[r['file']].append((int(r['start_s']), int(r['end_s'])))
    after = collections.defaultdict(list)
    cos_end, cos_onset = [], []
    further = n_after = 0
    for name in sorted(events):
        x = load(os.path.join(data, name))
        n = len(x)
        span = [max(quantile([row[c] for row in x], 0.98) - quantile([row[c] for row in x], 0.02),
                    1e-6) for c in range(NCH)]
        for a, b in events[name]:
            pre = mean_of(x, a - 120, a)
            fault = mean_of(x, b - 120, b)

            def dist(v):
                return math.sqrt(sum(((v[c] - pre[c]) / span[c]) ** 2 for c in range(NCH)) / NCH)
            d_fault = dist(fault)
            line = '%s %d-%d' % (name, a, b)
            if b + 60 < n:
                n_after += 1
                grew = max(dist(x[t]) for t in range(b, b + 60)) / d_fault > 1.05
                further += grew
                for k in (30, 120, 300, 600):
                    if b + k + 10 < n:
                        r = dist(mean_of(x, b + k - 10, b + k + 10)) / d_fault
                        after[k].append(r)
                        line += ' +%ds=%.2f' % (k, r)
                line += ' further_in_60s=%d' % grew
            before_end = mean_of(x, b - 40, b - 5)
            back = [(pre[c] - before_end[c]) / span[c] for c in range(NCH)]
            for t in range(b, min(n, b + 31), 3):
                cos_end.append(cosine([(x[t][c] - before_end[c]) / span[c] for c in range(NCH)], back))
            if a >= 700:
                earlier = mean_of(x, a - 700, a - 580)
                before_start = mean_of(x, a - 40, a - 5)
                away = [(earlier[c] - before_start[c]) / span[c] for c in range(NCH)]
                for t in range(a, min(n, a + 31), 3):
                    cos_onset.append(cosine([(x[t][c] - before_start[c]) / span[c]
                                             for c in range(NCH)], away))
            print(line)
    for k in sorted(after):
        v = after[k]
        print('distance +%ds: %d events, min %.2f median %.2f max %.2f' %
              (k, len(v), min(v), statistics.median(v), max(v)))
    print('first 60 s beyond the fault state: %d of %d events' % (further, n_after))
    print('cosine after end: %.2f .. %.2f; after onset: %.2f .. %.2f' %
          (min(cos_end), max(cos_end), min(cos_onset), max(cos_onset)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
