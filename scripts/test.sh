#!/usr/bin/env bash
# test.sh - run Precursor's tests against built binaries: `make test` ends here.
#
#   BUILD=build/san scripts/test.sh [unit|integration|all]
#
# Unit: the one Check runner ($BUILD/bin/check-unit) with a fresh database.
# Integration: every executable tests/integration/*.sh, then tests/fault/run.sh
# and tests/browser/run.sh when present; each gets BUILD, a DATABASE_URL of its
# own (pg.sh newdb) and a free PORT, and prints `PASS name` / `FAIL name`.
# PostgreSQL: DATABASE_URL's server when set, else the private cluster, which
# is stopped at the end when this script started it.  TEST_DB_TAG (letters,
# digits, _) goes into every database name, so that two runs against one
# cluster (two build folders, say) do not drop each other's databases.
#
# The last line is exactly `N passed, N failed`; the exit status is non-zero
# on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build/san}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export BUILD
MODE=${1:-all}
case "$MODE" in unit|integration|all) ;; *) echo "usage: test.sh [unit|integration|all]" >&2; exit 2 ;; esac

UNIT_TIMEOUT=${UNIT_TIMEOUT:-900}
SCRIPT_TIMEOUT=${SCRIPT_TIMEOUT:-600}
LOGS="$BUILD/test-logs"
mkdir -p "$LOGS"

# Sanitizers: stop at the first report, with a stack.  Leak detection stays
# on; tests/lsan.supp lists leaks in libraries we cannot fix, with reasons.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
if [ -f "$ROOT/tests/lsan.supp" ]; then
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}
fi

# The unit tests read dataset exports back with numpy through $PYTHON.  A
# python3 first on PATH without numpy (a virtualenv, say) would make them skip
# that check: prefer Debian's, which scripts/deps.sh gives python3-numpy.
if [ -z "${PYTHON:-}" ]; then
    for py in python3 /usr/bin/python3; do
        if "$py" -c 'import numpy' >/dev/null 2>&1; then export PYTHON=$py; break; fi
    done
fi

passed=0
failed=0
failures=()
started_pg=0
dbs=()

cleanup() {
    local d
    for d in "${dbs[@]}"; do
        scripts/pg.sh dropdb "$d" >/dev/null 2>&1 || true
    done
    if [ $started_pg -eq 1 ]; then
        scripts/pg.sh stop || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
    if ! scripts/pg.sh status >/dev/null 2>&1; then
        started_pg=1
    fi
    if ! scripts/pg.sh start; then
        echo "FAIL postgres (scripts/pg.sh start)"
        echo "0 passed, 1 failed"
        exit 1
    fi
else
    scripts/pg.sh start || { echo "FAIL postgres (DATABASE_URL does not answer)"; echo "0 passed, 1 failed"; exit 1; }
fi

DB_TAG=${TEST_DB_TAG:+_${TEST_DB_TAG//[^a-zA-Z0-9_]/_}}
# newdb NAME: a fresh database, its URL in $url.  Not called as $(newdb):
# the name must reach dbs in this shell for cleanup to drop it (through a
# command substitution, every database a run made was left behind).
newdb() {
    local name="$1$DB_TAG"
    dbs+=("$name")
    url=$(scripts/pg.sh newdb "$name")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1"; }

# Sanitizers and a shared machine slow everything: give Check's per-test
# timeouts room (a hung test is still caught by the outer timeout).
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}

run_unit() {
    local bin="$BUILD/bin/check-unit" url log=$LOGS/unit.log
    if [ ! -x "$bin" ]; then
        fail "unit (no $bin: build it first)"
        return
    fi
    newdb precursor_test_unit || { fail "unit (no database)"; return; }
    echo "== unit: $bin"
    DATABASE_URL="$url" timeout -k 10 "$UNIT_TIMEOUT" "$bin" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    # Check's summary: "97%: Checks: 40, Failures: 1, Errors: 0"
    local summary checks fails errs
    summary=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n1)
    if [ -z "$summary" ]; then
        fail "unit (runner exited $rc without a summary; see $log)"
        return
    fi
    checks=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$summary")
    fails=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$summary")
    errs=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$summary")
    passed=$((passed + checks - fails - errs))
    failed=$((failed + fails + errs))
    [ $((fails + errs)) -gt 0 ] && failures+=("unit: $((fails + errs)) Check tests")
    if [ "$rc" -ne 0 ] && [ $((fails + errs)) -eq 0 ]; then
        fail "unit (runner exited $rc; see $log)"
    fi
}

run_script() {
    local script=$1 name url port log rc p f
    name=$(basename "$(dirname "$script")")_$(basename "$script" .sh)
    name=${name//[^a-zA-Z0-9_]/_}
    log="$LOGS/$name.log"
    newdb "precursor_test_$(tr 'A-Z' 'a-z' <<<"$name")" || { fail "$name (no database)"; return; }
    port=$(free_port)
    echo "== $script (port $port)"
    BUILD="$BUILD" DATABASE_URL="$url" IT_DB_FRESH=1 PORT="$port" \
        timeout -k 10 "$SCRIPT_TIMEOUT" "$script" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    p=$(grep -c -E '^PASS( |$)' "$log")
    f=$(grep -c -E '^FAIL( |$)' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -gt 0 ] && failures+=("$script: $f")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        [ "$rc" -eq 124 ] && fail "$name (timed out after ${SCRIPT_TIMEOUT}s)" ||
            fail "$name (exited $rc without a FAIL line; see $log)"
    elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        fail "$name (printed no PASS line)"
    fi
}

if [ "$MODE" = unit ] || [ "$MODE" = all ]; then
    run_unit
fi
if [ "$MODE" = integration ] || [ "$MODE" = all ]; then
    for s in tests/integration/*.sh tests/fault/run.sh tests/browser/run.sh tests/security/run.sh tests/ui/run.sh; do
        [ -f "$s" ] && [ -x "$s" ] || continue
        run_script "$ROOT/$s"
    done
fi

trap - EXIT
cleanup
if [ ${#failures[@]} -gt 0 ]; then
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
