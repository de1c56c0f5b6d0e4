// series.test.mjs - uPlot data from samples answers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { channelData, stackedData, lockedRanges } from '../../labeling-ui/series.js';

const t = [0, 1, 2];

test('channelData: min/max columns give [t, max, min]', () => {
  const s = { t, channels: [{ min: [1, 2, 3], max: [4, 5, 6] }, { min: [0, 0, 0], max: [9, 9, 9] }] };
  assert.deepEqual(channelData(s, 0), [t, [4, 5, 6], [1, 2, 3]]);
  assert.deepEqual(channelData(s, 1), [t, [9, 9, 9], [0, 0, 0]]);
});

test('channelData: raw samples twice, so one band drawing serves both', () => {
  const values = [1, -1, 2];
  const d = channelData({ t, channels: [{ values }] }, 0);
  assert.equal(d[1], values);
  assert.equal(d[2], values);
});

test('stackedData scales each channel into its own band [i, i + 0.9]', () => {
  const s = { t, channels: [{ min: [0, 5, 10], max: [10, 15, 20] }, { values: [-1000, 0, 1000] }] };
  const d = stackedData(s);
  assert.equal(d.length, 5);
  assert.equal(d[0], t);
  const close = (a, b) => a.every((v, i) => Math.abs(v - b[i]) < 1e-12);
  assert.ok(close(d[1], [0.45, 0.675, 0.9]), `${d[1]}`);
  assert.ok(close(d[2], [0, 0.225, 0.45]), `${d[2]}`);
  assert.ok(close(d[3], [1, 1.45, 1.9]), `${d[3]}`);
  assert.ok(close(d[4], [1, 1.45, 1.9]), `${d[4]}`);
});

test('stackedData: a flat channel sits at the bottom of its band', () => {
  const d = stackedData({ t, channels: [{ values: [1, 2, 3] }, { values: [7, 7, 7] }] });
  assert.deepEqual([...d[3]], [1, 1, 1]);
});

test('stackedData keeps typed arrays typed', () => {
  const ch = { min: new Float32Array([0, 1, 2]), max: new Float32Array([2, 3, 4]) };
  const d = stackedData({ t: new Float64Array(t), channels: [ch] });
  assert.ok(d[1] instanceof Float32Array);
});

test('lockedRanges: one range per unit over the whole snapshot, padded', () => {
  const s = {
    t,
    channels: [
      { unit: 'g', min: [-1, 0, 0], max: [1, 2, 0.5] },
      { unit: 'g', min: [-4, 0, 0], max: [0, 1, 0] },
      { unit: 'degC', values: [40, 41, 42] },
    ],
  };
  const r = lockedRanges(s, 0.1);
  assert.deepEqual(r[0], [-4.6, 2.6]);
  assert.deepEqual(r[1], r[0], 'channels of one unit share it');
  assert.ok(Math.abs(r[2][0] - 39.8) < 1e-12 && Math.abs(r[2][1] - 42.2) < 1e-12, `${r[2]}`);
});

test('lockedRanges: a flat channel gets a span around its value; no samples, [-1, 1]', () => {
  const r = lockedRanges({ t, channels: [{ unit: 'bar', values: [4, 4, 4] }, { unit: 'A', values: [] }] });
  assert.deepEqual(r, [[3.5, 4.5], [-1, 1]]);
});
