#!/usr/bin/env bash
# run.sh - the labeling UI's pure modules (labeling-ui/*.js without the DOM)
# under node's own test runner, one process per *.test.mjs file.  Prints
# `PASS ui: <file>: <test>` or `FAIL ui: <file>: <test>` per test, a FAIL for
# a file that ends without reporting, and exits non-zero on any failure.
# Needs only node (18 or later: node:test, TAP output); the env that
# scripts/test.sh passes (BUILD, DATABASE_URL, PORT) is not used.
set -uo pipefail
cd "$(dirname "$0")"

passed=0
failed=0
fail() { failed=$((failed + 1)); echo "FAIL ui: $1"; }

command -v node >/dev/null || { fail "node not found"; echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Every module parses: most need the DOM and are only loaded by the browser
# tests, which a syntax error would stop at the bundling step.
for f in ../../labeling-ui/*.js; do
    if node --check "$f" >"$out" 2>&1; then
        passed=$((passed + 1)); echo "PASS ui: syntax: $(basename "$f")"
    else
        fail "syntax: $(basename "$f")"; sed 's/^/    /' "$out"
    fi
done

for f in ./*.test.mjs; do
    name=$(basename "$f" .test.mjs)
    node --test-reporter=tap "$f" >"$out" 2>&1
    rc=$?
    # Top-level results only: "ok 3 - name" / "not ok 3 - name # ...";
    # indented lines are subtests and diagnostics.
    np=0 nf=0
    while IFS= read -r line; do
        case "$line" in
            "ok "*) np=$((np + 1)); echo "PASS ui: $name: ${line#ok * - }" ;;
            "not ok "*) nf=$((nf + 1)); fail "$name: ${line#not ok * - }" ;;
        esac
    done <"$out"
    passed=$((passed + np))
    if [ "$nf" -gt 0 ] || [ "$rc" -ne 0 ]; then
        sed 's/^/    /' "$out"
        [ "$nf" -eq 0 ] && fail "$name (node exited $rc)"
    elif [ "$np" -eq 0 ]; then
        fail "$name (no test ran)"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
