// What a node says on the graph: readable operation symbols for grad_fn names, and the text
// lines of a node box (shared by the layout, which sizes boxes, and the renderer, which draws them).

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
    sub = node.kind === "constant" ? `const ${fmtShape(node.shape)}` : `${fmtShape(node.shape)}${node.requires_grad ? " · grad" : ""}`;
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

/** Box size in px for a node (grad line included so boxes don't grow during play), its text `scale`× as large. */
export function nodeSize(node, scale = 1) {
  const l = nodeLines(node);
  // Title 13px bold, subtitle 10.5px, value and gradient 11px monospace (the gradient line is
  // "grad " + a value of the same shape, so it is sized now and boxes never grow during play).
  const px = Math.max(textWidth(l.title) * 8, textWidth(l.sub) * 6.2, (textWidth(l.value) * 1.25 + 6) * 6.8, 40);
  return { w: Math.round(Math.min(240, Math.max(64, px + 20)) * scale), h: Math.round(NODE_H * scale) };
}
