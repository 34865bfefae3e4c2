// The inspector: one node's value and gradient at the current step (a matrix, a heatmap for bigger
// tensors, stats when the trace summarised it), its facts, and its op's local derivative in KaTeX.

import { katex } from "../dist/vendor.js";
import { derivative } from "./formulas.js";
import { GroupPanel } from "./inspect_group.js";
import { opSymbol } from "./labels.js";
import { t } from "./i18n.js";
import { asShown, nodeIndex, passStarts } from "./timeline.js";
import { flat, fmtNum, fmtShape, fmtValue, shapeOf } from "./values.js";

export const h = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
};

const TABLE_MAX = 64; // elements shown as a table; more become a heatmap
const NEIGHBOURS_MAX = 12; // inputs or users listed; W of a 1,000-step recurrence has 1,000 users

const neighbourCache = new WeakMap();

/** The node's names other than the one its label shows (Node.name): "acc #3 (inside accumulate)", as text. */
function bindingsBesides(node) {
  const names = node.names || [];
  const shown = names.find((b) => b.scope === null) ?? names[0];
  return names
    .filter((b) => b !== shown)
    .map((b) => {
      const label = b.binding > 1 ? `${b.name} #${b.binding}` : b.name;
      return b.scope ? t("inspector.inside", { name: label, scope: b.scope }) : label;
    });
}
/** A node's inputs (in slot order) and the nodes that use it, from the trace's edges. */
function neighbours(trace, id) {
  let m = neighbourCache.get(trace);
  if (!m) {
    m = new Map();
    const at = (n) => m.get(n) ?? m.set(n, { inputs: [], users: [] }).get(n);
    for (const e of [...(trace.edges || [])].sort((a, b) => a.slot - b.slot)) {
      if (!at(e.target).inputs.includes(e.source)) at(e.target).inputs.push(e.source);
      if (!at(e.source).users.includes(e.target)) at(e.source).users.push(e.target);
    }
    neighbourCache.set(trace, m);
  }
  return m.get(id) ?? { inputs: [], users: [] };
}

export function matrix(value, cls) {
  const shape = shapeOf(value);
  if (shape.length === 0) return h("div", `matrix-scalar ${cls}`, fmtNum(value));
  // 1-D is one row; 3-D and up are shown as rows of the last dimension.
  const rows = shape.length === 1 ? [value] : shape.length === 2 ? value : flatRows(value, shape[shape.length - 1]);
  const n = flat(value).length;
  if (n <= TABLE_MAX) {
    const table = h("table", `matrix ${cls}`);
    const body = h("tbody");
    for (const r of rows) {
      const tr = h("tr");
      for (const x of r) tr.appendChild(h("td", null, fmtNum(x)));
      body.appendChild(tr);
    }
    table.appendChild(body);
    return table;
  }
  return heatmap(rows);
}

function flatRows(value, width) {
  const xs = flat(value);
  const rows = [];
  for (let i = 0; i < xs.length; i += width) rows.push(xs.slice(i, i + width));
  return rows;
}

function heatmap(rows) {
  const wrap = h("div");
  const H = rows.length;
  const W = rows[0].length;
  const canvas = document.createElement("canvas");
  canvas.width = W;
  canvas.height = H;
  canvas.className = "heatmap";
  canvas.setAttribute("role", "img");
  const xs = flat(rows).filter(Number.isFinite);
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(W, H);
  rows.forEach((r, i) =>
    r.forEach((v, j) => {
      const x = Number(v);
      const k = (i * W + j) * 4;
      const a = Number.isFinite(x) ? Math.min(1, Math.abs(x) / m) : 1;
      // Diverging blue (negative) / vermillion (positive); NaN and ±inf are black.
      const [r0, g0, b0] = !Number.isFinite(x) ? [0, 0, 0] : x < 0 ? [0, 114, 178] : [213, 94, 0];
      img.data[k] = Math.round(255 - (255 - r0) * a);
      img.data[k + 1] = Math.round(255 - (255 - g0) * a);
      img.data[k + 2] = Math.round(255 - (255 - b0) * a);
      img.data[k + 3] = 255;
    }),
  );
  ctx.putImageData(img, 0, 0);
  // In the page's language (inspector.stats, as for a value the trace kept only as stats), from its own numbers.
  const mean = xs.reduce((a, x) => a + x, 0) / (xs.length || 1);
  const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  const legend = `${H}×${W} · ${t("inspector.stats", { min: fmtNum(lo), max: fmtNum(hi), mean: fmtNum(mean), std: fmtNum(std), numel: H * W })}`;
  canvas.setAttribute("aria-label", legend);
  wrap.appendChild(canvas);
  wrap.appendChild(h("div", "legend", legend));
  return wrap;
}

