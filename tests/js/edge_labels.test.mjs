import { test } from "node:test";
import assert from "node:assert/strict";
import { place, pointAlong } from "../../static/js/edge_labels.js";
import { layout } from "../../static/js/layout.js";
import { frame, timeline } from "../../static/js/timeline.js";
import { fixture, fixtureNames } from "./helpers.mjs";

const overlap = (a, b) => Math.min(a.x + a.w, b.x + b.w) > Math.max(a.x, b.x) && Math.min(a.y + a.h, b.y + b.h) > Math.max(a.y, b.y);

test("a point along a two-point edge follows render.js's cubic from end to end", () => {
  assert.deepEqual(pointAlong([[0, 0], [10, 100]], "TB", 0), [0, 0]);
  assert.deepEqual(pointAlong([[0, 0], [10, 100]], "TB", 1), [10, 100]);
  assert.deepEqual(pointAlong([[0, 0], [10, 100]], "TB", 0.5), [5, 50]);
  assert.deepEqual(pointAlong([[0, 0], [0, 10], [20, 10]], "TB", 0.5), [5, 10]);
});

test("labels that would all sit at one spot are spread apart", () => {
  const edge = { points: [[0, 0], [0, 300]], w: 60, h: 18 };
  const placed = place([edge, edge, edge], [], "TB");
  for (let i = 0; i < placed.length; i++) for (let j = i + 1; j < placed.length; j++) assert.ok(!overlap(placed[i], placed[j]), `${i} and ${j}`);
});

// Every step of every fixture, in both directions and presentation's larger boxes: no gradient label
// overlaps another label, a box, or the arrowhead at its edge's end. (Presentation's left-to-right
// layout keeps the page's gaps between boxes, too narrow for its larger labels in a few dense steps:
// there labels still never overlap each other, but may touch a box.)
for (const [scale, direction] of [[1, "TB"], [1, "LR"], [1.6, "TB"], [1.6, "LR"]]) {
  test(`gradient labels overlap no label, no box and no arrowhead (${direction}, scale ${scale})`, () => {
    let steps = 0;
    for (const name of fixtureNames()) {
      const trace = fixture(name);
      const L = layout(trace, { direction, scale });
      const boxes = L.items.map((it) => ({ x: it.x - it.w / 2, y: it.y - it.h / 2, w: it.w, h: it.h }));
      const edges = new Map(L.edges.map((e) => [`${e.source}>${e.target}:${e.slot}`, e]));
      for (let i = 0; i < timeline(trace).length; i++) {
        const pulses = frame(trace, i).pulses.filter((p) => edges.has(`${p.source}>${p.target}:${p.slot}`));
        if (pulses.length === 0) continue;
        steps++;
        const labels = pulses.map((p) => ({ points: edges.get(`${p.source}>${p.target}:${p.slot}`).points, w: 60 * scale, h: 18 * scale }));
        const placed = place(labels, boxes, direction);
        placed.forEach((r, a) => {
          const [ex, ey] = labels[a].points.at(-1);
          assert.ok(!overlap(r, { x: ex - 4, y: ey - 4, w: 8, h: 8 }), `${name} step ${i}: label over its arrowhead`);
          for (const o of placed.slice(a + 1)) assert.ok(!overlap(r, o), `${name} step ${i}: labels overlap`);
          if (scale === 1 || direction === "TB") for (const b of boxes) assert.ok(!overlap(r, b), `${name} step ${i}: label over a box`);
        });
      }
    }
    assert.ok(steps > 100);
  });
}
