// follow.test.mjs - the models page follows a training to its end: asked
// again while something is unfinished, shown anew once a status moves,
// quiet once the page is left or a request fails.
import test from 'node:test';
import assert from 'node:assert/strict';
import { followUntilMoved } from '../../labeling-ui/follow.js';

const list = (...st) => ({ items: st.map((s, i) => ({ id: i + 1, status: s })) });
const base = {
  unfinished: (l) => l.items.some((m) => m.status === 'queued' || m.status === 'training'),
  key: (l) => l.items.map((m) => `${m.id}:${m.status}`).join(' '),
  wait: () => Promise.resolve(),
  current: () => true,
};

test('nothing training: nothing asked', async () => {
  let asked = 0;
  await followUntilMoved({ ...base, state: list('done', 'failed'), fetch: async () => { asked++; return list('done'); },
    changed: () => assert.fail('nothing moved') });
  assert.equal(asked, 0);
});

test('asked again until a status moves, then shown anew once', async () => {
  const answers = [list('done', 'queued'), list('done', 'training'), list('done', 'training')];
  let asked = 0;
  const shown = [];
  await followUntilMoved({ ...base, state: list('done', 'queued'), fetch: async () => answers[asked++],
    changed: (l) => shown.push(l) });
  assert.equal(asked, 2, 'queued -> queued, then queued -> training');
  assert.deepEqual(shown, [list('done', 'training')]);
});

test('a new model in the list counts as a move', async () => {
  const shown = [];
  await followUntilMoved({ ...base, state: list('training'), fetch: async () => list('training', 'queued'),
    changed: (l) => shown.push(l) });
  assert.equal(shown.length, 1);
});

test('the page left: no request, nothing shown', async () => {
  let asked = 0;
  await followUntilMoved({ ...base, state: list('queued'), current: () => false,
    fetch: async () => { asked++; return list('done'); }, changed: () => assert.fail('page left') });
  assert.equal(asked, 0);
});

test('the page left while the request was out: its answer dropped', async () => {
  let here = true;
  await followUntilMoved({ ...base, state: list('queued'), current: () => here,
    fetch: async () => { here = false; return list('done'); }, changed: () => assert.fail('page left') });
});

test('a failed request ends the following', async () => {
  let asked = 0;
  await followUntilMoved({ ...base, state: list('queued'), fetch: async () => { asked++; throw new Error('503'); },
    changed: () => assert.fail('nothing to show') });
  assert.equal(asked, 1);
});
