import { test } from "node:test";
import assert from "node:assert/strict";
import { addValues, fmtNum, fmtShape, fmtValue, shapeOf, num, fitValue } from "../../static/js/values.js";

test("addValues: None + g = g, elementwise on nested lists, NaN/Infinity strings kept as JSON", () => {
  assert.equal(addValues(null, 3), 3);
  assert.deepEqual(addValues([[1, 2]], [[3, 4]]), [[4, 6]]);
  assert.deepEqual(addValues([1, "NaN"], [1, 1]), [2, "NaN"]);
  assert.deepEqual(addValues(["Infinity"], ["-Infinity"]), ["NaN"]);
  assert.deepEqual(addValues([1, 2], null), [1, 2]);
  assert.equal(num(true), 1);
});

test("numbers read like a student expects", () => {
  assert.equal(fmtNum(1.2000000476837158), "1.2");
  assert.equal(fmtNum(0.20000000298023224), "0.2");
  assert.equal(fmtNum(27), "27");
  assert.equal(fmtNum(-0), "0");
  assert.equal(fmtNum("NaN"), "nan");
  assert.equal(fmtNum(1e-7), "1e-7");
  assert.equal(fmtNum(true), "True");
  assert.equal(fmtValue(null), "None");
  assert.equal(fmtValue([1, 2, 3, 4, 5, 6, 7, 8], 6), "[1, 2, 3, 4, …, 8]");
  assert.equal(fmtValue([[0.1, 0.2, 0.3]], 4), "[[0.1, 0.2, 0.3]]");
  assert.equal(fmtValue([[1, 2, 3, 4, 5, 6]], 4), "[[1, 2, …, 6]]");
  assert.equal(fmtValue([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]], 4), "[[1, 2], [3, 4], …, [9, 10]]");
  assert.equal(fmtShape([5]), "(5,)");
  assert.equal(fmtShape([]), "()");
  assert.deepEqual(shapeOf([[1, 2, 3], [4, 5, 6]]), [2, 3]);
});

test("a value line too long for its box is cut between elements and closed, never inside a number", () => {
  assert.equal(fitValue("grad [1.2, 1.2, …, 1.2]", 30), "grad [1.2, 1.2, …, 1.2]");
  assert.equal(fitValue("grad [1.2, 1.2, …, 1.2]", 22), "grad [1.2, 1.2, …]");
  assert.equal(fitValue("[0.25, 0.5, 0.75, 1]", 16), "[0.25, 0.5, …]");
  assert.equal(fitValue("[[1, 2], [3, 4]]", 12), "[[1, 2], …]");
  assert.equal(fitValue("[[1, 2], [3, 4]]", 10), "[[1, …]]");
  assert.equal(fitValue("[123456789]", 8), "[123456…"); // one element: cut as text
  assert.equal(fitValue("μ 0.51  (1,000)", 8), "μ 0.51 …");
});
