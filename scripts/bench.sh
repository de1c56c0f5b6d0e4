#!/usr/bin/env bash
# bench.sh - `make bench`: run every benchmark program built from bench/*.c.
#
#   BUILD=build/bench scripts/bench.sh [NAME...]
#
# Each bench-NAME prints its own ratios against a baseline measured in the
# same run (these machines are noisy, absolute times mislead).  This script
# runs them one after the other on an otherwise idle build, records the
# machine and the commit, and keeps the output in $BUILD/bench-results.txt,
# from which figures are copied into docs/BENCHMARKS.md with the command.
set -euo pipefail
# --help prints the comment above and starts nothing.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^set /d'; exit 0 ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build/bench}
OUT="$BUILD/bench-results.txt"

shopt -s nullglob
if [ $# -gt 0 ]; then
    bins=()
    for n in "$@"; do bins+=("$BUILD/bin/bench-$n"); done
else
    bins=("$BUILD"/bin/bench-*)
fi
if [ ${#bins[@]} -eq 0 ]; then
    echo "bench: no benchmarks in $BUILD/bin (add bench/NAME.c)"
    exit 0
fi

{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "# $(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
} | tee "$OUT"
rc=0
for b in "${bins[@]}"; do
    [ -x "$b" ] || { echo "bench: $b is not built" >&2; rc=1; continue; }
    name=$(basename "$b")
    echo "## $name" | tee -a "$OUT"
    # A benchmark that needs inputs takes them from bench/NAME.args (one
    # argument a line); without that file, one that answers with its usage
    # is skipped, not failed.
    args=()
    if [ -f "bench/${name#bench-}.args" ]; then
        mapfile -t args < "bench/${name#bench-}.args"
    fi
    if ! "$b" "${args[@]}" >"$BUILD/$name.out" 2>&1; then
        if [ ${#args[@]} -eq 0 ] && grep -qi '^usage' "$BUILD/$name.out"; then
            echo "skipped: needs arguments ($(head -n1 "$BUILD/$name.out"))" | tee -a "$OUT"
            continue
        fi
        cat "$BUILD/$name.out" | tee -a "$OUT"
        echo "bench: $name failed" | tee -a "$OUT" >&2
        rc=1
        continue
    fi
    tee -a "$OUT" < "$BUILD/$name.out"
done
echo "bench: results in $OUT"
exit $rc
