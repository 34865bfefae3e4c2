import { test } from "node:test";
import assert from "node:assert/strict";
import { hint, setLang, t } from "../../static/js/i18n.js";
import { describe } from "../../static/js/caption.js";
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

test("the chain's captions tell the story", () => {
  setLang("en");
  const trace = fixture("seed_5_chain");
  const w2 = trace.nodes.find((n) => n.name === "w2").id;
  const at = timeline(trace).findIndex((e) => e.type === "step" && e.node === w2);
  assert.equal(describe(trace, frame(trace, at)), "AccumulateGrad: w2.grad += 6");
  assert.equal(describe(trace, frame(trace, 0)), "Press ▶ (or Space) to play the program; ← and → go one step at a time.");
});
