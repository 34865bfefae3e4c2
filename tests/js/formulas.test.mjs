import { test } from "node:test";
import assert from "node:assert/strict";
import { derivative, powSymbol, texName } from "../../static/js/formulas.js";
import { fixture } from "./helpers.mjs";

test("l3 = l2 * w2: ∂l3/∂w2 = l2 = 6, and w2 gets 0.2 × 6 summed over 5 = 6", () => {
  const trace = fixture("seed_5_chain");
  const l3 = trace.nodes.find((n) => n.name === "l3");
  const step = trace.passes[0].steps.find((s) => s.node === l3.id);
  const lines = derivative(trace, l3.id, step);
  const w2 = lines.find((l) => l.slot === 1);
  assert.equal(w2.tex, "\\frac{\\partial \\mathrm{l3}}{\\partial \\mathrm{w2}} = \\mathrm{l2} = 6");
  assert.match(w2.grad, /\\sum_\{5\} 0\.2 \\times 6 = 6$/);
  assert.equal(w2.sum, 5);
});

test("Pow reads its exponent from the source line", () => {
  const trace = fixture("seed_3_scalar_backward");
  const pow = trace.nodes.find((n) => n.op === "PowBackward0");
  const [l] = derivative(trace, pow.id);
  assert.match(l.tex, /= 2\\,\\mathrm\{a\}\^\{1\}$/);
});

test("names that are not plain identifiers never reach TeX", () => {
  assert.equal(texName({ name: "__proto__" }, "a"), "a");
  assert.equal(texName({ name: "x}\\href{javascript:1}{" }, "a"), "a");
  assert.equal(texName({ name: "w_1" }, "a"), "\\mathrm{w\\_1}");
});

test("leaves and unknown ops have no formula", () => {
  const trace = fixture("seed_5_chain");
  assert.deepEqual(derivative(trace, trace.nodes.find((n) => n.name === "w1").id), []);
});

test("Pow nodes read as x² / x³ on the graph", () => {
  const jac = fixture("seed_4_jacobian");
  const pows = jac.nodes.filter((n) => n.op === "PowBackward0").map((n) => powSymbol(jac, n));
  assert.deepEqual(pows, ["x²", "x³"]);
});
