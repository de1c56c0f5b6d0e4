// engines.test.mjs - every npm package the UI locks runs on Debian 12's own
// nodejs (18.19), not only on a newer one: `make test` on a stock Debian 12
// installs exactly these versions (npm ci) and runs them with that node.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const DEBIAN12_NODE = [18, 19, 0];
const lock = JSON.parse(readFileSync(new URL('../../labeling-ui/package-lock.json', import.meta.url)));

// The range forms npm packages use in "engines.node": ">=X[.Y[.Z]]",
// "^X" and "||" of those.  Anything else fails the test: read it by hand.
function satisfies(range, v) {
  return range.split('||').some((alt) => {
    const m = alt.trim().match(/^(>=|\^)?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/);
    assert.ok(m, `engines range not understood: ${range}`);
    const want = [Number(m[2]), Number(m[3] || 0), Number(m[4] || 0)];
    if (m[1] === '^' && want[0] !== v[0]) return false;
    for (let i = 0; i < 3; i++) if (v[i] !== want[i]) return v[i] > want[i];
    return true;
  });
}

test('satisfies reads the forms packages use', () => {
  assert.equal(satisfies('>=18', [18, 19, 0]), true);
  assert.equal(satisfies('>=20', [18, 19, 0]), false);
  assert.equal(satisfies('>=18.20.1', [18, 19, 0]), false);
  assert.equal(satisfies('^16 || >=18', [18, 19, 0]), true);
});

test('every locked package allows Debian 12 nodejs 18.19', () => {
  const pkgs = Object.entries(lock.packages).filter(([k]) => k.startsWith('node_modules/'));
  assert.ok(pkgs.length >= 3, 'the lock lists the UI packages');
  for (const [name, p] of pkgs) {
    const range = p.engines && p.engines.node;
    if (range) assert.ok(satisfies(range, DEBIAN12_NODE), `${name}@${p.version} wants node ${range}`);
  }
});

test('playwright-core is pinned, and to a release that still starts on node 18', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../labeling-ui/package.json', import.meta.url)));
  const want = pkg.devDependencies['playwright-core'];
  assert.match(want, /^\d+\.\d+\.\d+$/, 'an exact version: a caret range would float to a release that needs node 20');
  assert.equal(lock.packages['node_modules/playwright-core'].version, want);
});

// The engines field is what npm reads; the check that stops a run is in the
// package's bootstrap ("Playwright requires Node.js 20 or higher").
test('the installed playwright-core starts on node 18', (t) => {
  let src;
  try {
    src = readFileSync(new URL('../../labeling-ui/node_modules/playwright-core/lib/bootstrap.js', import.meta.url), 'utf8');
  } catch {
    t.skip('labeling-ui/node_modules not installed');
    return;
  }
  const m = src.match(/minimumMajorNodeVersion\s*=\s*(\d+)/);
  assert.ok(m, 'bootstrap.js states its minimum node version');
  assert.ok(Number(m[1]) <= 18, `playwright-core's bootstrap wants node ${m[1]}`);
});
