import { test } from "node:test";
import assert from "node:assert/strict";
import { groupModel } from "../../static/js/groups.js";
import { closestShape, layout } from "../../static/js/layout.js";
import { layered } from "../../static/js/layered.js";
import { openLevel } from "../../static/js/level.js";
import { fixture, fixtureNames, modelGraph, recurrenceGraph } from "./helpers.mjs";

function checkLayout(trace, L, { whole = true } = {}) {
  const ids = new Set(L.items.map((it) => it.id));
  if (whole) for (const n of trace.nodes) assert.ok(ids.has(n.id), `node ${n.id} drawn`);
  const keys = new Set(L.items.map((it) => it.key));
  assert.equal(keys.size, L.items.length, "keys are unique");
  // Edges flow downward (TB) / rightward (LR), between boxes that exist (a level folded inside a frame
  // sends some on to its next band: only the whole graph is checked for the direction).
  const boxes = new Set([...keys, ...L.groups.map((g) => `${g.open ? "f" : "g"}:${g.key}`)]);
  for (const e of L.edges) {
    assert.ok(boxes.has(e.from) && boxes.has(e.to), `edge ${e.key} between drawn boxes`);
    if (!whole) continue;
    const [a, b] = [e.points[0], e.points[e.points.length - 1]];
    if (L.direction === "TB") assert.ok(b[1] > a[1], `edge ${e.key} goes down`);
    else assert.ok(b[0] > a[0], `edge ${e.key} goes right`);
  }
  // No two boxes overlap.
  const sorted = [...L.items].sort((p, q) => p.x - q.x);
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length && sorted[j].x - sorted[i].x < 230; j++) {
      const [p, q] = [sorted[i], sorted[j]];
      const apart = Math.abs(p.x - q.x) >= (p.w + q.w) / 2 - 0.5 || Math.abs(p.y - q.y) >= (p.h + q.h) / 2 - 0.5;
      assert.ok(apart, `${p.key} and ${q.key} overlap`);
    }
  }
  for (const it of L.items) {
    assert.ok(it.x - it.w / 2 >= 0 && it.x + it.w / 2 <= L.width + 0.5);
    assert.ok(it.y - it.h / 2 >= 0 && it.y + it.h / 2 <= L.height + 0.5);
  }
}

for (const name of fixtureNames()) {
  for (const direction of ["TB", "LR"]) {
    test(`${name} ${direction}: every node placed, edges flow one way, no overlaps`, () => {
      const trace = fixture(name);
      const open = [...groupModel(trace).groups.keys()]; // every loop iteration and module call open
      checkLayout(trace, layout(trace, { direction, open }));
    });
  }
}

test("stable: the same program gets byte-identical positions", () => {
  const a = JSON.stringify(layout(fixture("seed_4_jacobian")));
  const b = JSON.stringify(layout(fixture("seed_4_jacobian")));
  assert.equal(a, b);
});

test("a weight shared by every step of a recurrence is drawn once per use, linked", () => {
  const g = recurrenceGraph(50);
  const L = layout(g);
  const copies = L.items.filter((it) => it.id === 0);
  assert.equal(copies.length, 50);
  assert.ok(copies.every((c) => c.copies === 50));
  checkLayout(g, L);
  // Short edges: every W copy sits in the layer right above its consumer.
  const byKey = new Map(L.items.map((it) => [it.key, it]));
  for (const e of L.edges.filter((e) => e.source === 0)) {
    assert.equal(byKey.get(e.to).layer - byKey.get(e.from).layer, 1);
  }
});

test("nearby uses of a leaf share one box (the Jacobian's a)", () => {
  const trace = fixture("seed_4_jacobian");
  const a = trace.nodes.find((n) => n.name === "a").id;
  assert.equal(layout(trace).items.filter((it) => it.id === a).length, 1);
});

test("5,000 nodes lay out (a 1,250-step recurrence)", () => {
  const g = recurrenceGraph(1250);
  const L = layout(g);
  assert.equal(new Set(L.items.map((it) => it.id)).size, g.nodes.length);
});

test("empty and edge-less traces", () => {
  assert.deepEqual(layout({ nodes: [], edges: [] }).items, []);
  const one = layout({ nodes: [{ id: 0, kind: "leaf", label: "a", value: 1 }], edges: [] });
  assert.equal(one.items.length, 1);
});

