// Local derivatives of the common ops as TeX, in the program's own names (a[0] where it is an element),
// with this pass's numbers: ∂out/∂in, and the gradient each input was sent, ḡ_in = Σ ḡ_out · ∂out/∂in,
// computed here from the trace's values (tests/test_formulas.py holds the numbers to PyTorch's). Pure;
// the inspector renders it with KaTeX. Names enter TeX only through expr.js (plain identifiers).

import { inputsOf, nameOf, nodeOf, stepGrad, stepSent } from "./doc.js";
import { expression, indexOf, oneInputConstant, operand, powExponent, writtenAt } from "./expr.js";
import { t } from "./i18n.js";
import { opBase } from "./labels.js";
import { flat, fmtNum, fmtValue, shapeOf, uniform } from "./values.js";

const MAX_SHOWN_CHARS = 24; // operands that read longer get a letter, explained under the formula
const LETTERS = ["u", "v", "s", "p", "q", "r", "z"];

// Elementwise ops: the local derivative per input slot as TeX (X: the operands' TeX, Y: the output's)
// and as a number from one element's values (x: the inputs', y: the output's; c: a one-input op's constant).
const ELEMENTWISE = {
  Add: [() => "1", () => 1, () => "1", () => 1],
  Sub: [() => "1", () => 1, () => "-1", () => -1],
  Rsub: [() => "-1", () => -1],
  Mul: [(X, Y, c) => X[1] ?? tex(c) ?? FACTOR(), (x, y, c) => x[1] ?? c, (X) => X[0], (x) => x[0]],
  Div: [(X, Y, c) => `\\frac{1}{${X[1] ?? tex(c) ?? FACTOR()}}`, (x, y, c) => 1 / (x[1] ?? c), (X) => `-\\frac{${X[0]}}{${X[1]}^{2}}`, (x) => -x[0] / x[1] ** 2],
  Neg: [() => "-1", () => -1],
  Pow: [(X, Y, n) => (n === null ? `n\\,${X[0]}^{n-1}` : n === 2 ? `2\\,${X[0]}` : `${tex(n)}\\,${X[0]}^{${tex(n - 1)}}`), (x, y, n) => n * x[0] ** (n - 1)],
  Exp: [(X, Y) => `e^{${X[0]}} = ${Y}`, (x, y) => y],
  Log: [(X) => `\\frac{1}{${X[0]}}`, (x) => 1 / x[0]],
  Tanh: [(X, Y) => `1 - ${Y}^{2}`, (x, y) => 1 - y * y],
  Sigmoid: [(X, Y) => `${Y}\\,(1 - ${Y})`, (x, y) => y * (1 - y)],
  Relu: [(X) => `\\mathbb{1}[${X[0]} > 0]`, (x) => (x[0] > 0 ? 1 : 0)],
  Sqrt: [(X, Y) => `\\frac{1}{2\\,${Y}}`, (x, y) => 1 / (2 * y)],
};
const REDUCTIONS = { Sum: (n) => ["1", 1], Mean: (n) => [`\\frac{1}{${n}}`, 1 / n] };
const MATMUL = new Set(["Mm", "Mv", "Addmm"]);
// The words inside a formula, in the page's language (the formula.tex.* strings, TeX with {at} for an index).
const FACTOR = () => t("formula.tex.constant"); // x * c where the values do not tell c (x = 0)

function tex(v) {
  if (v === null || v === undefined) return null;
  return fmtNum(v).replace("inf", "\\infty").replace(/e(-?\d+)/, "\\times 10^{$1}");
}

/** A value as TeX: a number, or a short vector written out ([2,\ 0,\ 0]); null for anything longer. */
function texValue(v) {
  const u = uniform(v);
  if (u !== null && (!Array.isArray(v) || flat(v).length === 1)) return tex(u);
  if (!Array.isArray(v) || flat(v).length > 6) return u === null ? null : `${tex(u)}${t("formula.tex.each")}`;
  return fmtValue(v).replace(/inf/g, "\\infty").replace(/, /g, ",\\ ");
}

/** Whether an op works element by element (so an input broadcast to a bigger output gets its gradients summed). */
export const broadcasts = (op) => opBase(op) in ELEMENTWISE;

/** The operations that have a formula (tests/test_formulas.py checks each against PyTorch). */
export const COVERED = [...Object.keys(ELEMENTWISE), ...Object.keys(REDUCTIONS), "Select", "Slice", "CopySlices", ...MATMUL];

