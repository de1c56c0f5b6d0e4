#!/usr/bin/env bash
# fewshot_seeds.sh - how much of a five-shot figure is the draw.
#
#   BUILD=build/bench bench/fewshot_seeds.sh [SEEDS] [-- bench-fewshot options]
#
# bench-fewshot draws its generated recordings and its labeled windows from
# one random stream; a figure of one run is one draw.  This runs each corpus
# alone, --trials 3 --server-reference --server-map, once per seed (1..SEEDS,
# default 9), and prints per corpus the median and range over the draws of
# what ships ("fewshot, device ref" on the shipped set for bearing-sim, on the
# trimmed relations for cranfield): its lead over the best baseline of the
# same run, its accuracy, the best baseline, detection and false alarms, and
# how many draws reach the +15 target; then the best baseline's range, the
# best of the baselines on the same features as that row, and the row's
# lowest class recall.  Options after -- go to every run (e.g.
# --bearing-window 3000, --no-geometry, --speeds 600,900,1200,1800).  Data:
# --data, else $PRECURSOR_DATA, else ../shared/data beside the checkout
# (cranfield is skipped without it).  CORPORA="bearing" runs only those
# corpora (default "bearing cranfield"); DEFAULT_STREAM=1 adds a draw
# from the stream without --seed, the recorded one.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^set /d'; exit 0 ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build/bench}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin/bench-fewshot"
SEEDS=9
if [ $# -gt 0 ] && [ "$1" != "--" ]; then SEEDS=$1; shift; fi
[ "${1:-}" = "--" ] && shift
case "$SEEDS" in ''|*[!0-9]*) echo "fewshot_seeds: SEEDS must be a whole number" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "fewshot_seeds: build $BIN first (make BUILD=${BUILD#"$ROOT"/} $BIN)" >&2; exit 2; }
DATA=${PRECURSOR_DATA:-$ROOT/../shared/data}
TMP=$(mktemp -d -t precursor-fewshot-seeds.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for corpus in ${CORPORA:-bearing cranfield}; do
    case "$corpus" in bearing|cranfield) ;; *) echo "fewshot_seeds: CORPORA: bearing, cranfield" >&2; exit 2 ;; esac
    if [ "$corpus" = cranfield ] && [ ! -d "$DATA/cranfield-mpf" ]; then
        echo "fewshot_seeds: no $DATA/cranfield-mpf: cranfield skipped" >&2
        continue
    fi
    if [ "${DEFAULT_STREAM:-0}" = 1 ]; then
        echo "fewshot_seeds: $corpus, the default stream" >&2
        "$BIN" --data "$DATA" --corpus "$corpus" --trials 3 --server-reference --server-map \
            "$@" >"$TMP/$corpus-0.txt"
    fi
    for ((s = 1; s <= SEEDS; s++)); do
        echo "fewshot_seeds: $corpus, seed $s of $SEEDS" >&2
        "$BIN" --data "$DATA" --corpus "$corpus" --trials 3 --server-reference --server-map \
            --seed "$s" "$@" >"$TMP/$corpus-$s.txt"
    done
done

python3 - "$TMP" <<'PY'
import glob, os, re, statistics, sys

ROWS = {"bearing": "fewshot, device ref (shipped set)",
        "cranfield": "fewshot, device ref (relations, trimmed, scale on fit windows)"}
# the baselines on the features that row reads
SAME = {"bearing": "(shipped set)", "cranfield": "(relations, trimmed fit)"}
for corpus, row in ROWS.items():
    files = sorted(glob.glob(os.path.join(sys.argv[1], corpus + "-*.txt")))
    if not files:
        continue
    got, lows = [], []
    for f in files:
        t = open(f).read()
        lead = re.search(re.escape(row) + r" - best baseline: ([+-][0-9.]+) points", t)
        acc = re.search(re.escape(row) + r" +acc +([0-9.]+)%.*?fault det +([0-9.]+)% +false alarm +([0-9.]+)%", t)
        best = re.search(r"^best baseline: (.*) ([0-9.]+)%$", t, re.M)
        low = re.search(re.escape(row) + r" +acc .*\n  recall: .*\| lowest (\S+) ([0-9.]+)%", t)
        same = [float(m.group(2)) for m in
                re.finditer(r"^((?:3-NN|centroid)[^\n]*" + re.escape(SAME[corpus]) + r") +acc +([0-9.]+)%", t, re.M)]
        if not (lead and acc and best and low and same):
            sys.exit("fewshot_seeds: %s: the row '%s' is missing" % (f, row))
        got.append((float(lead.group(1)), float(acc.group(1)), float(best.group(2)),
                    float(acc.group(2)), float(acc.group(3)), float(low.group(2)), max(same)))
        lows.append(low.group(1))
    cols = list(zip(*got))
    med = [statistics.median(c) for c in cols]
    print("%s, %d draws, %s:" % (corpus, len(got), row))
    print("  lead over the best baseline: median %+.1f [%+.1f, %+.1f], %d of %d draws >= +15"
          % (med[0], min(cols[0]), max(cols[0]), sum(v >= 15 for v in cols[0]), len(got)))
    print("  accuracy: median %.1f%% [%.1f, %.1f]; best baseline: median %.1f%%"
          % (med[1], min(cols[1]), max(cols[1]), med[2]))
    print("  detection / false alarms: medians %.1f%% / %.1f%%" % (med[3], med[4]))
    print("  best baseline: range [%.1f, %.1f]; best baseline on the same features %s: median %.1f%% [%.1f, %.1f]"
          % (min(cols[2]), max(cols[2]), SAME[corpus], med[6], min(cols[6]), max(cols[6])))
    print("  lowest class recall: median %.0f%% [%.0f, %.0f]; lowest class: %s"
          % (med[5], min(cols[5]), max(cols[5]),
             ", ".join("%s %d" % (k, lows.count(k)) for k in sorted(set(lows), key=lambda k: -lows.count(k)))))
PY
