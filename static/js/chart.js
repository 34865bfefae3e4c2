// The training loop's curves beside the player (curves.js computes them): the loss and each parameter's
// gradient norm per iteration, the current iteration marked, a point clicked (or Enter on it) jumps
// there. Plain SVG built with DOM calls; every name from the trace goes in as text. Shown by the one
// Viewer, so the app, shares, embeds, the offline file and the notebook output all have it.

import { t } from "./i18n.js";
import { currentPoint, curves } from "./curves.js";
import { fmtNum } from "./values.js";

const SVGNS = "http://www.w3.org/2000/svg";
const W = 260; // one panel's viewBox, in px at 1×
const H = 110;
const PAD = { left: 38, right: 8, top: 16, bottom: 18 };

function el(name, attrs = {}, parent = null, text = null) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

/** Linear scales over the points' x and the values' range (a flat line sits mid-panel). */
function scales(n, values) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (!finite.length) [lo, hi] = [0, 1];
  if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  const x = (k) => PAD.left + (n <= 1 ? 0.5 : k / (n - 1)) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  return { x, y, lo, hi };
}

/** One panel: title, axis extremes, one line per series, points that jump (only the first series' are buttons). */
function panel(title, c, series, onJump) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "curve", role: "group" });
  svg.setAttribute("aria-label", title);
  const s = scales(c.points.length, series.flatMap((x) => x.values));
  el("text", { x: PAD.left, y: 11, class: "curve-title" }, svg, title);
  el("text", { x: PAD.left - 4, y: s.y(s.hi) + 4, class: "curve-tick", "text-anchor": "end" }, svg, fmtNum(s.hi));
  el("text", { x: PAD.left - 4, y: s.y(s.lo), class: "curve-tick", "text-anchor": "end" }, svg, fmtNum(s.lo));
  el("line", { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: "curve-axis" }, svg);
  c.points.forEach((p, k) => {
    if (k === 0 || k === c.points.length - 1 || c.points.length <= 10) el("text", { x: s.x(k), y: H - 5, class: "curve-tick", "text-anchor": "middle" }, svg, String(p.iteration));
  });
  const marker = el("line", { y1: PAD.top - 4, y2: H - PAD.bottom, class: "curve-now", visibility: "hidden" }, svg);
  series.forEach((ser, i) => {
    const pts = ser.values.map((v, k) => (v === null || !Number.isFinite(v) ? null : [s.x(k), s.y(v)]));
    const d = pts.filter(Boolean).map(([x, y], j) => `${j ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    el("path", { d, class: `curve-line c${i % 8}` }, svg);
    pts.forEach((pt, k) => {
      if (!pt) return;
      const dot = el("circle", { cx: pt[0], cy: pt[1], r: 3.2, class: `curve-point c${i % 8}` }, svg);
      dot.dataset.point = String(k);
      const label = t("chart.point", { name: ser.name, iteration: c.points[k].iteration, value: fmtNum(ser.values[k]) });
      el("title", {}, dot, label);
      if (i === 0) {
        dot.setAttribute("tabindex", "0");
        dot.setAttribute("role", "button");
        dot.setAttribute("aria-label", label);
      }
      dot.addEventListener("click", () => onJump(c.points[k].step));
      dot.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") (e.preventDefault(), onJump(c.points[k].step));
      });
    });
  });
  return { svg, marker, x: s.x };
}

export class Chart {
  /** `root`: the element to fill (hidden when the trace is not a training loop); onJump(step). */
  constructor(root, { onJump } = {}) {
    this.root = root;
    this.onJump = onJump || (() => {});
    this.curves = null;
    this.panels = [];
    this.at = -2;
  }

  load(trace) {
    this.curves = trace ? curves(trace) : null;
    this.at = -2;
    this.root.hidden = !this.curves;
    this.root.replaceChildren();
    this.panels = [];
    const c = this.curves;
    if (!c) return;
    const loss = panel(t("chart.loss"), c, [{ name: t("chart.loss"), values: c.points.map((p) => p.loss) }], this.onJump);
    const norms = panel(t("chart.gradNorm"), c, c.series.map((s) => ({ name: s.name, values: s.norms })), this.onJump);
    const legend = document.createElement("ul");
    legend.className = "curve-legend";
    c.series.forEach((s, i) => {
      const li = document.createElement("li");
      li.className = `c${i % 8}`;
      li.textContent = s.name;
      legend.appendChild(li);
    });
    this.panels = [loss, norms];
    this.root.append(loss.svg, norms.svg, legend);
    this.root.dataset.points = String(c.points.length);
  }

  /** Mark the frame's iteration. */
  show(f) {
    if (!this.curves) return;
    const k = currentPoint(this.curves, f);
    if (k === this.at) return;
    this.at = k;
    for (const p of this.panels) {
      p.marker.setAttribute("visibility", k < 0 ? "hidden" : "visible");
      if (k >= 0) (p.marker.setAttribute("x1", p.x(k)), p.marker.setAttribute("x2", p.x(k)));
      for (const dot of p.svg.querySelectorAll(".curve-point")) dot.classList.toggle("now", Number(dot.dataset.point) === k);
    }
    this.root.dataset.current = String(k);
  }
}
