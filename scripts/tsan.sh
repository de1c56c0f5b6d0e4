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
# --help prints the comment above and starts nothing.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^set /d'; exit 0 ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${TSAN_BUILD:-build/tsan}

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
db=${TSAN_DB:-precursor_test_tsan}
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

# The real server under TSan with concurrent clients: 8 devices upload
# signed envelopes in parallel while readers list them, for TSAN_SERVER_S
# seconds; any race report in the server's log fails the run.
if [ "${TSAN_SERVER_S:-20}" -gt 0 ]; then
    make --no-print-directory -j"$(nproc)" BUILD=$BUILD SAN=thread CFLAGS="-O1 -g" \
        $BUILD/bin/precursor-server >>"$ROOT/$BUILD.log" 2>&1 || { echo "FAIL tsan-server (build)"; exit 1; }
    tmp=$(mktemp -d -t precursor-tsan.XXXXXX)
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -I. tests/security/forge.c \
        $BUILD/lib/libprecursor-schema.a $(pkg-config --cflags --libs libzstd libsodium) -lm \
        -o "$tmp/forge" || { echo "FAIL tsan-server (forge)"; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    (umask 077; openssl rand -hex 24 >"$tmp/secret")
    $BUILD/bin/precursor-server migrate --database-url "$url" >/dev/null 2>&1
    tok=$(DATABASE_URL="$url" $BUILD/bin/precursor-server token create --name tsan 2>/dev/null | tail -n1)
    $BUILD/bin/precursor-server serve --port "$port" --database-url "$url" \
        --enroll-secret-file "$tmp/secret" --threads 8 >"$tmp/server.log" 2>&1 &
    spid=$!
    for ((i = 0; i < 150; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] && break
        sleep 0.2
    done
    end=$((SECONDS + ${TSAN_SERVER_S:-20}))
    for w in 1 2 3 4 5 6 7 8; do
        (
            seed=$(printf '%064x' "$w")
            pk=$("$tmp/forge" pk "$seed")
            curl -s -o /dev/null -H 'Content-Type: application/json' -d \
                "{\"device_id\":\"tsan-$w\",\"public_key\":\"$pk\",\"enroll_secret\":\"$(cat "$tmp/secret")\"}" \
                "http://127.0.0.1:$port/api/v1/devices/register"
            seq=1
            while [ $SECONDS -lt $end ]; do
                "$tmp/forge" envelope "$seed" "tsan-$w" $seq ok "$tmp/env-$w" &&
                    curl -s -o /dev/null --data-binary @"$tmp/env-$w" \
                        -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$port/api/v1/snapshots"
                curl -s -o /dev/null -H "Authorization: Bearer $tok" \
                    "http://127.0.0.1:$port/api/v1/snapshots?limit=20"
                seq=$((seq + 1))
            done
            echo $((seq - 1)) >"$tmp/count-$w"
        ) &
    done
    wait $(jobs -p | grep -v "^$spid\$") 2>/dev/null
    kill -TERM $spid; wait $spid 2>/dev/null
    n=$(cat "$tmp"/count-* 2>/dev/null | awk '{s += $1} END {print s + 0}')
    stored=$(psql -X -q -tA "$url" -c "SELECT count(*) FROM snapshots WHERE device_id LIKE 'tsan-%'" 2>/dev/null)
    if grep -q 'WARNING: ThreadSanitizer' "$tmp/server.log"; then
        grep -A 30 -m1 'WARNING: ThreadSanitizer' "$tmp/server.log" | head -n 40
        echo "FAIL tsan-server (race reported; $n uploads)"
        fail=1
    elif [ "${stored:-0}" -ne "$n" ] || [ "$n" -eq 0 ]; then
        echo "FAIL tsan-server ($n uploads sent, ${stored:-0} stored)"
        fail=1
    else
        echo "PASS tsan-server ($n concurrent uploads from 8 devices, all stored, no race reported)"
    fi
    rm -rf "$tmp"
fi
exit $fail