export function stats(s) {
  return h("div", "legend", t("inspector.stats", { min: fmtValue(s.min), max: fmtValue(s.max), mean: fmtValue(s.mean), std: fmtValue(s.std), numel: s.numel }));
}

function tex(target, source) {
  try {
    katex.render(source, target, { throwOnError: false, trust: false, strict: "ignore", output: "htmlAndMathml", displayMode: true });
  } catch {
    target.textContent = source;
  }
}

export class Inspector {
  constructor(root, { onLine, onNode, sections } = {}) {
    this.root = root;
    this.sections = sections || []; // (trace, node, frame) -> elements shown after the node's own (lab.js: check, what if)
    this.body = root.querySelector("#inspector-body");
    this.empty = root.querySelector("#inspector-empty");
    this.onLine = onLine || (() => {});
    this.onNode = onNode || (() => {}); // go to a neighbour: the graph from node to node by keyboard too
    this.id = null;
    this.key = "";
  }

  clear() {
    this.id = null;
    this.group = null;
    this.key = "";
    this.body.hidden = true;
    this.body.replaceChildren();
    this.empty.hidden = false;
  }

  show(trace, f, id, copies = 1) {
    this.trace = trace;
    this.group = null;
    this.id = id;
    this.copies = copies;
    this.update(f, true);
  }

  /** A module call or loop iteration: what it is, and its parameters' .grad at this frame (inspect_group.js). */
  showGroup(trace, f, key) {
    this.trace = trace;
    this.id = null;
    this.group = new GroupPanel(trace, key, { onNode: (id) => this.onNode(id) });
    this.update(f, true);
  }

  /** Re-render for a new frame if anything shown about the node changed. */
  update(f, force = false) {
    if (this.group) return this._showPanel(this.group.render(f, force));
    if (this.id === null || !this.trace) return;
    const node = asShown(nodeIndex(this.trace).get(this.id), f);
    if (!node) return this.clear();
    const id = this.id;
    const shown = {
      node,
      present: f.present.includes(id),
      value: f.values.has(id) ? f.values.get(id) : node.value,
      grad: f.grads.has(id) ? f.grads.get(id) : null,
      flow: f.phase === "backward" && f.flow.has(id) ? f.flow.get(id) : null,
      parts: f.phase === "backward" ? f.received.get(id) || [] : [],
      passIndex: this._shownPass(f, id),
    };
    const key = JSON.stringify([id, node.kind, shown.present, shown.value, shown.grad, shown.flow, shown.parts.length, shown.passIndex, document.documentElement.lang]);
    if (!force && key === this.key) return;
    this.key = key;
    this.empty.hidden = true;
    this.body.hidden = false;
    this.body.replaceChildren(
      h("h3", null, node.kind === "op" ? `${node.label} · ${opSymbol(node.op)}` : node.label),
      h("div", "muted", t(`inspector.kind.${node.kind}`)),
      this._facts(node),
      ...this._tensors(shown),
      ...this._neighbours(f),
      ...this._derivative(shown.passIndex === null ? null : this._step(shown.passIndex, id)),
      ...this.sections.flatMap((section) => section(this.trace, node, f) || []),
    );
  }

  /** Op, shape, dtype, requires_grad, the line (a button to the editor), copies drawn. */
  _facts(node) {
    const dl = h("dl");
    const fact = (k, v) => {
      dl.appendChild(h("dt", null, k));
      const dd = h("dd");
      if (v instanceof Node) dd.appendChild(v);
      else dd.textContent = v;
      dl.appendChild(dd);
    };
    if (node.op) fact(t("inspector.op"), node.op);
    const others = bindingsBesides(node);
    if (others.length) fact(t("inspector.names"), others.join(", "));
    if (node.outputs?.length) {
      fact(t("inspector.outputs"), node.outputs.map((o) => `${o.label} ${fmtShape(o.shape ?? [])}`).join(", "));
    }
    fact(t("inspector.shape"), fmtShape(node.shape ?? []));
    if (node.dtype) fact(t("inspector.dtype"), node.dtype);
    fact(t("inspector.requiresGrad"), node.requires_grad ? "True" : "False");
    if (node.line) {
      const a = h("button", "link", String(node.line));
      a.type = "button";
      a.addEventListener("click", () => this.onLine(node.line));
      fact(t("inspector.line"), a);
    }
    if (this.copies > 1) fact(t("inspector.copies"), t("inspector.copiesN", { n: this.copies }));
    return dl;
  }

