import { test } from "node:test";
import assert from "node:assert/strict";
import { byNode, summary, verdict } from "../../static/js/checks.js";
import { currentPoint, curves, norm } from "../../static/js/curves.js";
import { frame, passStarts } from "../../static/js/timeline.js";
import { changes, editableName, readValue, sliderRange } from "../../static/js/whatif.js";
import { fixture } from "./helpers.mjs";

const byName = (trace, label) => trace.nodes.find((n) => n.label === label);

test("what may take another value: leaves and constants the program first bound, up to 100 elements", () => {
  const chain = fixture("seed_5_chain");
  assert.equal(editableName(byName(chain, "w1")), "w1");
  assert.equal(editableName(byName(chain, "x")), "x");
  assert.equal(editableName(byName(chain, "b")), "b");
  assert.equal(editableName(byName(chain, "y")), null); // computed
  const rec = fixture("recurrence");
  assert.equal(editableName(byName(rec, "W")), "W");
  assert.equal(editableName(rec.nodes.find((n) => n.name === "h" && n.binding === 2)), null); // not the first binding
  const big = { kind: "leaf", name: "w", binding: 1, dtype: "float32", value: Array.from({ length: 101 }, () => 0) };
  assert.equal(editableName(big), null);
  assert.equal(editableName({ ...big, value: [true], dtype: "bool" }), null);
  assert.equal(editableName({ ...big, name: "ws[0]", value: [1] }), null); // not a name the API takes
});

test("fields read back in the tensor's shape; one that is not a number refuses the lot", () => {
  assert.deepEqual(readValue(["1", "2", "3", "4.5"], [2, 2]), [[1, 2], [3, 4.5]]);
  assert.deepEqual(readValue(["1", "2", "3", "4", "5", "6"], [1, 2, 3]), [[[1, 2, 3], [4, 5, 6]]]);
  assert.equal(readValue([" 2.5 "], []), 2.5);
  assert.equal(readValue(["1", "x"], [2]), null);
  assert.equal(readValue([""], []), null);
  const r = sliderRange(2);
  assert.ok(r.min < 2 && r.max > 2 && r.step > 0);
});

test("what moved between two runs of one program: by node, value and gradient", () => {
  const before = fixture("seed_5_chain");
  const after = structuredClone(before);
  byName(after, "w1").value = 2.5;
  byName(after, "y").value = 19.5;
  byName(after, "w2").grad = 6.5;
  const d = changes(before, after);
  assert.ok(d.matched);
  assert.deepEqual(new Set(d.moved), new Set([byName(before, "w1").id, byName(before, "y").id, byName(before, "w2").id]));
  const w2 = d.changes.find((c) => c.label === "w2");
  assert.deepEqual([w2.field, w2.from, w2.to], ["grad", byName(before, "w2").grad, 6.5]);
  const other = structuredClone(before);
  other.nodes.pop();
  assert.equal(changes(before, other).matched, false);
});

test("check entries find their nodes by id, or by name and shape when the ids differ", () => {
  const chain = fixture("seed_5_chain");
  const w1 = byName(chain, "w1");
  const x = byName(chain, "x");
  const check = {
    passes: [
      {
        index: 0,
        skipped: null,
        leaves: [
          { node: w1.id, name: "w1", shape: [], autograd: 3, numeric: 3, ok: true, max_rel_diff: 1e-10, skipped: null },
          { node: 999, name: "x", shape: [5], autograd: [1.2], numeric: null, ok: null, skipped: "budget" },
          { node: x.id, name: "not x", shape: [5], autograd: [1], numeric: [2], ok: false, max_rel_diff: 0.5, skipped: null },
        ],
      },
    ],
  };
  const m = byNode(chain, check);
  assert.deepEqual(m.get(w1.id).map((e) => e.leaf.name), ["w1"]);
  assert.deepEqual(m.get(x.id).map((e) => e.leaf.skipped), ["budget"]); // the third matches no node
  assert.deepEqual(summary(check), { ok: 1, bad: 1, skipped: 1 });
  assert.deepEqual(check.passes[0].leaves.map(verdict), ["ok", "skipped", "bad"]);
});

test("a training loop's curves: a point per pass, the frame's iteration marked, each point at its pass", () => {
  const trace = fixture("optimizer_loop");
  const c = curves(trace);
  assert.equal(c.points.length, 3);
  assert.deepEqual(c.points.map((p) => p.step), passStarts(trace).map((s) => s.step));
  assert.deepEqual(c.series.map((s) => s.name), ["w"]);
  assert.equal(currentPoint(c, frame(trace, 0)), -1); // before any pass
  assert.equal(currentPoint(c, frame(trace, c.points[1].step)), 1);
  assert.equal(currentPoint(c, frame(trace, c.points[1].step + 1)), 1);
  assert.equal(currentPoint(c, frame(trace, Infinity)), 2);
  assert.equal(curves(fixture("seed_4_jacobian")), null); // three passes, but not a loop with a scalar loss
  assert.equal(curves(fixture("seed_5_chain")), null);
});

test("a gradient's norm from its values, or from its stats when only those were kept", () => {
  const xs = [3, -4, 1, 2];
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b) / n;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  assert.equal(norm({ value: [[3, -4], [1, 2]], stats: null }), Math.sqrt(30));
  assert.ok(Math.abs(norm({ value: null, stats: { numel: n, mean, std } }) - Math.sqrt(30)) < 1e-12);
  assert.equal(norm({ value: null, stats: null }), null);
});
