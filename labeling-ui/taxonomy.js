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
