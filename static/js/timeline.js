// The player's state as a pure function of the trace: `timeline(trace)` lists the moments of the
// program (its events, with each backward call expanded into the engine's steps), and
// `frame(trace, step)` says what is visible at one of them. No DOM, no clock: see player.js.

import { addValues } from "./values.js";

const cache = new WeakMap();

/** The moments of a trace, step 0 being "before the program ran". */
export function timeline(trace) {
  let entries = cache.get(trace);
  if (entries) return entries;
  entries = [{ type: "start", line: null }];
  const passes = new Map((trace.passes || []).map((p) => [p.index, p]));
  const nodeLine = new Map((trace.nodes || []).map((n) => [n.id, n.line ?? null]));
  const expanded = new Set();
  for (const ev of trace.events || []) {
    if (ev.kind === "backward_start") {
      const p = passes.get(ev.pass_index);
      const line = ev.line ?? p?.line ?? null;
      entries.push({ type: "backward_start", pass: ev.pass_index, line });
      if (p && !expanded.has(p.index)) {
        expanded.add(p.index);
        p.steps.forEach((s, i) =>
          entries.push({ type: "step", pass: p.index, index: i, node: s.node, line, nodeLine: nodeLine.get(s.node) ?? null }),
        );
      }
    } else if (ev.kind === "backward_end") {
      const p = passes.get(ev.pass_index);
      entries.push({ type: "backward_end", pass: ev.pass_index, line: ev.line ?? p?.line ?? null });
    } else {
      const e = { type: ev.kind, line: ev.line ?? null };
      if (ev.node !== null && ev.node !== undefined) e.node = ev.node;
      if (ev.text !== null && ev.text !== undefined) e.text = ev.text;
      if (ev.category) e.category = ev.category;
      if (ev.kind === "grad" || ev.kind === "update") e.value = ev.value ?? null;
      if (ev.kind === "node" && e.line === null) e.line = nodeLine.get(ev.node) ?? null;
      entries.push(e);
    }
  }
  // A trace without a story (an early failure, or a truncated one) still ends on "the end".
  if (entries.length === 1 || trace.status !== "ok") {
    const last = entries[entries.length - 1];
    if (last.type !== "error" && (trace.error || entries.length === 1)) {
      entries.push({ type: trace.error ? "error" : "end", line: trace.error?.line ?? null, text: trace.error?.message ?? null });
    }
  }
  cache.set(trace, entries);
  return entries;
}

/** Leaves that were constants until a `requires_grad_()` (an update event saying so): ids. */
const laterLeavesCache = new WeakMap();
function laterLeaves(trace) {
  let out = laterLeavesCache.get(trace);
  if (out) return out;
  const nodes = nodeIndex(trace);
  out = new Set();
  for (const ev of trace.events || []) {
    if (ev.kind === "update" && ev.text === "requires_grad" && nodes.get(ev.node)?.kind === "leaf") out.add(ev.node);
  }
  laterLeavesCache.set(trace, out);
  return out;
}

/** The node as the frame shows it: a later leaf is still a constant before its requires_grad_(). */
export function asShown(node, f) {
  if (!node || f.kinds?.get(node.id) !== "constant") return node;
  return { ...node, kind: "constant", op: null, requires_grad: false };
}

/** Index of the first entry of each pass: where "jump to pass" goes. */
const startsCache = new WeakMap();
export function passStarts(trace) {
  let out = startsCache.get(trace);
  if (out) return out;
  out = [];
  timeline(trace).forEach((e, i) => {
    if (e.type === "backward_start") out.push({ pass: e.pass, step: i });
  });
  startsCache.set(trace, out);
  return out;
}

function passOf(trace, index) {
  return (trace.passes || []).find((p) => p.index === index) || null;
}

/**
 * What is shown at `step` (clamped to the timeline):
 * present    ids of nodes that exist by now (forward order)
 * current    ids of the nodes this step is about
 * values     Map id -> value, only for values changed in place since creation (update events)
 * grads      Map id -> the .grad shown on a leaf (or a retains_grad node): sum of its steps, reset by grad events
 * flow       Map id -> gradient w.r.t. this node's output in the current pass (nodes reached so far)
 * received   Map id -> gradients sent to this node so far in the current pass (fan-in, summed at its step)
 * pulses     edges carrying a gradient at this step: {source, target, slot, grad}
 * done       ids of nodes the current pass has executed
 * line       the source line to highlight; nodeLine: the line of the node a backward step is about
 * stdout     program output printed by now; displays: notebook-style values shown by now
 * warnings   warning entries reached; error: the error entry if reached (with trace.error's details)
 * pass       {index, number, of, stepIndex, steps} while a backward pass is shown, else null
 * kinds      Map id -> the kind shown now where it is not the node's final one (a constant until
 *            its requires_grad_(); see asShown)
 */
