// Layout off the main thread when it is big: one module worker, started when the page loads, reused
// for every run. A level of groups small enough to lay out at once (the usual case: the level shown
// first is chosen to fit the pane, and no level holds more than groups.js's chunk) is laid out in the
// page, which spares sending the whole trace to the worker; a bigger one goes to the worker, which is
// sent a trace once (opening a group sends only the options). Falls back to the page without workers.

import { groupModel } from "./groups.js";
import { snapshot } from "./i18n.js";
import { layout } from "./layout.js";

const INLINE_MAX_OPS = 1200; // operations shown: at most this many are laid out in the page (~100 ms)

let worker = null;
let seq = 0;
const waiting = new Map();
const sent = new WeakMap(); // trace -> its id in the worker

function start() {
  try {
    worker = new Worker(new URL("./layout_worker.js", import.meta.url), { type: "module" });
    worker.onmessage = (e) => {
      const w = waiting.get(e.data.id);
      if (!w) return;
      waiting.delete(e.data.id);
      if (e.data.error) w.reject(new Error(e.data.error));
      else w.resolve(e.data.result);
    };
    worker.onerror = () => {
      worker = null;
      for (const [, w] of waiting) w.fallback();
      waiting.clear();
    };
  } catch {
    worker = null;
  }
}
start();

// Only what the layout reads: sizes come from labels and short values, so big tensors stay behind.
function slim(trace) {
  return {
    nodes: trace.nodes.map((n) => ({
      id: n.id, kind: n.kind, op: n.op, name: n.name, label: n.label, shape: n.shape,
      requires_grad: n.requires_grad, stats: n.stats,
      value: Array.isArray(n.value) && n.value.length > 8 ? n.value.slice(0, 8) : n.value,
      module: n.module ?? null, module_call: n.module_call ?? null, iteration: n.iteration ?? null, loop: n.loop ?? null,
    })),
    edges: trace.edges,
    modules: trace.modules || [],
  };
}

/**
 * How many operations a layout with these open groups draws (leaves and constants go with them), and
 * how many groups (open ones' frames and the closed ones' boxes): a walk over the open groups only.
 */
function shownOps(trace, open) {
  const model = groupModel(trace);
  const own = opsByGroup(trace, model);
  if (!open) return [...own.values()].reduce((a, b) => a + b, 0) + model.groups.size;
  let n = own.get(null) ?? 0;
  const walk = (keys) => {
    for (const key of keys) {
      n++;
      if (!open.has(key)) continue;
      n += own.get(key) ?? 0;
      walk(model.groups.get(key).children);
    }
  };
  walk(model.top);
  return n;
}

const opsCache = new WeakMap();
/** Group key (null: none) -> the operations whose innermost group it is, once per trace. */
function opsByGroup(trace, model) {
  let m = opsCache.get(trace);
  if (m) return m;
  m = new Map();
  for (const node of trace.nodes || []) {
    if (node.kind !== "op") continue;
    const key = model.innermost.get(node.id) ?? null;
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  opsCache.set(trace, m);
  return m;
}

/** layout(trace, options), in the page when it is small, else in the worker. */
export function layoutAsync(trace, options = {}) {
  if (!worker || shownOps(trace, options.open && new Set(options.open)) <= INLINE_MAX_OPS) return Promise.resolve(layout(trace, options));
  return post(trace, options).catch((err) => {
    if (!String(err?.message).includes("no longer holds")) throw err;
    sent.delete(trace); // the worker let it go for newer traces: send it again
    return post(trace, options);
  });
}

function post(trace, options) {
  const id = ++seq;
  let traceId = sent.get(trace);
  const message = { id, options, strings: snapshot() }; // the boxes' text, in the page's language
  if (traceId === undefined) {
    traceId = id;
    sent.set(trace, traceId);
    message.trace = slim(trace);
  }
  message.traceId = traceId;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject, fallback: () => resolve(layout(trace, options)) });
    worker.postMessage(message);
  });
}
