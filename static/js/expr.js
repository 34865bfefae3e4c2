// A node's operation in the program's own terms: "x × w1", "a[0]² + a[1]", "b[0] ← …", as text for
// captions and as TeX for the inspector's formulas. Names come from the trace (doc.js); what the trace
// does not carry (an exponent, an index) is read from the node's source line and checked against the
// values where they can tell. Names enter TeX only when they are plain identifiers (no TeX commands).

import { inputsOf, labelOf, nameOf, sourceLine } from "./doc.js";
import { opBase, opSymbol } from "./labels.js";
import { flat, fmtNum, uniform } from "./values.js";

const INFIX = { Add: "+", Sub: "−", Mul: "×", Div: "÷", Mm: "@", Mv: "@", Bmm: "@", MatMul: "@", Dot: "·" };
const TEX_INFIX = { "+": "+", "−": "-", "×": "\\times", "÷": "\\div", "@": "\\,@\\,", "·": "\\cdot" };
const CALLS = { Exp: "exp", Log: "log", Tanh: "tanh", Sigmoid: "σ", Relu: "relu", Sum: "sum", Mean: "mean", Sqrt: "√", Abs: "abs", Sin: "sin", Cos: "cos" };
const TEX_CALLS = { "σ": "\\sigma", "√": "\\sqrt", exp: "\\exp", log: "\\log", tanh: "\\tanh", sin: "\\sin", cos: "\\cos" };
const INDEXING = new Set(["Select", "Slice", "Index"]);
const SUP = { 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹", "-": "⁻" };
const IDENT = /^[A-Za-z_][A-Za-z0-9_.]{0,39}$/;
const INDEX_TEXT = /^[\w\s:,+\-*.]{1,24}$/; // an index as written (a[0], a[1:3], a[i, :]), else not shown

/** A name as TeX (\mathrm{w1}, \mathrm{b}\,\#2), or null when it is not a plain identifier. */
export function texName(node) {
  const name = nameOf(node);
  if (!name || !IDENT.test(name)) return null;
  const label = labelOf(node);
  const binding = label.startsWith(name + " #") ? label.slice(name.length + 2) : "";
  return `\\mathrm{${name.replace(/_/g, "\\_")}}` + (/^\d+$/.test(binding) ? `\\,\\#${binding}` : "");
}

/** 2 -> "²", -1 -> "⁻¹"; a fraction as "^0.5". */
export const superscript = (n) => (Number.isInteger(n) ? [...String(n)].map((c) => SUP[c]).join("") : `^${n}`);

/** The exponent of a Pow node: from its line (x**2, pow(x, 3)), else from its values (x > 0, x ≠ 1). */
export function powExponent(trace, node, x = inputsOf(trace, node.id)[0]?.node?.value ?? null) {
  const m = [...sourceLine(trace, node.line).matchAll(/\*\*\s*\(?\s*(-?\d+(?:\.\d+)?)|\bpow\([^,]+,\s*(-?\d+(?:\.\d+)?)\)/g)];
  if (m.length === 1) return Number(m[0][1] ?? m[0][2]);
  const xs = flat(x);
  const ys = flat(node.value);
  if (xs.length && xs.length === ys.length) {
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] > 0 && xs[i] !== 1 && ys[i] > 0) {
        const n = Math.log(ys[i]) / Math.log(xs[i]);
        if (Math.abs(n - Math.round(n)) < 1e-4) return Math.round(n);
      }
    }
  }
  return null;
}

/** Where the top-level `=` of an assignment line is (augmented ones too), or -1. */
function assignAt(line) {
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
    else if (c === "#") return -1;
    else if (c === "=" && depth === 0 && line[i + 1] !== "=" && !"=!<>".includes(line[i - 1])) return i;
  }
  return -1;
}

