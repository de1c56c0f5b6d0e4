// samples.test.mjs - reading the binary samples answer (schema/SAMPLES.md)
// from buffers built here field by field.
import test from 'node:test';
import assert from 'node:assert/strict';
import { parseSamples, LITTLE_ENDIAN } from '../../labeling-ui/samples.js';

// One answer: mode 0 (min/max) or 1 (raw), value type 1 (f32) or 2 (f64);
// chans is [[min, max], ...] for mode 0, [values, ...] for mode 1.
function answer({ mode, vt, t, chans, i0 = 0, i1 = 8, n = 8, rate = 1000, trig = 0.004, pre = 4 }) {
  const P = t.length, vb = vt === 2 ? 8 : 4;
  const buf = new ArrayBuffer(64 + 8 * P + chans.length * P * vb * (mode === 1 ? 1 : 2));
  const dv = new DataView(buf);
  [...'PRSS'].forEach((c, i) => dv.setUint8(i, c.charCodeAt(0)));
  dv.setUint16(4, 1, true);
  dv.setUint8(6, mode);
  dv.setUint8(7, vt);
  dv.setUint32(8, chans.length, true);
  dv.setUint32(12, P, true);
  dv.setBigUint64(16, BigInt(i0), true);
  dv.setBigUint64(24, BigInt(i1), true);
  dv.setBigUint64(32, BigInt(n), true);
  dv.setFloat64(40, rate, true);
  dv.setFloat64(48, trig, true);
  dv.setUint32(56, pre, true);
  let off = 64;
  for (const v of t) { dv.setFloat64(off, v, true); off += 8; }
  const put = (v) => { if (vt === 2) dv.setFloat64(off, v, true); else dv.setFloat32(off, v, true); off += vb; };
  for (const c of chans) for (const arr of mode === 1 ? [c] : c) arr.forEach(put);
  return buf;
}

test('the host is little-endian (or the UI asks for JSON)', () => {
  assert.equal(typeof LITTLE_ENDIAN, 'boolean');
});

test('min/max, f32: the schema example (2 channels, px=2 over 8 samples)', { skip: !LITTLE_ENDIAN }, () => {
  const buf = answer({ mode: 0, vt: 1, t: [0, 0.004], chans: [[[-1, -2], [1, 2]], [[10, 20], [30, 40]]] });
  assert.equal(buf.byteLength, 112);
  const meta = { channels: [{ name: 'accel_x', unit: 'g' }, { name: 'temp', unit: 'C' }] };
  const s = parseSamples(buf, meta);
  assert.equal(s.mode, 'minmax');
  assert.equal(s.px, 2);
  assert.deepEqual([s.i0, s.i1, s.samples, s.sample_rate, s.trigger_s, s.pre_samples], [0, 8, 8, 1000, 0.004, 4]);
  assert.deepEqual([...s.t], [0, 0.004]);
  assert.equal(s.channels.length, 2);
  assert.deepEqual(s.channels.map((c) => [c.name, c.unit]), [['accel_x', 'g'], ['temp', 'C']]);
  assert.ok(s.channels[0].min instanceof Float32Array);
  assert.deepEqual([...s.channels[0].min], [-1, -2]);
  assert.deepEqual([...s.channels[0].max], [1, 2]);
  assert.deepEqual([...s.channels[1].min], [10, 20]);
  assert.deepEqual([...s.channels[1].max], [30, 40]);
  assert.equal(s.channels[0].values, undefined);
});

test('raw, f64: values viewed in place, names default to ch<i>', { skip: !LITTLE_ENDIAN }, () => {
  const big = 2 ** 31 + 0.5;
  const buf = answer({ mode: 1, vt: 2, t: [0, 0.001, 0.002], chans: [[1, big, -3]], i0: 5, i1: 8, n: 2 ** 40 });
  const s = parseSamples(buf);
  assert.equal(s.mode, 'raw');
  assert.equal(s.px, undefined);
  assert.equal(s.samples, 2 ** 40);
  assert.equal(s.i1 - s.i0, 3);
  assert.ok(s.channels[0].values instanceof Float64Array);
  assert.equal(s.channels[0].values.buffer, buf);     // no copy
  assert.deepEqual([...s.channels[0].values], [1, big, -3]);
  assert.deepEqual([s.channels[0].name, s.channels[0].unit], ['ch0', '']);
});

test('an answer with no points', { skip: !LITTLE_ENDIAN }, () => {
  const s = parseSamples(answer({ mode: 0, vt: 1, t: [], chans: [[[], []]] }));
  assert.equal(s.t.length, 0);
  assert.equal(s.channels[0].min.length, 0);
});

test('anything but one exact v1 answer is refused', () => {
  const good = answer({ mode: 0, vt: 1, t: [0, 0.004], chans: [[[0, 0], [1, 1]]] });
  const bad = (f) => { const b = good.slice(0); f(new DataView(b)); return b; };
  assert.throws(() => parseSamples(new ArrayBuffer(0)), /not a PRSS v1/);
  assert.throws(() => parseSamples(good.slice(0, 63)), /not a PRSS v1/);
  assert.throws(() => parseSamples(bad((dv) => dv.setUint8(0, 0x51))), /not a PRSS v1/);
  assert.throws(() => parseSamples(bad((dv) => dv.setUint16(4, 2, true))), /not a PRSS v1/);
  assert.throws(() => parseSamples(good.slice(0, good.byteLength - 1)), /header says/);
  const longer = new Uint8Array(good.byteLength + 4);
  longer.set(new Uint8Array(good));
  assert.throws(() => parseSamples(longer.buffer), /header says/);
  assert.throws(() => parseSamples(bad((dv) => dv.setUint32(12, 3, true))), /header says/);
  assert.throws(() => parseSamples(bad((dv) => dv.setUint32(8, 2, true))), /header says/);
  assert.throws(() => parseSamples(bad((dv) => dv.setUint8(7, 2))), /header says/);
  assert.throws(() => parseSamples(bad((dv) => dv.setUint32(12, 0xffffffff, true))), /header says/);
});
