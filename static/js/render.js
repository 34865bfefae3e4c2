// Draws a laid-out graph as SVG once, then paints each frame by changing classes and text only
// (boxes.js makes and paints each box, edge and group frame; camera.js pans and zooms). Big graphs are
// virtual (cull.js): only what is near the viewport is in the DOM. A closed group (a module call, a
// loop iteration) stands for every node inside it: lit when they run, its progress while a pass runs
// through it; click or Enter opens it (onToggle).

import { t } from "./i18n.js";
import { opText } from "./expr.js";
import { closedAround, groupModel, resultOf } from "./groups.js";
import { groupLines, nodeLines } from "./labels.js";
import { GroupState } from "./group_state.js";
import { membership, nodeIndex } from "./timeline.js";
import { Camera } from "./camera.js";
import { Grid, bboxOf } from "./cull.js";
import { Minimap } from "./minimap.js";
import { edgeLabels, el, keepBox, keepEdge, makeEdge, makeFrame, makeGroup, makeNode, paintEdge, paintFrame, paintGroup, paintNode } from "./boxes.js";

const VIRTUAL_MIN = 400; // drawn things: above this, only the part near the viewport is in the DOM
const LOD_ZOOM = 0.3; // below this zoom boxes are drawn without text (much cheaper to paint)
const SETTLE_MARGIN = 16; // px around the pane in which boxes glide to their new places when a group opens
const SETTLE = { duration: 350, easing: "ease" }; // ms: how long they glide (and what is new fades in)
const FADE_IN = [{ opacity: 0 }, { opacity: 1 }];

/** The words of a group's box in the page's language (labels.js's groupLines). */
export const groupWords = () => ({
  iteration: t("group.iteration"), iterations: t("group.iterations"), opsRange: t("group.opsRange"),
  loopLine: t("group.loopLine"), ops: t("group.ops"), params: t("group.params"),
});

export class GraphView {
  constructor(container, { onSelect, onToggle, onView } = {}) {
    this.container = container;
    this.onSelect = onSelect || (() => {});
    this.onToggle = onToggle || (() => {});
    this.onView = onView || (() => {});
    this.camera = new Camera(container, {
      onChange: (view) => {
        this._cull();
        this._stickHeads();
        this.map.update({ view, pane: this.camera.pane(), fits: this.camera.showsAll() });
        this.onView(view);
      },
    });
    this.map = new Minimap(container, { onMove: (at) => this.camera.centre(at, true) });
    // A new theme: the map's colours follow.
    new MutationObserver(() => this.layout && this.map.draw(this.layout)).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    this.svg = null;
    this.selected = null;
    // Tab from the pane itself goes to the program's first box (the DOM's first is a frame's head).
    container.addEventListener("keydown", (ev) => {
      const first = ev.target === container && ev.key === "Tab" && !ev.shiftKey && this.svg ? this._tabFrom(null, 1) : null;
      if (first) {
        ev.preventDefault();
        first.focus();
      }
    });
  }

  get view() {
    return this.camera.view;
  }

  get userMoved() {
    return this.camera.userMoved;
  }

  setView(view, moved = true) {
    this.camera.set(view, moved);
  }

  /**
   * Build the SVG for a trace and its layout; nodes start as "future" until a frame shows them.
   * `open`: the groups the layout opened (a Set of keys). `reuse` (opening or closing a group: the same
   * trace drawn again): the SVG stays, boxes, frames and edges with the same key and size keep their
   * elements (moved to their new places), and only what is new is made: the browser restyles what changed.
   */
  draw(trace, layout, open = new Set(), { reuse = false } = {}) {
    const before = reuse && this.trace === trace && this.svg ? this._byKey() : null;
    const wasShown = before ? this.shown : new Set();
    this.trace = trace;
    this.layout = layout;
    this.open = open;
    this.nodes = nodeIndex(trace);
    this.model = groupModel(trace);
    this.ctx = null;
    if (!before) this._newSvg();
    this.svg.setAttribute("width", Math.ceil(layout.width));
    this.svg.setAttribute("height", Math.ceil(layout.height));
    this._things(trace, layout, before);
    this.groupState = new GroupState(trace, this.model, this.itemsById, open);
    this.virtual = this.things.length + this.edgeEls.length > VIRTUAL_MIN;
    const now = new Set([...this.frames, ...this.things, ...this.edgeEls]);
    this.shown = new Set();
    for (const x of wasShown) {
      if (now.has(x)) this.shown.add(x);
      else x.g.remove();
    }
    this.grid = this.virtual ? new Grid([...this.things, ...this.edgeEls]) : null;
    for (const f of this.frames) if (!this.shown.has(f)) this._show(f);
    if (!this.virtual) for (const x of [...this.edgeEls, ...this.things]) if (!this.shown.has(x)) this._show(x);
    this.map.draw(layout, { later: Boolean(before) }); // opening a box: the map follows once it has settled
    this.camera.attach(this.svg, { width: layout.width, height: layout.height, scale: layout.scale || 1 });
    this._stickHeads(); // a new frame's title where the view already is
  }

