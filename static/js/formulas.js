// Local derivatives of the common ops, as TeX with the trace's numbers plugged in (pure; the
// inspector renders it with KaTeX). Variable names enter TeX only when they are plain identifiers,
// so nothing a program names can inject TeX commands.

import { opBase } from "./labels.js";
import { flat, fmtNum, shapeOf, uniform } from "./values.js";

const IDENT = /^[A-Za-z][A-Za-z0-9_]{0,24}$/;

/** A node's name as TeX: \mathrm{l3}; a generic symbol for anything that is not a plain identifier. */
export function texName(node, fallback) {
  const n = node?.name;
  if (n && IDENT.test(n)) return `\\mathrm{${n.replace(/_/g, "\\_")}}`;
  return fallback;
}

function texNum(v) {
  const u = uniform(v);
  if (u === null) return null;
  const s = fmtNum(u);
  return s.replace("inf", "\\infty").replace(/e(-?\d+)/, "\\times 10^{$1}");
}

function numel(v) {
  return flat(v).length || 1;
}

/**
 * derivative(trace, nodeId, step) -> [{tex, sum}] : one line per input slot, ∂out/∂input as a formula
 * and, when this pass's step is known, the gradient sent to that input (with the numbers when they
 * are uniform). `step` is the trace's Step for this node in the shown pass, or null.
 */
export function derivative(trace, nodeId, step = null) {
  const nodes = new Map((trace.nodes || []).map((n) => [n.id, n]));
  const node = nodes.get(nodeId);
  if (!node || node.kind !== "op") return [];
  const inputs = (trace.edges || []).filter((e) => e.target === nodeId).sort((a, b) => a.slot - b.slot);
  const inNode = (slot) => nodes.get(inputs.find((e) => e.slot === slot)?.source);
  const out = texName(node, "y");
  const names = ["a", "b", "c"];
  const inName = (slot) => texName(inNode(slot), names[slot] ?? `x_{${slot}}`);
  const val = (slot) => inNode(slot)?.value ?? null;
  const d = (slot) => `\\frac{\\partial ${out}}{\\partial ${inName(slot)}}`;
  const lines = [];
  const line = (slot, expr, number = null) => {
    let tex = `${d(slot)} = ${expr}`;
    if (number !== null && number !== expr) tex += ` = ${number}`;
    lines.push({ slot, tex, number: number ?? (/^-?[\d.]+$/.test(expr) ? expr : null) });
  };
  const base = opBase(node.op);
  switch (base) {
    case "Add":
      line(0, "1");
      if (inputs.length > 1) line(1, "1");
      break;
    case "Sub":
      line(0, "1");
      if (inputs.length > 1) line(1, "-1");
      break;
    case "Rsub":
      line(0, "-1");
      break;
    case "Mul":
      if (inputs.length > 1) {
        line(0, inName(1), texNum(val(1)));
        line(1, inName(0), texNum(val(0)));
      } else line(0, "c");
      break;
    case "Div":
      line(0, `\\frac{1}{${inName(1)}}`);
      if (inputs.length > 1) line(1, `-\\frac{${inName(0)}}{${inName(1)}^2}`);
      break;
    case "Pow": {
      const n = powExponent(trace, node, val(0));
      if (n !== null) line(0, `${n}\\,${inName(0)}^{${n - 1}}`, powNumber(val(0), n));
      else line(0, `n\\,${inName(0)}^{n-1}`);
      break;
    }
    case "Neg":
      line(0, "-1");
      break;
    case "Sum":
      line(0, "1 \\text{ (for every element)}");
      break;
    case "Mean":
      line(0, `\\frac{1}{N}`, `\\frac{1}{${numel(val(0))}}`);
      break;
    case "Exp":
      line(0, `e^{${inName(0)}} = ${out}`, texNum(node.value));
      break;
    case "Log":
      line(0, `\\frac{1}{${inName(0)}}`);
      break;
    case "Tanh":
      line(0, `1 - \\tanh^2(${inName(0)}) = 1 - ${out}^2`);
      break;
    case "Sigmoid":
      line(0, `\\sigma(${inName(0)})\\,(1-\\sigma(${inName(0)}))`);
      break;
    case "Relu":
      line(0, `\\mathbb{1}[${inName(0)} > 0]`);
      break;
    case "Mm":
    case "MatMul":
    case "Mv":
    case "Bmm":
      lines.push({ slot: 0, tex: `\\bar{${inName(0)}} = \\bar{${out}}\\,${inName(1)}^{\\top}` });
      lines.push({ slot: 1, tex: `\\bar{${inName(1)}} = ${inName(0)}^{\\top}\\,\\bar{${out}}` });
      break;
    case "Addmm":
      lines.push({ slot: 0, tex: `\\bar{${inName(0)}} = \\bar{${out}} \\text{ (summed to its shape)}` });
      lines.push({ slot: 1, tex: `\\bar{${inName(1)}} = \\bar{${out}}\\,${inName(2)}^{\\top}` });
      lines.push({ slot: 2, tex: `\\bar{${inName(2)}} = ${inName(1)}^{\\top}\\,\\bar{${out}}` });
      break;
    case "Select":
    case "Index":
    case "Slice":
      line(0, "1 \\text{ at the selected elements, } 0 \\text{ elsewhere}");
      break;
    case "CopySlices":
      line(0, "1 \\text{ outside the written slice, } 0 \\text{ inside}");
      if (inputs.length > 1) line(1, "1 \\text{ at the written slice}");
      break;
    default:
      return [];
  }
  // With this pass's numbers: the gradient each input receives, ḡ·∂out/∂in (summed when broadcast).
  if (step) {
    for (const l of lines) {
      const g = (step.grad_inputs || [])[l.slot];
      if (g === undefined || g === null) continue;
      const gt = texNum(g);
      const upstream = texNum(step.grad);
      const name = inName(l.slot);
      const outN = numel(node.value);
      const inN = numel(val(l.slot) ?? g);
      const sum = inN < outN && outN > 1 ? `\\sum_{${outN}} ` : "";
      if (sum) l.sum = outN;
      let tex = `\\bar{${name}} = ${sum}\\bar{${out}} \\cdot ${d(l.slot)}`;
      if (upstream !== null && l.number !== null && l.number !== undefined) tex += ` = ${sum}${upstream} \\times ${l.number}`;
      if (gt !== null) tex += ` = ${gt}`;
      l.grad = tex;
    }
  }
  return lines;
}

export function powExponent(trace, node, x) {
  // The exponent is not in the trace: read it from the source line (x**2, pow(x, 3)) ...
  const src = (trace.source || "").split("\n")[(node.line || 0) - 1] || "";
  const m = [...src.matchAll(/\*\*\s*\(?\s*(-?\d+(?:\.\d+)?)/g)];
  if (m.length === 1) return Number(m[0][1]);
  // ... or from the values, when they determine it (x > 0, x != 1).
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

function powNumber(x, n) {
  const u = uniform(x);
  if (u === null) return null;
  return fmtNum(n * u ** (n - 1));
}

const SUP = { "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹", "-": "⁻" };

/** "x²" for a Pow node whose exponent is known (from its line or its values), else null. */
export function powSymbol(trace, node) {
  if (opBase(node.op) !== "Pow") return null;
  const input = (trace.edges || []).find((e) => e.target === node.id && e.slot === 0);
  const x = input ? (trace.nodes || []).find((n) => n.id === input.source)?.value : null;
  const n = powExponent(trace, node, x ?? null);
  if (n === null) return null;
  return Number.isInteger(n) ? "x" + [...String(n)].map((c) => SUP[c]).join("") : `x^${n}`;
}

export { shapeOf };
