// What a node says on the graph: readable operation symbols for grad_fn names, and the text
// lines of a node box (shared by the layout, which sizes boxes, and the renderer, which draws them).

import { t } from "./i18n.js";
import { fmtShape, fmtValue } from "./values.js";

const OPS = {
  Add: "+", Sub: "−", Rsub: "−", Mul: "×", Div: "÷", Neg: "−x", Pow: "xⁿ", PowTensorTensor: "xʸ",
  Sum: "sum", Mean: "mean", Exp: "exp", Log: "log", Tanh: "tanh", Sigmoid: "σ", Relu: "ReLU",
  Mm: "@", Mv: "@", Bmm: "@", MatMul: "@", Addmm: "x@Wᵀ+b", Dot: "·", Select: "[i]", Slice: "[:]",
  Index: "[ ]", CopySlices: "[i] ←", Copy: "copy", T: "ᵀ", Transpose: "ᵀ", Permute: "permute",
  View: "view", Reshape: "reshape", UnsafeView: "view", Expand: "expand", Squeeze: "squeeze",
  Unsqueeze: "unsqueeze", Clone: "clone", Cat: "cat", Stack: "stack", Sqrt: "√", Abs: "|x|",
  Max: "max", Min: "min", Maximum: "max", Minimum: "min", Softmax: "softmax", LogSoftmax: "log softmax",
  NllLoss: "NLL", MseLoss: "MSE", BinaryCrossEntropyWithLogits: "BCE", Sin: "sin", Cos: "cos",
  Clamp: "clamp", Where: "where", Sqeeze: "squeeze", AccumulateGrad: "leaf", Embedding: "embedding",
  Linear: "linear", Norm: "norm", LinalgVectorNorm: "norm", Std: "std", Var: "var", Prod: "prod",
};

/** "MulBackward0" -> "Mul"; "torch::autograd::CopySlices" -> "CopySlices". */
export function opBase(op) {
  if (!op) return "";
  const name = op.split("::").pop();
  return name.replace(/Backward\d*$/, "");
}

/** A grad_fn name as the operation a student wrote: "MulBackward0" -> "×". */
export function opSymbol(op) {
  const base = opBase(op);
  return OPS[base] ?? base;
}

/** The lines of a node's box: title, a subtitle, and its value (or stats) in one line. */
export function nodeLines(node, value = node.value, symbol = null) {
  let title, sub;
  if (node.kind === "op") {
    const sym = symbol ?? opSymbol(node.op);
    title = node.name ? `${node.label} = ${sym}` : sym;
    sub = node.op ?? "";
  } else {
    title = node.label ?? node.name ?? "";
    const shape = node.shape?.length ? fmtShape(node.shape) : t("node.scalar");
    sub = t(node.kind === "constant" ? "node.constant" : node.requires_grad ? "node.leaf" : "node.plain", { shape });
  }
  let val = "";
  if (value !== null && value !== undefined) val = fmtValue(value, 4);
  else if (node.stats) val = `μ ${fmtValue(node.stats.mean)}  (${node.stats.numel})`;
  return { title, sub, value: val };
}

/** Display width of a string in units of a Latin character (CJK and other wide text count 2). */
export function textWidth(s) {
  let w = 0;
  for (const ch of s) w += ch.codePointAt(0) > 0x2e80 ? 2 : 1;
  return w;
}

export const NODE_H = 58;
// Text on the graph: a box's smallest line is 11 px at zoom 1 (app.css: .node .sub, .val, .grad), so
// zoom 1 is the least at which Fit shows it readable (camera.js) and the level of modules opened first
// is chosen to fit at it (the page's open level).
export const READABLE_PX = 11;
export const SMALLEST_TEXT_PX = 11;
export const READABLE_ZOOM = READABLE_PX / SMALLEST_TEXT_PX;

/** Box size in px for a node (grad line included so boxes don't grow during play), its text `scale`× as large. */
export function nodeSize(node, scale = 1) {
  const l = nodeLines(node);
  // Title 13px bold, subtitle 10.5px, value and gradient 11px monospace (the gradient line is
  // "grad " + a value of the same shape, so it is sized now and boxes never grow during play).
  const px = Math.max(textWidth(l.title) * 8, textWidth(l.sub) * 6.5, (textWidth(l.value) * 1.25 + 6) * 6.8, 40);
  return { w: Math.round(Math.min(240, Math.max(64, px + 20)) * scale), h: Math.round(NODE_H * scale) };
}

const numel = (shape) => (shape || []).reduce((a, b) => a * b, 1);

/** 1234 -> "1,234"; 45200 -> "45.2k"; 3.1e6 -> "3.1M". */
export function count(n) {
  if (n < 10000) return String(n).replace(/\B(?=(\d{3})+$)/, ","); // not toLocaleString: slow to start, in a worker too
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e5 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

/**
 * The lines of a closed group's box: a module's class, its path, and its output's shape with its
 * parameter count; an iteration's number, its loop's line and how many operations it holds.
 * `nodes`: the trace's nodes by id. Words come from i18n in the page (`words`), English elsewhere.
 */
export function groupLines(group, nodes, words = {}) {
  if (group.kind === "chunk") {
    const title = (words[group.of === "iterations" ? "iterations" : "opsRange"] ?? (group.of === "iterations" ? "iterations {from}–{to}" : "operations {from}–{to}"))
      .replace("{from}", group.from)
      .replace("{to}", group.to);
    return { title, sub: "", value: (words.ops ?? "{n} ops").replace("{n}", count(group.ops ?? 0)) };
  }
  if (group.kind === "iteration") {
    const title = (words.iteration ?? "iteration {n}").replace("{n}", group.iteration);
    const sub = group.loop ? (words.loopLine ?? "loop, line {n}").replace("{n}", group.loop) : "";
    return { title, sub, value: (words.ops ?? "{n} ops").replace("{n}", count(group.ops ?? 0)) };
  }
  const out = nodes.get(group.outputs?.[group.outputs.length - 1]);
  const params = group.paramCount ?? group.params.reduce((s, id) => s + numel(nodes.get(id)?.shape), 0);
  const shape = out?.shape ? fmtShape(out.shape) : "";
  const p = params ? (words.params ?? "{n} params").replace("{n}", count(params)) : "";
  return { title: group.className || group.path, sub: group.path, value: [shape, p].filter(Boolean).join(" · ") };
}

/** A closed group's box size (as nodeSize). */
export function groupSize(group, nodes, scale = 1) {
  const l = groupLines(group, nodes);
  const px = Math.max(textWidth(l.title) * 8.4, textWidth(l.sub) * 6.5, textWidth(l.value) * 6.8, 90);
  return { w: Math.round(Math.min(280, px + 28) * scale), h: Math.round(NODE_H * scale) };
}
