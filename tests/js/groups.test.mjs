import { test } from "node:test";
import assert from "node:assert/strict";
import { closedAround, groupModel } from "../../static/js/groups.js";
import { layout } from "../../static/js/layout.js";
import { openLevel } from "../../static/js/level.js";
import { fixture, modelGraph } from "./helpers.mjs";

const inside = (b, it) => it.x - it.w / 2 >= b.x - b.w / 2 && it.x + it.w / 2 <= b.x + b.w / 2 && it.y - it.h / 2 >= b.y - b.h / 2 && it.y + it.h / 2 <= b.y + b.h / 2;

test("module calls form a tree: a model's layers inside the model, parameters in their layer", () => {
  const m = groupModel(modelGraph(2));
  assert.deepEqual(m.top, ["m:model#0"]);
  const model = m.groups.get("m:model#0");
  assert.equal(model.children.length, 6);
  assert.deepEqual(model.children.map((k) => m.groups.get(k).className), ["Linear", "LayerNorm", "GELU", "Linear", "LayerNorm", "GELU"]);
  assert.equal(model.ops, 6);
  assert.equal(m.groups.get("m:model.3#0").depth, 1);
});

test("a closed model is one box; its parameters and operations are inside it, not drawn", () => {
  const trace = modelGraph(3);
  const L = layout(trace, { open: [] });
  assert.deepEqual(L.groups.map((g) => [g.key, g.open]), [["m:model#0", false]]);
  assert.deepEqual(L.items.map((it) => trace.nodes.find((n) => n.id === it.id).label).sort(), ["loss", "x"]);
  const edge = L.edges.find((e) => e.to === "g:m:model#0");
  assert.equal(edge.parts.length, 1);
});

test("opening a group draws its boxes inside its frame and keeps the rest", () => {
  const trace = modelGraph(3);
  const L = layout(trace, { open: ["m:model#0", "m:model.1#0"] });
  const frame = L.groups.find((g) => g.key === "m:model#0");
  assert.ok(frame.open);
  const inner = L.groups.filter((g) => g.key !== "m:model#0");
  assert.equal(inner.length, 9);
  for (const g of inner) assert.ok(inside(frame, g), g.key);
  const ln = L.groups.find((g) => g.key === "m:model.1#0");
  const lnNodes = L.items.filter((it) => trace.nodes.find((n) => n.id === it.id).module === "model.1");
  assert.equal(lnNodes.length, 1);
  assert.ok(inside(ln, lnNodes[0]));
  // Its parameter is drawn inside it too.
  const weight = L.items.find((it) => trace.nodes.find((n) => n.id === it.id).label === "model.1.weight");
  assert.ok(weight && inside(ln, weight));
  // Every drawn node is drawn once and no two boxes of a level overlap.
  const keys = L.items.map((it) => it.key);
  assert.equal(new Set(keys).size, keys.length);
});

test("a node is shown by the outermost closed group around it", () => {
  const trace = modelGraph(2);
  const m = groupModel(trace);
  const op = trace.nodes.find((n) => n.module === "model.4");
  assert.equal(closedAround(m, op.id, new Set()), "m:model#0");
  assert.equal(closedAround(m, op.id, new Set(["m:model#0"])), "m:model.4#0");
  assert.equal(closedAround(m, op.id, new Set(["m:model#0", "m:model.4#0"])), null);
});

test("loop iterations are groups; a weight used by every iteration is drawn in each one", () => {
  const trace = modelGraph(1, { iterations: 3 });
  const m = groupModel(trace);
  assert.deepEqual(m.top, ["it:9:1", "it:9:2", "it:9:3"]);
  assert.equal(m.groups.get("m:model#1").parent, "it:9:2");
  const all = ["it:9:1", "it:9:2", "it:9:3", "m:model#0", "m:model#1", "m:model#2", "m:model.0#0", "m:model.0#1", "m:model.0#2"];
  const L = layout(trace, { open: all });
  const weight = trace.nodes.find((n) => n.label === "model.0.weight").id;
  assert.equal(L.items.filter((it) => it.id === weight).length, 3);
});

test("the first level: a small graph opens whole, a big model at its layers, a loop with its first iteration open", () => {
  const pane = { width: 600, height: 520 };
  assert.equal(openLevel(fixture("seed_5_chain"), pane).size, 0);
  const big = openLevel(modelGraph(36), pane);
  assert.ok(big.has("m:model#0"), "the model, alone at its level, opens");
  assert.ok(!big.has("m:model.5#0"), "its 108 layers stay closed");
  const loop = openLevel(modelGraph(2, { iterations: 3 }), pane);
  assert.ok(loop.has("it:9:1") && !loop.has("it:9:2") && !loop.has("it:9:3"));
});

test("the same trace and open groups give byte-identical layouts", () => {
  const trace = modelGraph(4, { iterations: 2 });
  const open = ["it:9:1", "m:model#0"];
  assert.equal(JSON.stringify(layout(trace, { open })), JSON.stringify(layout(trace, { open })));
});
