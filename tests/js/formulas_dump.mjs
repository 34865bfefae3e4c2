// For tests/test_formulas.py: every formula line of every backward step of the traces given on stdin
// (one JSON document per line), as JSON lines: what the inspector shows and the numbers behind it.
import { createInterface } from "node:readline";
import { COVERED, derivative } from "../../static/js/formulas.js";
import { enc } from "../../static/js/values.js";
import "./helpers.mjs";

if (process.argv[2] === "--covered") console.log(JSON.stringify(COVERED));
for await (const text of createInterface({ input: process.stdin })) {
  if (!text.trim()) continue;
  const trace = JSON.parse(text);
  const out = [];
  for (const p of trace.passes || []) {
    for (const [index, step] of p.steps.entries()) {
      const node = trace.nodes.find((n) => n.id === step.node);
      if (node?.kind !== "op") continue;
      const lines = derivative(trace, node.id, step);
      for (const l of lines) {
        out.push({ pass: p.index, step: index, node: node.id, op: node.op, slot: l.slot, tex: l.tex, grad: l.grad ?? null, local: l.local, locals: l.locals ?? null, sent: l.sent ?? null, constant: l.constant ?? null, where: lines.where });
      }
    }
  }
  // NaN and ±Infinity as the trace writes them (JSON has no such numbers).
  process.stdout.write(JSON.stringify(out, (k, v) => (typeof v === "number" ? enc(v) : v)) + "\n");
}
