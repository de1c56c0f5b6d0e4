#!/usr/bin/env bash
# ui-build.sh - build the labeling UI into labeling-ui/dist/: install the npm
# packages pinned by labeling-ui/package-lock.json (uPlot at run time,
# esbuild to bundle, playwright-core for the browser tests), bundle app.js
# and every module it imports, uPlot included, into one dist/app.js, and
# copy the page and the style sheets next to it (the server serves them
# flat, at /ui/<file>).  The sources stay one ES module per page: the server
# serves labeling-ui/ itself when dist/ is missing, and node's test runner
# imports them (tests/ui); the bundle only saves the browser a request per
# module.  No third-party code is committed; dist/ is git-ignored.
set -euo pipefail
# --help prints the comment above and starts nothing.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" | sed '/^set /d'; exit 0 ;; esac
[ $# -eq 0 ] || { echo "ui-build.sh: takes no arguments (--help)" >&2; exit 2; }
cd "$(dirname "$0")/../labeling-ui"
if [ ! -d node_modules/uplot ] || [ ! -d node_modules/esbuild ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
fi
rm -rf dist.tmp
mkdir -p dist.tmp/src
# The modules import uPlot as ./uPlot.esm.js, the name it is served under
# when the sources are served unbundled.
cp ./*.js node_modules/uplot/dist/uPlot.esm.js dist.tmp/src/
node_modules/.bin/esbuild dist.tmp/src/app.js --bundle --format=esm --target=es2020 \
    --legal-comments=inline --log-level=warning --outfile=dist.tmp/app.js
rm -rf dist.tmp/src
cp index.html ./*.css node_modules/uplot/dist/uPlot.min.css dist.tmp/
cp node_modules/uplot/LICENSE dist.tmp/uPlot.LICENSE.txt 2>/dev/null || true
rm -rf dist
mv dist.tmp dist
echo "ui-build: labeling-ui/dist ($(ls dist | wc -l) files)"
