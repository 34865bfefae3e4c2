// The graph's camera: pan and zoom as a CSS transform on the drawing (an SVG transform attribute is far
// slower on big graphs), Fit, and following the current step. Fit never zooms out past the point where
// a box's smallest text would be under READABLE_PX on screen: a bigger graph is shown at that size
// around what matters (the current step, else its start), and the map and search reach the rest.

import { READABLE_ZOOM } from "./labels.js";

const FIT_MAX_ZOOM = 1.25;
const ZOOM_MIN = 0.02;
const ZOOM_MAX = 4;
const PAD = 12; // px of pane around a fitted graph
const FOLLOW_MARGIN = 16; // px: a current box closer than this to the pane's edge is brought into view
const TAP_SLOP_PX = 8; // a finger on a box that moves less than this is a tap (it selects the box), not a pan

export class Camera {
  constructor(container, { onChange = () => {} } = {}) {
    this.container = container;
    this.onChange = onChange;
    this.view = { x: 0, y: 0, k: 1 };
    this.userMoved = false;
    this.target = null;
    this.bounds = { width: 0, height: 0, scale: 1 };
    this._pane = null;
    new ResizeObserver(() => (this._pane = null)).observe(container);
    this._bindPanZoom();
  }

  /** The element moved by the camera and the extent of what it draws (layout px; `scale`: presentation's larger boxes). */
  attach(target, bounds) {
    this.target = target;
    this.bounds = { scale: 1, ...bounds };
    this.apply();
  }

  /**
   * The pane's size, measured when it changes (reading it on every move would force a layout per frame),
   * and `top`: the px at its top that the pass label covers (a fitted graph starts below it).
   */
  pane() {
    if (!this._pane) {
      const r = this.container.getBoundingClientRect();
      const label = this.container.querySelector(".pass-label")?.getBoundingClientRect();
      const top = label?.height ? Math.max(0, label.bottom - r.top + 4 - PAD) : 0;
      this._pane = { width: r.width || 800, height: r.height || 600, top };
    }
    return this._pane;
  }

  /** Pan and zoom to `view` ({x, y, k}); `moved`: as if the student had (the camera stops following). */
  set({ x, y, k }, moved = true) {
    this.view = { x, y, k };
    this.userMoved = moved;
    this.apply();
  }

  apply() {
    if (!this.target) return;
    this.target.style.transform = `translate(${this.view.x}px, ${this.view.y}px) scale(${this.view.k})`;
    this.onChange(this.view);
  }

  /** The zoom below which a box's text is smaller than READABLE_PX on screen. */
  readableZoom() {
    return READABLE_ZOOM / (this.bounds.scale || 1);
  }

  /** The zoom at which the whole drawing fits the pane (uncapped). */
  fitZoom() {
    const p = this.pane();
    const { width, height } = this.bounds;
    return Math.min((p.width - 2 * PAD) / Math.max(1, width), (p.height - p.top - 2 * PAD) / Math.max(1, height));
  }

  /**
   * The whole drawing, centred, as large as fits up to `maxZoom` (presentation mode allows more); when
   * that would make text unreadable, the readable size around `focus` ({x, y, w, h}: the current step,
   * else where the program starts), never leaving empty pane beyond the drawing's edges.
   */
  fit(maxZoom = FIT_MAX_ZOOM, focus = null) {
    this._pane = null; // measured now: a fit often follows a change of the page (presentation) before the observer has run
    const p = this.pane();
    const { width, height } = this.bounds;
    const fitted = Math.min(maxZoom, this.fitZoom());
    const k = Math.max(fitted, Math.min(maxZoom, this.readableZoom()));
    const centre = (size, extent) => (size - extent * k) / 2;
    let x = centre(p.width, width);
    let y = p.top + centre(p.height - p.top, height);
    const around = (c, pane, extent, top) => Math.max(Math.min(c, top + PAD), pane - PAD - extent * k);
    if (width * k > p.width - 2 * PAD) x = around(focus ? p.width / 2 - focus.x * k : PAD, p.width, width, 0);
    if (height * k > p.height - p.top - 2 * PAD) y = around(focus ? p.height / 2 - focus.y * k : p.top + PAD, p.height, height, p.top);
    this.set({ x, y, k }, false);
  }

  /** Is the whole drawing in view? */
  showsAll() {
    const p = this.pane();
    const { x, y, k } = this.view;
    return x >= -1 && y >= -1 && x + this.bounds.width * k <= p.width + 1 && y + this.bounds.height * k <= p.height + 1;
  }

