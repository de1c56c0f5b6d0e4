// spectrum.test.mjs - the spectra panel's arithmetic.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spectrumSeries, envelopeMaxHz, sharedMax } from '../../labeling-ui/spectrum.js';

test('spectrumSeries: column i at i * binHz, values copied', () => {
  const v = [0, 1, 4];
  const [f, y] = spectrumSeries(v, 2.5);
  assert.deepEqual(f, [0, 2.5, 5]);
  assert.deepEqual(y, [0, 1, 4]);
  y[0] = 9;
  assert.equal(v[0], 0);
});

test('envelopeMaxHz: 3.5 x the highest marker, at least 200 Hz, at most Nyquist; 500 Hz unknown', () => {
  assert.equal(envelopeMaxHz([{ hz: 10 }, { hz: 135.4 }], 2000), 3.5 * 135.4);
  assert.equal(envelopeMaxHz([{ hz: 20 }], 2000), 200);
  assert.equal(envelopeMaxHz([{ hz: 400 }], 1000), 500);
  assert.equal(envelopeMaxHz([], 2000), 500);
  assert.equal(envelopeMaxHz(null, 400), 200);
});

test('sharedMax: one top for a row, column 0 and past xMax left out, missing series skipped', () => {
  const a = spectrumSeries([100, 1, 3, 50], 10);     // 30 Hz column is past xMax 25
  const b = spectrumSeries([7, 2, 4], 10);
  assert.equal(sharedMax([a, b], 25), 4);
  assert.equal(sharedMax([a, null], 40), 50);
  assert.equal(sharedMax([], 10), 0);
});