/**
 * derivative(trace, nodeId, step) -> lines, one per input slot: {slot, tex (∂out/∂in = formula = number),
 * local (the number, when uniform), grad (ḡ_in's formula with the numbers, when `step` is this pass's
 * step of the node), sent (ḡ_in as computed here, or null), note ({key, vars} for the inspector)}.
 * lines.where lists the letters that stand for long operands: [{letter, text}].
 */
export function derivative(trace, nodeId, step = null) {
  const node = nodeOf(trace, nodeId);
  if (!node || node.kind !== "op") return [];
  const f = forms(trace, node);
  const base = opBase(node.op);
  let lines = [];
  if (ELEMENTWISE[base]) lines = elementwise(f, ELEMENTWISE[base]);
  else if (REDUCTIONS[base] && /Backward0$/.test(node.op)) lines = reduction(f, REDUCTIONS[base]);
  else if (base === "Select" || base === "Slice") lines = indexing(trace, f);
  else if (base === "CopySlices") lines = copySlices(trace, f);
  else if (MATMUL.has(base)) lines = matmul(f, base);
  for (const l of lines) {
    // A matrix product's gradient is a product of matrices, not ḡ times a number: written as such.
    l.tex = l.vjp ?? `${partial(f.out, f.name(l.slot))} = ${l.formula}` + (l.local !== null && tex(l.local) !== l.formula ? ` = ${tex(l.local)}` : "");
    if (step) withNumbers(trace, f, l, step);
  }
  lines.where = f.where;
  return lines;
}

/** The names every line uses: the output's and each slot's TeX (a letter for a long or unsayable one), values, shapes. */
function forms(trace, node) {
  const taken = new Set([...(trace.nodes || []).map(nameOf), ...((trace.source || "").match(/[A-Za-z_]\w*/g) || [])]);
  const letters = LETTERS.filter((l) => !taken.has(l));
  const where = [];
  const shown = (t) => t.replace(/\\[a-z]+|[{}]/gi, "").length;
  const say = (n, depth) => {
    const named = n === node && !nameOf(n) ? expression(trace, n, "tex", depth) : operand(trace, n, "tex", depth, true);
    if (named && shown(named) <= MAX_SHOWN_CHARS) return named;
    const letter = letters.shift() ?? `x_{${where.length}}`;
    const text = n === node ? expression(trace, n, "text", 8) : operand(trace, n, "text", 8, true);
    where.push({ letter, text, op: n.op ?? null }); // text null: only its operation can be named
    return letter;
  };
  const inputs = new Map(inputsOf(trace, node.id).map((i) => [i.slot, i.node]));
  const names = new Map([...inputs].map(([slot, n]) => [slot, say(n, 2)]));
  return {
    trace, node, base: opBase(node.op), inputs, where,
    out: say(node, 2),
    name: (slot) => names.get(slot) ?? "\\dots", // an input the trace does not show (a constant matrix)
    value: (slot) => valueOf(trace, inputs.get(slot)),
    shape: (slot) => inputs.get(slot)?.shape ?? (inputs.get(slot) ? shapeOf(inputs.get(slot).value) : null),
  };
}

// An operand that needs parentheses next to an operator: a sum, a product (not a name, x[0], x², (…)²).
/** A node's value; a transpose the trace did not record (a view) from its input's. */
function valueOf(trace, node) {
  if (!node) return null;
  if (node.value !== null && node.value !== undefined) return node.value;
  const input = inputsOf(trace, node.id)[0]?.node;
  const x = ["T", "Transpose"].includes(opBase(node.op)) && input ? valueOf(trace, input) : null;
  return Array.isArray(x?.[0]) ? x[0].map((_, j) => x.map((row) => row[j])) : null;
}