/** `name[...]` subscripts of a line, in source order: [{at, text}] (brackets balanced). */
function subscripts(line, name) {
  const out = [];
  const re = new RegExp(`(?<![\\w.])${name.replace(/\./g, "\\.")}\\s*\\[`, "g");
  for (const m of line.matchAll(re)) {
    let depth = 1;
    let i = m.index + m[0].length;
    const start = i;
    for (; i < line.length && depth; i++) depth += line[i] === "[" ? 1 : line[i] === "]" ? -1 : 0;
    if (!depth) out.push({ at: m.index, text: line.slice(start, i - 1).trim() });
  }
  return out;
}

/** The index an indexing node read, as written ("0", "1:3"), or null when the line does not tell. */
export function indexOf(trace, node) {
  const base = opBase(node.op);
  const input = inputsOf(trace, node.id)[0]?.node;
  const name = nameOf(input);
  if (!INDEXING.has(base) || !name) return null;
  const line = sourceLine(trace, node.line);
  const eq = assignAt(line);
  // A plain assignment reads its right side; `b[0] += …` reads its target too.
  const augmented = eq > 0 && /[-+*/@%&|^]$/.test(line.slice(0, eq));
  const reads = subscripts(line, name).filter((s) => eq < 0 || augmented || s.at > eq);
  const siblings = (trace.nodes || []).filter((n) => n.line === node.line && opBase(n.op) === base && inputsOf(trace, n.id)[0]?.node === input);
  if (!reads.length || siblings.length % reads.length) return null;
  const text = reads[siblings.indexOf(node) % reads.length].text;
  if (!INDEX_TEXT.test(text)) return null;
  // A plain integer index of a vector must pick the node's value.
  if (/^-?\d+$/.test(text) && Array.isArray(input.value) && !Array.isArray(node.value)) {
    const xs = flat(input.value);
    const i = Number(text) < 0 ? xs.length + Number(text) : Number(text);
    if (xs[i] !== flat(node.value)[0]) return null;
  }
  return text;
}

/** The index an in-place write (CopySlices) wrote at: "0" of `b[0] = …`, or null. */
export function writtenAt(trace, node) {
  const name = nameOf(node);
  if (opBase(node.op) !== "CopySlices" || !name) return null;
  const line = sourceLine(trace, node.line);
  const eq = assignAt(line);
  const target = eq < 0 ? [] : subscripts(line.slice(0, eq), name);
  return target.length === 1 && INDEX_TEXT.test(target[0].text) ? target[0].text : null;
}

/** The operation as the graph's box title shows it: "x²", "[0]", "[0] ←", else labels.js's symbol. */
export function opText(trace, node) {
  const base = opBase(node.op);
  if (base === "Pow") {
    const n = powExponent(trace, node);
    return n === null ? opSymbol(node.op) : "x" + superscript(n);
  }
  const at = INDEXING.has(base) ? indexOf(trace, node) : base === "CopySlices" ? writtenAt(trace, node) : null;
  if (at !== null) return base === "CopySlices" ? `[${at}] ←` : `[${at}]`;
  return opSymbol(node.op);
}

const STYLES = {
  text: {
    name: (node) => labelOf(node),
    value: (v) => fmtNum(v),
    infix: (a, op, b) => `${a} ${op} ${b}`,
    call: (f, a) => (f === "√" ? `√${a}` : `${f}(${a})`),
    pow: (a, n) => a + superscript(n),
    index: (a, i) => `${a}[${i}]`,
    neg: (a) => `−${a}`,
    transpose: (a) => `${a}ᵀ`,
    group: (a) => `(${a})`,
  },
  tex: {
    name: (node) => texName(node),
    value: (v) => fmtNum(v).replace("inf", "\\infty").replace(/e(-?\d+)/, "\\times 10^{$1}"),
    infix: (a, op, b) => `${a} ${TEX_INFIX[op]} ${b}`,
    call: (f, a) => (f === "√" ? `\\sqrt{${a}}` : `${TEX_CALLS[f] ?? `\\operatorname{${f}}`}(${a})`),
    pow: (a, n) => `${a}^{${n}}`,
    index: (a, i) => `${a}[${i.replace(/_/g, "\\_")}]`,
    neg: (a) => `-${a}`,
    transpose: (a) => `${a}^{\\top}`,
    group: (a) => `\\left(${a}\\right)`,
  },
};

