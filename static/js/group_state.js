// What each closed group's box shows at a frame, for render.js to paint: how many of the nodes it
// stands for exist, whether it holds the current one, and how many of a pass's steps inside it are
// done of all. Answered per frame by binary searches in sorted steps, not by a walk over every node
// (20,000 of them) per step; and made per drawing (which groups are closed) without one either: each
// group's steps (of every node inside it, at any depth) are sorted once per trace, and a drawing only
// subtracts those of the few nodes inside a closed group that have a box of their own.

import { firstSteps } from "./timeline.js";

const NONE = [];
const subtreeCache = new WeakMap(); // trace -> group key -> sorted first steps of the nodes inside it
const passCache = new WeakMap(); // trace -> pass index -> group key -> sorted indices of the pass's steps inside it

export class GroupState {
  /** drawn: the ids of the nodes that have their own box (a Map or Set); `open`: the groups drawn open (a Set of keys). */
  constructor(trace, model, drawn, open) {
    this.trace = trace;
    this.model = model;
    this.drawn = drawn;
    this.open = open;
    this.closed = null;
    this.own = null;
    this.ownPass = new Map();
  }

  /** Group key -> {present, current, done, steps} at frame f (done and steps while a pass is shown backward). */
  at(f, backward) {
    const state = new Map();
    if (!this.model.any) return state;
    const at = (key) => state.get(key) ?? state.set(key, { present: 0, current: false, done: 0, steps: 0 }).get(key);
    const all = subtreeSteps(this.trace, this.model);
    const own = this._own();
    for (const key of this._closed()) {
      const n = countUpTo(all.get(key) ?? NONE, f.step) - countUpTo(own.get(key) ?? NONE, f.step);
      if (n) at(key).present = n;
    }
    for (const id of f.current) {
      for (const key of this.model.chainOf(id)) at(key).current = true;
    }
    if (backward && f.pass) {
      const inPass = passSteps(this.trace, this.model, f.pass.index);
      const ownPass = this._ownPass(f.pass.index);
      const last = f.done.length - 1; // f.done: the nodes of the pass's first steps
      for (const key of this._closed()) {
        const [steps, mine] = [inPass.get(key) ?? NONE, ownPass.get(key) ?? NONE];
        if (steps.length === mine.length) continue;
        at(key).steps = steps.length - mine.length;
        const n = countUpTo(steps, last) - countUpTo(mine, last);
        if (n) at(key).done = n;
      }
    }
    return state;
  }

  /** The groups drawn closed: not open, inside open ones only. */
  _closed() {
    if (!this.closed) {
      this.closed = [];
      const walk = (keys) => {
        for (const key of keys) {
          if (this.open.has(key)) walk(this.model.groups.get(key).children);
          else this.closed.push(key);
        }
      };
      walk(this.model.top);
    }
    return this.closed;
  }

  /** The closed group each node with a box of its own is inside, if any (a leaf drawn where it is used). */
  _ownGroups() {
    const out = [];
    for (const id of this.drawn.keys()) {
      const key = this.model.chainOf(id).find((k) => !this.open.has(k));
      if (key) out.push([id, key]);
    }
    return out;
  }

  /** Closed group -> the sorted first steps of the nodes inside it that have their own box (not stood for by it). */
  _own() {
    if (!this.own) {
      this.own = new Map();
      const since = firstSteps(this.trace);
      for (const [id, key] of this._ownGroups()) if (since.has(id)) push(this.own, key, since.get(id));
      for (const steps of this.own.values()) steps.sort((a, b) => a - b);
    }
    return this.own;
  }

  /** Closed group -> the sorted indices of pass `passIndex`'s steps on nodes inside it that have their own box. */
  _ownPass(passIndex) {
    let m = this.ownPass.get(passIndex);
    if (m) return m;
    m = new Map();
    const mine = new Map(this._ownGroups());
    const pass = (this.trace.passes || []).find((p) => p.index === passIndex);
    (pass?.steps || []).forEach((s, i) => mine.has(s.node) && push(m, mine.get(s.node), i));
    this.ownPass.set(passIndex, m);
    return m;
  }
}

function push(map, key, value) {
  (map.get(key) ?? map.set(key, []).get(key)).push(value);
}

/** Group key -> the sorted first steps of every node inside it (at any depth), once per trace. */
function subtreeSteps(trace, model) {
  let m = subtreeCache.get(trace);
  if (m) return m;
  m = new Map();
  const since = firstSteps(trace);
  for (const n of trace.nodes || []) {
    if (!since.has(n.id)) continue;
    for (const key of model.chainOf(n.id)) push(m, key, since.get(n.id));
  }
  for (const steps of m.values()) steps.sort((a, b) => a - b);
  subtreeCache.set(trace, m);
  return m;
}

/** Group key -> the indices of pass `passIndex`'s steps on nodes inside it (at any depth), ascending; once per trace and pass. */
function passSteps(trace, model, passIndex) {
  const byPass = passCache.get(trace) ?? passCache.set(trace, new Map()).get(trace);
  let m = byPass.get(passIndex);
  if (m) return m;
  m = new Map();
  const pass = (trace.passes || []).find((p) => p.index === passIndex);
  (pass?.steps || []).forEach((s, i) => {
    for (const key of model.chainOf(s.node)) push(m, key, i);
  });
  byPass.set(passIndex, m);
  return m;
}

/** How many of the sorted numbers `sorted` are <= x. */
function countUpTo(sorted, x) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
