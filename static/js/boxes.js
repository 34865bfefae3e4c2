// The SVG of each drawn thing (render.js decides what is drawn and when): a node's box, a closed group's
// box (a module call or a loop iteration: class, path, output shape and parameters, its progress while a
// pass runs through it), an open group's frame, an edge; and how each is painted for a frame. Every
// string from the trace goes in through textContent.

import { bboxOf } from "./cull.js";
import { controls, place } from "./edge_labels.js";
import { t } from "./i18n.js";
import { nodeLines } from "./labels.js";
import { asShown } from "./timeline.js";
import { fitValue, fmtShape, fmtValue, short } from "./values.js";

const SVGNS = "http://www.w3.org/2000/svg";

export function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

export function pathOf(points, direction) {
  if (points.length === 2) {
    const [[c1x, c1y], [c2x, c2y]] = controls(points, direction);
    return `M${points[0][0]},${points[0][1]} C${c1x},${c1y} ${c2x},${c2y} ${points[1][0]},${points[1][1]}`;
  }
  return "M" + points.map(([x, y]) => `${x},${y}`).join(" L");
}

/** Update a text element only when its text changes (the DOM is the slow part of playing). */
function setText(thing, field, el, text) {
  if (thing[field] !== text) {
    el.textContent = text;
    thing[field] = text;
  }
}

function setClass(thing, cls) {
  if (cls !== thing.cls) {
    thing.g.setAttribute("class", cls);
    thing.cls = cls;
  }
}

/** How many characters of the 11 px monospace lines (value, gradient) a box `w` px wide holds at scale s. */
const monoChars = (w, s) => Math.min(34, Math.max(8, Math.floor((w / s - 12) / 6.8)));

/** A box: rect and four text lines (title, sub, value, gradient), at scale s. */
function box(g, it, s, rx, lines) {
  el("rect", { class: "box", width: it.w, height: it.h, rx: rx * s }, g);
  const chars = monoChars(it.w, s);
  const text = (cls, y, str, n = 34) => {
    const e = el("text", { class: cls, x: it.w / 2, y: y * s }, g);
    e.textContent = cls === "val" ? fitValue(str, n) : short(str, n);
    return e;
  };
  return { chars, title: text("title", 16, lines.title), sub: text("sub", 29, lines.sub), val: text("val", 42, lines.value, chars), grad: text("grad", 54, "") };
}

// --- a node ------------------------------------------------------------------------------------------

export function makeNode(thing, s) {
  const { it, node, lines } = thing;
  const g = el("g", { class: `node ${node.kind} future`, transform: `translate(${it.x - it.w / 2},${it.y - it.h / 2})`, tabindex: 0, role: "button" });
  g.dataset.nodeId = it.id;
  g.dataset.key = it.key;
  Object.assign(thing, box(g, it, s, node.kind === "op" ? 14 : 6, lines));
  if (it.copies > 1) {
    const m = el("text", { class: "copy-mark", x: it.w - 5 * s, y: 12 * s }, g); // 11 px, as all box text (labels.js)
    m.textContent = `${it.copy + 1}/${it.copies}`;
  }
  Object.assign(thing, { g, cls: g.getAttribute("class"), subText: lines.sub, valText: lines.value, gradText: "", label: "" });
  labelNode(thing, "", "", node);
}

function labelNode(thing, value, grad, n) {
  const lines = thing.lines;
  let label = `${n.kind === "op" ? lines.title + " (" + (n.op || "") + ")" : lines.title}, ${n.kind}, shape ${thing.subText ?? lines.sub}`;
  if (value) label += `, value ${value}`;
  if (grad) label += `, ${grad}`;
  if (label !== thing.label) {
    thing.g.setAttribute("aria-label", label);
    thing.label = label;
  }
}

/** The gradient line of a node at frame f: its .grad, the gradient flowing through it (or that did, in the pass just done), or the parts a fan-in adds. */
function gradText(f, id, backward, gradients, node) {
  // null here is a gradient too big for the trace to carry step by step (not None): its stats, or "…".
  const shown = (v, final) => (v !== null && v !== undefined ? fmtValue(v, 4) : final ? `μ ${fmtValue(final.mean)} (${final.numel})` : "…");
  if (f.grads.has(id)) return "grad " + shown(f.grads.get(id), f.last ? node.grad_stats : null);
  if (gradients && f.flow.has(id)) return "∂ " + shown(f.flow.get(id), null);
  const parts = backward ? f.received.get(id) || [] : [];
  if (parts.length > 1) return parts.length <= 3 && parts.every((g) => !Array.isArray(g)) ? "Σ " + parts.map((g) => fmtValue(g)).join(" + ") : t("graph.fanin", { n: parts.length });
  return "";
}

