// The boxes a graph can be folded into: the iterations of a top-level loop and the nn.Module calls of
// the trace (Trace.modules, Node.module / module_call / iteration / loop), as a tree. Pure: a function
// of the trace (cached per trace), no DOM. layout.js lays out the open ones; render.js draws them.
//
// A group: {key, kind: "iteration"|"module", path, call, className, iteration, loop, parent, children,
// nodes, params, outputs, depth}. Keys: "it:<loop line>:<iteration>", "m:<path>#<call>".

const cache = new WeakMap();

/** The group tree of a trace: {groups: Map key -> group, top: [keys], chainOf(id) -> [keys, outermost first], any}. */
export function groupModel(trace) {
  let m = cache.get(trace);
  if (m) return m;
  const groups = new Map();
  const innermost = new Map(); // node id -> its innermost group key (or null)
  moduleGroups(trace, groups);
  for (const n of trace.nodes || []) innermost.set(n.id, homeGroup(n, groups));
  finishTree(groups, trace);
  const chains = new Map();
  const chainOfKey = (key) => {
    if (key === null) return [];
    let c = chains.get(key);
    if (!c) {
      const g = groups.get(key);
      c = [...chainOfKey(g.parent), key];
      chains.set(key, c);
    }
    return c;
  };
  for (const n of trace.nodes || []) {
    const key = innermost.get(n.id);
    if (key === null) continue;
    groups.get(key).nodes.push(n.id);
  }
  const nodeById = new Map((trace.nodes || []).map((n) => [n.id, n]));
  for (const g of groups.values()) g.ops = g.nodes.filter((id) => nodeById.get(id)?.kind === "op").length;
  for (const g of [...groups.values()].sort((a, b) => b.depth - a.depth)) if (g.parent !== null) groups.get(g.parent).ops += g.ops;
  const top = [...groups.values()].filter((g) => g.parent === null).map((g) => g.key);
  m = { groups, top, any: groups.size > 0, innermost, chainOfKey, chainOf: (id) => chainOfKey(innermost.get(id) ?? null) };
  cache.set(trace, m);
  return m;
}

const moduleKey = (path, call) => `m:${path}#${call ?? 0}`;
const iterationKey = (loop, iteration) => `it:${loop ?? 0}:${iteration}`;

/** One group per module call; the enclosing call of a module's parent is the one running when it started. */
function moduleGroups(trace, groups) {
  const running = new Map(); // path -> its latest call (the list is in the order the calls started)
  for (const mod of trace.modules || []) {
    running.set(mod.path, mod.call ?? 0);
    const parent = mod.parent != null && running.has(mod.parent) ? moduleKey(mod.parent, running.get(mod.parent)) : null;
    const key = moduleKey(mod.path, mod.call);
    groups.set(key, {
      key, kind: "module", path: mod.path, call: mod.call ?? 0, className: mod.class_name ?? "", parent, children: [], nodes: [],
      params: [...(mod.params || [])], inputs: [...(mod.inputs || [])], outputs: [...(mod.outputs || [])], iteration: null, loop: null, depth: 0, ops: 0,
    });
  }
}

/** A node's innermost group: its module call, else its loop iteration (made on first sight), else none. */
function homeGroup(n, groups) {
  let iter = null;
  if (n.iteration !== null && n.iteration !== undefined) {
    iter = iterationKey(n.loop, n.iteration);
    if (!groups.has(iter)) {
      groups.set(iter, {
        key: iter, kind: "iteration", path: null, call: null, className: "", parent: null, children: [], nodes: [],
        params: [], inputs: [], outputs: [], iteration: n.iteration, loop: n.loop ?? null, depth: 0, ops: 0,
      });
    }
  }
  if (n.module !== null && n.module !== undefined) {
    const key = moduleKey(n.module, n.module_call);
    const g = groups.get(key);
    if (g) {
      // A top-level module call inside a loop belongs to that iteration.
      let top = g;
      while (top.parent !== null && groups.get(top.parent)?.kind === "module") top = groups.get(top.parent);
      if (top.parent === null && iter !== null) top.parent = iter;
      return key;
    }
  }
  return iter;
}

/** Children lists in order (iterations by number, modules as called) and depths. */
function finishTree(groups, trace) {
  const order = new Map();
  let k = 0;
  for (const n of trace.nodes || []) {
    for (const key of [n.module != null ? moduleKey(n.module, n.module_call) : null]) if (key && !order.has(key)) order.set(key, k++);
  }
  for (const g of groups.values()) if (!order.has(g.key)) order.set(g.key, k++);
  const sorted = [...groups.values()].sort((a, b) => (a.kind === "iteration" && b.kind === "iteration" ? a.iteration - b.iteration : 0) || order.get(a.key) - order.get(b.key));
  for (const g of sorted) if (g.parent !== null) groups.get(g.parent)?.children.push(g.key);
  const depth = (g) => (g.parent === null ? 0 : 1 + depth(groups.get(g.parent)));
  for (const g of groups.values()) g.depth = depth(g);
}

/** The group a node is drawn in when `open` (a Set of keys) says which are open: the outermost closed one, else null (the node itself). */
export function closedAround(model, id, open) {
  for (const key of model.chainOf(id)) if (!open.has(key)) return key;
  return null;
}

/** Every group a node is in (outermost first): what must be opened to show it. */
export function groupsAround(model, id) {
  return model.chainOf(id);
}

/**
 * Where a source node (a leaf or constant: no inputs) is drawn for one use by `consumer`: in its own
 * module when it is one of its parameters; in each iteration that uses it when it was made before the
 * loop (a weight used by every step is drawn in each); else where it was made.
 */
export function sourceHome(model, source, consumer, paramOf) {
  const chain = model.chainOf(consumer);
  const path = paramOf.get(source);
  if (path !== undefined) {
    for (let i = chain.length - 1; i >= 0; i--) if (model.groups.get(chain[i]).path === path) return chain[i];
  }
  const own = model.chainOf(source);
  let p = 0;
  while (p < own.length && p < chain.length && own[p] === chain[p]) p++;
  if (p < own.length) return own[own.length - 1];
  if (p < chain.length && model.groups.get(chain[p]).kind === "iteration") return chain[p];
  return p ? chain[p - 1] : null;
}

/** node id -> the path of the module whose own parameter it is. */
export function paramPaths(model) {
  const out = new Map();
  for (const g of model.groups.values()) for (const id of g.params) if (!out.has(id)) out.set(id, g.path);
  return out;
}