  zoom(factor, cx = null, cy = null) {
    const p = this.pane();
    cx ??= p.width / 2;
    cy ??= p.height / 2;
    const k = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, this.view.k * factor));
    const v = this.view;
    this.set({ x: cx - ((cx - v.x) * k) / v.k, y: cy - ((cy - v.y) * k) / v.k, k });
  }

  /** Centre a box ({x, y} in layout px) at the current zoom. */
  centre(box, moved = this.userMoved) {
    const p = this.pane();
    const k = this.view.k;
    this.set({ x: p.width / 2 - box.x * k, y: p.height / 2 - box.y * k, k }, moved);
  }

  /**
   * Follow the current step: when its box is not well inside the pane, centre it, but never past the
   * drawing's edges, so that a side which fits stays whole (never when all is in view).
   */
  reveal(box) {
    if (this.showsAll()) return;
    const p = this.pane();
    const { x, y, k } = this.view;
    const sx = box.x * k + x;
    const sy = box.y * k + y;
    const mx = (box.w * k) / 2 + FOLLOW_MARGIN;
    const my = (box.h * k) / 2 + FOLLOW_MARGIN;
    if (sx - mx >= 0 && sx + mx <= p.width && sy - my >= p.top && sy + my <= p.height) return;
    const axis = (v, pane, extent, top) => {
      const size = extent * k;
      if (size <= pane - top - 2 * PAD) return Math.min(Math.max(v, top + PAD), pane - PAD - size); // whole, inside the pane
      return Math.max(Math.min(v, top + PAD), pane - PAD - size); // no empty pane beyond its edges
    };
    const c = { x: p.width / 2 - box.x * k, y: p.height / 2 - box.y * k };
    this.set({ x: axis(c.x, p.width, this.bounds.width, 0), y: axis(c.y, p.height, this.bounds.height, p.top), k }, this.userMoved);
  }

  _bindPanZoom() {
    const c = this.container;
    const touches = new Map(); // pointerId -> {x, y}: one finger (or the mouse) pans, two pinch
    let drag = null;
    let pinch = null;
    const at = (ev) => ({ x: ev.clientX, y: ev.clientY });
    const pinchStart = () => {
      const [a, b] = [...touches.values()];
      const r = c.getBoundingClientRect();
      const mid = { x: (a.x + b.x) / 2 - r.left, y: (a.y + b.y) / 2 - r.top };
      // The layout point under the fingers' midpoint stays under it while they spread or close.
      pinch = { d: Math.hypot(a.x - b.x, a.y - b.y) || 1, k: this.view.k, lx: (mid.x - this.view.x) / this.view.k, ly: (mid.y - this.view.y) / this.view.k };
      drag = null;
    };
    c.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0 || ev.target.closest?.(".map")) return;
      const onBox = ev.target.closest?.(".node, .group-head");
      if (onBox && ev.pointerType === "mouse") return; // a click selects; the mouse pans from the background
      touches.set(ev.pointerId, at(ev));
      if (touches.size === 2) pinchStart();
      // A finger on a box is a tap until it moves: capture (which retargets the tap) only once it does.
      else drag = { x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y, id: ev.pointerId, captured: !onBox };
      if (!onBox) c.setPointerCapture(ev.pointerId);
      c.classList.add("dragging");
    });
    c.addEventListener("pointermove", (ev) => {
      if (!touches.has(ev.pointerId)) return;
      touches.set(ev.pointerId, at(ev));
      if (pinch && touches.size === 2) {
        const [a, b] = [...touches.values()];
        const r = c.getBoundingClientRect();
        const k = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, (pinch.k * Math.hypot(a.x - b.x, a.y - b.y)) / pinch.d));
        const mid = { x: (a.x + b.x) / 2 - r.left, y: (a.y + b.y) / 2 - r.top };
        this.set({ x: mid.x - pinch.lx * k, y: mid.y - pinch.ly * k, k });
      } else if (drag && drag.id === ev.pointerId) {
        const dx = ev.clientX - drag.x;
        const dy = ev.clientY - drag.y;
        if (!drag.captured && Math.hypot(dx, dy) < TAP_SLOP_PX) return;
        if (!drag.captured) (c.setPointerCapture(ev.pointerId), (drag.captured = true));
        this.set({ x: drag.vx + dx, y: drag.vy + dy, k: this.view.k });
      }
    });
    const end = (ev) => {
      touches.delete(ev.pointerId);
      pinch = null;
      drag = null;
      if (!touches.size) c.classList.remove("dragging");
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    // The browser scrolls the pane (overflow: hidden still scrolls) to show a box that Tab focuses, or text
    // that find-in-page found: that becomes a pan of the camera, so the map and the ground stay in place
    // and the camera's view stays what the student sees.
    c.addEventListener("scroll", () => {
      const [dx, dy] = [c.scrollLeft, c.scrollTop];
      if (!dx && !dy) return;
      c.scrollTo(0, 0);
      this.set({ x: this.view.x - dx, y: this.view.y - dy, k: this.view.k });
    });
    c.addEventListener(
      "wheel",
      (ev) => {
        if (ev.target.closest?.(".map")) return;
        ev.preventDefault();
        const r = c.getBoundingClientRect();
        this.zoom(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
      },
      { passive: false },
    );
  }
}
