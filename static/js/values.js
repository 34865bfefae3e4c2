// Tensor values as the trace carries them (a number, nested lists, "NaN"/"Infinity"/"-Infinity"
// strings, bools, or null when too big): arithmetic for the player and text for the page.

const SPECIAL = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

/** A JSON value element as a JS number (bools as 0/1). */
export function num(v) {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "string" && v in SPECIAL) return SPECIAL[v];
  return NaN;
}

/** Back to the trace's JSON encoding. */
export function enc(x) {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  return x;
}

/** Elementwise a + b; null stands for "no gradient yet" (PyTorch's None). */
export function addValues(a, b) {
  if (a === null || a === undefined) return b ?? null;
  if (b === null || b === undefined) return a;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length === b.length) return a.map((x, i) => addValues(x, b[i]));
    if (b.length === 1) return a.map((x) => addValues(x, b[0]));
    if (a.length === 1) return b.map((y) => addValues(a[0], y));
    return a;
  }
  if (Array.isArray(a)) return a.map((x) => addValues(x, b));
  if (Array.isArray(b)) return b.map((y) => addValues(a, y));
  return enc(num(a) + num(b));
}

/** Shape of a nested-list value ([] for a scalar). */
export function shapeOf(v) {
  const shape = [];
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

/** All elements, flattened, as numbers. */
export function flat(v, out = []) {
  if (Array.isArray(v)) for (const x of v) flat(x, out);
  else if (v !== null && v !== undefined) out.push(num(v));
  return out;
}

/** A number as a student reads it: up to 4 significant digits, no trailing zeros. */
export function fmtNum(x) {
  if (typeof x === "boolean") return x ? "True" : "False";
  x = num(x);
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (Object.is(x, -0)) x = 0;
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(x.toPrecision(4)));
}

/** A value in one line, eliding the middle of long lists: "[1, 2, …, 9]". */
export function fmtValue(v, maxItems = 6) {
  if (v === null || v === undefined) return "None";
  if (!Array.isArray(v)) return fmtNum(v);
  // Rows share the budget, but every row keeps at least three items (first, …, last).
  const inner = Math.max(3, Math.floor(maxItems / Math.min(v.length, 2)));
  if (v.length > maxItems) {
    const head = Math.max(1, maxItems - 2);
    return "[" + [...v.slice(0, head).map((x) => fmtValue(x, inner)), "…", fmtValue(v[v.length - 1], inner)].join(", ") + "]";
  }
  return "[" + v.map((x) => fmtValue(x, inner)).join(", ") + "]";
}

/** `s` in at most `n` characters: cut, with "…" as its last. */
export const short = (s, n = 30) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

/**
 * A line that holds a value ("grad [1.2, 1.2, …, 1.2]") in at most `n` characters: a list is cut between
 * its elements and closed ("grad [1.2, 1.2, …]"), never inside a number ("1.…" reads as some number).
 */
export function fitValue(s, n) {
  if (s.length <= n) return s;
  const start = s.indexOf("[");
  for (let comma = s.lastIndexOf(", ", n); start >= 0 && comma > start; comma = s.lastIndexOf(", ", comma - 1)) {
    const head = s.slice(0, comma);
    const open = (head.match(/\[/g) || []).length - (head.match(/\]/g) || []).length;
    const cut = head + (head.endsWith("…") ? "" : ", …") + "]".repeat(open);
    if (cut.length <= n) return cut;
  }
  return short(s, n);
}

/** Shape as PyTorch prints it: "(5,)" "(2, 3)" "()" */
export function fmtShape(shape) {
  if (!shape) return "";
  if (shape.length === 1) return `(${shape[0]},)`;
  return "(" + shape.join(", ") + ")";
}

/** Whether every element equals the first one (for "2 × 5" style summaries). */
export function uniform(v) {
  const xs = flat(v);
  if (!xs.length) return null;
  return xs.every((x) => x === xs[0] || (Number.isNaN(x) && Number.isNaN(xs[0]))) ? xs[0] : null;
}
