// router.test.mjs - which page a location hash shows.
import test from 'node:test';
import assert from 'node:assert/strict';
import { matchRoute, snapshotHash, modelHash } from '../../labeling-ui/router.js';

test('each page has its hash', () => {
  assert.deepEqual(matchRoute('#/snapshot/42'), { page: 'snapshot', params: { id: 42 } });
  assert.deepEqual(matchRoute('#/admin/users'), { page: 'users', params: {} });
  assert.deepEqual(matchRoute('#/account'), { page: 'account', params: {} });
  assert.deepEqual(matchRoute('#/rules'), { page: 'rules', params: {} });
  assert.deepEqual(matchRoute('#/ops'), { page: 'ops', params: {} });
  for (const p of ['fleet', 'datasets', 'classes']) assert.deepEqual(matchRoute(`#/${p}`), { page: p, params: {} });
  assert.deepEqual(matchRoute('#/models'), { page: 'models', params: { model: null } });
  assert.deepEqual(matchRoute('#/models/3'), { page: 'models', params: { model: 3 } });
  assert.deepEqual(matchRoute('#/deployments'), { page: 'deployments', params: { model: null } });
  assert.deepEqual(matchRoute('#/deployments/12'), { page: 'deployments', params: { model: 12 } });
  assert.deepEqual(matchRoute('#/queue'), { page: 'queue', params: {} });
});

test('anything else is the queue', () => {
  for (const h of ['', undefined, '#', '#/', '#/snapshot/', '#/snapshot/x', '#/nope', 'rules']) {
    assert.equal(matchRoute(h).page, 'queue', String(h));
  }
});

test('snapshotHash is what matchRoute reads back', () => {
  assert.deepEqual(matchRoute(snapshotHash(7)), { page: 'snapshot', params: { id: 7 } });
});

test('modelHash is what matchRoute reads back', () => {
  assert.deepEqual(matchRoute(modelHash(9)), { page: 'models', params: { model: 9 } });
});
