#!/usr/bin/env bash
# codec.sh - the snapshot codec against flac, zstd and xz, in one run.
#
#   [RUNS=N] bench/codec.sh [SECONDS] [F32_CSV...]
#
# Builds bench-codec optimised (build/bench), runs it (which measures wire v2,
# wire v1 and plain zstd in process, and dumps its sets), then compresses the
# same bytes with the command-line tools: `flac --best` on the int16 sets
# (interleaved, as flac reads raw PCM), `zstd -3` and `zstd -19` on the raw
# and on the byte-shuffled planar samples, and `xz -9`.  Ratio = raw sample
# bytes / compressed bytes.  The last lines divide wire v2's ratio by each.
#
# The int16 sets are the agent's simulator in ADC mode (SIMULATED vibration:
# a bearing's kinematics, resonances, noise, quantised to int16); each
# F32_CSV (a CSV with a header row, numeric columns, e.g. a Cranfield MPF
# file) is read as float32, every column after the first (the timestamp).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS_SIM=${1:-10}
shift || true
BUILD=${BUILD:-build/bench}
RUNS=${RUNS:-7}
for t in flac zstd xz python3; do
    command -v "$t" >/dev/null || { echo "codec.sh: $t not installed (scripts/deps.sh)" >&2; exit 1; }
done
make --no-print-directory BUILD="$BUILD" "$BUILD/bin/bench-codec" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

f32_args=()
for csv in "$@"; do
    name=$(basename "$csv" .csv | tr -c 'A-Za-z0-9_\n-' '_')
    cols=$(python3 - "$csv" "$work/$name.f32in" <<'EOF'
import csv, struct, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
cols = len(rows[0]) - 1
with open(sys.argv[2], 'wb') as out:
    for r in rows:
        out.write(struct.pack('<%df' % cols, *(float(v) for v in r[1:cols + 1])))
print(cols)
EOF
)
    f32_args+=(--f32 "$name=$work/$name.f32in:$cols")
done

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
     "$(nproc) cpus; $(flac --version), $(zstd --version | head -n1), $(xz --version | head -n1)"
"$BUILD/bin/bench-codec" --seconds "$SECONDS_SIM" --runs "$RUNS" --dump "$work" "${f32_args[@]}" | tee "$work/codec.out"

ratio() { python3 -c "import sys; print('%.4f' % ($1 / $2))"; }
for planar in "$work"/*.planar; do
    set_name=$(basename "$planar" .planar)
    raw=$(stat -c %s "$planar")
    line() { echo "codec $set_name $1 ratio=$(ratio "$raw" "$2")"; }
    if [ -f "$work/$set_name.i16" ]; then
        ch=$(sed -n "s/^# $set_name: \([0-9]*\) channels.* at \([0-9.]*\) Hz.*/\1/p" "$work/codec.out")
        rate=$(sed -n "s/^# $set_name: .* at \([0-9.]*\) Hz.*/\1/p" "$work/codec.out")
        flac -s --best -f --force-raw-format --endian=little --sign=signed --channels="$ch" \
            --bps=16 --sample-rate="${rate%.*}" -o "$work/x.flac" "$work/$set_name.i16"
        line flac-best "$(stat -c %s "$work/x.flac")"
    fi
    line zstd3-cli-raw "$(zstd -q -3 -c "$planar" | wc -c)"
    line zstd3-cli-shuffled "$(zstd -q -3 -c "$work/$set_name.shuf" | wc -c)"
    line zstd19-cli-raw "$(zstd -q -19 -c "$planar" | wc -c)"
    line zstd19-cli-shuffled "$(zstd -q -19 -c "$work/$set_name.shuf" | wc -c)"
    line xz9-raw "$(xz -9 -c "$planar" | wc -c)"
    line xz9-shuffled "$(xz -9 -c "$work/$set_name.shuf" | wc -c)"
done | tee "$work/tools.out"

# wire v2's ratio over each tool's, per set
while read -r _ set_name name r; do
    v2=$(sed -n "s/^codec $set_name wire-v2-encode ratio=\([0-9.]*\).*/\1/p" "$work/codec.out")
    echo "$set_name wire-v2/$name ratio=$(ratio "$v2" "${r#ratio=}")"
done < "$work/tools.out"