test("scale enlarges the boxes (presentation mode), not the order or the gaps", () => {
  const trace = fixture("seed_5_chain");
  const a = layout(trace);
  const b = layout(trace, { scale: 1.6 });
  assert.equal(b.scale, 1.6);
  assert.deepEqual(b.items.map((it) => it.key), a.items.map((it) => it.key));
  for (const [i, it] of b.items.entries()) {
    // Both sizes are rounded to whole pixels: 0.5 px each, the first one 1.6x as large.
    assert.ok(Math.abs(it.w - a.items[i].w * 1.6) <= 1.3 && Math.abs(it.h - a.items[i].h * 1.6) <= 1.3, it.key);
  }
  assert.ok(b.height > a.height && b.height < a.height * 1.6, [a.height, b.height]);
  checkLayout(trace, b);
});

test("an op used far below sits next to its consumer, not in the top row (a loop's W @ x[t])", () => {
  // h = tanh(W @ x[t] + h) for 30 steps: each x[t] and its product are placed beside step t.
  const nodes = [{ id: 0, kind: "leaf", label: "W", shape: [2, 2] }, { id: 1, kind: "constant", label: "x", shape: [30, 2] }];
  const edges = [];
  let h = null;
  let id = 2;
  for (let t = 0; t < 30; t++) {
    const sel = id++;
    const mv = id++;
    const add = id++;
    nodes.push({ id: sel, kind: "op", op: "SelectBackward0", label: "x[t]" }, { id: mv, kind: "op", op: "MvBackward0", label: "@" }, { id: add, kind: "op", op: "AddBackward0", label: "h" });
    edges.push({ source: 1, target: sel, slot: 0 }, { source: 0, target: mv, slot: 0 }, { source: sel, target: mv, slot: 1 }, { source: mv, target: add, slot: 0 });
    if (h !== null) edges.push({ source: h, target: add, slot: 1 });
    h = add;
  }
  const trace = { nodes, edges };
  const L = layout(trace);
  const layerOf = new Map(L.items.map((it) => [it.key, it.layer]));
  for (const e of L.edges.filter((e) => nodes[e.source]?.op === "MvBackward0" || nodes[e.source]?.op === "SelectBackward0")) {
    assert.ok(layerOf.get(e.to) - layerOf.get(e.from) <= 3, `${e.key} is at most three layers long`);
  }
  checkLayout(trace, L);
});

test("a graph longer than the pane is folded into bands that fill it, everything still placed once", () => {
  const g = recurrenceGraph(60);
  const flat = layout(g);
  const pane = { width: 1200, height: 800 };
  const L = layout(g, { fold: pane });
  assert.ok(L.folded >= 3, `folded into ${L.folded} bands`);
  const aspect = (x) => x.width / x.height;
  assert.ok(Math.abs(Math.log(aspect(L) / 1.5)) < Math.abs(Math.log(aspect(flat) / 1.5)) / 3, [aspect(flat), aspect(L)]);
  assert.deepEqual(L.items.map((it) => it.key).sort(), flat.items.map((it) => it.key).sort());
  for (const it of L.items) {
    assert.ok(it.x - it.w / 2 >= 0 && it.x + it.w / 2 <= L.width + 0.5 && it.y - it.h / 2 >= 0 && it.y + it.h / 2 <= L.height + 0.5, it.key);
  }
  for (const e of L.edges) for (const [x, y] of e.points) assert.ok(x >= 0 && y >= 0 && x <= L.width && y <= L.height, e.key);
  // A graph that fits is not folded.
  assert.equal(layout(fixture("seed_5_chain"), { fold: pane }).folded, 1);
});

test("closestShape takes the layout whose figure (margin included) is closest to the shape asked, by ratio", () => {
  const tall = { width: 176, height: 298 }; // 0.59 bare, 0.62 with a 12 px margin
  const wide = { width: 503, height: 90 }; // 5.59 bare, 4.62 with it
  assert.equal(closestShape([tall, wide], 0.5), tall);
  assert.equal(closestShape([tall, wide], 4), wide);
  // At 16:9 the margin decides: bare, the tall one is closer (ratio 3.01 vs 3.14); as a figure, the wide one (2.86 vs 2.60).
  assert.equal(closestShape([tall, wide], 16 / 9), tall);
  assert.equal(closestShape([tall, wide], 16 / 9, 12), wide);
});

