// taxonomy.js - which label classes a snapshot offers: those that belong to
// no type (normal, sensor_fault, other, ...) and those of its equipment
// type and the type's ancestors (a fan is rotating machinery: bearing
// classes yes, a motor's rotor bar no), in the classes' own order, which
// is the order of keys 1-9.  Pure: no DOM.

// classes: GET /classes items ({name, equipment_type, ...}); types: GET
// /taxonomy's types ({name, parent}); t: the snapshot's equipment type.
export function classesForType(classes, types, t) {
  if (!t) return classes;
  const parent = new Map((types || []).map((x) => [x.name, x.parent]));
  const line = new Set();
  for (let x = t; x && !line.has(x) && line.size < 64; x = parent.get(x)) line.add(x);
  return classes.filter((c) => !c.equipment_type || line.has(c.equipment_type));
}

// A rolling bearing's defect frequencies as orders of the shaft speed, from
// the usual kinematics (as the server marks the spectra): g = ball / pitch
// * cos(contact); BPFO = n/2 (1 - g), BPFI = n/2 (1 + g), BSF = pitch /
// (2 ball) (1 - g^2), FTF = (1 - g) / 2.  b: {balls, ball_mm, pitch_mm,
// contact_deg}; null without a whole geometry.
export function defectOrders(b) {
  if (!b || !(b.balls >= 3) || !(b.ball_mm > 0) || !(b.pitch_mm > b.ball_mm)) return null;
  const g = (b.ball_mm / b.pitch_mm) * Math.cos(((b.contact_deg || 0) * Math.PI) / 180);
  return {
    bpfo: (b.balls / 2) * (1 - g),
    bpfi: (b.balls / 2) * (1 + g),
    bsf: (b.pitch_mm / (2 * b.ball_mm)) * (1 - g * g),
    ftf: (1 - g) / 2,
  };
}

// "BPFO 3.585× = 89.62 Hz · BPFI ..." (orders only without a shaft speed);
// '' without a bearing.
export function defectText(b, shaftHz) {
  const o = defectOrders(b);
  if (!o) return '';
  const hz = shaftHz > 0 ? shaftHz : null;
  return ['bpfo', 'bpfi', 'bsf', 'ftf'].map((k) => `${k.toUpperCase()} ${o[k].toFixed(3)}×` +
    (hz ? ` = ${(o[k] * hz).toFixed(2)} Hz` : '')).join(' · ');
}

// How an asset turns: its own shaft speed and bearing, else its type's
// (as the spectrum view and training read them).
export function assetKinematics(asset, types) {
  const t = (types || []).find((x) => x.name === asset.equipment_type) || {};
  return {
    shaft_hz: asset.shaft_hz ?? t.shaft_hz ?? null,
    bearing: asset.bearing ?? t.bearing ?? null,
    bearing_designation: asset.bearing ? asset.bearing_designation ?? null : t.bearing_designation ?? null,
  };
}

// The table's bearing named by text (designation, case-insensitive), or null.
export function findBearing(bearings, text) {
  const k = (text || '').trim().toLowerCase();
  return k ? (bearings || []).find((b) => b.designation.toLowerCase() === k) || null : null;
}
