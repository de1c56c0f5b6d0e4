#!/usr/bin/env bash
# fuzz.sh - build and run the libFuzzer targets in tests/fuzz.
#
#   scripts/fuzz.sh [TARGET.c...]            run each target for FUZZ_SECONDS (default 60)
#   scripts/fuzz.sh --replay [TARGET.c...]   replay each committed corpus (no libFuzzer),
#                                            with the archives of $BUILD (default build/san)
#
# A target tests/fuzz/fuzz_NAME.c keeps its corpus in tests/fuzz/corpus/NAME/.
# Fuzzing builds the area archives with clang into build/fuzz; new inputs
# libFuzzer finds go to build/fuzz/corpus/NAME (copy the interesting ones into
# the committed corpus by hand).
set -euo pipefail
# --help prints the comment above and starts nothing.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^set /d'; exit 0 ;; esac
cd "$(dirname "$0")/.."

mode=fuzz
if [ "${1:-}" = "--replay" ]; then mode=replay; shift; fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    shopt -s nullglob
    targets=(tests/fuzz/fuzz_*.c)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in tests/fuzz"; exit 0; }

# The Makefile's package list, so a library an area starts using links here too.
pkgs=$(sed -n 's/^PKGS := //p' Makefile)
[ -n "$pkgs" ] || pkgs="libmicrohttpd libpq libzstd libsodium jansson libcurl"
pkg_cflags=$(pkg-config --cflags $pkgs)
# and the libraries it names outside pkg-config (mbed TLS has no .pc in Debian 12).
extra_libs=$(sed -n 's/^MBEDTLS_LIBS := //p' Makefile)
pkg_libs="$(pkg-config --libs $pkgs) $extra_libs -lm -lpthread"
archives() {
    echo "$1/lib/libprecursor-server.a $1/lib/libprecursor-agent.a $1/lib/libprecursor-schema.a"
}

if [ "$mode" = replay ]; then
    build=${BUILD:-build/san}
    san=${SAN:-address,undefined}
    make --no-print-directory BUILD="$build" SAN="$san" \
        "$build/lib/libprecursor-server.a" "$build/lib/libprecursor-agent.a" \
        "$build/lib/libprecursor-schema.a" >/dev/null
    mkdir -p "$build/fuzz"
    fail=0
    for t in "${targets[@]}"; do
        name=$(basename "$t" .c); name=${name#fuzz_}
        bin="$build/fuzz/replay-$name"
        ${CC:-cc} -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize="$san" -fno-omit-frame-pointer \
            -I. $pkg_cflags -o "$bin" "$t" tests/fuzz/replay_main.c $(archives "$build") $pkg_libs
        corpus="tests/fuzz/corpus/$name"
        if [ ! -d "$corpus" ]; then
            echo "FAIL fuzz-replay-$name (no corpus at $corpus)"; fail=1; continue
        fi
        if out=$("$bin" "$corpus" 2>&1); then
            echo "PASS fuzz-replay-$name ($(echo "$out" | tail -n 1))"
        else
            echo "$out" | tail -n 30
            echo "FAIL fuzz-replay-$name"; fail=1
        fi
    done
    exit $fail
fi

command -v clang >/dev/null || { echo "fuzz: clang is needed (make deps)"; exit 1; }
build=build/fuzz
make --no-print-directory BUILD=$build CC=clang \
    CFLAGS="-g -O1 -fsanitize=fuzzer-no-link" SAN=address,undefined \
    $build/lib/libprecursor-server.a $build/lib/libprecursor-agent.a \
    $build/lib/libprecursor-schema.a >/dev/null
seconds=${FUZZ_SECONDS:-60}
for t in "${targets[@]}"; do
    name=$(basename "$t" .c); name=${name#fuzz_}
    bin="$build/bin/fuzz-$name"
    mkdir -p "$build/bin" "$build/corpus/$name"
    clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
        -I. $pkg_cflags -o "$bin" "$t" $(archives $build) $pkg_libs
    echo "fuzz: $name for ${seconds}s"
    "$bin" -max_total_time="$seconds" -print_final_stats=1 \
        "$build/corpus/$name" "tests/fuzz/corpus/$name" 2>&1 |
        grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==ERROR|SUMMARY)' |
        sed "s/^/fuzz $name: /"
done
