// Big graphs are virtual: only the boxes and edges near the viewport are in the DOM. A coarse grid over
// the layout says which drawn things touch each cell; `near(view)` lists those within about one screen
// of what the camera shows, so that the first frame, stepping and panning stay fast at 20,000 nodes.

const CELL = 800; // px of layout per cell

export class Grid {
  /** things: [{bbox: [x0, y0, x1, y1], ...}] */
  constructor(things) {
    this.cells = new Map();
    for (const th of things) {
      const [x0, y0, x1, y1] = th.bbox;
      for (let cx = Math.floor(x0 / CELL); cx <= Math.floor(x1 / CELL); cx++) {
        for (let cy = Math.floor(y0 / CELL); cy <= Math.floor(y1 / CELL); cy++) {
          const k = cx * 100003 + cy;
          const list = this.cells.get(k);
          if (list) list.push(th);
          else this.cells.set(k, [th]);
        }
      }
    }
    this.window = null;
  }

  /**
   * The things within a margin of the part of the layout shown by `view` ({x, y, k}) in a pane of
   * `pane` ({width, height}), or null when the last answer still covers it (nothing to change).
   */
  near(view, pane) {
    const { k } = view;
    const vx0 = -view.x / k;
    const vy0 = -view.y / k;
    const vw = pane.width / k;
    const vh = pane.height / k;
    const w = this.window;
    if (w && vx0 >= w.x0 && vy0 >= w.y0 && vx0 + vw <= w.x1 && vy0 + vh <= w.y1 && w.k === k) return null;
    const m = Math.min(vw, vh) * 0.75 + 200;
    this.window = { x0: vx0 - m, y0: vy0 - m, x1: vx0 + vw + m, y1: vy0 + vh + m, k };
    const want = new Set();
    for (let cx = Math.floor(this.window.x0 / CELL); cx <= Math.floor(this.window.x1 / CELL); cx++) {
      for (let cy = Math.floor(this.window.y0 / CELL); cy <= Math.floor(this.window.y1 / CELL); cy++) {
        for (const th of this.cells.get(cx * 100003 + cy) || []) want.add(th);
      }
    }
    return want;
  }
}

/** The bounding box of a list of points. */
export function bboxOf(points) {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of points) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}