/** The number a one-input +, −, ×, ÷ node used (x * 3 keeps only x in the graph), from its values; or null. */
export function oneInputConstant(trace, node) {
  const inputs = inputsOf(trace, node.id);
  return inputs.length === 1 ? scalarOperand(opBase(node.op), inputs[0].node?.value, node.value) : null;
}

function scalarOperand(base, x, y) {
  const [xs, ys] = [flat(x), flat(y)];
  if (!xs.length || xs.length !== ys.length) return null;
  const of = { Add: (a, b) => b - a, Sub: (a, b) => a - b, Rsub: (a, b) => b + a, Mul: (a, b) => b / a, Div: (a, b) => a / b }[base];
  if (!of) return null;
  const cs = xs.map((v, i) => of(v, ys[i])).filter(Number.isFinite);
  if (!cs.length) return null;
  const c = Number(cs[0].toPrecision(6));
  return cs.every((v) => Math.abs(v - c) <= 1e-5 * Math.max(1, Math.abs(c))) ? c : null;
}

/**
 * A node as an operand: its name if it has one (its value if it is an unnamed scalar constant), else its
 * own expression, `depth` levels deep, in parentheses where an operator needs them; null when it cannot
 * be said (a name TeX cannot take, too deep). `bare`: no parentheses (a function's argument).
 */
export function operand(trace, node, style = "text", depth = 3, bare = false) {
  const s = STYLES[style];
  if (!node) return null;
  if (nameOf(node)) return s.name(node);
  if (node.kind !== "op") return uniform(node.value) !== null && !Array.isArray(node.value) ? s.value(node.value) : null;
  if (depth <= 0) return null;
  const e = expression(trace, node, style, depth - 1);
  if (e === null || bare) return e;
  const base = opBase(node.op);
  const infix = INFIX[base] || base === "Addmm" || base === "CopySlices" || (base === "Neg" && style === "text");
  return infix ? s.group(e) : e;
}

/** The node's operation on its operands ("x × w1", "mean(l3)"), or null when an operand cannot be said. */
export function expression(trace, node, style = "text", depth = 3) {
  const s = STYLES[style];
  const base = opBase(node.op);
  const inputs = inputsOf(trace, node.id);
  if (!inputs.length) return null;
  const arg = (slot, bare = false) => {
    const input = inputs.find((i) => i.slot === slot);
    return input ? operand(trace, input.node, style, depth, bare) : style === "tex" ? "\\dots" : "…";
  };
  if (base === "Addmm") return s.infix(arg(0), "+", s.infix(arg(1), "@", arg(2)));
  const args = inputs.map((i) => operand(trace, i.node, style, depth, Boolean(CALLS[base]) || !INFIX[base]));
  if (args.includes(null)) return null;
  const [a, b] = args;
  if (INFIX[base] && args.length === 2) return s.infix(arg(0), INFIX[base], arg(1));
  const c = args.length === 1 ? scalarOperand(base, inputs[0].node.value, node.value) : null;
  if (c !== null) return base === "Rsub" ? s.infix(s.value(c), "−", a) : s.infix(a, INFIX[base], s.value(c));
  if (base === "Pow") {
    const n = powExponent(trace, node);
    return n === null ? null : s.pow(arg(0), n);
  }
  if (base === "Neg") return s.neg(arg(0));
  if (base === "T" || base === "Transpose") return s.transpose(arg(0));
  if (INDEXING.has(base)) {
    const i = indexOf(trace, node);
    return i === null ? null : s.index(arg(0), i);
  }
  if (base === "CopySlices" && args.length === 2) {
    const at = writtenAt(trace, node);
    if (at === null || !IDENT.test(nameOf(node))) return null;
    const target = style === "tex" ? `\\mathrm{${nameOf(node).replace(/_/g, "\\_")}}` : nameOf(node);
    return s.index(target, at) + (style === "tex" ? " \\leftarrow " : " ← ") + arg(1, true);
  }
  const f = CALLS[base] ?? (INFIX[base] ? null : opSymbol(node.op));
  return f ? s.call(f, args.join(", ")) : null;
}
