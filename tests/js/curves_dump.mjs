// For tests/test_curves.py: the training curves (static/js/curves.js) of each trace given on stdin (one JSON
// document per line), one JSON line each (null for a trace that is not a training loop).
import { createInterface } from "node:readline";
import { curves } from "../../static/js/curves.js";
import "./helpers.mjs";

for await (const text of createInterface({ input: process.stdin })) {
  if (text.trim()) process.stdout.write(JSON.stringify(curves(JSON.parse(text))) + "\n");
}
