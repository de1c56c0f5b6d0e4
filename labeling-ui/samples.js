// samples.js - the binary samples answer (schema/SAMPLES.md) read as typed
// arrays over the response itself, so a long snapshot is never copied or
// parsed value by value.  Pure: no DOM, no fetch.

// The arrays view little-endian bytes in place, which is only right on a
// little-endian host; a big-endian browser asks for JSON instead.
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const HEADER = 64;
const MAGIC = 'PRSS';
const VERSION = 1;
const MODE_RAW = 1;
const TYPE_F64 = 2;

// Point ch at its arrays, which start at byte off; returns where the next
// channel starts.
function readValues(ch, buf, off, P, VA, raw) {
  const vb = VA.BYTES_PER_ELEMENT;
  if (raw) {
    ch.values = new VA(buf, off, P);
    return off + P * vb;
  }
  ch.min = new VA(buf, off, P);
  ch.max = new VA(buf, off + P * vb, P);
  return off + 2 * P * vb;
}

function isV1(buf, dv) {
  return buf.byteLength >= HEADER && String.fromCharCode(...new Uint8Array(buf, 0, 4)) === MAGIC &&
    dv.getUint16(4, true) === VERSION;
}

// An ArrayBuffer holding one answer -> the same object the JSON form gives
// ({mode, t, channels: [{name, unit, values} | {name, unit, min, max}], ...});
// names and units come from the snapshot's metadata when given, as the
// binary form does not repeat them.  Throws on anything that is not exactly
// one well-formed v1 answer.
export function parseSamples(buf, meta) {
  const dv = new DataView(buf);
  if (!isV1(buf, dv)) throw new Error('samples: not a PRSS v1 answer');
  const raw = dv.getUint8(6) === MODE_RAW;
  const VA = dv.getUint8(7) === TYPE_F64 ? Float64Array : Float32Array;
  const nch = dv.getUint32(8, true), P = dv.getUint32(12, true);
  const need = HEADER + 8 * P + nch * P * VA.BYTES_PER_ELEMENT * (raw ? 1 : 2);
  if (buf.byteLength !== need) throw new Error(`samples: ${buf.byteLength} bytes, header says ${need}`);
  const out = {
    i0: Number(dv.getBigUint64(16, true)), i1: Number(dv.getBigUint64(24, true)),
    samples: Number(dv.getBigUint64(32, true)), sample_rate: dv.getFloat64(40, true),
    trigger_s: dv.getFloat64(48, true), pre_samples: dv.getUint32(56, true),
    mode: raw ? 'raw' : 'minmax', px: raw ? undefined : P,
    t: new Float64Array(buf, HEADER, P), channels: [],
  };
  let off = HEADER + 8 * P;
  for (let c = 0; c < nch; c++) {
    const m = (meta && meta.channels && meta.channels[c]) || {};
    const ch = { name: m.name || `ch${c}`, unit: m.unit || '' };
    off = readValues(ch, buf, off, P, VA, raw);
    out.channels.push(ch);
  }
  return out;
}
