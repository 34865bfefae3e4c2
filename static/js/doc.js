// How the captions, the formulas and the graph's operation labels read the trace document: a node's
// name and inputs, and what a backward step received and sent. Only this module knows where those
// live in the JSON (document version 2 keeps gradients in trace.tensors and names in node.names), so a
// change of the document changes this file, not the sentences built on it.

import { nodeIndex } from "./timeline.js";

/** The node with this id, or undefined. */
export function nodeOf(trace, id) {
  return nodeIndex(trace).get(id);
}

/** The name the program gave the node ("l1", "model.0.weight"), or null. */
export function nameOf(node) {
  return node?.name ?? node?.names?.[0]?.name ?? null;
}

/** The node as the graph labels it: its name with the binding number when it was rebound ("b #2"). */
export function labelOf(node) {
  return node?.label ?? nameOf(node) ?? "";
}

const inputsCache = new WeakMap();
/** The node's inputs in slot order: [{slot, node}] (a slot fed by nothing the trace knows is left out). */
export function inputsOf(trace, id) {
  let m = inputsCache.get(trace);
  if (!m) {
    m = new Map();
    for (const e of trace.edges || []) {
      if (!m.has(e.target)) m.set(e.target, []);
      m.get(e.target).push({ slot: e.slot, node: nodeOf(trace, e.source) });
    }
    for (const list of m.values()) list.sort((a, b) => a.slot - b.slot);
    inputsCache.set(trace, m);
  }
  return m.get(id) ?? [];
}

/** A gradient as the document carries it: a value (version 1) or an index into trace.tensors (version 2). */
function gradValue(trace, g) {
  if (g === undefined || g === null) return null;
  if ((trace.version ?? 1) >= 2 && Number.isInteger(g) && trace.tensors) return trace.tensors[g]?.value ?? null;
  return g;
}

/** The gradient a backward step received (w.r.t. the node's first output), or null. */
export function stepGrad(trace, step) {
  if (!step) return null;
  return gradValue(trace, Array.isArray(step.grad) && (trace.version ?? 1) >= 2 ? step.grad[0] : step.grad);
}

/** What a backward step sent to its input `slot` (null: nothing, PyTorch's None). */
export function stepSent(trace, step, slot) {
  return gradValue(trace, (step?.grad_inputs || [])[slot]);
}

/** The step of node `id` in pass `passIndex`, or null. */
export function stepOf(trace, passIndex, id) {
  const p = (trace.passes || []).find((x) => x.index === passIndex);
  return p?.steps.find((s) => s.node === id) ?? null;
}

/** The program's line `n` (1-based), or "". */
export function sourceLine(trace, n) {
  return (trace.source || "").split("\n")[(n || 0) - 1] || "";
}