  _newSvg() {
    if (this.svg) this.svg.remove();
    const svg = el("svg", { role: "group" });
    svg.setAttribute("aria-label", "autograd graph");
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, el("defs", {}, svg));
    el("path", { d: "M0,0 L10,5 L0,10 z" }, marker);
    this.frameLayer = el("g", { class: "frames" }, svg);
    this.edgeLayer = el("g", { class: "edges" }, svg);
    this.nodeLayer = el("g", { class: "nodes" }, svg);
    this.labelLayer = el("g", { class: "edge-labels" }, svg);
    this._bindEvents(svg);
    this.container.insertBefore(svg, this.map.canvas);
    this.svg = svg;
  }

  /** What can be drawn: node boxes (items), closed groups' boxes, open groups' frames, edges. */
  _things(trace, layout, before = null) {
    const words = groupWords();
    const bbox = (b) => [b.x - b.w / 2, b.y - b.h / 2, b.x + b.w / 2, b.y + b.h / 2];
    this.items = layout.items.map((it) => {
      const kept = keepBox(before?.get(`n${it.key}`), it, bbox(it));
      if (kept) return kept;
      const node = this.nodes.get(it.id);
      return { type: "node", it, node, lines: nodeLines(node, node.value, opText(trace, node)), bbox: bbox(it), g: null };
    });
    const groups = (layout.groups || []).map((gl) => {
      const kept = keepBox(before?.get(`${gl.open ? "f" : "g"}${gl.key}`), gl, bbox(gl));
      if (kept) return kept;
      const group = this.model.groups.get(gl.key);
      const result = this.nodes.get(resultOf(group)) ?? null; // what a closed box shows once its operations ran
      return { type: gl.open ? "frame" : "group", gl, group, result, lines: groupLines(group, this.nodes, words), bbox: bbox(gl), g: null };
    });
    this.frames = groups.filter((g) => g.type === "frame").sort((a, b) => a.gl.depth - b.gl.depth);
    this.closed = groups.filter((g) => g.type === "group");
    this.things = [...this.items, ...this.closed];
    this.edgeEls = layout.edges.map((e) => keepEdge(before?.get(`e${e.key}`), e, layout.direction) ?? { type: "edge", e, el: null, g: null, cls: "", bbox: bboxOf(e.points) });
    this.edgeOfPart = new Map();
    for (const x of this.edgeEls) for (const p of x.e.parts || [x.e]) this.edgeOfPart.set(`${p.source}>${p.target}:${p.slot}`, x);
    this.itemsById = new Map();
    for (const item of this.items) (this.itemsById.get(item.it.id) ?? this.itemsById.set(item.it.id, []).get(item.it.id)).push(item);
    this.groupsByKey = new Map(groups.map((g) => [g.gl.key, g]));
  }

  /** The drawn boxes, frames and edges by key ("n" node box, "g" closed group, "f" open group's frame, "e" edge). */
  _byKey() {
    const out = new Map();
    for (const x of this.items) out.set(`n${x.it.key}`, x);
    for (const x of [...this.closed, ...this.frames]) out.set(`${x.type === "frame" ? "f" : "g"}${x.gl.key}`, x);
    for (const x of this.edgeEls) out.set(`e${x.e.key}`, x);
    return out;
  }

  _show(x) {
    const s = this.layout.scale || 1;
    if (!x.g) {
      if (x.type === "node") makeNode(x, s);
      else if (x.type === "group") makeGroup(x, s);
      else if (x.type === "frame") makeFrame(x, s);
      else makeEdge(x, this.layout.direction);
    }
    const layer = x.type === "frame" ? this.frameLayer : x.type === "edge" ? this.edgeLayer : this.nodeLayer;
    layer.appendChild(x.g);
    this.shown.add(x);
    if (this.ctx) this._paintThing(x, this.ctx);
  }

  /**
   * An open frame wider than the pane, its left edge off it: its title slides along its head to stay in
   * view (it was cut to its tail, "ck model.blocks.1"). A style, not an attribute: exports draw it in place.
   */
  _stickHeads() {
    if (!this.frames) return;
    const { x: vx, k } = this.view;
    const seen = -vx / k + 4; // the layout x at the pane's left edge, and a little room
    for (const f of this.frames) {
      const title = f.g?.isConnected ? f.g.querySelector(".group-head text") : null;
      if (!title) continue;
      const left = f.gl.x - f.gl.w / 2;
      let shift = 0;
      if (seen > left) {
        f.titleW ??= title.getComputedTextLength();
        shift = Math.round(Math.max(0, Math.min(seen - left, f.gl.w - f.titleW - 20)));
      }
      if (shift !== (f.titleShift ?? 0)) {
        if (shift) title.style.transform = `translate(${shift}px)`;
        else title.removeAttribute("style");
        f.titleShift = shift;
      }
    }
  }

  /** Virtual graphs: put in the DOM what is within about a screen of the viewport, take out the rest. */
  _cull() {
    if (!this.svg) return;
    this.svg.classList.toggle("lod", this.view.k < LOD_ZOOM);
    if (!this.virtual) return;
    const want = this.grid.near(this.view, this.camera.pane());
    if (!want) return;
    for (const x of this.shown) {
      if (x.type !== "frame" && !want.has(x)) {
        x.g.remove();
        this.shown.delete(x);
      }
    }
    for (const x of want) if (!this.shown.has(x)) this._show(x);
  }

  _bindEvents(svg) {
    const target = (ev) => ev.target.closest?.(".node, .group-head");
    const activate = (g) => {
      if (g.dataset.group) {
        this.select(g.dataset.group, true);
        this.onToggle(g.dataset.group, g.getAttribute("aria-expanded") !== "true");
      } else this.select(Number(g.dataset.nodeId), true);
    };
    svg.addEventListener("click", (ev) => {
      const g = target(ev);
      if (g) activate(g);
    });
    svg.addEventListener("keydown", (ev) => {
      const g = target(ev);
      if (g && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        ev.stopPropagation();
        activate(g);
      }
      if (!g || ev.key !== "Tab" || ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const next = this._tabFrom(g, ev.shiftKey ? -1 : 1);
      if (next) {
        ev.preventDefault();
        next.focus(); // the camera pans to it (camera.js turns the pane's scroll into a pan)
        return;
      }
      // Past either end: the browser's Tab goes on from the drawing's DOM end, out of it (from this box's
      // own place in the DOM it went on to boxes made later, and round again: a keyboard trap).
      const all = svg.querySelectorAll(".node[tabindex], .group-head[tabindex]");
      const end = ev.shiftKey ? all[0] : all[all.length - 1];
      if (end && end !== g) end.focus({ preventScroll: true });
    });
  }

  /**
   * The box or open group's head after (d = 1) or before (d = -1) `from` in the program's order, among those
   * drawn: a group before what it holds, an outer one before an inner one. The DOM's order is the layers'
   * (every frame's head, then the boxes in the order they were made), so Tab went from an opened block to
   * the frames after it. From null, the first. Null past either end: Tab leaves the graph.
   */
  _tabFrom(from, d) {
    const shown = [...this.shown].filter((x) => x.type !== "edge" && x.g?.isConnected);
    const key = (x) => (x.type === "node" ? [x.it.id, 1, 0, x.it.y, x.it.x] : [x.group.first, 0, x.gl.depth, x.gl.y, x.gl.x]);
    const keys = new Map(shown.map((x) => [x, key(x)]));
    shown.sort((a, b) => {
      const [p, q] = [keys.get(a), keys.get(b)];
      for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return p[i] - q[i];
      return 0;
    });
    const focusable = (x) => (x.type === "frame" ? x.g.querySelector(".group-head") : x.g);
    const i = from === null ? -1 : shown.findIndex((x) => focusable(x) === from);
    return i < 0 && from !== null ? null : (shown[i + d] && focusable(shown[i + d])) || null;
  }

  /** Where each box and frame is now, on screen (for settleFrom after the next draw). */
  positions() {
    const out = new Map();
    const { x: vx, y: vy, k } = this.view;
    for (const x of this.shown || []) {
      const b = x.it ?? x.gl;
      if (b) out.set(x.type === "node" ? `n${b.key}` : `g${b.key}`, [b.x * k + vx, b.y * k + vy]);
    }
    return out;
  }

  /**
   * Animate from the positions before a group opened or closed: every box still drawn glides from
   * where it was on screen to its new place; what is new, and the edges, fade in (none when the
   * student asked for reduced motion). Only what is in the pane before or after is animated: the rest
   * is already where it goes, and an animated box costs the browser a new layout of its text. Web
   * animations start from their first keyframe, so nothing is read back from the DOM (a
   * style-then-read-then-transition forced a layout of the whole drawing).
   */
  settleFrom(before) {
    if (!this.svg || !before?.size || matchMedia("(prefers-reduced-motion: reduce)").matches) return;
    const { x: vx, y: vy, k } = this.view;
    const pane = this.camera.pane();
    const M = SETTLE_MARGIN;
    // A box of w x h layout px centred at (sx, sy) on screen, or a layout rectangle: in the pane?
    const inPane = (sx, sy, w, h) => sx + (w * k) / 2 > -M && sy + (h * k) / 2 > -M && sx - (w * k) / 2 < pane.width + M && sy - (h * k) / 2 < pane.height + M;
    const rectInPane = ([x0, y0, x1, y1]) => inPane(((x0 + x1) / 2) * k + vx, ((y0 + y1) / 2) * k + vy, x1 - x0, y1 - y0);
    for (const x of this.shown) {
      const b = x.it ?? x.gl;
      if (!b) {
        if (rectInPane(x.bbox)) x.g.animate(FADE_IN, SETTLE);
        continue;
      }
      const now = [b.x * k + vx, b.y * k + vy];
      const was = before.get(x.type === "node" ? `n${b.key}` : `g${b.key}`);
      if (!inPane(now[0], now[1], b.w, b.h) && !(was && inPane(was[0], was[1], b.w, b.h))) continue;
      if (was) x.g.animate([{ translate: `${(was[0] - now[0]) / k}px ${(was[1] - now[1]) / k}px` }, { translate: "0px 0px" }], SETTLE);
      else x.g.animate(FADE_IN, SETTLE);
    }
  }

  /** The drawn thing that shows node `id` now: its box (first copy), else the closed group around it. */
  thingOf(id) {
    const item = this.itemsById?.get(id)?.[0];
    if (item) return item;
    const key = this.model && closedAround(this.model, id, this.open);
    return key ? this.groupsByKey.get(key) ?? null : null;
  }

  /** Layout box {x, y, w, h} of what shows node `id` (or of group `key`). */
  boxOf(id) {
    const x = typeof id === "string" ? this.groupsByKey?.get(id) : this.thingOf(id);
    return x ? x.it ?? x.gl : null;
  }

  // --- painting a frame ------------------------------------------------------------------------------

  /** Paint one frame: classes for presence and the current step, value and gradient text, pulses. */
  paint(f) {
    if (!this.svg) return;
    const ctx = {
      f,
      ...membership(this.trace, f), // present, done: .has(id) without a set of every id per step
      current: new Set(f.current),
      backward: f.phase === "backward",
      gradients: f.phase === "backward" || Boolean(f.after), // a finished pass's ∂ stay on the nodes
      pulsing: new Set(f.pulses.map((p) => `${p.source}>${p.target}:${p.slot}`)),
    };
    ctx.groups = this.groupState.at(f, ctx.backward);
    this.ctx = ctx;
    if (!this.userMoved && f.current.length) this.reveal(f.current[0]);
    this.map.update({ current: f.current.length ? this.boxOf(f.current[0]) : null });
    for (const x of this.shown) this._paintThing(x, ctx);
    // Clear of every box drawn (not of open groups' frames, which labels may sit in).
    const boxes = [...this.shown].filter((x) => x.type === "node" || x.type === "group").map(({ bbox: [x0, y0, x1, y1] }) => ({ x: x0, y: y0, w: x1 - x0, h: y1 - y0 }));
    edgeLabels(this.labelLayer, f.pulses, this.edgeOfPart, this.layout.scale || 1, boxes, this.layout.direction);
  }

  _paintThing(x, ctx) {
    if (x.type === "node") paintNode(x, ctx, this.selected);
    else if (x.type === "group") paintGroup(x, ctx, this.selected);
    else if (x.type === "frame") paintFrame(x, ctx);
    else paintEdge(x, ctx);
  }

  /** Select node `id` (a number) or group `key` (a string); `notify` tells onSelect. */
  select(id, notify = false) {
    this.selected = id;
    for (const x of this.shown) {
      if (x.type !== "node" && x.type !== "group") continue;
      if (this.ctx) this._paintThing(x, this.ctx);
      else x.g.classList.toggle("selected", (x.it?.id ?? x.gl.key) === id);
    }
    if (notify) this.onSelect(id);
  }

  // --- view ------------------------------------------------------------------------------------------

  /**
   * Centre the whole graph, as large as fits up to `maxZoom`, never below readable text: then around
   * the current step, before the first one around the program's first operation (or the box holding
   * it: a model's first layer), else its first node.
   */
  fit(maxZoom) {
    if (!this.layout) return;
    const nodes = this.trace.nodes;
    const cur = this.ctx?.f.current[0] ?? (nodes.find((n) => n.kind === "op") ?? nodes[0])?.id;
    this.camera.fit(maxZoom, cur === undefined ? null : this.boxOf(cur));
  }

  zoom(factor, cx = null, cy = null) {
    this.camera.zoom(factor, cx, cy);
  }

  /** Bring what shows node `id` into view if it is not (used while playing). */
  reveal(id) {
    const box = this.boxOf(id);
    if (box) this.camera.reveal(box);
  }

  /** Centre node `id` (or group `key`) in the pane. */
  centre(id) {
    const box = this.boxOf(id);
    if (box) this.camera.centre(box, true);
  }
}

