// The player's state as a pure function of the trace: `timeline(trace)` lists the moments of the
// program (its events, with each backward call expanded into the engine's steps), and
// `frame(trace, step)` says what is visible at one of them. No DOM, no clock: see player.js.

import { stepGrad, stepSent } from "./doc.js";
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

/**
 * Cheap membership for a frame f of this trace (what painting asks of every box, every step, without
 * making sets of thousands of ids): present.has(id) as f.present.includes(id), and done.has(id) as
 * f.done.includes(id) while a pass is shown. Both follow from the timeline: a node is present from its
 * first `node` moment on, and f.done is the nodes of the shown pass's first f.done.length steps.
 */
export function membership(trace, f) {
  const since = firstSteps(trace);
  const present = { has: (id) => (since.get(id) ?? Infinity) <= f.step };
  if (!f.pass || f.phase !== "backward") return { present, done: new Set(f.done) };
  const order = passOrder(trace, f.pass.index);
  return { present, done: { has: (id) => (order.get(id) ?? Infinity) < f.done.length } };
}

const firstCache = new WeakMap();
/** node id -> the step of its first `node` moment. */
export function firstSteps(trace) {
  let m = firstCache.get(trace);
  if (m) return m;
  m = new Map();
  timeline(trace).forEach((e, i) => e.type === "node" && !m.has(e.node) && m.set(e.node, i));
  firstCache.set(trace, m);
  return m;
}

const orderCache = new WeakMap();
/** node id -> the index of its first step in pass `index`. */
export function passOrder(trace, index) {
  const byPass = orderCache.get(trace) ?? orderCache.set(trace, new Map()).get(trace);
  let m = byPass.get(index);
  if (m) return m;
  m = new Map();
  (passOf(trace, index)?.steps || []).forEach((st, i) => !m.has(st.node) && m.set(st.node, i));
  byPass.set(index, m);
  return m;
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
 * after      {index, number, of} of the pass just finished, until the program computes something new
 *            (phase "after"; its gradients stay shown, so the last step keeps every ∂ in place)
 * carried    keys "source>target:slot" of the edges a gradient went along in the current or last pass
 * kinds      Map id -> the kind shown now where it is not the node's final one (a constant until
 *            its requires_grad_(); see asShown)
 */
export function frame(trace, step) {
  const entries = timeline(trace);
  const at = Math.max(0, Math.min(entries.length - 1, Math.trunc(Number(step) || 0)));
  const s = stateAt(trace, entries, at);
  return result(s, entries, at);
}

// A frame is the state after replaying the moments up to its step. Replaying from the start costs
// O(step) (50 ms at the end of a 20,000-node backward pass), so the state after the last frame asked
// for is kept and carried on from when the next one is later (playing), and a few copies along the
// timeline (every CHECKPOINT_EVERY moments or more, at most CHECKPOINTS) start the replay of an earlier one.
// Frames never share the kept state's collections (result() copies them): the same step always gets
// an equal frame, in whatever order steps are asked for.
const CHECKPOINT_EVERY = 1024;
const CHECKPOINTS = 8;
const replays = new WeakMap();

function stateAt(trace, entries, at) {
  let r = replays.get(trace);
  if (!r || r.entries !== entries) {
    r = { entries, every: Math.max(CHECKPOINT_EVERY, Math.ceil(entries.length / CHECKPOINTS)), saved: new Map(), last: null };
    replays.set(trace, r);
  }
  let s = r.last && r.last.at <= at ? r.last : null;
  const c = Math.floor(at / r.every) * r.every;
  if ((!s || s.at < c) && r.saved.has(c)) s = copyState(r.saved.get(c));
  s ??= initialState(trace);
  for (let i = s.at + 1; i <= at; i++) {
    replay(s, entries[i]);
    s.at = i;
    if (i % r.every === 0 && !r.saved.has(i)) r.saved.set(i, copyState(s));
  }
  r.last = s;
  return s;
}

function initialState(trace) {
  return {
    trace, nodes: nodeIndex(trace), incoming: incomingEdges(trace), passCount: (trace.passes || []).length,
    present: [], presentSet: new Set(), values: new Map(), grads: new Map(), flow: new Map(), received: new Map(),
    done: [], pulses: [], current: [], stdout: "", displays: [], warnings: [], error: null, pass: null,
    phase: "start", sawPrint: false, becameLeaf: new Set(), after: null, carried: new Set(), at: -1,
  };
}

/** The state after one more moment `e`. */
function replay(s, e) {
  s.pulses = [];
  s.current = [];
  MOMENTS[e.type]?.(s, e);
  // Any moment of the program after a pass (print, zero_(), an update) is "after backward" until a new op.
  if (s.phase === "backward" && !IN_PASS.has(e.type)) {
    s.phase = s.after ? "after" : "forward";
    s.pass = null;
  }
}

/** A copy of a state that later moments can change without changing this one (nor the frames made from it). */
function copyState(s) {
  return {
    ...s, present: s.present.slice(), presentSet: new Set(s.presentSet), values: new Map(s.values), grads: new Map(s.grads),
    flow: new Map(s.flow), received: new Map(s.received), done: s.done.slice(), displays: s.displays.slice(),
    warnings: s.warnings.slice(), becameLeaf: new Set(s.becameLeaf), carried: new Set(s.carried),
  };
}

