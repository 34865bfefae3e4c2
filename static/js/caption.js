// One sentence for the current step, in the page's language: the caption under the graph (and the
// screen reader's live region). Pure: a function of the trace and a frame. It says what happened in
// the program's own terms: "l1 = x × w1 = [2, 2, 2, 2, 2] is computed", "MulBackward0 sends
// ∂y/∂x = 0.6 × w1 = 1.2 to x". Names, operands and gradients are read through doc.js and expr.js.

import { inputsOf, labelOf, nameOf, nodeOf, stepOf, stepSent } from "./doc.js";
import { expression, oneInputConstant, operand, powExponent, superscript, writtenAt } from "./expr.js";
import { broadcasts } from "./formulas.js";
import { lang, t } from "./i18n.js";
import { opBase } from "./labels.js";
import { asShown } from "./timeline.js";
import { flat, fmtValue, short, uniform } from "./values.js";

const MAX_EXPRESSION_CHARS = 60; // longer expressions are left out of a caption (the graph shows them)

/** What part of the program a frame shows: the forward pass, a backward pass, after one, or the end. */
export function passLabel(f) {
  if (f.pass) return t("player.passN", { n: f.pass.number, of: f.pass.of });
  if (f.phase === "forward") return t("player.forwardPass");
  if (f.phase === "after") return t("player.afterPass", { n: f.after.number, of: f.after.of });
  return f.phase === "end" ? t("player.end") : "";
}

export function describe(trace, f) {
  const e = f.entry;
  const say = MOMENTS[e.type];
  return say ? say(trace, f, e) : "";
}

const value = (v) => (v === null || v === undefined ? null : fmtValue(v));
const withValue = (text, v) => (value(v) === null ? text : `${text} = ${value(v)}`);
const name = (trace, id) => labelOf(nodeOf(trace, id)) || String(id);

const MOMENTS = {
  start: () => t("caption.start"),
  node: (trace, f, e) => created(trace, asShown(nodeOf(trace, e.node), f)),
  print: (trace, f, e) => t("caption.print", { text: firstLine(e.text) }),
  display: () => t("caption.display"),
  warning: (trace, f, e) => t("caption.warning", { text: sentence((e.text || "").split(". ")[0]) }),
  backward_start: (trace, f, e) => {
    const p = (trace.passes || []).find((x) => x.index === e.pass);
    const root = p?.root ?? null;
    const called = nameOf(nodeOf(trace, root));
    const api = p?.api === "Tensor.backward" && called ? `${called}.backward()` : `${p?.api ?? "backward"}()`;
    return t("caption.backward_start", { api, n: f.pass.number, of: f.pass.of, g: p?.gradient == null ? "1" : fmtValue(p.gradient) });
  },
  step: (trace, f, e) => closeUp(backwardStep(trace, f, e)),
  backward_end: (trace, f) => t("caption.backward_end", { n: f.pass.number, of: f.pass.of }),
  grad: (trace, f, e) => t("caption.grad", { name: name(trace, e.node), g: fmtValue(e.value) }),
  update: (trace, f, e) =>
    e.text === "requires_grad" ? t("caption.requiresGrad", { name: name(trace, e.node) }) : t("caption.update", { name: name(trace, e.node), v: fmtValue(e.value) }),
  error: (trace, f) => (f.error?.type ? t("caption.errorWith", { error: sentence(`${f.error.type}: ${f.error.message ?? f.error.text ?? ""}`) }) : t("caption.error")),
  end: () => t("caption.end"),
};

/** Chinese sets no space after full-width punctuation: "l3（MulBackward0）收到", "求和。5 个梯度" (the
 *  English joints, "l3 (MulBackward0) receives", put one there). Only for the tracer's own words: a step's
 *  names are identifiers and its values numbers, neither of which holds these characters. */
// Escaped: a CJK character in the bundle would make an English export inline the Chinese font (export._fonts).
const closeUp = (s) => (lang() === "zh" ? s.replace(/([\uff09\u3002\uff0c\uff1b\uff1a]) +/g, "$1") : s);

/** A message as one sentence: "Did you mean: 'y'?" keeps its question mark; anything else ends in a full stop. */
const sentence = (s) => s.trim().replace(/[.:;,]*$/, "").replace(/([^?!.])$/, "$1.");
const firstLine = (s) => {
  const line = (s || "").split("\n")[0];
  return short(line, 40);
};

