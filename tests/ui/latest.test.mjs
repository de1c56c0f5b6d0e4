// latest.test.mjs - one request at a time, for the newest state only (what
// the snapshot view's zoom, pan and spectra ride on).
import test from 'node:test';
import assert from 'node:assert/strict';
import { latestOnly } from '../../labeling-ui/latest.js';

// A run() whose every call waits until the test lets it finish.
function gated() {
  const calls = [];
  const run = (moved) => new Promise((resolve) => calls.push({ moved, done: resolve }));
  return { calls, run };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

test('idle: the call runs at once', async () => {
  const g = gated();
  latestOnly(g.run)();
  assert.equal(g.calls.length, 1);
  assert.equal(g.calls[0].moved(), false);
});

test('calls while running: one more run when it ends, not one per call', async () => {
  const g = gated();
  const ask = latestOnly(g.run);
  ask();
  ask(); ask(); ask();
  assert.equal(g.calls.length, 1, 'never two in flight');
  assert.equal(g.calls[0].moved(), true, 'the running one learns it is stale');
  g.calls[0].done();
  await tick();
  assert.equal(g.calls.length, 2);
  assert.equal(g.calls[1].moved(), false);
  g.calls[1].done();
  await tick();
  assert.equal(g.calls.length, 2, 'nothing more was asked');
});

test('a call after the run ended runs again at once', async () => {
  const g = gated();
  const ask = latestOnly(g.run);
  ask();
  g.calls[0].done();
  await tick();
  ask();
  assert.equal(g.calls.length, 2);
});

test('a run that throws does not stop the next', async () => {
  let n = 0;
  const ask = latestOnly(async () => { n++; if (n === 1) throw new Error('network'); });
  ask();
  await tick();
  ask();
  await tick();
  assert.equal(n, 2);
});
