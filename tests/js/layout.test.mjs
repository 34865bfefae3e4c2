import { test } from "node:test";
import assert from "node:assert/strict";
import { layout } from "../../static/js/layout.js";
import { fixture, fixtureNames, recurrenceGraph } from "./helpers.mjs";

function checkLayout(trace, L) {
  const ids = new Set(L.items.map((it) => it.id));
  for (const n of trace.nodes) assert.ok(ids.has(n.id), `node ${n.id} drawn`);
  const keys = new Set(L.items.map((it) => it.key));
  assert.equal(keys.size, L.items.length, "keys are unique");
  // Edges flow downward (TB) / rightward (LR), between boxes that exist.
  for (const e of L.edges) {
    assert.ok(keys.has(e.from) && keys.has(e.to));
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
      checkLayout(trace, layout(trace, { direction }));
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
    assert.ok(Math.abs(it.w - a.items[i].w * 1.6) <= 1 && Math.abs(it.h - a.items[i].h * 1.6) <= 1, it.key);
  }
  assert.ok(b.height > a.height && b.height < a.height * 1.6, [a.height, b.height]);
  checkLayout(trace, b);
});
