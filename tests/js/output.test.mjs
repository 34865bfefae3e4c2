import { test } from "node:test";
import assert from "node:assert/strict";
import { outputItems, problems } from "../../static/js/output.js";
import { setLang } from "../../static/js/i18n.js";
import { frame, timeline } from "../../static/js/timeline.js";
import { fixture } from "./helpers.mjs";

test("the chain: warnings with their hint, prints in program order", () => {
  setLang("en");
  const trace = fixture("seed_5_chain");
  const items = outputItems(trace, frame(trace, Infinity));
  assert.deepEqual(items.map((i) => i.kind), ["warning", "print", "warning", "print", "print", "print", "print"]);
  assert.match(items[0].hint, /Only leaf tensors/);
  assert.equal(items.filter((i) => i.kind === "print").map((i) => i.text).join(""), trace.stdout);
  const notes = problems(trace, frame(trace, Infinity));
  assert.deepEqual(notes.map((p) => [p.kind, p.line]), [["warning", 18], ["warning", 19]]);
});

test("before anything ran: an empty-output note, no problems", () => {
  const trace = fixture("seed_4_jacobian");
  assert.deepEqual(outputItems(trace, frame(trace, 0)).map((i) => i.kind), ["empty"]);
  assert.deepEqual(problems(trace, frame(trace, 0)), []);
});

test("an error at its line, with the hint in the page's language; a timeout in plain words", () => {
  const trace = { status: "error", nodes: [], edges: [], events: [], passes: [], stdout: "", warnings: [],
    error: { type: "RuntimeError", message: "boom", line: 3, hint: "English hint", hint_id: "int_requires_grad" } };
  const f = frame(trace, Infinity);
  setLang("zh");
  const [err] = outputItems(trace, f);
  assert.equal(err.text, "RuntimeError (第 3 行): boom");
  assert.match(err.hint, /浮点/);
  setLang("en");
  assert.equal(outputItems(trace, f)[0].hint, "English hint");
  assert.deepEqual(problems(trace, f).map((p) => [p.kind, p.line, p.title]), [["error", 3, "RuntimeError:"]]);

  const slow = { ...trace, status: "timeout", error: { type: "timeout", message: "5 s", line: null } };
  const texts = outputItems(slow, frame(slow, Infinity)).map((i) => i.text);
  assert.ok(texts.includes("The program ran too long and was stopped."));
  assert.equal(timeline(slow).at(-1).type, "error");
});