const IN_PASS = new Set(["step", "backward_start", "backward_end"]);

/** What each kind of moment changes in the frame's state `s` (see frame()). */
const MOMENTS = {
  node(s, e) {
    if (!s.presentSet.has(e.node)) {
      s.presentSet.add(e.node);
      s.present.push(e.node);
    }
    s.current = [e.node];
    s.phase = "forward";
    s.pass = null;
    s.after = null; // a new forward computation: the last pass's gradients are no longer the story
  },
  print(s, e) {
    s.sawPrint = true;
    s.stdout += e.text ?? "";
  },
  display: (s, e) => s.displays.push(e.text ?? ""),
  warning: (s, e) => s.warnings.push(e),
  grad(s, e) {
    s.grads.set(e.node, e.value ?? null);
    s.current = [e.node];
    s.pass = null;
  },
  update(s, e) {
    if (e.text === "requires_grad") s.becameLeaf.add(e.node);
    // null: the tensor changed in another way (requires_grad_()) or is too big to carry.
    if (e.value !== null && e.value !== undefined) s.values.set(e.node, e.value);
    s.current = [e.node];
    s.pass = null;
  },
  error(s, e) {
    const err = s.trace.error;
    s.error = { ...(err || {}), text: e.text ?? err?.message ?? "", line: e.line ?? err?.line ?? null };
    s.phase = "end";
    s.pass = null;
  },
  end(s) {
    s.phase = "end";
  },
  backward_start(s, e) {
    const p = passOf(s.trace, e.pass);
    s.flow = new Map();
    s.received = new Map();
    s.done = [];
    s.carried = new Set();
    s.after = null;
    s.phase = "backward";
    s.pass = passInfo(s, e.pass, p, -1);
    const roots = p?.roots?.length ? p.roots : p?.root != null ? [p.root] : [];
    for (const r of roots) s.received.set(r, [p.gradient ?? null]);
    s.current = [...roots];
  },
  step(s, e) {
    const p = passOf(s.trace, e.pass);
    const st = p.steps[e.index];
    s.phase = "backward";
    s.pass = passInfo(s, e.pass, p, e.index);
    const grad = stepGrad(s.trace, st);
    s.flow.set(st.node, grad);
    s.done.push(st.node);
    s.current = [st.node];
    const node = s.nodes.get(st.node);
    // torch.autograd.grad returns its gradients instead of adding them to a leaf's .grad, and
    // backward(inputs=[...]) adds only to those inputs; a non-leaf that retains its grad adds every
    // gradient computed for it, in either (torch's retain_grad hook runs whenever its step does).
    const accumulates = node?.retains_grad || (p.api !== "torch.autograd.grad" && (!p.inputs?.length || p.inputs.includes(st.node)));
    if (node && accumulates && (node.kind === "leaf" || node.retains_grad)) {
      s.grads.set(st.node, addValues(s.grads.has(st.node) ? s.grads.get(st.node) : null, grad));
    }
    for (const edge of s.incoming.get(st.node) || []) {
      const g = stepSent(s.trace, st, edge.slot);
      if (g === null) continue;
      s.pulses.push({ source: edge.source, target: edge.target, slot: edge.slot, grad: g });
      s.carried.add(`${edge.source}>${edge.target}:${edge.slot}`);
      s.received.set(edge.source, [...(s.received.get(edge.source) || []), g]); // a new array: frames share the old one
    }
  },
  backward_end(s, e) {
    const p = passOf(s.trace, e.pass);
    s.phase = "backward";
    s.pass = { ...passInfo(s, e.pass, p, p ? p.steps.length : 0), ended: true };
    s.after = { index: e.pass, number: s.pass.number, of: s.pass.of };
    s.current = [];
  },
};

function passInfo(s, index, p, stepIndex) {
  return { index, number: passNumber(s.trace, index), of: s.passCount, stepIndex, steps: p ? p.steps.length : 0, error: p?.error ?? null };
}

/** The frame's fields from the state after its last moment (the end of the program adds what it printed or raised). */
function result(s, entries, at) {
  const trace = s.trace;
  const last = at === entries.length - 1;
  let { stdout, error, phase } = s;
  if (last) {
    if (!s.sawPrint && trace.stdout) stdout = trace.stdout;
    if (!error && trace.error) error = { ...trace.error, text: trace.error.message, line: trace.error.line ?? null };
    if (phase !== "backward") phase = "end";
  }
  const entry = entries[at];
  const kinds = new Map();
  for (const id of laterLeaves(trace)) if (!s.becameLeaf.has(id)) kinds.set(id, "constant");
  const { current, pulses, pass, after } = s; // made anew by each moment: not changed later
  // Copies of the collections that later moments change (received's arrays are never changed once in it).
  return {
    step: at, total: entries.length, last, entry, phase, line: entry.line ?? null, nodeLine: entry.nodeLine ?? null,
    present: s.present.slice(), current, values: new Map(s.values), grads: new Map(s.grads), flow: new Map(s.flow),
    received: new Map(s.received), pulses, done: s.done.slice(), stdout, displays: s.displays.slice(),
    warnings: s.warnings.slice(), error, pass, kinds, after, carried: new Set(s.carried),
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
