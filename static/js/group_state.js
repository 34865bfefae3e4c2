// What each closed group's box shows at a frame, for render.js to paint: how many of the nodes it
// stands for exist, whether it holds the current one, and how many of a pass's steps inside it are
// done of all. Made once per drawing (which groups are closed), then answered per frame by binary
// searches in each group's sorted steps, not by a walk over every node (20,000 of them) per step.

import { closedAround } from "./groups.js";
import { firstSteps } from "./timeline.js";

export class GroupState {
  /** drawn(id): whether node `id` has its own box; `open`: the groups drawn open (a Set of keys). */
  constructor(trace, model, drawn, open) {
    this.trace = trace;
    this.model = model;
    this.drawn = drawn;
    this.open = open;
    this.hiddenIn = null;
    this.presentIn = null;
    this.passSteps = new Map();
  }

  /** Group key -> {present, current, done, steps} at frame f (done and steps while a pass is shown backward). */
  at(f, backward) {
    const state = new Map();
    if (!this.model.any) return state;
    const at = (key) => state.get(key) ?? state.set(key, { present: 0, current: false, done: 0, steps: 0 }).get(key);
    for (const [key, steps] of this._presentSteps()) {
      const n = countUpTo(steps, f.step);
      if (n) at(key).present = n;
    }
    for (const id of f.current) {
      for (const key of this.model.chainOf(id)) at(key).current = true;
    }
    if (backward && f.pass) {
      for (const [key, indices] of this._stepsIn(f.pass.index)) {
        at(key).steps = indices.length;
        const n = countUpTo(indices, f.done.length - 1); // f.done: the nodes of the pass's first steps
        if (n) at(key).done = n;
      }
    }
    return state;
  }

  /** node id -> the closed group drawn for it, for every node not drawn itself. */
  hidden() {
    if (!this.hiddenIn) {
      this.hiddenIn = new Map();
      for (const n of this.trace.nodes || []) {
        if (this.drawn(n.id)) continue;
        const key = closedAround(this.model, n.id, this.open);
        if (key) this.hiddenIn.set(n.id, key);
      }
    }
    return this.hiddenIn;
  }

  /** Closed group -> the sorted steps at which its nodes appear. */
  _presentSteps() {
    if (!this.presentIn) {
      this.presentIn = new Map();
      const since = firstSteps(this.trace);
      for (const [id, key] of this.hidden()) {
        if (!since.has(id)) continue;
        (this.presentIn.get(key) ?? this.presentIn.set(key, []).get(key)).push(since.get(id));
      }
      for (const steps of this.presentIn.values()) steps.sort((a, b) => a - b);
    }
    return this.presentIn;
  }

  /** Closed group -> the indices of the steps of pass `passIndex` that run inside it, sorted. */
  _stepsIn(passIndex) {
    let m = this.passSteps.get(passIndex);
    if (m) return m;
    m = new Map();
    const pass = (this.trace.passes || []).find((p) => p.index === passIndex);
    (pass?.steps || []).forEach((s, i) => {
      const key = this.hidden().get(s.node);
      if (key) (m.get(key) ?? m.set(key, []).get(key)).push(i);
    });
    this.passSteps.set(passIndex, m);
    return m;
  }
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
