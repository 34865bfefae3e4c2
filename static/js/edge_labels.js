// Where the gradient labels of a backward step go: on their edge, clear of each other, of every box and
// of the arrowheads. Pure (layout coordinates in, rectangles out) so it is tested without a browser;
// render.js draws the result.

const ALONG = [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.15]; // fractions of the edge's length to try, middle first
const ARROW_PX = 16; // the arrowhead's end of an edge stays uncovered
const GAP_PX = 3; // clearance around boxes and other labels
const MAX_ASIDE = 8; // half-labels a label may move off its edge (beside it) to find room

/** The control points of a two-point edge's cubic: it leaves and enters its boxes along the layout's direction. */
export function controls([[x1, y1], [x2, y2]], direction) {
  return direction === "TB" ? [[x1, (y1 + y2) / 2], [x2, (y1 + y2) / 2]] : [[(x1 + x2) / 2, y1], [(x1 + x2) / 2, y2]];
}

/** A point `frac` of the way along an edge's path, as render.js draws it (that cubic for two points, else a polyline). */
export function pointAlong(points, direction, frac) {
  if (points.length === 2) {
    const c = controls(points, direction);
    const u = 1 - frac;
    const at = (i) => u ** 3 * points[0][i] + 3 * u * u * frac * c[0][i] + 3 * u * frac * frac * c[1][i] + frac ** 3 * points[1][i];
    return [at(0), at(1)];
  }
  const lengths = points.slice(1).map((p, i) => Math.hypot(p[0] - points[i][0], p[1] - points[i][1]));
  let rest = frac * lengths.reduce((a, b) => a + b, 0);
  for (let i = 0; i < lengths.length; i++) {
    if (rest <= lengths[i] || i === lengths.length - 1) {
      const k = lengths[i] ? Math.min(1, rest / lengths[i]) : 0;
      return [points[i][0] + k * (points[i + 1][0] - points[i][0]), points[i][1] + k * (points[i + 1][1] - points[i][1])];
    }
    rest -= lengths[i];
  }
  return points[0];
}

const area = (a, b) => {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x) + 2 * GAP_PX;
  const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y) + 2 * GAP_PX;
  return w > 0 && h > 0 ? w * h : 0;
};

/**
 * place(labels, boxes, direction) -> [{x, y, w, h}] (top-left corners), one per label, in order.
 * labels: [{points, w, h}] (the edge's points, the label's size); boxes: [{x, y, w, h}] by top-left corner.
 * Each label takes the first spot along its edge that overlaps nothing; if there is none, the spot
 * that overlaps least.
 */
export function place(labels, boxes, direction = "TB") {
  const placed = [];
  for (const l of labels) {
    const end = l.points[l.points.length - 1];
    let best = null;
    // Keep the arrowhead visible: no part of the label within ARROW_PX of the edge's end.
    const arrow = { x: end[0] - ARROW_PX, y: end[1] - ARROW_PX, w: 2 * ARROW_PX, h: 2 * ARROW_PX };
    // On the edge first; then beside it (across the direction the edge runs), still touching it.
    const across = direction === "TB" ? [l.w / 2 + GAP_PX, 0] : [0, l.h / 2 + GAP_PX];
    const along = direction === "TB" ? [0, l.h / 2 + GAP_PX] : [l.w / 2 + GAP_PX, 0];
    const aside = [];
    for (const j of [0, 1, -1]) for (let k = 0; k <= 2 * MAX_ASIDE; k++) aside.push([(k % 2 ? -1 : 1) * Math.ceil(k / 2) * across[0] + j * along[0], (k % 2 ? -1 : 1) * Math.ceil(k / 2) * across[1] + j * along[1]]);
    for (const [dx, dy] of aside) {
      for (const frac of ALONG) {
        const [cx, cy] = pointAlong(l.points, direction, frac);
        const r = { x: cx + dx - l.w / 2, y: cy + dy - l.h / 2, w: l.w, h: l.h };
        const cost = boxes.reduce((s, b) => s + area(r, b), 0) + placed.reduce((s, p) => s + area(r, p), 0) + area(r, arrow) * 4;
        if (!best || cost < best.cost) best = { r, cost };
        if (cost === 0) break;
      }
      if (best.cost === 0) break;
    }
    placed.push(best.r);
  }
  return placed;
}