  /** Value, .grad, the gradient flowing in this pass, and the parts a fan-in adds up. */
  _tensors({ node, present, value, grad, flow, parts }) {
    const out = [h("h4", null, t("inspector.value"))];
    if (!present) out.push(h("div", "muted", t("inspector.notYet")));
    else if (value !== null && value !== undefined) out.push(matrix(value, "value"));
    else if (node.stats) out.push(stats(node.stats));
    if (node.kind !== "constant") {
      out.push(h("h4", null, t("inspector.grad")));
      if (grad !== null) out.push(matrix(grad, "grad now"));
      else if (node.kind === "op" && !node.retains_grad) out.push(h("div", "muted", t("inspector.gradNonLeaf")));
      else out.push(h("div", "muted", t("inspector.gradNone")));
    }
    if (flow !== null) out.push(h("h4", null, t("inspector.flow")), matrix(flow, "grad flow"));
    // Fan-in: every consumer sent its own gradient; autograd adds them up before this node runs.
    if (parts.length > 1) {
      const ul = h("ul", "parts");
      for (const p of parts) ul.appendChild(h("li", "grad", fmtValue(p, 6)));
      out.push(h("h4", null, t("inspector.received", { n: parts.length })), ul);
    }
    return out;
  }

  /** The node's inputs and users, as buttons: follow the chain from l3 to l2 and w2, in a graph of any size. */
  _neighbours(f) {
    const nodes = nodeIndex(this.trace);
    const { inputs, users } = neighbours(this.trace, this.id);
    const out = [];
    for (const [key, ids] of [["inspector.inputs", inputs], ["inspector.users", users]]) {
      const shown = ids.filter((n) => f.present.includes(n));
      if (!shown.length) continue;
      const ul = h("ul", "neighbours");
      const listed = shown.slice(0, NEIGHBOURS_MAX).map((n) => {
        const other = asShown(nodes.get(n), f);
        return { n, other, label: other.kind === "op" && !other.name ? `${opSymbol(other.op)} (${other.op})` : other.label };
      });
      // The same label twice (a parameter used by each iteration of a training loop): each says its iteration.
      const twice = new Set(listed.map((x) => x.label).filter((l, i, all) => all.indexOf(l) !== i));
      for (const { n, other, label } of listed) {
        const iteration = twice.has(label) && other.iteration != null ? ` · ${t("group.iteration", { n: other.iteration })}` : "";
        const button = h("button", "link", label + iteration);
        button.type = "button";
        button.dataset.goto = String(n);
        button.addEventListener("click", () => this.onNode(n));
        const li = h("li");
        li.appendChild(button);
        ul.appendChild(li);
      }
      if (shown.length > NEIGHBOURS_MAX) ul.appendChild(h("li", "muted", t("inspector.more", { n: shown.length - NEIGHBOURS_MAX })));
      out.push(h("h4", null, t(key)), ul);
    }
    return out;
  }

  /** The op's local derivative in KaTeX, with this pass's numbers when it has reached the node. */
  _derivative(step) {
    const lines = derivative(this.trace, this.id, step);
    if (!lines.length) return [];
    const out = [h("h4", null, t("inspector.derivative"))];
    if (lines.some((l) => l.grad)) out.push(h("div", "formula-note", t("inspector.barNote")));
    const formula = (source) => {
      const div = h("div", "formula");
      tex(div, source);
      return div;
    };
    for (const l of lines) {
      out.push(formula(l.tex));
      if (l.grad && l.grad !== l.tex) out.push(formula(l.grad));
      if (l.grad && l.note) out.push(h("div", "formula-note", t(l.note.key, l.note.vars)));
    }
    // The letters that stand for long operands, as the program wrote them (text, never TeX).
    for (const w of lines.where) out.push(h("div", "formula-note", w.text ? `${w.letter} = ${w.text}` : t("inspector.whereOp", { letter: w.letter, op: w.op })));
    return out;
  }

  _showPanel(children) {
    if (!children) return;
    this.empty.hidden = true;
    this.body.hidden = false;
    this.body.replaceChildren(...children);
  }

  /** The pass whose numbers the derivative shows: the current one once it reached the node, else the last one done. */
  _shownPass(f, id) {
    if (f.pass) return f.flow.has(id) ? f.pass.index : null;
    const started = passStarts(this.trace).filter((p) => p.step <= f.step);
    return started.length ? started[started.length - 1].pass : null;
  }

  _step(passIndex, id) {
    const p = (this.trace.passes || []).find((p) => p.index === passIndex);
    return p ? p.steps.find((s) => s.node === id) || null : null;
  }
}