export function frame(trace, step) {
  const entries = timeline(trace);
  const at = Math.max(0, Math.min(entries.length - 1, Math.trunc(Number(step) || 0)));
  const passCount = (trace.passes || []).length;
  const present = [];
  const presentSet = new Set();
  const values = new Map();
  const grads = new Map();
  let flow = new Map();
  let received = new Map();
  let done = [];
  let pulses = [];
  let current = [];
  let stdout = "";
  const displays = [];
  const warnings = [];
  let error = null;
  let pass = null;
  let phase = "start";
  const incoming = incomingEdges(trace);
  const nodes = nodeIndex(trace);
  let sawPrint = false;
  const becameLeaf = new Set();

  for (let i = 0; i <= at; i++) {
    const e = entries[i];
    pulses = [];
    current = [];
    switch (e.type) {
      case "node":
        if (!presentSet.has(e.node)) {
          presentSet.add(e.node);
          present.push(e.node);
        }
        current = [e.node];
        phase = "forward";
        pass = null;
        break;
      case "print":
        sawPrint = true;
        stdout += e.text ?? "";
        break;
      case "display":
        displays.push(e.text ?? "");
        break;
      case "warning":
        warnings.push(e);
        break;
      case "grad":
        grads.set(e.node, e.value ?? null);
        current = [e.node];
        pass = null;
        break;
      case "update":
        if (e.text === "requires_grad") becameLeaf.add(e.node);
        // null: the tensor changed in another way (requires_grad_()) or is too big to carry.
        if (e.value !== null && e.value !== undefined) values.set(e.node, e.value);
        current = [e.node];
        pass = null;
        break;
      case "error":
        error = { ...(trace.error || {}), text: e.text ?? trace.error?.message ?? "", line: e.line ?? trace.error?.line ?? null };
        phase = "end";
        pass = null;
        break;
      case "end":
        phase = "end";
        break;
      case "backward_start": {
        const p = passOf(trace, e.pass);
        flow = new Map();
        received = new Map();
        done = [];
        phase = "backward";
        pass = { index: e.pass, number: passNumber(trace, e.pass), of: passCount, stepIndex: -1, steps: p ? p.steps.length : 0, error: p?.error ?? null };
        for (const r of p?.roots?.length ? p.roots : p?.root != null ? [p.root] : []) {
          received.set(r, [p.gradient ?? null]);
        }
        current = p?.roots?.length ? [...p.roots] : p?.root != null ? [p.root] : [];
        break;
      }
      case "step": {
        const p = passOf(trace, e.pass);
        const s = p.steps[e.index];
        phase = "backward";
        pass = { index: e.pass, number: passNumber(trace, e.pass), of: passCount, stepIndex: e.index, steps: p.steps.length, error: p.error ?? null };
        flow.set(s.node, s.grad ?? null);
        done.push(s.node);
        current = [s.node];
        const node = nodes.get(s.node);
        // torch.autograd.grad returns its gradients instead of adding them to .grad, and
        // backward(inputs=[...]) adds only to those inputs.
        const accumulates = p.api !== "torch.autograd.grad" && (!p.inputs?.length || p.inputs.includes(s.node));
        if (node && accumulates && (node.kind === "leaf" || node.retains_grad)) {
          grads.set(s.node, addValues(grads.has(s.node) ? grads.get(s.node) : null, s.grad ?? null));
        }
        for (const edge of incoming.get(s.node) || []) {
          const g = (s.grad_inputs || [])[edge.slot];
          if (g === undefined || g === null) continue;
          pulses.push({ source: edge.source, target: edge.target, slot: edge.slot, grad: g });
          if (!received.has(edge.source)) received.set(edge.source, []);
          received.get(edge.source).push(g);
        }
        break;
      }
      case "backward_end": {
        const p = passOf(trace, e.pass);
        phase = "backward";
        pass = { index: e.pass, number: passNumber(trace, e.pass), of: passCount, stepIndex: p ? p.steps.length : 0, steps: p ? p.steps.length : 0, error: p?.error ?? null, ended: true };
        current = [];
        break;
      }
      default:
        break;
    }
    // Any moment of the program after a pass (print, zero_(), a new op...) is forward code again.
    if (phase === "backward" && e.type !== "step" && e.type !== "backward_start" && e.type !== "backward_end") {
      phase = "forward";
      pass = null;
    }
  }
  const last = at === entries.length - 1;
  if (last) {
    if (!sawPrint && trace.stdout) stdout = trace.stdout;
    if (!error && trace.error) error = { ...trace.error, text: trace.error.message, line: trace.error.line ?? null };
    if (phase !== "backward") phase = "end";
  }
  const entry = entries[at];
  const kinds = new Map();
  for (const id of laterLeaves(trace)) if (!becameLeaf.has(id)) kinds.set(id, "constant");
  return {
    step: at,
    total: entries.length,
    last,
    entry,
    phase,
    line: entry.line ?? null,
    nodeLine: entry.nodeLine ?? null,
    present,
    current,
    values,
    grads,
    flow,
    received,
    pulses,
    done,
    stdout,
    displays,
    warnings,
    error,
    pass,
    kinds,
  };
}

function passNumber(trace, index) {
  const i = (trace.passes || []).findIndex((p) => p.index === index);
  return i < 0 ? index + 1 : i + 1;
}

const incomingCache = new WeakMap();
function incomingEdges(trace) {
  let m = incomingCache.get(trace);
  if (m) return m;
  m = new Map();
  for (const e of trace.edges || []) {
    if (!m.has(e.target)) m.set(e.target, []);
    m.get(e.target).push(e);
  }
  incomingCache.set(trace, m);
  return m;
}

const nodeCache = new WeakMap();
export function nodeIndex(trace) {
  let m = nodeCache.get(trace);
  if (m) return m;
  m = new Map((trace.nodes || []).map((n) => [n.id, n]));
  nodeCache.set(trace, m);
  return m;
}
