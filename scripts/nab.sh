#!/usr/bin/env bash
# nab.sh - detection quality on the Numenta Anomaly Benchmark.
#
#   scripts/nab.sh [--threshold] [-- replay options...]
#
# Runs `precursor-agent replay` ($AGENT, default build/bin/precursor-agent)
# over every NAB data file in ../shared/data/nab into $NAB_OUT/<category>/<file>.csv
# (default build/nab-scores: not build/nab, which may be the agent's build folder)
# and scores them with ../shared/tools/nab_score.py (threshold optimised per
# profile over the corpus, as NAB does).  --threshold also scores at the
# agent's shipped default threshold.  One configuration for all files.
#
# NAB_HALF=A or B replays and scores one half of the corpus only (the
# threshold optimised over that half): the files of labels/combined_windows.json
# in sorted order, A the 1st, 3rd, 5th, ... (development), B the 2nd, 4th, ...
# (held out).  A rule fixed before any result, so a change can be designed on
# A and judged on B.
set -euo pipefail
cd "$(dirname "$0")/.."

nab=../shared/data/nab
scorer=../shared/tools/nab_score.py
agent=${AGENT:-build/bin/precursor-agent}
at_default=0
if [ "${1:-}" = "--threshold" ]; then at_default=1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi

if [ ! -d "$nab/data" ] || [ ! -f "$scorer" ]; then
    echo "nab: SKIP: the NAB corpus ($nab) or its scorer ($scorer) is not here"
    exit 0
fi
[ -x "$agent" ] || { echo "nab: $agent not built (make)"; exit 1; }

out=${NAB_OUT:-build/nab-scores}
rm -rf "$out"
half=${NAB_HALF:-}
corpus=$nab
files=("$nab"/data/*/*.csv)
if [ -n "$half" ]; then
    case "$half" in A) first=0 ;; B) first=1 ;; *) echo "nab: NAB_HALF is A or B"; exit 1 ;; esac
    # A corpus folder of this half's labels beside the scores, the data and
    # profiles linked from the real one.
    corpus=$out.corpus
    rm -rf "$corpus"
    mkdir -p "$corpus/labels"
    ln -s "$(cd "$nab" && pwd)/data" "$corpus/data"
    ln -s "$(cd "$nab" && pwd)/config" "$corpus/config"
    mapfile -t files < <(python3 - "$nab" "$first" "$corpus/labels/combined_windows.json" <<'PY'
import json, os, sys
nab, first, dest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
windows = json.load(open(os.path.join(nab, "labels", "combined_windows.json")))
keep = {rel: windows[rel] for i, rel in enumerate(sorted(windows)) if i % 2 == first}
json.dump(keep, open(dest, "w"), indent=1, sort_keys=True)
for rel in sorted(keep):
    print(os.path.join(nab, "data", rel))
PY
)
fi
n=0
for f in "${files[@]}"; do
    cat=$(basename "$(dirname "$f")")
    mkdir -p "$out/$cat"
    "$agent" replay --input "$f" --scores "$out/$cat/$(basename "$f")" "$@" >/dev/null
    n=$((n + 1))
done
echo "nab: $n files replayed into $out"
python3 "$scorer" "$out" --nab "$corpus"
if [ $at_default = 1 ]; then
    t=$("$agent" --help 2>&1 | sed -n 's/.*threshold=\([0-9.]*\).*/\1/p' | head -n 1)
    [ -n "$t" ] || { echo "nab: cannot read the default threshold from $agent --help"; exit 1; }
    echo "nab: at the shipped default threshold $t"
    python3 "$scorer" "$out" --nab "$corpus" --threshold "$t"
fi
