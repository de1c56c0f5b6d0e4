#!/usr/bin/env bash
# tsan.sh - the server's unit suites under ThreadSanitizer.
#
#   scripts/tsan.sh [SUITE...]      default: every suite in tests/unit/server
#
# Builds with SAN=thread into build/tsan (its own folder: TSan and ASan
# cannot share objects) and runs each server suite through the one Check
# runner, with a database of its own (scripts/pg.sh newdb; DATABASE_URL's
# server when set, else the private cluster).  The suites that start the
# http thread pool and the database workers are the ones that matter; the
# rest are cheap.  A data race or a lock-order inversion fails the run
# (halt_on_error).  CI runs this after `make test` (.ci/run).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=build/tsan

if [ $# -gt 0 ]; then
    suites=("$@")
else
    mapfile -t suites < <(grep -ho '^Suite \*[a-z0-9_]*_suite(void)$' tests/unit/server/check_*.c |
                          sed -E 's/^Suite \*([a-z0-9_]*)_suite\(void\)$/\1/' | sort -u)
fi
[ ${#suites[@]} -gt 0 ] || { echo "tsan: no server suites"; exit 1; }

# -O1 keeps stacks readable; TSan needs position-independent executables,
# which Debian's compilers produce by default.
make --no-print-directory -j"$(nproc)" BUILD=$BUILD SAN=thread CFLAGS="-O1 -g" \
    $BUILD/bin/check-unit >"$ROOT/$BUILD.log" 2>&1 ||
    { tail -n 30 "$ROOT/$BUILD.log"; echo "FAIL tsan-build"; exit 1; }

started_pg=0
db=precursor_test_tsan
if [ -z "${DATABASE_URL:-}" ] && ! scripts/pg.sh status >/dev/null 2>&1; then started_pg=1; fi
scripts/pg.sh start || { echo "FAIL tsan (no PostgreSQL)"; exit 1; }
url=$(scripts/pg.sh newdb $db) || { echo "FAIL tsan (no database)"; exit 1; }
cleanup() {
    scripts/pg.sh dropdb $db >/dev/null 2>&1 || true
    [ $started_pg -eq 1 ] && scripts/pg.sh stop || true
}
trap cleanup EXIT

# second_deadlock_stack: both stacks of a lock-order inversion.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4}
[ -f tests/tsan.supp ] && TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$ROOT/tests/tsan.supp"
# TSan runs code 5-15x slower: stretch Check's per-test timeouts to match.
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}
fail=0
mkdir -p $BUILD/test-logs
for s in "${suites[@]}"; do
    log=$BUILD/test-logs/tsan-$s.log
    DATABASE_URL="$url" CK_RUN_SUITE=$s timeout -k 10 900 $BUILD/bin/check-unit >"$log" 2>&1
    rc=$?
    summary=$(grep -E '^[0-9]+%: Checks:' "$log" | tail -n1)
    if [ $rc -eq 0 ] && ! grep -q 'WARNING: ThreadSanitizer' "$log"; then
        echo "PASS tsan-$s ($summary)"
    else
        grep -A 30 -m1 'WARNING: ThreadSanitizer' "$log" | head -n 40
        grep -E '^[^ ]*:[0-9]+:[FE]:' "$log" | head -n 10
        echo "FAIL tsan-$s (exit $rc; $summary; see $log)"
        fail=1
    fi
done
exit $fail
