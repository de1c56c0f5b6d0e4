#!/usr/bin/env bash
# deps.sh - the Debian packages Precursor needs to build, test and run, in one place.
#
# Runs before every `make run` / `make test`, so the common case (everything
# present) must be a fast no-op: one dpkg-query call.  When something is
# missing: as root, install it with apt-get (waiting on the dpkg lock, since an
# unattended upgrade may hold it on a fresh machine); otherwise print the
# packages and the command, and fail.  Then the browser UI's npm packages.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# package          why
PACKAGES=(
    build-essential      # cc, make, ar
    pkg-config           # the Makefile finds the libraries below with it
    libmicrohttpd-dev    # server: HTTP with an internal thread pool
    libpq-dev            # server: PostgreSQL client
    libzstd-dev          # wire format: sample payload compression
    libsodium-dev        # wire format: Ed25519 signatures, random
    libssl-dev           # server: hardware SHA-256 of stored envelopes (libcrypto)
    libjansson-dev       # server and agent: JSON
    libcurl4-openssl-dev # server unit tests and benches: HTTP client (the agent has its own)
    libmbedtls-dev       # agent: TLS for its HTTP client (small, few relocations)
    check                # unit tests
    libsubunit-dev       # Check's pkg-config links -lsubunit
    libfftw3-dev         # server: spectra behind the per-snapshot features
    libdeflate-dev       # server: the CRC-32 of the npz export's zip entries (carry-less multiply)
    libarchive-dev       # unit tests: an independent zip reader of npz exports
    zlib1g-dev           # unit tests: an independent CRC-32 for the npz's zip
    postgresql           # the private development/test cluster (scripts/pg.sh)
    zstd                 # tests: an independent decompressor for stored payloads
    flac                 # make bench: bench/codec.sh compares the snapshot codec with flac --best
    xz-utils             # make bench: bench/codec.sh compares with xz -9
    openssl              # tests: an independent Ed25519 verifier; random secrets
    faketime             # tests/fault/clock_step.sh: steps the agent's clock (libfaketime)
    curl                 # tests and scripts: HTTP client
    jq                   # tests and the README's ML snippet: JSON on the command line
    haproxy              # tests: the load balancer in front of two servers (two_servers.sh)
    python3              # tests: free ports, small parsers (standard library only)
    python3-numpy        # tests: an independent reader of dataset exports (numpy.load)
    clang                # make fuzz: libFuzzer
    gcc-arm-none-eabi    # make m4: the agent's core for a Cortex-M4
    nodejs               # labeling UI build and browser tests
    npm                  # labeling UI packages (uPlot, playwright-core)
    chromium             # browser tests, driven by playwright-core
)

# A package counts as present when dpkg has it installed.  npm is also
# present when the npm command exists: NodeSource's nodejs package ships npm
# and conflicts with Debian's.
missing=()
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
    if ! grep -q "^$p ii" <<<"$installed"; then
        if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
            continue
        fi
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "deps: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -q
        apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
    else
        echo "deps: missing Debian packages: ${missing[*]}" >&2
        echo "deps: install them with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

# The labeling UI's packages and build belong to the UI; run them only when
# it has them, and only when package.json changed since the last install.
UI="$ROOT/labeling-ui"
if [ -f "$UI/package.json" ]; then
    stamp="$UI/node_modules/.precursor-stamp"
    if [ ! -f "$stamp" ] || [ "$UI/package.json" -nt "$stamp" ] ||
       { [ -f "$UI/package-lock.json" ] && [ "$UI/package-lock.json" -nt "$stamp" ]; }; then
        echo "deps: installing labeling-ui npm packages" >&2
        if [ -f "$UI/package-lock.json" ]; then
            (cd "$UI" && npm ci --no-audit --no-fund --loglevel=error)
        else
            (cd "$UI" && npm install --no-audit --no-fund --loglevel=error)
        fi
        touch "$stamp"
    fi
fi
if [ -x "$ROOT/scripts/ui-build.sh" ]; then
    "$ROOT/scripts/ui-build.sh"
fi
