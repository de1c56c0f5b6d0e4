// format.test.mjs - how numbers and times read on the pages.
import test from 'node:test';
import assert from 'node:assert/strict';
import { fmtTime, fmtDay, localDay, pct, fmtSpan } from '../../labeling-ui/format.js';

test('fmtTime: empty for no time, the locale form otherwise', () => {
  assert.equal(fmtTime(''), '');
  assert.equal(fmtTime(null), '');
  assert.equal(fmtTime(undefined), '');
  const s = '2024-03-01T12:34:56Z';
  assert.equal(fmtTime(s), new Date(s).toLocaleString());
});

test('fmtTime: the API\'s one form (UTC, Z, microseconds) reads as that instant', () => {
  const s = '2026-12-07T23:59:59.123456Z';
  assert.ok(!Number.isNaN(Date.parse(s)));
  assert.equal(Date.parse(s), Date.UTC(2026, 11, 7, 23, 59, 59, 123));
  assert.equal(fmtTime(s), new Date(Date.UTC(2026, 11, 7, 23, 59, 59, 123)).toLocaleString());
});

test('pct: one decimal and a unit; a dash when unknown', () => {
  assert.equal(pct(0.1234), '12.3 %');
  assert.equal(pct(0), '0.0 %');
  assert.equal(pct(1), '100.0 %');
  assert.equal(pct(null), '—');
  assert.equal(pct(undefined), '—');
});

test('fmtSpan: bounds at the digits asked, en dash by default', () => {
  assert.equal(fmtSpan(0.125, 0.5, 4), '0.1250–0.5000 s');
  assert.equal(fmtSpan(0.125, 0.5, 3, ' – '), '0.125 – 0.500 s');
});

test('dash: a dash for nothing, the value as text otherwise', async () => {
  const { dash } = await import('../../labeling-ui/format.js');
  assert.equal(dash(null), '—');
  assert.equal(dash(undefined), '—');
  assert.equal(dash(''), '—');
  assert.equal(dash(0), '0');
  assert.equal(dash('ok'), 'ok');
});

test('withSupport: the ratio and the count behind it', async () => {
  const { withSupport } = await import('../../labeling-ui/format.js');
  assert.equal(withSupport(5, 6), '0.83 (n = 6)');
  assert.equal(withSupport(0, 0), '— (n = 0)');
});

// West of Greenwich, where a UTC midnight is the evening before.
const inZone = (tz, f) => {
  const old = process.env.TZ;
  process.env.TZ = tz;
  try { return f(); } finally { if (old === undefined) delete process.env.TZ; else process.env.TZ = old; }
};

test('fmtDay: a UTC day (a bucket\'s start) in the locale\'s date form, as fmtTime writes it, that day wherever the reader is', () => {
  assert.equal(fmtDay(''), '');
  inZone('America/Los_Angeles', () => {
    const day = fmtDay('2026-06-07T00:00:00Z');
    assert.equal(day, new Date(2026, 5, 7, 12).toLocaleDateString());
    assert.ok(fmtTime('2026-06-07T19:00:00Z').startsWith(day), `${fmtTime('2026-06-07T19:00:00Z')} / ${day}`);
    assert.notEqual(day, '2026-06-07');
  });
});

test('localDay: a date field\'s day is the reader\'s, from local midnight to the next', () => {
  inZone('America/New_York', () => {
    assert.deepEqual(localDay('2026-12-07'), { start: Date.UTC(2026, 11, 7, 5) / 1000, end: Date.UTC(2026, 11, 8, 5) / 1000 });
    // the day summer time ends is 25 hours long
    const d = localDay('2026-11-01');
    assert.equal(d.end - d.start, 25 * 3600);
  });
  inZone('UTC', () => assert.deepEqual(localDay('2026-12-07'), { start: Date.UTC(2026, 11, 7) / 1000, end: Date.UTC(2026, 11, 8) / 1000 }));
});
