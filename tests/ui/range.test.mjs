// range.test.mjs - the snapshot view's window: clamping, zoom, pan and the
// number of points asked of the server.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  clampView, zoomView, panView, plotWidth, firstPx, viewPx, viewQuery, MIN_VIEW_SAMPLES, FIRST_PX_MAX, VIEW_PX_MAX,
} from '../../labeling-ui/range.js';

const near = (a, b) => Math.abs(a - b) < 1e-9;
const nearView = (v, w) => assert.ok(near(v[0], w[0]) && near(v[1], w[1]), `${v} vs ${w}`);

test('clampView leaves a window inside the snapshot as it is', () => {
  assert.deepEqual(clampView(0.25, 0.5, 1, 1000), [0.25, 0.5]);
  assert.deepEqual(clampView(0, 1, 1, 1000), [0, 1]);
});

test('clampView pushes a window past either end back, keeping its width', () => {
  assert.deepEqual(clampView(-0.25, 0.25, 1, 1000), [0, 0.5]);
  assert.deepEqual(clampView(0.75, 1.25, 1, 1000), [0.5, 1]);
});

test('clampView never exceeds the snapshot', () => {
  assert.deepEqual(clampView(-1, 3, 1, 1000), [0, 1]);
});

test('clampView keeps at least MIN_VIEW_SAMPLES samples in view', () => {
  const [a, b] = clampView(0.5, 0.5, 1, 1000);
  assert.equal(a, 0.5);
  assert.ok(near(b - a, MIN_VIEW_SAMPLES / 1000));
  const [c, d] = clampView(1, 1, 1, 1000);    // at the very end: moved left
  assert.ok(near(d, 1) && near(d - c, MIN_VIEW_SAMPLES / 1000), `${c}..${d}`);
});

test('zoomView narrows or widens about the centre', () => {
  assert.deepEqual(zoomView([0, 1], 0.5), [0.25, 0.75]);
  assert.deepEqual(zoomView([0.25, 0.75], 2), [0, 1]);
});

test('panView moves by a fraction of the width', () => {
  assert.deepEqual(panView([0.25, 0.75], 0.25), [0.375, 0.875]);
  assert.deepEqual(panView([0.25, 0.75], -0.25), [0.125, 0.625]);
});

test('keys 0 + + → give the window the browser test labels (7/16..11/16)', () => {
  const D = 1.7, rate = 10000;
  let v = clampView(0, D, D, rate);
  v = clampView(...zoomView(v, 0.5), D, rate);
  v = clampView(...zoomView(v, 0.5), D, rate);
  v = clampView(...panView(v, 0.25), D, rate);
  nearView(v, [D * 7 / 16, D * 11 / 16]);
});

test('panning past the end stops at the end', () => {
  let v = [0.5, 1];
  for (let i = 0; i < 5; i++) v = clampView(...panView(v, 0.25), 1, 1000);
  assert.deepEqual(v, [0.5, 1]);
});

test('plotWidth has a floor and a default for an unsized box', () => {
  assert.equal(plotWidth(1200), 1200);
  assert.equal(plotWidth(100), 400);
  assert.equal(plotWidth(0), 900);
  assert.equal(plotWidth(undefined), 900);
});

test('firstPx is bounded', () => {
  assert.equal(firstPx(900), 900);
  assert.equal(firstPx(5000), FIRST_PX_MAX);
});

test('viewPx asks one point per CSS pixel, bounded, with a default', () => {
  assert.equal(viewPx(1600, 2), 800);
  assert.equal(viewPx(1001, 1), 1001);
  assert.equal(viewPx(0, 1), 1000);
  assert.equal(viewPx(100000, 1), VIEW_PX_MAX);
});

test('viewQuery names the window and the points', () => {
  assert.equal(viewQuery([0.125, 0.5], 800), 'from_s=0.125&to_s=0.5&px=800');
});
