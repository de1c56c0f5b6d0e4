#!/usr/bin/env bash
# ui-build.sh - build the labeling UI into labeling-ui/dist/: install the npm
# packages pinned by labeling-ui/package-lock.json (uPlot at run time,
# playwright-core for the browser tests), copy the page, every module and
# style sheet of labeling-ui/ and uPlot's ES module and CSS next to each
# other (the server serves them flat, at /ui/<file>), and list every module
# in index.html as a modulepreload.  No third-party code is committed;
# dist/ is git-ignored.  The server serves dist/ at / and /ui/.
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
cp ./*.js ./*.css dist.tmp/
cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css dist.tmp/
cp node_modules/uplot/LICENSE dist.tmp/uPlot.LICENSE.txt 2>/dev/null || true
# Without the list the browser finds a module only once the one importing
# it has arrived: a round trip per level of imports before the first page.
for f in dist.tmp/*.js; do
    n=$(basename "$f")
    [ "$n" = app.js ] || printf '<link rel="modulepreload" href="ui/%s">\n' "$n"
done >dist.tmp/preload.txt
grep -q '<!-- modulepreload' index.html || { echo "ui-build: no modulepreload marker in index.html" >&2; exit 1; }
awk -v list=dist.tmp/preload.txt '
    /<!-- modulepreload/ { marker = 1 }
    { print }
    marker && /-->/ { while ((getline l < list) > 0) print l; marker = 0 }
' index.html >dist.tmp/index.html
rm dist.tmp/preload.txt
rm -rf dist
mv dist.tmp dist
echo "ui-build: labeling-ui/dist ($(ls dist | wc -l) files)"
