// Draws a laid-out graph as SVG once, then paints each frame by changing classes and text only.
// Pan and zoom are a CSS transform on the <svg> element (an SVG transform attribute is far slower
// on big graphs). Every string from the trace goes in through textContent.

import { t } from "./i18n.js";
import { powSymbol } from "./formulas.js";
import { nodeLines } from "./labels.js";
import { asShown, nodeIndex } from "./timeline.js";
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

const VIRTUAL_MIN = 400; // boxes: above this, only the part near the viewport is in the DOM
const CELL = 800; // px of layout per cell of the culling grid

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

  /**
   * Build the SVG for a trace and its layout; nodes start as "future" until a frame shows them.
   * Big graphs are virtual: only boxes and edges near the viewport are in the DOM (created on
   * demand as the view moves), which keeps the first frame, stepping and panning fast at 5,000 nodes.
   */
  draw(trace, layout) {
    this.trace = trace;
    this.layout = layout;
    this.nodes = nodeIndex(trace);
    this.ctx = null;
    if (this.svg) this.svg.remove();
    const svg = el("svg", { width: Math.ceil(layout.width), height: Math.ceil(layout.height), role: "group" });
    svg.setAttribute("aria-label", "autograd graph");
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z" }, marker);
    this.edgeLayer = el("g", { class: "edges" }, svg);
    this.nodeLayer = el("g", { class: "nodes" }, svg);
    this.labelLayer = el("g", { class: "edge-labels" }, svg);

    this.edgeEls = layout.edges.map((e) => ({ e, el: null, cls: "", key: `${e.source}>${e.target}:${e.slot}` }));
    this.edgeByKey = new Map(this.edgeEls.map((x) => [x.key, x]));
    this.items = layout.items.map((it) => {
      const node = this.nodes.get(it.id);
      return { it, node, lines: nodeLines(node, node.value, powSymbol(trace, node)), g: null, val: null, grad: null, cls: "", gradText: "", valText: "", label: "" };
    });
    this.itemsById = new Map();
    for (const item of this.items) {
      if (!this.itemsById.has(item.it.id)) this.itemsById.set(item.it.id, []);
      this.itemsById.get(item.it.id).push(item);
    }
    this.virtual = this.items.length > VIRTUAL_MIN;
    this.shown = { items: new Set(), edges: new Set() };
    this.culled = null;
    if (this.virtual) this._index();
    else {
      this.items.forEach((item) => this._showItem(item));
      this.edgeEls.forEach((x) => this._showEdge(x));
    }

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

  _showItem(item) {
    if (!item.g) {
      const { it, node, lines } = item;
      const s = this.layout.scale || 1; // presentation's larger boxes; app.css scales the text by --node-scale
      const g = el("g", { class: `node ${node.kind} future`, transform: `translate(${it.x - it.w / 2},${it.y - it.h / 2})`, tabindex: 0, role: "button" });
      g.dataset.nodeId = it.id;
      g.dataset.key = it.key;
      el("rect", { width: it.w, height: it.h, rx: (node.kind === "op" ? 14 : 6) * s }, g);
      const text = (cls, y, str) => {
        const t = el("text", { class: cls, x: it.w / 2, y: y * s }, g);
        t.textContent = short(str, 34);
        return t;
      };
      text("title", 16, lines.title);
      item.sub = text("sub", 29, lines.sub);
      item.subText = lines.sub;
      item.val = text("val", 42, lines.value);
      item.grad = text("grad", 54, "");
      if (it.copies > 1) {
        const m = el("text", { class: "copy-mark", x: it.w - 4 * s, y: 10 * s }, g);
        m.textContent = `${it.copy + 1}/${it.copies}`;
      }
      item.g = g;
      item.cls = g.getAttribute("class");
      item.valText = lines.value;
      item.gradText = "";
      item.label = "";
      this._label(item, "", "");
    }
    this.nodeLayer.appendChild(item.g);
    this.shown.items.add(item);
    if (this.ctx) this._paintItem(item, this.ctx);
  }

  _showEdge(x) {
    if (!x.el) {
      x.el = el("path", { class: "edge future", d: pathOf(x.e.points, this.layout.direction), "marker-end": "url(#arrow)" });
      x.el.dataset.source = x.e.source;
      x.el.dataset.target = x.e.target;
      x.cls = "edge future";
    }
    this.edgeLayer.appendChild(x.el);
    this.shown.edges.add(x);
    if (this.ctx) this._paintEdge(x, this.ctx);
  }

  // A coarse grid over the layout: which boxes and edges touch each cell.
  _index() {
    this.grid = new Map();
    const put = (x0, y0, x1, y1, what) => {
      for (let cx = Math.floor(x0 / CELL); cx <= Math.floor(x1 / CELL); cx++) {
        for (let cy = Math.floor(y0 / CELL); cy <= Math.floor(y1 / CELL); cy++) {
          const k = cx * 100003 + cy;
          if (!this.grid.has(k)) this.grid.set(k, []);
          this.grid.get(k).push(what);
        }
      }
    };
    for (const item of this.items) {
      const { x, y, w, h } = item.it;
      put(x - w / 2, y - h / 2, x + w / 2, y + h / 2, item);
    }
    for (const e of this.edgeEls) {
      let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
      for (const [x, y] of e.e.points) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
      put(x0, y0, x1, y1, e);
    }
  }

  /** Virtual graphs: put in the DOM what is within one screen of the viewport, take out the rest. */
  _cull() {
    if (!this.virtual || !this.svg) return;
    const r = this.container.getBoundingClientRect();
    const k = this.view.k;
    const vx0 = -this.view.x / k;
    const vy0 = -this.view.y / k;
    const vw = (r.width || 800) / k;
    const vh = (r.height || 600) / k;
    const c = this.culled;
    if (c && vx0 >= c.x0 && vy0 >= c.y0 && vx0 + vw <= c.x1 && vy0 + vh <= c.y1 && c.k === k) return;
    const m = Math.min(vw, vh) * 0.75 + 200;
    const box = { x0: vx0 - m, y0: vy0 - m, x1: vx0 + vw + m, y1: vy0 + vh + m, k };
    this.culled = box;
    const want = new Set();
    for (let cx = Math.floor(box.x0 / CELL); cx <= Math.floor(box.x1 / CELL); cx++) {
      for (let cy = Math.floor(box.y0 / CELL); cy <= Math.floor(box.y1 / CELL); cy++) {
        for (const w of this.grid.get(cx * 100003 + cy) || []) want.add(w);
      }
    }
    for (const item of this.shown.items) if (!want.has(item)) (item.g.remove(), this.shown.items.delete(item));
    for (const x of this.shown.edges) if (!want.has(x)) (x.el.remove(), this.shown.edges.delete(x));
    for (const w of want) {
      if (w.it) {
        if (!this.shown.items.has(w)) this._showItem(w);
      } else if (!this.shown.edges.has(w)) this._showEdge(w);
    }
    // Zoomed far out, boxes are too small to read: draw them without text (much cheaper to paint).
    this.svg.classList.toggle("lod", k < 0.3);
  }

  _label(item, value, grad, n = item.node) {
    const lines = item.lines;
    let label = `${n.kind === "op" ? lines.title + " (" + (n.op || "") + ")" : lines.title}, ${n.kind}, shape ${item.subText ?? lines.sub}`;
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
    const ctx = {
      f,
      present: new Set(f.present),
      current: new Set(f.current),
      done: new Set(f.done),
      backward: f.phase === "backward",
      pulsing: new Set(f.pulses.map((p) => `${p.source}>${p.target}:${p.slot}`)),
    };
    this.ctx = ctx;
    if (!this.userMoved && f.current.length) this.reveal(f.current[0]);
    for (const item of this.shown.items) this._paintItem(item, ctx);
    for (const x of this.shown.edges) this._paintEdge(x, ctx);
    this.labelLayer.replaceChildren();
    const s = this.layout.scale || 1;
    for (const p of f.pulses) {
      const x = this.edgeByKey.get(`${p.source}>${p.target}:${p.slot}`);
      if (!x) continue;
      const [mx, my] = midpoint(x.e.points);
      const g = el("g", { class: "edge-label" }, this.labelLayer);
      const str = short(fmtValue(p.grad, 3), 24);
      const w = (str.length * 7 + 10) * s;
      el("rect", { x: mx - w / 2, y: my - 9 * s, width: w, height: 18 * s, rx: 9 * s }, g);
      const t = el("text", { x: mx, y: my + 4 * s }, g);
      t.textContent = str;
    }
  }

  _paintItem(item, { f, present, current, done, backward }) {
    const id = item.it.id;
    const n = asShown(item.node, f); // a leaf-to-be is drawn as the constant it still is
    let cls = `node ${n.kind}`;
    const sub = n === item.node ? item.lines.sub : nodeLines(n).sub;
    if (sub !== item.subText) {
      item.sub.textContent = sub;
      item.subText = sub;
    }
    if (item.it.copies > 1) cls += " copy";
    if (!present.has(id)) cls += " future";
    if (current.has(id)) cls += backward ? " bwd-current" : " current";
    else if (backward && done.has(id)) cls += " bwd-done";
    if (this.selected === id) cls += " selected";
    if (cls !== item.cls) {
      item.g.setAttribute("class", cls);
      item.cls = cls;
    }
    const vt = f.values.has(id) ? short(fmtValue(f.values.get(id), 4), 34) : item.lines.value;
    if (vt !== item.valText) {
      item.val.textContent = vt;
      item.valText = vt;
    }
    let gt = "";
    if (f.grads.has(id)) gt = "grad " + fmtValue(f.grads.get(id), 4);
    else if (backward && f.flow.has(id)) gt = "∂ " + fmtValue(f.flow.get(id), 4);
    else if (backward && (f.received.get(id) || []).length > 1) {
      const parts = f.received.get(id);
      gt = parts.length <= 3 && parts.every((g) => !Array.isArray(g)) ? "Σ " + parts.map((g) => fmtValue(g)).join(" + ") : t("graph.fanin", { n: parts.length });
    }
    gt = short(gt, 34);
    if (gt !== item.gradText) {
      item.grad.textContent = gt;
      item.gradText = gt;
    }
    this._label(item, present.has(id) ? vt : "", gt, n);
  }

  _paintEdge(x, { present, pulsing, done, backward }) {
    let cls = "edge";
    if (!present.has(x.e.target)) cls += " future";
    if (pulsing.has(x.key)) cls += " pulse";
    else if (backward && done.has(x.e.target)) cls += " carried";
    if (cls !== x.cls) {
      x.el.setAttribute("class", cls);
      x.cls = cls;
    }
  }

  select(id, notify = false) {
    this.selected = id;
    for (const item of this.shown?.items || []) {
      const on = item.it.id === id;
      if (on !== item.cls.includes(" selected")) {
        item.cls = on ? item.cls + " selected" : item.cls.replace(" selected", "");
        item.g.setAttribute("class", item.cls);
      }
    }
    if (notify) this.onSelect(id);
  }

  // --- view: pan, zoom, fit, reveal -------------------------------------------------------------

  /** Pan and zoom to `view` ({x, y, k}); `moved`: as if the student had (the camera stops following). */
  setView({ x, y, k }, moved = true) {
    this.view = { x, y, k };
    this.userMoved = moved;
    this._apply();
  }

  _apply() {
    if (!this.svg) return;
    this.svg.style.transform = `translate(${this.view.x}px, ${this.view.y}px) scale(${this.view.k})`;
    this._cull();
  }

  /** Centre the whole graph, as large as fits up to `maxZoom` (presentation mode allows more). */
  fit(maxZoom = 1.25) {
    if (!this.layout) return;
    const r = this.container.getBoundingClientRect();
    const { width, height } = this.layout;
    const k = Math.min(maxZoom, Math.max(0.02, Math.min((r.width - 24) / width, (r.height - 24) / height)));
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