export function paintNode(thing, { f, present, current, done, backward, gradients }, selected) {
  const id = thing.it.id;
  const n = asShown(thing.node, f); // a leaf-to-be is drawn as the constant it still is
  setText(thing, "subText", thing.sub, n === thing.node ? thing.lines.sub : nodeLines(n).sub);
  let cls = `node ${n.kind}`;
  if (thing.it.copies > 1) cls += " copy";
  if (!present.has(id)) cls += " future";
  if (current.has(id)) cls += backward ? " bwd-current" : " current";
  else if (backward && done.has(id)) cls += " bwd-done";
  if (selected === id) cls += " selected";
  setClass(thing, cls);
  const vt = fitValue(f.values.has(id) ? fmtValue(f.values.get(id), 4) : thing.lines.value, thing.chars);
  setText(thing, "valText", thing.val, vt);
  const gt = fitValue(gradText(f, id, backward, gradients, thing.node), thing.chars);
  setText(thing, "gradText", thing.grad, gt);
  labelNode(thing, present.has(id) ? vt : "", gt, n);
}

// --- a closed group ----------------------------------------------------------------------------------

export function makeGroup(thing, s) {
  const { gl, lines } = thing;
  const g = el("g", { class: `node group ${gl.kind} future`, transform: `translate(${gl.x - gl.w / 2},${gl.y - gl.h / 2})`, tabindex: 0, role: "button" });
  g.setAttribute("aria-expanded", "false");
  g.dataset.group = gl.key;
  if (gl.path) g.dataset.module = gl.path;
  Object.assign(thing, box(g, gl, s, 4, lines));
  el("rect", { class: "progress", x: 0, y: gl.h - 4 * s, width: 0, height: 4 * s }, g);
  thing.bar = g.lastChild;
  Object.assign(thing, { g, cls: g.getAttribute("class"), gradText: "", label: "", showsResult: false });
  labelGroup(thing, "");
}

function labelGroup(thing, progress) {
  const { lines, gl } = thing;
  const label = [lines.title, gl.path && gl.path !== lines.title ? gl.path : null, t(`group.kind.${gl.kind}`), lines.value, progress].filter(Boolean).join(", ");
  if (label !== thing.label) {
    thing.g.setAttribute("aria-label", label);
    thing.label = label;
  }
}

/**
 * A closed group at frame f: lit while its operations run; its result (a module's output, an
 * iteration's last value) once it is made; while a backward pass runs through it, its progress as a
 * count and a bar instead.
 */
export function paintGroup(thing, state, selected) {
  const { present = 0, current = false, done = 0, steps = 0 } = state.groups.get(thing.gl.key) || {};
  let cls = `node group ${thing.gl.kind}`;
  if (!present) cls += " future";
  if (current) cls += state.backward ? " bwd-current" : " current";
  else if (state.backward && steps && done === steps) cls += " bwd-done";
  if (selected === thing.gl.key) cls += " selected";
  setClass(thing, cls);
  const progress = state.backward && steps ? t("group.progress", { done, n: steps }) : "";
  const result = !progress && thing.result && state.present.has(thing.result.id) ? resultText(thing.result, state.f, thing.chars) : "";
  if (Boolean(result) !== thing.showsResult) {
    thing.grad.setAttribute("class", result ? "result" : "grad");
    thing.showsResult = Boolean(result);
  }
  setText(thing, "gradText", thing.grad, progress || result);
  const bar = String(steps ? (thing.gl.w * done) / steps : 0);
  if (bar !== thing.barWidth) thing.bar.setAttribute("width", (thing.barWidth = bar)); // the DOM only when it changes
  labelGroup(thing, progress || result);
}

/** "→ value" of a group's result at frame f (its shape when the trace does not carry the value), in `chars` characters. */
function resultText(node, f, chars) {
  const v = f.values.has(node.id) ? f.values.get(node.id) : node.value;
  return fitValue("→ " + (v !== null && v !== undefined ? fmtValue(v, 4) : fmtShape(node.shape)), chars);
}

// --- an open group's frame ---------------------------------------------------------------------------

