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
n=0
for f in "$nab"/data/*/*.csv; do
    cat=$(basename "$(dirname "$f")")
    mkdir -p "$out/$cat"
    "$agent" replay --input "$f" --scores "$out/$cat/$(basename "$f")" "$@" >/dev/null
    n=$((n + 1))
done
echo "nab: $n files replayed into $out"
python3 "$scorer" "$out" --nab "$nab"
if [ $at_default = 1 ]; then
    t=$("$agent" --help 2>&1 | sed -n 's/.*threshold=\([0-9.]*\).*/\1/p' | head -n 1)
    [ -n "$t" ] || { echo "nab: cannot read the default threshold from $agent --help"; exit 1; }
    echo "nab: at the shipped default threshold $t"
    python3 "$scorer" "$out" --nab "$nab" --threshold "$t"
fi
