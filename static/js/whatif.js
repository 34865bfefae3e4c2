// What if: which nodes a student may give another value (a leaf or a constant the program first bound
// under its name, small enough for a table), that value read back from the editor's fields, and what
// changed between two runs of the same program. Pure: lab.js puts it on the page.

import { flat, num, shapeOf } from "./values.js";

export const EDIT_MAX = 100; // elements: a field per element (a slider too for a scalar)
const NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/; // what POST /api/trace takes (app/routes/whatif.py)
const NUMERIC = /^(float|int|uint|bfloat)\d*$/;

/** The override's name for this node, or null when it cannot take one. */
export function editableName(node) {
  if (!node || (node.kind !== "leaf" && node.kind !== "constant") || node.inplace) return null;
  if (!node.name || !NAME.test(node.name) || (node.binding ?? 1) !== 1) return null; // the first binding is the one replaced
  if (node.value === null || node.value === undefined || !NUMERIC.test(node.dtype || "")) return null;
  return flat(node.value).length <= EDIT_MAX ? node.name : null;
}

/** The value typed into `texts` (one per element, row-major) in the node's shape; null if one is not a number. */
export function readValue(texts, shape) {
  const xs = texts.map((s) => (s.trim() === "" ? NaN : Number(s.trim())));
  if (xs.some((x) => !Number.isFinite(x))) return null;
  if (!shape.length) return xs[0];
  const build = (dims, at) => {
    if (dims.length === 1) return xs.slice(at, at + dims[0]);
    const size = dims.slice(1).reduce((a, b) => a * b, 1);
    return Array.from({ length: dims[0] }, (_, i) => build(dims.slice(1), at + i * size));
  };
  return build(shape, 0);
}

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The shape of a value as the editor lays out its fields. */
export const editShape = (node) => node.shape ?? shapeOf(node.value);

/**
 * What moved from `before` to `after` (two runs of one program: the same nodes by id, checked by label):
 * {moved: Set of node ids, changes: [{id, label, field: "value"|"grad", from, to}], matched: bool}.
 */
export function changes(before, after) {
  const out = { moved: new Set(), changes: [], matched: true };
  if (!before || !after) return out;
  const old = new Map(before.nodes.map((n) => [n.id, n]));
  for (const n of after.nodes) {
    const o = old.get(n.id);
    if (!o || o.label !== n.label) {
      out.matched = false;
      continue;
    }
    for (const field of ["value", "grad"]) {
      if (!same(o[field], n[field])) {
        out.moved.add(n.id);
        out.changes.push({ id: n.id, label: n.label, named: n.name !== null && n.name !== undefined, field, from: o[field] ?? null, to: n[field] ?? null });
      }
    }
  }
  if (before.nodes.length !== after.nodes.length) out.matched = false;
  return out;
}

/** A scalar slider's range around its value: wide enough to explore, centred where the program started. */
export function sliderRange(value) {
  const x = num(value);
  const span = Math.max(1, Math.abs(x)) * 2;
  return { min: x - span, max: x + span, step: span / 200 };
}
