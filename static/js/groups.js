// The boxes a graph can be folded into: the iterations of a top-level loop and the nn.Module calls of
// the trace (Trace.modules, Node.module / module_call / iteration / loop), as a tree. Pure: a function
// of the trace (cached per trace), no DOM. layout.js lays out the open ones; render.js draws them.
// A level with more than CHUNK_ABOVE operations and groups (a 20,000-node recurrence, 4,000 loop
// iterations) is split into chunks of CHUNK consecutive ones, as Model Explorer splits big groups:
// what is shown is laid out, not the whole graph.
//
// A group: {key, kind: "iteration"|"module"|"chunk", path, call, className, iteration, loop, parent,
// children, nodes, params (its own), allParams (its own and its modules'), paramCount (their elements),
// outputs, depth, ops, first, last}. Keys: "it:<loop line>:<iteration>",
// "m:<path>#<call>", "c:<parent key>:<index>".

const CHUNK_ABOVE = 1000;
const CHUNK = 250;
const cache = new WeakMap();

/** The group tree of a trace: {groups: Map key -> group, top: [keys], chainOf(id) -> [keys, outermost first], any}. */
export function groupModel(trace) {
  let m = cache.get(trace);
  if (m) return m;
  const groups = new Map();
  const innermost = new Map(); // node id -> its innermost group key (or null)
  const nodes = trace.nodes || [];
  moduleGroups(trace, groups);
  for (const n of nodes) innermost.set(n.id, homeGroup(n, groups));
  for (const n of nodes) if (innermost.get(n.id) !== null) groups.get(innermost.get(n.id)).nodes.push(n.id);
  chunkLevels(groups, innermost, nodes);
  finishTree(groups, nodes);
  const chains = new Map();
  const chainOfKey = (key) => {
    if (key === null || key === undefined) return [];
    let c = chains.get(key);
    if (!c) {
      c = [...chainOfKey(groups.get(key).parent), key];
      chains.set(key, c);
    }
    return c;
  };
  const top = [...groups.values()].filter((g) => g.parent === null).sort((a, b) => a.first - b.first).map((g) => g.key);
  m = { groups, top, any: groups.size > 0, innermost, chainOfKey, chainOf: (id) => chainOfKey(innermost.get(id) ?? null) };
  cache.set(trace, m);
  return m;
}

const newGroup = (fields) => ({
  path: null, call: null, className: "", parent: null, children: [], nodes: [], params: [], inputs: [], outputs: [],
  iteration: null, loop: null, depth: 0, ops: 0, first: Infinity, last: -Infinity, from: null, to: null, of: null, ...fields,
});

const moduleKey = (path, call) => `m:${path}#${call ?? 0}`;
const iterationKey = (loop, iteration) => `it:${loop ?? 0}:${iteration}`;

/**
 * One group per module call (a module never called has none). Trace.modules lists them by module,
 * then by call; a call's parent is the call of the parent module that was running: calls of a module
 * follow one another, so when each call of the parent makes the same number r of calls of the child,
 * child call j ran inside parent call floor(j / r) (otherwise, the parent's last call that could hold it).
 */
function moduleGroups(trace, groups) {
  const called = (trace.modules || []).filter((mod) => mod.call !== null && mod.call !== undefined);
  const calls = new Map(); // path -> number of calls
  for (const mod of called) calls.set(mod.path, Math.max(calls.get(mod.path) ?? 0, mod.call + 1));
  const parentPath = new Map((trace.modules || []).map((mod) => [mod.path, mod.parent ?? null]));
  // A container that is never called itself (nn.ModuleList) holds no call: its modules belong to the nearest called one above.
  const calledAbove = (path) => {
    let p = parentPath.get(path) ?? null;
    while (p !== null && !calls.has(p)) p = parentPath.get(p) ?? null;
    return p;
  };
  for (const mod of called) {
    let parent = null;
    const above = calledAbove(mod.path);
    const n = calls.get(above);
    if (above !== null && n) {
      const r = calls.get(mod.path) % n === 0 ? calls.get(mod.path) / n : 0;
      parent = moduleKey(above, r ? Math.floor(mod.call / r) : Math.min(mod.call, n - 1));
    }
    const key = moduleKey(mod.path, mod.call);
    groups.set(key, newGroup({
      key, kind: "module", path: mod.path, call: mod.call, className: mod.class_name ?? "", parent,
      params: [...(mod.params || [])], inputs: [...(mod.inputs || [])], outputs: [...(mod.outputs || [])],
    }));
  }
}