const compound = (t) => /[-+\s]|\\times|\\div|@/.test(t.replace(/\\left\(.*\\right\)|\\mathrm\{[^}]*\}|\\,\\#\d+/g, "x"));
const group = (t) => (compound(t) ? `\\left(${t}\\right)` : t);
const partial = (out, x) => `\\frac{\\partial ${group(out)}}{\\partial ${group(x)}}`;
const bar = (x) => (compound(x) || x.length > 16 ? `\\overline{${x}}` : `\\bar{${x}}`);
const numel = (shape) => (shape || []).reduce((a, b) => a * b, 1);

/** Elementwise ops: per-element local derivatives, broadcast inputs summed back (and said to be). */
function elementwise(f, table) {
  // The one number a one-input op used besides its input: x * 3's 3, x ** 2's 2.
  const c = f.base === "Pow" ? powExponent(f.trace, f.node) : f.inputs.size === 1 ? oneInputConstant(f.trace, f.node) : null;
  const X = [group(f.name(0)), f.inputs.has(1) ? group(f.name(1)) : null];
  const lines = [];
  for (const slot of f.inputs.keys()) {
    const [texOf, d] = [table[2 * slot], table[2 * slot + 1]];
    if (!texOf) continue;
    const needsC = f.inputs.size === 1 && ["Mul", "Div", "Rsub", "Pow"].includes(f.base);
    const locals = needsC && c === null ? null : elementLocals(f, d, c);
    const broadcast = numel(f.shape(slot)) < numel(f.node.shape);
    lines.push({ slot, formula: texOf(X, f.out, c), local: locals ? uniform(locals) : null, locals, broadcast, constant: c });
  }
  return lines;
}

/** Each output element's local derivative for one slot (`d` of one element's values), the inputs broadcast to the output's shape; null without values. */
function elementLocals(f, d, c) {
  const y = flat(f.node.value);
  if (!y.length) return null;
  const xs = [...f.inputs.keys()].map((slot) => ({ slot, at: broadcastIndex(f.node.shape, f.shape(slot)), v: flat(f.value(slot)) }));
  if (xs.some((x) => !x.at || !x.v.length)) return null;
  return y.map((yi, i) => {
    const x = [];
    for (const { slot, at, v } of xs) x[slot] = v[at[i]];
    return d(x, yi, c);
  });
}

/** For each element of an output of `outShape`, the flat index of the input element it came from (broadcasting), or null. */
export function broadcastIndex(outShape, inShape) {
  if (!outShape || !inShape) return null;
  const n = numel(outShape);
  const pad = outShape.length - inShape.length;
  if (pad < 0 || inShape.some((s, i) => s !== 1 && s !== outShape[pad + i])) return null;
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let j = 0;
    let stride = 1;
    for (let k = outShape.length - 1; k >= 0; k--) {
      const coord = rest % outShape[k];
      rest = Math.floor(rest / outShape[k]);
      const s = k - pad >= 0 ? inShape[k - pad] : 1;
      if (k - pad >= 0) {
        j += (s === 1 ? 0 : coord) * stride;
        stride *= s;
      }
    }
    out[i] = j;
  }
  return out;
}

function reduction(f, of) {
  const n = numel(f.shape(0));
  const [formula, local] = of(n);
  return [{ slot: 0, formula, local, spread: true }];
}

/** Reading a[i]: the gradient goes back to the element read, 0 to the others. */
function indexing(trace, f) {
  const at = indexOf(trace, f.node);
  const formula = at === null ? t("formula.tex.readAny") : t("formula.tex.read", { at: `[${at.replace(/_/g, "\\_")}]` });
  return [{ slot: 0, formula, local: null, rows: rowsOf(at, f.shape(0)), scatter: true }];
}

/** b[i] = v: the old b gets the gradient outside [i], v the gradient at [i]. */
function copySlices(trace, f) {
  const at = writtenAt(trace, f.node);
  const where = at === null ? t("formula.tex.writtenSlice") : `[${at.replace(/_/g, "\\_")}]`;
  const rows = rowsOf(at, f.node.shape);
  const lines = [{ slot: 0, formula: t("formula.tex.mask", { at: where }), local: null, rows, mask: true }];
  if (f.inputs.has(1)) lines.push({ slot: 1, formula: t("formula.tex.gather", { at: where }), local: null, rows, gather: true });
  return lines.filter((l) => f.inputs.has(l.slot));
}

/** Rows [lo, hi) of the first dimension an index names ("2", "-1", "1:3"), or null. */
function rowsOf(at, shape) {
  if (at === null || !shape?.length) return null;
  const n = shape[0];
  const int = (s, dflt) => (s === "" ? dflt : /^-?\d+$/.test(s) ? (Number(s) < 0 ? n + Number(s) : Number(s)) : NaN);
  const m = at.match(/^\s*(-?\d*)\s*:\s*(-?\d*)\s*$/);
  const [lo, hi] = m ? [int(m[1], 0), int(m[2], n)] : [int(at.trim(), NaN), int(at.trim(), NaN) + 1];
  return Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= n && lo < hi ? [lo, hi] : null;
}

/** A @ B (+ bias): ḡ_A = ḡ Bᵀ, ḡ_B = Aᵀ ḡ; the bias gets ḡ summed over the rows. */
function matmul(f, base) {
  const [a, b] = base === "Addmm" ? [1, 2] : [0, 1];
  const T = (x) => (x.endsWith("^{\\top}") ? x.slice(0, -7) : `${group(x)}^{\\top}`);
  const lines = [
    { slot: a, vjp: `${bar(f.name(a))} = ${bar(f.out)}\\,${T(f.name(b))}`, local: null, product: "left" },
    { slot: b, vjp: `${bar(f.name(b))} = ${T(f.name(a))}\\,${bar(f.out)}`, local: null, product: "right" },
  ];
  if (base === "Addmm") lines.unshift({ slot: 0, formula: "1", local: 1, spread: false, bias: true });
  return lines.filter((l) => f.inputs.has(l.slot)).map((l) => ({ ...l, pair: [a, b] }));
}

