import { test } from "node:test";
import assert from "node:assert/strict";
import { GroupState } from "../../static/js/group_state.js";
import { closedAround, groupModel } from "../../static/js/groups.js";
import { layout } from "../../static/js/layout.js";
import { openLevel } from "../../static/js/level.js";
import { firstSteps, frame, timeline } from "../../static/js/timeline.js";
import { fixture, modelGraph } from "./helpers.mjs";

/** What a closed box shows, the plain way: a walk over every node and every step of the pass, per frame. */
function walked(trace, model, drawn, open, f) {
  const state = new Map();
  const at = (key) => state.get(key) ?? state.set(key, { present: 0, current: false, done: 0, steps: 0 }).get(key);
  const hidden = new Map();
  for (const n of trace.nodes) {
    const key = drawn.has(n.id) ? null : closedAround(model, n.id, open);
    if (key) hidden.set(n.id, key);
  }
  const since = firstSteps(trace);
  for (const [id, key] of hidden) if (since.has(id) && since.get(id) <= f.step) at(key).present++;
  for (const id of f.current) for (const key of model.chainOf(id)) at(key).current = true;
  if (f.phase === "backward" && f.pass) {
    const pass = trace.passes.find((p) => p.index === f.pass.index);
    pass.steps.forEach((s, i) => {
      const key = hidden.get(s.node);
      if (!key) return;
      at(key).steps++;
      if (i <= f.done.length - 1) at(key).done++;
    });
  }
  return state;
}

/**
 * A model called once per step of a 3-step loop, its parameters made in its first call (as the tracer
 * records them) and drawn in every call that uses them, with a backward pass through every step:
 * a box of its own inside a closed group, which the group does not stand for.
 */
function sharedParams() {
  const trace = modelGraph(2, { iterations: 3 });
  for (const n of trace.nodes) if (n.kind === "leaf") Object.assign(n, { module: n.name.split(".").slice(0, 2).join("."), module_call: 0 });
  const ops = trace.nodes.filter((n) => n.kind === "op").map((n) => n.id).reverse();
  const leaves = trace.nodes.filter((n) => n.kind === "leaf").map((n) => n.id);
  const steps = [...ops, ...leaves].map((node) => ({ node, grad: [0], grad_inputs: [] }));
  trace.passes = [{ index: 0, api: "Tensor.backward", line: 2, root: ops[0], roots: [ops[0]], inputs: [], gradient: null, retain_graph: false, create_graph: false, steps }];
  const mark = (kind) => ({ kind, line: 2, node: null, text: null, category: null, value: null, pass_index: 0 });
  trace.events.push(mark("backward_start"), mark("backward_end"));
  return trace;
}

const sorted = (m) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

test("a closed box's progress (present, current, done of steps) is the one a walk over every node gets, at every step", () => {
  const pane = { width: 1100, height: 760 };
  for (const make of [() => modelGraph(3, { iterations: 4 }), () => modelGraph(6), () => fixture("optimizer_loop"), () => fixture("mlp_step"), () => fixture("recurrence"), sharedParams]) {
    const trace = make();
    const model = groupModel(trace);
    if (!model.any) continue;
    const open = new Set(openLevel(trace, pane));
    const levels = [new Set(), new Set(open)];
    for (const key of model.groups.keys()) if (!open.has(key) && levels.length < 6) levels.push(new Set([...levels[levels.length - 1], key]));
    levels.push(new Set([...model.groups.keys()].filter((k) => k !== model.top[0]))); // all but the first: what it stands for is drawn in the others
    const total = timeline(trace).length;
    let checked = 0;
    let exceptions = 0;
    let backward = 0;
    for (const o of levels) {
      const drawn = new Map(layout(trace, { open: [...o] }).items.map((it) => [it.id, true]));
      const gs = new GroupState(trace, model, drawn, o);
      exceptions += [...drawn.keys()].filter((id) => closedAround(model, id, o)).length;
      for (let step = 0; step < total; step += Math.max(1, Math.floor(total / 60))) {
        const f = frame(trace, step);
        if (f.phase === "backward" && f.pass) backward++;
        assert.deepEqual(sorted(gs.at(f, f.phase === "backward")), sorted(walked(trace, model, drawn, o, f)), `step ${step}, open ${[...o]}`);
        checked++;
      }
    }
    assert.ok(checked > 20);
    if (make === sharedParams) assert.ok(exceptions > 0 && backward > 0, "boxes of their own inside closed groups, stepped backward");
  }
});