/** A node's innermost group: its module call, else its loop iteration (made on first sight), else none. */
function homeGroup(n, groups) {
  let iter = null;
  if (n.iteration !== null && n.iteration !== undefined) {
    iter = iterationKey(n.loop, n.iteration);
    if (!groups.has(iter)) {
      groups.set(iter, newGroup({ key: iter, kind: "iteration", iteration: n.iteration, loop: n.loop ?? null }));
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

/**
 * Levels with more than CHUNK_ABOVE members (operations and groups; leaves and constants stay where
 * they are, drawn where they are used) get chunks of CHUNK consecutive members, in program order.
 */
function chunkLevels(groups, innermost, nodes) {
  const kinds = new Map(nodes.map((n) => [n.id, n.kind]));
  const firstOf = new Map();
  for (const n of nodes) {
    for (let key = innermost.get(n.id); key !== null && key !== undefined; key = groups.get(key).parent) {
      if (!firstOf.has(key) || firstOf.get(key) > n.id) firstOf.set(key, n.id);
    }
  }
  const levels = new Map(); // parent key ("" for the top) -> members [{id} | {group}]
  const at = (parent) => levels.get(parent ?? "") ?? levels.set(parent ?? "", []).get(parent ?? "");
  for (const n of nodes) if (kinds.get(n.id) === "op") at(innermost.get(n.id)).push({ id: n.id, first: n.id });
  for (const g of groups.values()) at(g.parent).push({ group: g.key, first: firstOf.get(g.key) ?? Infinity });
  for (const [parentKey, members] of levels) {
    if (members.length <= CHUNK_ABOVE) continue;
    members.sort((a, b) => a.first - b.first);
    const parent = parentKey === "" ? null : parentKey;
    const iterations = members.every((m) => m.group && groups.get(m.group).kind === "iteration");
    for (let i = 0, c = 0; i < members.length; i += CHUNK, c++) {
      const part = members.slice(i, i + CHUNK);
      // What the chunk holds, for its label: iterations a to b of the loop, or operations a to b of the level.
      const range = iterations ? [groups.get(part[0].group).iteration, groups.get(part[part.length - 1].group).iteration] : [i + 1, i + part.length];
      const key = `c:${parent ?? ""}:${c}`;
      groups.set(key, newGroup({ key, kind: "chunk", parent, from: range[0], to: range[1], of: iterations ? "iterations" : "ops" }));
      for (const m of part) {
        if (m.group) groups.get(m.group).parent = key;
        else {
          innermost.set(m.id, key);
          groups.get(key).nodes.push(m.id);
        }
      }
    }
    if (parent !== null) groups.get(parent).nodes = groups.get(parent).nodes.filter((id) => innermost.get(id) === parent);
  }
}

/** Children lists in program order, depths, operation counts and each group's first and last node. */
function finishTree(groups, nodes) {
  const kinds = new Map(nodes.map((n) => [n.id, n.kind]));
  for (const g of groups.values()) {
    g.children = [];
    g.ops = g.nodes.filter((id) => kinds.get(id) === "op").length;
    for (const id of g.nodes) (g.first = Math.min(g.first, id)), (g.last = Math.max(g.last, id));
  }
  const depth = (g) => (g.parent === null ? 0 : 1 + depth(groups.get(g.parent)));
  for (const g of groups.values()) g.depth = depth(g);
  const numel = new Map(nodes.map((n) => [n.id, (n.shape || []).reduce((a, b) => a * b, 1)]));
  for (const g of groups.values()) g.allParams = g.kind === "module" ? [...g.params] : [];
  for (const g of [...groups.values()].sort((a, b) => b.depth - a.depth)) {
    g.paramCount = [...new Set(g.allParams)].reduce((sum, id) => sum + (numel.get(id) ?? 0), 0);
    if (g.parent === null) continue;
    const p = groups.get(g.parent);
    if (p.kind === "module") p.allParams.push(...g.allParams);
    p.ops += g.ops;
    p.first = Math.min(p.first, g.first);
    p.last = Math.max(p.last, g.last);
  }
  const ordered = [...groups.values()].sort((a, b) => a.first - b.first);
  for (const g of ordered) if (g.parent !== null) groups.get(g.parent).children.push(g.key);
}

/** The node a closed group's box shows as its result: a module call's (last) output, else the last node made in it. */
export function resultOf(group) {
  return group.outputs?.length ? group.outputs[group.outputs.length - 1] : group.last;
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
 * module when it is one of its parameters; in each iteration (or chunk) that uses it when it was made
 * before the loop (a weight used by every step is drawn in each); else where it was made.
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
  if (p < chain.length && model.groups.get(chain[p]).kind !== "module") return chain[p]; // an iteration or a chunk
  return p ? chain[p - 1] : null;
}

/** node id -> the path of the module whose own parameter it is. */
export function paramPaths(model) {
  const out = new Map();
  for (const g of model.groups.values()) for (const id of g.params) if (!out.has(id)) out.set(id, g.path);
  return out;
}
