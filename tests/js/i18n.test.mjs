import { test } from "node:test";
import assert from "node:assert/strict";
import { hint, setLang, t } from "../../static/js/i18n.js";
import { describe, passLabel } from "../../static/js/caption.js";
import { nodeLines } from "../../static/js/labels.js";
import { frame, timeline } from "../../static/js/timeline.js";
import { fixture, fixtureNames } from "./helpers.mjs";

test("placeholders are filled as text", () => {
  setLang("en");
  assert.equal(t("player.passN", { n: 2, of: 3 }), "Backward pass 2 of 3");
  assert.equal(t("run.failed", { message: "<b>x</b>" }), "The server could not run the program: <b>x</b>");
  setLang("zh");
  assert.equal(t("player.passN", { n: 2, of: 3 }), "反向传播 第 2 次（共 3 次）");
  assert.match(hint("nonleaf_grad", "english"), /叶子张量/);
  assert.equal(hint("unknown_id", "english"), "english");
  setLang("en");
  assert.equal(hint("nonleaf_grad", "english"), "english");
});

for (const lang of ["en", "zh"]) {
  test(`every step of every fixture has a caption (${lang})`, () => {
    setLang(lang);
    for (const name of fixtureNames()) {
      const trace = fixture(name);
      for (let i = 0; i < timeline(trace).length; i++) {
        const c = describe(trace, frame(trace, i));
        assert.ok(c && !/\{\w+\}/.test(c), `${name} step ${i}: ${c}`);
      }
    }
    setLang("en");
  });
}

const at = (trace, pred) => timeline(trace).findIndex(pred);
const captionAt = (trace, i) => describe(trace, frame(trace, i));

test("the chain's captions say each op with its operands and value, and what each input was sent", () => {
  setLang("en");
  const trace = fixture("seed_5_chain");
  const id = (name) => trace.nodes.find((n) => n.name === name).id;
  const node = (name) => captionAt(trace, at(trace, (e) => e.type === "node" && e.node === id(name)));
  const step = (name) => captionAt(trace, at(trace, (e) => e.type === "step" && e.node === id(name)));
  assert.equal(node("l1"), "l1 = x × w1 = [2, 2, 2, 2, 2] is computed; autograd records MulBackward0 to differentiate it later.");
  assert.equal(node("b"), "b = 4 is created: a constant (no gradient flows into it).");
  assert.equal(
    step("l1"),
    "l1 (MulBackward0) receives [0.6, 0.6, 0.6, 0.6, 0.6] and sends ∂y/∂x = 0.6 × w1 = [1.2, 1.2, 1.2, 1.2, 1.2] to x and ∂y/∂w1 = 0.6 × x = 3 (summed over 5 elements) to w1.",
  );
  // One input: no "each of its inputs"; the constant b gets nothing and is not mentioned.
  assert.equal(step("l2"), "l2 (AddBackward0) receives [0.6, 0.6, 0.6, 0.6, 0.6] and sends ∂y/∂l1 = [0.6, 0.6, 0.6, 0.6, 0.6] to l1.");
  assert.equal(step("w2"), "AccumulateGrad: w2.grad += 6.");
  assert.equal(captionAt(trace, 0), "Press ▶ (or Space) to play the program; ← and → go one step at a time.");
});

test("Pow says the program's names and its exponent: b = a², not xⁿ", () => {
  setLang("en");
  const trace = fixture("seed_3_scalar_backward");
  const pow = trace.nodes.find((n) => n.op === "PowBackward0").id;
  assert.equal(captionAt(trace, at(trace, (e) => e.type === "node" && e.node === pow)), "b = a² = [1, 4, 9] is computed; autograd records PowBackward0 to differentiate it later.");
});

test("the Jacobian's captions name the element read and the slice written", () => {
  setLang("en");
  const trace = fixture("seed_4_jacobian");
  const copy = trace.nodes.find((n) => n.label === "b #2").id;
  assert.equal(captionAt(trace, at(trace, (e) => e.type === "node" && e.node === copy)), "b[0] = a[0]² + a[1] writes into b in place (now [3, 0, 0]); autograd records CopySlices.");
  const pow = trace.nodes.find((n) => n.op === "PowBackward0").id;
  assert.equal(captionAt(trace, at(trace, (e) => e.type === "step" && e.node === pow)), "PowBackward0 receives 1 and sends 1 × 2·a[0] = 2 to a[0].");
});

for (const lang of ["en", "zh"]) {
  test(`every caption of every fixture is a whole sentence (${lang})`, () => {
    setLang(lang);
    for (const name of fixtureNames()) {
      const trace = fixture(name);
      for (let i = 1; i < timeline(trace).length; i++) {
        const c = captionAt(trace, i);
        if (timeline(trace)[i].type === "warning") continue; // PyTorch's own words
        assert.match(c, /[.?!。？！]$/, `${name} step ${i}: ${c}`);
      }
    }
    setLang("en");
  });
}

test("after a backward pass the steps say so, and the last step has a label", () => {
  setLang("en");
  const trace = fixture("seed_5_chain");
  const print = at(trace, (e) => e.type === "print");
  assert.equal(passLabel(frame(trace, print)), "After backward pass 1 of 1");
  assert.equal(passLabel(frame(trace, timeline(trace).length - 1)), "End of the program");
  assert.equal(passLabel(frame(trace, at(trace, (e) => e.type === "node"))), "Forward pass");
});

test("a leaf's box says scalar, requires grad (not () · grad)", () => {
  setLang("en");
  const trace = fixture("seed_5_chain");
  assert.equal(nodeLines(trace.nodes.find((n) => n.name === "w1")).sub, "scalar, requires grad");
  assert.equal(nodeLines(trace.nodes.find((n) => n.name === "x")).sub, "(5,), requires grad");
  assert.equal(nodeLines(trace.nodes.find((n) => n.name === "b")).sub, "constant, scalar");
});

test("Chinese captions set no space after full-width punctuation (the English joints put one there)", () => {
  setLang("zh");
  const chain = fixture("seed_5_chain");
  const l1 = chain.nodes.find((n) => n.name === "l1").id;
  assert.equal(
    captionAt(chain, at(chain, (e) => e.type === "step" && e.node === l1)),
    "l1（MulBackward0）收到 [0.6, 0.6, 0.6, 0.6, 0.6]，把 ∂y/∂x = 0.6 × w1 = [1.2, 1.2, 1.2, 1.2, 1.2] 传给 x，把 ∂y/∂w1 = 0.6 × x = 3（对 5 个元素求和）传给 w1。",
  );
  const jacobian = fixture("seed_4_jacobian");
  assert.match(captionAt(jacobian, at(jacobian, (e) => e.type === "step" && jacobian.nodes.find((n) => n.id === e.node)?.kind === "leaf")), /。5 个梯度到达并被求和。$/);
  for (const name of fixtureNames()) {
    const trace = fixture(name);
    timeline(trace).forEach((e, i) => {
      if (e.type === "step") assert.doesNotMatch(captionAt(trace, i), /[）。，；：] /, `${name} step ${i}`);
    });
  }
  setLang("en");
});
