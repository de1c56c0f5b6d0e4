// taxonomy.test.mjs - the classes a snapshot of a type offers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { classesForType } from '../../labeling-ui/taxonomy.js';

const types = [
  { name: 'rotating', parent: null }, { name: 'pump', parent: 'rotating' },
  { name: 'centrifugal_pump', parent: 'pump' }, { name: 'motor', parent: 'rotating' }, { name: 'fan', parent: 'rotating' },
];
const classes = [
  { name: 'normal', equipment_type: null }, { name: 'bearing_outer_race', equipment_type: 'rotating' },
  { name: 'rotor_bar', equipment_type: 'motor' }, { name: 'cavitation', equipment_type: 'pump' },
  { name: 'other', equipment_type: null }, { name: 'blockage', equipment_type: 'pump' },
];
const names = (t) => classesForType(classes, types, t).map((c) => c.name);

test('a type offers its own classes, its ancestors\' and the untyped ones, in order', () => {
  assert.deepEqual(names('centrifugal_pump'), ['normal', 'bearing_outer_race', 'cavitation', 'other', 'blockage']);
  assert.deepEqual(names('motor'), ['normal', 'bearing_outer_race', 'rotor_bar', 'other']);
  assert.deepEqual(names('fan'), ['normal', 'bearing_outer_race', 'other']);
  assert.deepEqual(names('rotating'), ['normal', 'bearing_outer_race', 'other']);
});

test('no type: every class; an unknown type: its own and the untyped', () => {
  assert.equal(classesForType(classes, types, null).length, classes.length);
  assert.deepEqual(names('press'), ['normal', 'other']);
});

test('a cycle in the types does not loop', () => {
  const loop = [{ name: 'a', parent: 'b' }, { name: 'b', parent: 'a' }];
  assert.deepEqual(classesForType(classes, loop, 'a').map((c) => c.name), ['normal', 'other']);
});
