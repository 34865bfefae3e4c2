import { test } from "node:test";
import assert from "node:assert/strict";
import { broadcastIndex, derivative } from "../../static/js/formulas.js";
import { expression, opText, texName } from "../../static/js/expr.js";
import { setLang } from "../../static/js/i18n.js";
import { fixture, fixtureNames } from "./helpers.mjs";

const stepFor = (trace, id, pass = 0) => trace.passes[pass].steps.find((s) => s.node === id);

test("l3 = l2 * w2: ∂l3/∂w2 = l2 = 6, and w2 gets 0.2 × 6 summed over the 5 uses = 6", () => {
  const trace = fixture("seed_5_chain");
  const l3 = trace.nodes.find((n) => n.name === "l3");
  const w2 = derivative(trace, l3.id, stepFor(trace, l3.id)).find((l) => l.slot === 1);
  assert.equal(w2.tex, "\\frac{\\partial \\mathrm{l3}}{\\partial \\mathrm{w2}} = \\mathrm{l2} = 6");
  assert.match(w2.grad, /\\sum_\{5\} 0\.2 \\times 6 = 6$/);
  assert.deepEqual(w2.note, { key: "formula.broadcast", vars: { n: 5, shape: "()" } });
});

test("b = a**2 reads its exponent from the source line and names its input a", () => {
  const trace = fixture("seed_3_scalar_backward");
  const pow = trace.nodes.find((n) => n.op === "PowBackward0");
  const [l] = derivative(trace, pow.id);
  assert.equal(l.tex, "\\frac{\\partial \\mathrm{b}}{\\partial \\mathrm{a}} = 2\\,\\mathrm{a}");
});

test("a constant's input gets no gradient line (nothing flowed into b)", () => {
  const trace = fixture("seed_5_chain");
  const l2 = trace.nodes.find((n) => n.name === "l2");
  const lines = derivative(trace, l2.id, stepFor(trace, l2.id));
  assert.ok(lines.find((l) => l.slot === 0).grad);
  assert.equal(lines.find((l) => l.slot === 1).grad, undefined);
});

test("names that are not plain identifiers never reach TeX: a letter stands for them", () => {
  assert.equal(texName({ name: "__proto__", label: "__proto__" }), "\\mathrm{\\_\\_proto\\_\\_}");
  assert.equal(texName({ name: "x}\\href{javascript:1}{", label: "x" }), null);
  assert.equal(texName({ name: "b", label: "b #2" }), "\\mathrm{b}\\,\\#2");
  const trace = fixture("seed_5_chain");
  const evil = structuredClone(trace);
  evil.nodes.find((n) => n.name === "l2").name = "l2}\\href{javascript:alert(1)}{";
  const l3 = evil.nodes.find((n) => n.name === "l3");
  const lines = derivative(evil, l3.id, stepFor(evil, l3.id));
  assert.ok(lines.every((l) => !l.tex.includes("href") && !(l.grad || "").includes("href")));
  assert.equal(lines.where[0].letter, "u");
});

test("the graph names an operation by what the program wrote: x², x³, [0], [1] ←", () => {
  const jac = fixture("seed_4_jacobian");
  const texts = jac.nodes.filter((n) => n.kind === "op").map((n) => opText(jac, n));
  assert.deepEqual(texts, ["[0]", "x²", "[1]", "+", "[0] ←", "[1]", "[2]", "+", "[1] ←", "[2]", "x³", "[2] ←"]);
  assert.equal(expression(jac, jac.nodes.find((n) => n.label === "b #2")), "b[0] ← a[0]² + a[1]");
});

test("broadcastIndex maps each output element to the input element it came from", () => {
  assert.deepEqual(broadcastIndex([2, 3], [3]), [0, 1, 2, 0, 1, 2]);
  assert.deepEqual(broadcastIndex([2, 3], [2, 1]), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(broadcastIndex([5], []), [0, 0, 0, 0, 0]);
  assert.equal(broadcastIndex([2, 3], [2]), null);
});

test("leaves and unknown ops have no formula", () => {
  const trace = fixture("seed_5_chain");
  assert.deepEqual(derivative(trace, trace.nodes.find((n) => n.name === "w1").id), []);
});

test("the words inside a formula are the page's language: no English in a Chinese inspector", () => {
  setLang("zh");
  let words = 0;
  for (const name of fixtureNames()) {
    const trace = fixture(name);
    for (const p of trace.passes || []) {
      for (const step of p.steps) {
        if (trace.nodes.find((n) => n.id === step.node)?.kind !== "op") continue;
        for (const line of derivative(trace, step.node, step)) {
          for (const [, text] of line.tex.matchAll(/\\text\{([^}]*)\}/g)) {
            words++;
            assert.doesNotMatch(text, /[A-Za-z]{2,}/, `${name}: ${line.tex}`);
          }
        }
      }
    }
  }
  assert.ok(words > 10, words);
  const jacobian = fixture("seed_4_jacobian");
  const copy = jacobian.passes[2].steps.find((s) => jacobian.nodes.find((n) => n.id === s.node)?.op === "CopySlices");
  assert.match(derivative(jacobian, copy.node, copy)[0].tex, /= \\text\{在 \} \[2\] \\text\{ 之外为 \} 1\\text\{，在 \} \[2\] \\text\{ 处为 \} 0$/);
  setLang("en");
});