/** This pass's numbers: the gradient that arrived (ḡ_out), what the formula sends the input, and how it was summed. */
function withNumbers(trace, f, l, step) {
  const up = stepGrad(trace, step);
  if (up === null || stepSent(trace, step, l.slot) === null) return; // nothing went to this input (a constant)
  l.sent = sent(f, l, up);
  const name = f.name(l.slot);
  const u = tex(uniform(up));
  const n = numel(f.node.shape) / Math.max(1, numel(f.shape(l.slot)));
  const sum = l.broadcast || (l.bias && n > 1) ? `\\sum_{${n}} ` : "";
  let g = l.vjp ?? `${bar(name)} = ${sum}${bar(f.out)} \\cdot ${partial(f.out, name)}`;
  const s = l.sent === null ? null : texValue(l.sent);
  if (l.vjp && s === null) return;
  if (u !== null && l.local !== null) g += ` = ${sum}${u} \\times ${tex(l.local)}`;
  if (s !== null) g += ` = ${s}`;
  l.grad = g;
  if (sum) l.note = { key: "formula.broadcast", vars: { n, shape: `(${(f.shape(l.slot) || []).join(", ")})` } };
  else if (l.scatter || l.gather || l.mask) l.note = { key: l.gather ? "formula.gather" : l.mask ? "formula.mask" : "formula.scatter", vars: {} };
}

/** ḡ_in as a value of the input's shape (flat numbers in the input's nesting), or null when this cannot be computed here. */
function sent(f, l, up) {
  const g = flat(up);
  const inShape = f.shape(l.slot);
  const m = numel(inShape);
  let out = null;
  if (l.locals) {
    const at = broadcastIndex(f.node.shape, inShape);
    out = new Array(m).fill(0);
    l.locals.forEach((d, i) => (out[at[i]] += g[i] * d));
  } else if (l.spread) out = new Array(m).fill(g[0] * l.local);
  else if (l.scatter && l.rows) out = place(new Array(m).fill(0), g, l.rows, inShape);
  else if (l.mask && l.rows) out = place([...g], new Array((l.rows[1] - l.rows[0]) * rowSize(null, inShape)).fill(0), l.rows, inShape);
  else if (l.gather && l.rows) out = g.slice(l.rows[0] * rowSize(inShape, f.node.shape), l.rows[1] * rowSize(inShape, f.node.shape));
  else if (l.bias) out = sumTo(g, f.node.shape, inShape);
  else if (l.product) out = product(f, l, g);
  return out && nest(out, inShape);
}

const rowSize = (_, shape) => numel(shape.slice(1));
function place(into, values, [lo], shape) {
  const r = rowSize(null, shape);
  values.slice(0, into.length).forEach((v, i) => (into[lo * r + i] = v));
  return into;
}

function sumTo(g, outShape, inShape) {
  const at = broadcastIndex(outShape, inShape);
  if (!at) return null;
  const out = new Array(numel(inShape)).fill(0);
  g.forEach((v, i) => (out[at[i]] += v));
  return out;
}

/** ḡ Bᵀ or Aᵀ ḡ for 2-D (or matrix @ vector) operands, from the inputs' values. */
function product(f, l, g) {
  const [a, b] = l.pair;
  const A = flat(f.value(a));
  const B = flat(f.value(b));
  const [sa, sb] = [f.shape(a), f.shape(b)];
  if (!A.length || !B.length || sa?.length !== 2 || !(sb?.length === 1 || sb?.length === 2)) return null;
  const [n, k] = sa;
  const p = sb.length === 2 ? sb[1] : 1;
  const out = [];
  if (l.product === "left") for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out.push(sumOf(p, (q) => g[i * p + q] * B[j * p + q]));
  else for (let j = 0; j < k; j++) for (let q = 0; q < p; q++) out.push(sumOf(n, (i) => A[i * k + j] * g[i * p + q]));
  return out;
}

const sumOf = (n, term) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += term(i);
  return s;
};

/** Flat numbers back in a shape's nesting (a plain number for shape ()). */
function nest(xs, shape) {
  if (!shape?.length) return xs[0] ?? null;
  const size = numel(shape.slice(1));
  return Array.from({ length: shape[0] }, (_, i) => nest(xs.slice(i * size, (i + 1) * size), shape.slice(1)));
}

export { powExponent };
