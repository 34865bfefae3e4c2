// Draws a laid-out graph as SVG once, then paints each frame by changing classes and text only.
// Pan and zoom are a CSS transform on the <svg> element (an SVG transform attribute is far slower
// on big graphs). Every string from the trace goes in through textContent.

import { nodeLines } from "./labels.js";
import { nodeIndex } from "./timeline.js";
import { fmtValue } from "./values.js";

const SVG = "http://www.w3.org/2000/svg";
const el = (name, attrs = {}, parent = null) => {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
};

function pathOf(points, direction) {
  if (points.length === 2) {
    const [[x1, y1], [x2, y2]] = points;
    if (direction === "TB") {
      const my = (y1 + y2) / 2;
      return `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
    }
    const mx = (x1 + x2) / 2;
    return `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
  }
  return "M" + points.map(([x, y]) => `${x},${y}`).join(" L");
}

function midpoint(points) {
  if (points.length === 2) return [(points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2];
  const m = points[Math.floor(points.length / 2)];
  return [m[0], m[1]];
}

const short = (s, n = 30) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

export class GraphView {
  constructor(container, { onSelect } = {}) {
    this.container = container;
    this.onSelect = onSelect || (() => {});
    this.view = { x: 0, y: 0, k: 1 };
    this.userMoved = false;
    this.svg = null;
    this.selected = null;
    this._bindPanZoom();
  }

  /** Build the SVG for a trace and its layout; nodes start as "future" until a frame shows them. */
  draw(trace, layout) {
    this.trace = trace;
    this.layout = layout;
    this.nodes = nodeIndex(trace);
    this.state = new Map(); // item key -> last painted {cls, grad}
    if (this.svg) this.svg.remove();
    const svg = el("svg", { width: Math.ceil(layout.width), height: Math.ceil(layout.height), role: "group" });
    svg.setAttribute("aria-label", "autograd graph");
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z" }, marker);

    const edgeLayer = el("g", { class: "edges" }, svg);
    this.edgeEls = layout.edges.map((e) => {
      const p = el("path", { class: "edge future", d: pathOf(e.points, layout.direction), "marker-end": "url(#arrow)" }, edgeLayer);
      p.dataset.source = e.source;
      p.dataset.target = e.target;
      return { e, el: p, cls: "edge future" };
    });
    this.edgesByTarget = new Map();
    for (const x of this.edgeEls) {
      if (!this.edgesByTarget.has(x.e.target)) this.edgesByTarget.set(x.e.target, []);
      this.edgesByTarget.get(x.e.target).push(x);
    }

    const nodeLayer = el("g", { class: "nodes" }, svg);
    this.items = layout.items.map((it) => {
      const node = this.nodes.get(it.id);
      const lines = nodeLines(node);
      const g = el("g", { class: `node ${node.kind} future`, transform: `translate(${it.x - it.w / 2},${it.y - it.h / 2})`, tabindex: 0, role: "button" }, nodeLayer);
      g.dataset.nodeId = it.id;
      g.dataset.key = it.key;
      el("rect", { width: it.w, height: it.h, rx: node.kind === "op" ? 14 : 6 }, g);
      const text = (cls, y, s) => {
        const t = el("text", { class: cls, x: it.w / 2, y }, g);
        t.textContent = short(s, 34);
        return t;
      };
      text("title", 16, lines.title);
      text("sub", 29, lines.sub);
      const val = text("val", 42, lines.value);
      const grad = text("grad", 54, "");
      if (it.copies > 1) {
        const m = el("text", { class: "copy-mark", x: it.w - 4, y: 10 }, g);
        m.textContent = `⧉${it.copy + 1}/${it.copies}`;
      }
      const item = { it, node, lines, g, val, grad, cls: g.getAttribute("class"), gradText: "", valText: lines.value, label: "" };
      this._label(item, lines.value, "");
      return item;
    });
    this.itemsById = new Map();
    for (const item of this.items) {
      if (!this.itemsById.has(item.it.id)) this.itemsById.set(item.it.id, []);
      this.itemsById.get(item.it.id).push(item);
    }
    this.labelLayer = el("g", { class: "edge-labels" }, svg);

    svg.addEventListener("click", (ev) => {
      const g = ev.target.closest?.(".node");
      if (g) this.select(Number(g.dataset.nodeId), true);
    });
    svg.addEventListener("keydown", (ev) => {
      const g = ev.target.closest?.(".node");
      if (g && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        ev.stopPropagation();
        this.select(Number(g.dataset.nodeId), true);
      }
    });
    this.container.appendChild(svg);
    this.svg = svg;
    this._apply();
  }

  _label(item, value, grad) {
    const n = item.node;
    const lines = item.lines;
    let label = `${n.kind === "op" ? lines.title + " (" + (n.op || "") + ")" : lines.title}, ${n.kind}, shape ${lines.sub}`;
    if (value) label += `, value ${value}`;
    if (grad) label += `, ${grad}`;
    if (label !== item.label) {
      item.g.setAttribute("aria-label", label);
      item.label = label;
    }
  }

  /** Paint one frame: classes for presence and the current step, value and gradient text, pulses. */
  paint(f) {
    if (!this.svg) return;
    const present = new Set(f.present);
    const current = new Set(f.current);
    const done = new Set(f.done);
    const backward = f.phase === "backward";
    for (const item of this.items) {
      const id = item.it.id;
      const n = item.node;
      let cls = `node ${n.kind}`;
      if (item.it.copies > 1) cls += " copy";
      if (!present.has(id)) cls += " future";
      if (current.has(id)) cls += backward ? " bwd-current" : " current";
      else if (backward && done.has(id)) cls += " bwd-done";
      if (this.selected === id) cls += " selected";
      if (cls !== item.cls) {
        item.g.setAttribute("class", cls);
        item.cls = cls;
      }
      let vt = item.valText;
      if (f.values.has(id)) vt = short(fmtValue(f.values.get(id), 4), 34);
      else vt = item.lines.value;
      if (vt !== item.valText) {
        item.val.textContent = vt;
        item.valText = vt;
      }
      let gt = "";
      if (f.grads.has(id)) gt = "grad " + fmtValue(f.grads.get(id), 4);
      else if (backward && f.flow.has(id)) gt = "∂ " + fmtValue(f.flow.get(id), 4);
      else if (backward && (f.received.get(id) || []).length > 1) gt = "Σ " + f.received.get(id).map((g) => fmtValue(g, 2)).join(" + ");
      gt = short(gt, 34);
      if (gt !== item.gradText) {
        item.grad.textContent = gt;
        item.gradText = gt;
      }
      this._label(item, present.has(id) ? vt : "", gt);
    }
    const pulsing = new Set(f.pulses.map((p) => `${p.source}>${p.target}:${p.slot}`));
    const doneEdges = backward ? done : new Set();
    for (const x of this.edgeEls) {
      const k = `${x.e.source}>${x.e.target}:${x.e.slot}`;
      let cls = "edge";
      if (!present.has(x.e.target)) cls += " future";
      if (pulsing.has(k)) cls += " pulse";
      else if (doneEdges.has(x.e.target)) cls += " carried";
      if (cls !== x.cls) {
        x.el.setAttribute("class", cls);
        x.cls = cls;
      }
    }
    this.labelLayer.replaceChildren();
    for (const p of f.pulses) {
      const x = this.edgeEls.find((x) => x.e.source === p.source && x.e.target === p.target && x.e.slot === p.slot);
      if (!x) continue;
      const [mx, my] = midpoint(x.e.points);
      const g = el("g", { class: "edge-label" }, this.labelLayer);
      const s = short(fmtValue(p.grad, 3), 24);
      const w = s.length * 7 + 10;
      el("rect", { x: mx - w / 2, y: my - 9, width: w, height: 18, rx: 9 }, g);
      const t = el("text", { x: mx, y: my + 4 }, g);
      t.textContent = s;
    }
    if (!this.userMoved && f.current.length) this.reveal(f.current[0]);
  }

  select(id, notify = false) {
    this.selected = id;
    for (const item of this.items || []) {
      const on = item.it.id === id;
      if (on !== item.cls.includes(" selected")) {
        item.cls = on ? item.cls + " selected" : item.cls.replace(" selected", "");
        item.g.setAttribute("class", item.cls);
      }
    }
    if (notify) this.onSelect(id);
  }

  // --- view: pan, zoom, fit, reveal -------------------------------------------------------------

  _apply() {
    if (this.svg) this.svg.style.transform = `translate(${this.view.x}px, ${this.view.y}px) scale(${this.view.k})`;
  }

  fit() {
    if (!this.layout) return;
    const r = this.container.getBoundingClientRect();
    const { width, height } = this.layout;
    const k = Math.min(1.25, Math.max(0.02, Math.min((r.width - 24) / width, (r.height - 24) / height)));
    // Very deep graphs: fitting would shrink everything to dots; show the start at a readable size.
    const readable = k < 0.35 ? Math.min(1, (r.width - 24) / width) : k;
    this.view = { k: readable, x: (r.width - width * readable) / 2, y: readable === k ? (r.height - height * k) / 2 : 12 };
    this.userMoved = false;
    this._apply();
  }

  zoom(factor, cx = null, cy = null) {
    const r = this.container.getBoundingClientRect();
    cx ??= r.width / 2;
    cy ??= r.height / 2;
    const k = Math.min(4, Math.max(0.02, this.view.k * factor));
    this.view.x = cx - ((cx - this.view.x) * k) / this.view.k;
    this.view.y = cy - ((cy - this.view.y) * k) / this.view.k;
    this.view.k = k;
    this.userMoved = true;
    this._apply();
  }

  /** Pan just enough to bring a node into view (used while playing). */
  reveal(id) {
    const item = (this.itemsById?.get(id) || [])[0];
    if (!item) return;
    const r = this.container.getBoundingClientRect();
    const { x, y, w, h } = item.it;
    const k = this.view.k;
    const sx = x * k + this.view.x;
    const sy = y * k + this.view.y;
    const mx = (w * k) / 2 + 20;
    const my = (h * k) / 2 + 20;
    if (sx - mx < 0 || sx + mx > r.width || sy - my < 0 || sy + my > r.height) {
      this.view.x = r.width / 2 - x * k;
      this.view.y = r.height / 2 - y * k;
      this._apply();
    }
  }

  _bindPanZoom() {
    const c = this.container;
    let drag = null;
    c.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0 || ev.target.closest?.(".node")) return;
      drag = { x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y };
      c.setPointerCapture(ev.pointerId);
      c.classList.add("dragging");
    });
    c.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      this.view.x = drag.vx + ev.clientX - drag.x;
      this.view.y = drag.vy + ev.clientY - drag.y;
      this.userMoved = true;
      this._apply();
    });
    const end = () => {
      drag = null;
      c.classList.remove("dragging");
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        const r = c.getBoundingClientRect();
        this.zoom(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
      },
      { passive: false },
    );
  }
}
