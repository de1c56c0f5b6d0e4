#!/usr/bin/env bash
# ui-build.sh - build the labeling UI into labeling-ui/dist/: install the npm
# packages pinned by labeling-ui/package-lock.json (uPlot at run time,
# playwright-core for the browser tests) and copy the page's files and
# uPlot's ES module and CSS next to each other.  No third-party code is
# committed; dist/ is git-ignored.  The server serves dist/ at / and /ui/.
set -euo pipefail
cd "$(dirname "$0")/../labeling-ui"
if [ ! -d node_modules/uplot ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
fi
rm -rf dist.tmp
mkdir -p dist.tmp
cp index.html app.js style.css domain.js domain.css dist.tmp/
cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css dist.tmp/
cp node_modules/uplot/LICENSE dist.tmp/uPlot.LICENSE.txt 2>/dev/null || true
rm -rf dist
mv dist.tmp dist
echo "ui-build: labeling-ui/dist ($(ls dist | wc -l) files)"
