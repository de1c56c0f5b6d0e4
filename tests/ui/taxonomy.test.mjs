// taxonomy.test.mjs - the classes a snapshot of a type offers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { classesForType, defectOrders, defectText, assetKinematics, findBearing } from '../../labeling-ui/taxonomy.js';

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

test('defect orders: the simulator\'s 6205 at 25 Hz (the server\'s figures) and the CWRU table', () => {
  const b6205 = { balls: 9, ball_mm: 7.94, pitch_mm: 39.04, contact_deg: 0 };
  const o = defectOrders(b6205);
  assert.ok(Math.abs(o.bpfo * 25 - 89.62) < 0.01 && Math.abs(o.bpfi * 25 - 135.38) < 0.01);
  assert.ok(Math.abs(o.bsf * 25 - 58.92) < 0.01 && Math.abs(o.ftf * 25 - 9.958) < 0.001);
  // CWRU publishes BPFO 3.5848, BPFI 5.4152 for its drive-end 6205 (0.3126 in on 1.537 in)
  const cwru = defectOrders({ balls: 9, ball_mm: 0.3126 * 25.4, pitch_mm: 1.537 * 25.4, contact_deg: 0 });
  assert.ok(Math.abs(cwru.bpfo - 3.5848) < 5e-4 && Math.abs(cwru.bpfi - 5.4152) < 5e-4);
  // a contact angle moves BPFO up; BPFO + BPFI = n whatever the geometry
  const ang = defectOrders({ ...b6205, contact_deg: 40 });
  assert.ok(ang.bpfo > o.bpfo && Math.abs(ang.bpfo + ang.bpfi - 9) < 1e-12);
  assert.equal(defectOrders(null), null);
  assert.equal(defectOrders({ balls: 9, ball_mm: 40, pitch_mm: 39 }), null);
  assert.match(defectText(b6205, 25), /^BPFO 3\.585× = 89\.62 Hz · BPFI 5\.415× = 135\.38 Hz · BSF 2\.357× = 58\.92 Hz · FTF 0\.398× = 9\.96 Hz$/);
  assert.equal(defectText(b6205, null), 'BPFO 3.585× · BPFI 5.415× · BSF 2.357× · FTF 0.398×');
  assert.equal(defectText(null, 25), '');
});

test('an asset turns as its own figures say, else as its type\'s; a bearing is found by designation', () => {
  const types = [{ name: 'fan', shaft_hz: 25, bearing: { balls: 9 }, bearing_designation: 'SKF 6205-2RS JEM' }];
  assert.deepEqual(assetKinematics({ equipment_type: 'fan' }, types),
    { shaft_hz: 25, bearing: { balls: 9 }, bearing_designation: 'SKF 6205-2RS JEM' });
  assert.deepEqual(assetKinematics({ equipment_type: 'fan', shaft_hz: 30, bearing: { balls: 8 }, bearing_designation: null }, types),
    { shaft_hz: 30, bearing: { balls: 8 }, bearing_designation: null });
  assert.deepEqual(assetKinematics({ equipment_type: 'pump' }, types), { shaft_hz: null, bearing: null, bearing_designation: null });
  const table = [{ designation: 'SKF 6205-2RS JEM' }, { designation: 'FAG 6203' }];
  assert.equal(findBearing(table, ' skf 6205-2rs jem ').designation, 'SKF 6205-2RS JEM');
  assert.equal(findBearing(table, '6205'), null);
  assert.equal(findBearing(table, ''), null);
});
