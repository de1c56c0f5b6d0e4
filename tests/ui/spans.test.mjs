// spans.test.mjs - making spans and the label bodies sent for them.
import test from 'node:test';
import assert from 'node:assert/strict';
import { makeSpan, spanChannels, newLabelBody, restoreBody, withoutLabel, moveSpanEdge, followEdge } from '../../labeling-ui/spans.js';

test('makeSpan keeps a span inside the snapshot as it is', () => {
  assert.deepEqual(makeSpan(0.2, 0.4, 1), { start_s: 0.2, end_s: 0.4 });
});

test('makeSpan clamps a span to [0, duration]', () => {
  assert.deepEqual(makeSpan(-0.5, 0.4, 1), { start_s: 0, end_s: 0.4 });
  assert.deepEqual(makeSpan(0.6, 1.5, 1), { start_s: 0.6, end_s: 1 });
  assert.deepEqual(makeSpan(-1, 2, 1), { start_s: 0, end_s: 1 });
});

test('makeSpan refuses an empty, reversed or outside span', () => {
  assert.equal(makeSpan(0.3, 0.3, 1), null);
  assert.equal(makeSpan(0.4, 0.3, 1), null);
  assert.equal(makeSpan(1.2, 1.5, 1), null);
  assert.equal(makeSpan(-0.5, -0.1, 1), null);
});

test('makeSpan refuses a bound that is not a number', () => {
  assert.equal(makeSpan(NaN, 0.5, 1), null);
  assert.equal(makeSpan(0.1, NaN, 1), null);
});

test('spanChannels keeps the selection', () => {
  const sel = new Set([0, 2]);
  assert.deepEqual([...spanChannels(sel, 1)], [0, 2]);
});

test('spanChannels falls back to the channel drawn on, without changing the selection', () => {
  const sel = new Set();
  assert.deepEqual([...spanChannels(sel, 3)], [3]);
  assert.equal(sel.size, 0);
});

test('newLabelBody sorts channels as numbers and carries the form', () => {
  const fields = { confidence: 0.75, notes: 'n', failure_mode: 'f', mechanism: 'm', cause: 'c' };
  const body = newLabelBody({ start_s: 0.1, end_s: 0.2 }, new Set([10, 2, 1]), 'spike', fields);
  assert.deepEqual(body, {
    start_s: 0.1, end_s: 0.2, channels: [1, 2, 10], class: 'spike',
    confidence: 0.75, notes: 'n', failure_mode: 'f', mechanism: 'm', cause: 'c',
  });
});

test('restoreBody stores the same span again without the server-made fields', () => {
  const label = {
    id: 7, snapshot_id: 3, created_by: 'op', created_at: '2024-01-01T00:00:00Z',
    start_s: 0.1, end_s: 0.2, channels: [0], class: 'spike', confidence: 1, notes: '',
    failure_mode: '', mechanism: '', cause: 'x',
  };
  assert.deepEqual(restoreBody(label), {
    start_s: 0.1, end_s: 0.2, channels: [0], class: 'spike', confidence: 1, notes: '',
    failure_mode: '', mechanism: '', cause: 'x',
  });
});

test('withoutLabel drops one label by id and leaves the list it was given', () => {
  const labels = [{ id: 1 }, { id: 2 }, { id: 3 }];
  assert.deepEqual(withoutLabel(labels, 2), [{ id: 1 }, { id: 3 }]);
  assert.equal(labels.length, 3);
  assert.deepEqual(withoutLabel(labels, 9), labels);
});

test('moveSpanEdge: one edge moves, inside the snapshot, never past the other', () => {
  const s = { start_s: 1, end_s: 2 };
  assert.deepEqual(moveSpanEdge(s, 'start', -0.5, 10), { start_s: 0.5, end_s: 2 });
  assert.deepEqual(moveSpanEdge(s, 'end', 3, 10), { start_s: 1, end_s: 5 });
  assert.deepEqual(moveSpanEdge(s, 'start', -5, 10), { start_s: 0, end_s: 2 });
  assert.deepEqual(moveSpanEdge(s, 'end', 50, 10), { start_s: 1, end_s: 10 });
  const c = moveSpanEdge(s, 'start', 5, 10);
  assert.ok(c.start_s < c.end_s && c.end_s === 2 && Math.abs(c.start_s - 1.999) < 1e-9);
  assert.equal(moveSpanEdge(null, 'start', 1, 10), null);
});

test('followEdge: the view keeps its width and moves just enough to show the edge', () => {
  assert.deepEqual(followEdge([2, 4], 3), [2, 4]);
  assert.deepEqual(followEdge([2, 4], 5), [3, 5]);
  assert.deepEqual(followEdge([2, 4], 1), [1, 3]);
});