/** A node coming to exist: a leaf, a constant, a result with its operands, or an in-place write. */
function created(trace, n) {
  if (!n) return "";
  if (n.kind === "leaf") return t("caption.node.leaf", { what: withValue(labelOf(n), n.value), rg: n.requires_grad ? t("caption.node.rg") : "" });
  if (n.kind === "constant") return t("caption.node.constant", { what: withValue(labelOf(n), n.value) });
  if (opBase(n.op) === "CopySlices") {
    const at = writtenAt(trace, n);
    const written = inputsOf(trace, n.id).find((i) => i.slot === 1);
    const v = written ? operand(trace, written.node, "text", 3, true) : null;
    if (at !== null && v !== null) return t("caption.node.write", { what: `${nameOf(n)}[${at}] = ${v}`, name: nameOf(n), v: value(n.value) ?? "…", op: n.op });
  }
  let expr = expression(trace, n, "text");
  if (expr && expr.length > MAX_EXPRESSION_CHARS) expr = null;
  const parts = [nameOf(n) ? labelOf(n) : null, expr, value(n.value)].filter((x) => x !== null);
  return t("caption.node.op", { what: parts.length ? parts.join(" = ") : n.op, op: n.op });
}

/** A backward step: what the node received and what it sent to each input (with the local factor where it is simple). */
function backwardStep(trace, f, e) {
  const n = nodeOf(trace, e.node);
  const g = fmtValue(f.flow.get(e.node));
  const arrived = (f.received.get(e.node) || []).length;
  const fanin = arrived > 1 ? " " + t("caption.step.fanin", { n: arrived }) : "";
  if (n?.kind === "leaf") {
    const total = f.grads.get(e.node);
    const now = total !== undefined && fmtValue(total) !== g ? t("caption.step.now", { total: fmtValue(total) }) : "";
    return t("caption.step.leaf", { name: labelOf(n), g, now }) + fanin;
  }
  const who = nameOf(n) ? t("caption.who", { name: labelOf(n), op: n.op }) : n?.op ?? "";
  const step = stepOf(trace, e.pass, e.node);
  const root = rootName(trace, e.pass);
  const parts = inputsOf(trace, e.node)
    .map((i) => ({ i, sent: stepSent(trace, step, i.slot) }))
    .filter((p) => p.sent !== null)
    .map(({ i, sent }) => t("caption.step.part", { value: sentValue(trace, n, i, f.flow.get(e.node), sent, root), name: operand(trace, i.node, "text", 3, true) ?? i.node?.op ?? "" }));
  if (!parts.length) return t("caption.step.none", { who, g }) + fanin;
  return t("caption.step.op", { who, g, parts: parts.join(t("caption.step.and")) }) + fanin;
}

/** The root's name when it is one number (then "∂y/∂x" means what it says), else null. */
function rootName(trace, passIndex) {
  const p = (trace.passes || []).find((x) => x.index === passIndex);
  const root = p?.roots?.length === 1 || p?.root != null ? nodeOf(trace, p.roots?.[0] ?? p.root) : null;
  return root && flat(root.value).length === 1 && nameOf(root) ? labelOf(root) : null;
}

/** "∂y/∂x = 0.6 × w1 = 1.2": the gradient an input was sent, with the factor of the common ops. */
function sentValue(trace, n, input, upstream, sent, root) {
  const u = uniform(upstream);
  const others = inputsOf(trace, n.id).filter((x) => x.slot !== input.slot);
  const base = opBase(n.op);
  let factor = null;
  const c = others.length ? null : oneInputConstant(trace, n);
  if (u !== null && base === "Mul" && (others.length === 1 || c !== null)) factor = `${fmtValue(u)} × ${c ?? operand(trace, others[0].node) ?? "…"}`;
  else if (u !== null && base === "Mean") factor = `${fmtValue(u)} / ${flat(input.node?.value).length || "N"}`;
  else if (u !== null && base === "Pow") {
    const k = powExponent(trace, n);
    const x = operand(trace, input.node);
    if (k !== null && x !== null) factor = `${fmtValue(u)} × ${k}·${k === 2 ? x : x + superscript(k - 1)}`;
  }
  const summed = broadcasts(n.op) && flat(sent).length < flat(n.value).length ? t("caption.step.summed", { n: flat(n.value).length }) : "";
  const d = root ? `∂${root}/∂${operand(trace, input.node) ?? "…"} = ` : "";
  return d + (factor ? `${factor} = ` : "") + fmtValue(sent) + summed;
}
