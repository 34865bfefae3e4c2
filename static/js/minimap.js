// The map: an overview of the whole graph in a corner of the graph pane, with the part the camera
// shows as a rectangle; click or drag on it to move there. Drawn on a canvas from the layout (boxes
// and open groups' frames as rectangles, the current step as a dot), shown only when the graph does
// not fit in the pane.

import { t } from "./i18n.js";

const MAX_W = 150; // px
const MAX_H = 110;
const LATER_MS = 450; // a layout drawn `later` waits this long after the last one (a box's opening glides for 350 ms)

export class Minimap {
  constructor(container, { onMove = () => {} } = {}) {
    this.container = container;
    this.onMove = onMove;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "map";
    this.canvas.setAttribute("role", "img");
    this.canvas.dataset.i18nAria = "map.label"; // i18n.apply() relabels it in another language
    this.canvas.setAttribute("aria-label", t("map.label"));
    this.canvas.hidden = true;
    container.appendChild(this.canvas);
    this.base = null;
    this.layout = null;
    this.view = null;
    this.current = null;
    this._bindDrag();
  }

  /**
   * Draw the layout's boxes once (a new layout, or a new theme). `later` (a box opened or closed): once
   * the drawing has settled, and only the last of several; until then the map shows the one before.
   */
  draw(layout, { later = false } = {}) {
    clearTimeout(this._later);
    if (later && this.base) {
      this._later = setTimeout(() => this.draw(layout), LATER_MS);
      return;
    }
    this.layout = layout;
    const s = Math.min(MAX_W / layout.width, MAX_H / layout.height);
    this.scale = s;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(24, Math.ceil(layout.width * s));
    const h = Math.max(24, Math.ceil(layout.height * s));
    Object.assign(this.canvas.style, { width: `${w}px`, height: `${h}px` });
    this.canvas.width = Math.ceil(w * dpr);
    this.canvas.height = Math.ceil(h * dpr);
    this.base = document.createElement("canvas");
    this.base.width = this.canvas.width;
    this.base.height = this.canvas.height;
    const ctx = this.base.getContext("2d");
    ctx.scale(dpr * s, dpr * s);
    const css = getComputedStyle(this.container);
    const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    ctx.fillStyle = color("--panel", "#fff");
    ctx.fillRect(0, 0, layout.width, layout.height);
    ctx.strokeStyle = color("--group", "#6b7785");
    ctx.lineWidth = 1 / s;
    for (const g of layout.groups || []) if (g.open) ctx.strokeRect(g.x - g.w / 2, g.y - g.h / 2, g.w, g.h);
    ctx.fillStyle = color("--node-stroke", "#8c96a2");
    for (const it of layout.items) ctx.fillRect(it.x - it.w / 2, it.y - it.h / 2, it.w, it.h);
    ctx.fillStyle = color("--group", "#6b7785");
    for (const g of layout.groups || []) if (!g.open) ctx.fillRect(g.x - g.w / 2, g.y - g.h / 2, g.w, g.h);
    this.colors = { view: color("--fwd", "#0072b2"), current: color("--bwd", "#d55e00") };
    this.render();
  }

  /** The camera moved ({x, y, k} over a pane of {width, height}), or the current step is at `current` ({x, y}). */
  update({ view = this.view, pane = this.pane, current = this.current, fits = this.fits } = {}) {
    Object.assign(this, { view, pane, current, fits });
    this.render();
  }

  render() {
    if (!this.base || !this.view) return;
    this.canvas.hidden = Boolean(this.fits);
    if (this.fits) return;
    const ctx = this.canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.base, 0, 0);
    ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, 0, 0);
    const { x, y, k } = this.view;
    ctx.strokeStyle = this.colors.view;
    ctx.lineWidth = 2 / this.scale;
    ctx.strokeRect(-x / k, -y / k, this.pane.width / k, this.pane.height / k);
    if (this.current) {
      ctx.fillStyle = this.colors.current;
      ctx.beginPath();
      ctx.arc(this.current.x, this.current.y, 3.5 / this.scale, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  _bindDrag() {
    let dragging = false;
    const move = (ev) => {
      // On screen the map may be drawn smaller than its own size (app.css shrinks it on a phone).
      const r = this.canvas.getBoundingClientRect();
      const shrink = r.width / this.canvas.offsetWidth || 1;
      this.onMove({ x: (ev.clientX - r.left) / shrink / this.scale, y: (ev.clientY - r.top) / shrink / this.scale });
    };
    this.canvas.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      dragging = true;
      this.canvas.setPointerCapture(ev.pointerId);
      move(ev);
    });
    this.canvas.addEventListener("pointermove", (ev) => dragging && move(ev));
    const end = () => (dragging = false);
    this.canvas.addEventListener("pointerup", end);
    this.canvas.addEventListener("pointercancel", end);
  }
}