export function makeFrame(thing, s) {
  const { gl, lines } = thing;
  const g = el("g", { class: `frame ${gl.kind}`, transform: `translate(${gl.x - gl.w / 2},${gl.y - gl.h / 2})` });
  g.dataset.frame = gl.key; // data-group and data-module are on its head, the button that closes it
  el("rect", { class: "frame-box", width: gl.w, height: gl.h, rx: 8 * s }, g);
  const head = el("g", { class: "group-head", tabindex: 0, role: "button" }, g);
  head.setAttribute("aria-expanded", "true");
  head.dataset.group = gl.key;
  if (gl.path) head.dataset.module = gl.path;
  el("rect", { width: gl.w, height: 22 * s, rx: 8 * s }, head);
  const title = el("text", { x: 10 * s, y: 15 * s }, head);
  title.textContent = short(`▾ ${lines.title}${gl.path && gl.path !== lines.title ? "  " + gl.path : ""}`, Math.max(8, Math.floor(gl.w / (7 * s))));
  head.setAttribute("aria-label", [lines.title, gl.path, t(`group.kind.${gl.kind}`)].filter(Boolean).join(", "));
  Object.assign(thing, { g, cls: g.getAttribute("class") });
}

export function paintFrame(thing, state) {
  const { present = 0, current = false } = state.groups.get(thing.gl.key) || {};
  setClass(thing, `frame ${thing.gl.kind}${present ? "" : " future"}${current ? " active" : ""}`);
}

// --- an edge -----------------------------------------------------------------------------------------

export function makeEdge(x, direction) {
  x.el = el("path", { class: "edge future", d: pathOf(x.e.points, direction), "marker-end": "url(#arrow)" });
  x.el.dataset.source = x.e.source;
  x.el.dataset.target = x.e.target;
  x.g = x.el;
  x.cls = "edge future";
}

export function paintEdge(x, { f, present, pulsing, gradients }) {
  const parts = x.e.parts || [x.e];
  const key = (p) => `${p.source}>${p.target}:${p.slot}`;
  let cls = "edge";
  if (!parts.some((p) => present.has(p.target))) cls += " future";
  if (parts.some((p) => pulsing.has(key(p)))) cls += " pulse";
  // Only edges a gradient went along (not the one from a constant, which gets None).
  else if (gradients && parts.some((p) => f.carried?.has(key(p)))) cls += " carried";
  setClass(x, cls);
}

/** The gradient each pulsing edge carries, as a label on it (one per drawn edge), clear of each other, of `boxes` and of the arrowheads (edge_labels.js). */
export function edgeLabels(layer, pulses, edgeOfPart, s, boxes, direction) {
  layer.replaceChildren();
  const shown = new Map();
  for (const p of pulses) {
    const x = edgeOfPart.get(`${p.source}>${p.target}:${p.slot}`);
    if (x && !shown.has(x)) shown.set(x, fitValue(fmtValue(p.grad, 3), 24));
  }
  const labels = [...shown].map(([x, text]) => ({ points: x.e.points, w: (text.length * 7 + 10) * s, h: 18 * s, text }));
  place(labels, boxes, direction).forEach((r, i) => {
    const g = el("g", { class: "edge-label" }, layer);
    el("rect", { x: r.x, y: r.y, width: r.w, height: r.h, rx: r.h / 2 }, g);
    el("text", { x: r.x + r.w / 2, y: r.y + r.h / 2 + 4 * s }, g).textContent = labels[i].text;
  });
}

// --- the same thing in a new layout (a group opened or closed) ----------------------------------------

/**
 * A box drawn before (same key) kept for a new layout when it has the same size and copy number: its
 * element moves to the new place and keeps what it shows (the next paint changes what differs).
 */
export function keepBox(old, b, bbox) {
  const was = old?.it ?? old?.gl;
  if (!was || was.w !== b.w || was.h !== b.h || was.copy !== b.copy || was.copies !== b.copies) return null;
  if (old.it) old.it = b;
  else old.gl = b;
  old.bbox = bbox;
  const at = `translate(${b.x - b.w / 2},${b.y - b.h / 2})`;
  if (old.g && old.g.getAttribute("transform") !== at) old.g.setAttribute("transform", at); // the DOM only when it moved
  return old;
}

/** An edge drawn before (same key) kept for a new layout: its path follows the new points. */
export function keepEdge(old, e, direction) {
  if (!old) return null;
  const d = pathOf(e.points, direction);
  const g = old.g;
  if (g && g.getAttribute("d") !== d) g.setAttribute("d", d);
  if (g && (g.dataset.source !== String(e.source) || g.dataset.target !== String(e.target))) Object.assign(g.dataset, { source: e.source, target: e.target });
  old.e = e;
  old.bbox = bboxOf(e.points);
  return old;
}