test("opening groups one at a time lays out exactly as laying out that level afresh", () => {
  // Opening a box reuses what the trace's earlier layouts made (placements, unchanged levels): the
  // result must be the one a fresh layout of the same open groups gets, byte for byte.
  const pane = { width: 1100, height: 760 };
  const fold = { width: 1200, height: 830 };
  for (const make of [() => modelGraph(3, { iterations: 4 }), () => modelGraph(6), () => fixture("optimizer_loop"), () => fixture("mlp_step")]) {
    const trace = make();
    const open = new Set(openLevel(trace, pane));
    for (const direction of ["TB", "LR"]) {
      let L = layout(trace, { direction, open: [...open], fold });
      for (let i = 0; i < 6; i++) {
        const closed = L.groups.find((g) => !g.open);
        if (!closed) break;
        open.add(closed.key);
        L = layout(trace, { direction, open: [...open], fold });
        const fresh = layout(structuredClone(trace), { direction, open: [...open], fold });
        assert.equal(JSON.stringify(L), JSON.stringify(fresh), `${direction}: opening ${closed.key}`);
        checkLayout(trace, L, { whole: false }); // closed groups stand for their nodes
      }
    }
  }
});

test("a level is not folded when a fold would not shorten it: what follows a tall open box stays below it", () => {
  // A training step's iteration: its input, the model's open frame (longer than the pane), then the loss's
  // three small ops. Folded, the loss went to a second band at the top, its link climbing back from the
  // model's bottom, and the drawing was no shorter (the frame alone is almost all of its length).
  const boxes = [
    { key: "x", w: 120, h: 40, source: true },
    { key: "model", w: 480, h: 1100 },
    { key: "view", w: 120, h: 40 },
    { key: "softmax", w: 120, h: 40 },
    { key: "loss", w: 120, h: 40 },
  ];
  const links = [{ from: 0, to: 1 }, { from: 1, to: 2 }, { from: 2, to: 3 }, { from: 3, to: 4 }];
  const L = layered(boxes, links, { fold: { width: 600, height: 400 } });
  assert.equal(L.folded, 1);
  const at = Object.fromEntries(L.boxes.map((b) => [b.key, b]));
  assert.ok(at.view.y - at.view.h / 2 > at.model.y + at.model.h / 2, [at.view.y, at.model.y]);
  // A chain of many small boxes still folds.
  const chain = Array.from({ length: 40 }, (_, i) => ({ key: `n${i}`, w: 120, h: 40 }));
  const along = chain.slice(1).map((_, i) => ({ from: i, to: i + 1 }));
  assert.ok(layered(chain, along, { fold: { width: 600, height: 400 } }).folded >= 2);
});

test("an edge from inside an open frame to a box in the next band goes round through the gap between bands", () => {
  // A model's open frame, then a chain of ops long enough to fold into bands beside it: the model's last op
  // feeds the chain's first, at the top of the next band. The edge was a straight line from the op up across
  // the drawing (the level's route, through the gap, was kept for the frame's own link only).
  const g = modelGraph(2);
  const loss = g.nodes.find((n) => n.name === "loss").id;
  let prev = loss;
  for (let i = 0; i < 10; i++) {
    const id = g.nodes.length;
    g.nodes.push({ id, kind: "op", op: "MulBackward0", label: "MulBackward0", shape: [4, 8], value: null });
    g.edges.push({ source: prev, target: id, slot: 0 });
    g.events.push({ kind: "node", node: id, line: 1 });
    prev = id;
  }
  const L = layout(g, { open: groupModel(g).top, fold: { width: 1600, height: 700 } });
  const frame = L.groups.find((x) => x.key === groupModel(g).top[0]);
  const lastInside = g.modules.find((m) => m.path === "model").outputs[0];
  const e = L.edges.find((x) => x.source === lastInside && x.target === loss);
  const to = L.items.find((it) => it.id === loss);
  assert.ok(L.folded >= 2 && to.x - to.w / 2 > frame.x + frame.w / 2 && to.y < frame.y, "the loss starts the next band, beside the frame");
  const right = frame.x + frame.w / 2;
  assert.ok(e.points.some(([x]) => x > right && x < to.x - to.w / 2), e.points);
  // It leaves the op downward, and comes into the loss from above.
  const [a, b] = [e.points[0], e.points[1]];
  const [y, z] = [e.points[e.points.length - 2], e.points[e.points.length - 1]];
  assert.ok(b[1] > a[1] && z[1] > y[1], e.points);
});
