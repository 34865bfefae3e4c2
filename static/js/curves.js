// A training loop as curves: the loss (each backward pass's scalar root) and each parameter's gradient
// norm, one point per iteration. Pure: from the trace document alone (chart.js draws it).

import { flat, num } from "./values.js";
import { passStarts } from "./timeline.js";

const MAX_SERIES = 8; // parameters drawn; a model with more shows its largest gradients

/** The gradient a backward step sent to its node: {value, stats} (a version-2 step refers to Trace.tensors). */
export function stepGradient(trace, step) {
  if ((trace.version ?? 1) >= 2) {
    const i = Array.isArray(step.grad) ? step.grad[0] : null;
    const t = i === null || i === undefined ? null : trace.tensors?.[i];
    return { value: t?.value ?? null, stats: t?.stats ?? null };
  }
  return { value: step.grad ?? null, stats: step.grad_stats ?? null };
}

/** ‖g‖₂ from the values, or from the stats where only those were kept: Σx² = (n−1)·std² + n·mean². */
export function norm({ value, stats }) {
  if (value !== null && value !== undefined) {
    const xs = flat(value);
    return Math.sqrt(xs.reduce((s, x) => s + x * x, 0));
  }
  if (stats && num(stats.std) >= 0 && Number.isFinite(num(stats.mean))) {
    const n = stats.numel;
    return Math.sqrt(Math.max(0, (n - 1) * num(stats.std) ** 2 + n * num(stats.mean) ** 2));
  }
  return null;
}

const scalarOf = (v) => (Array.isArray(v) ? (flat(v).length === 1 ? flat(v)[0] : null) : v === null || v === undefined ? null : num(v));

/**
 * The curves of a training loop, or null when the trace is not one (fewer than two passes with a scalar
 * root, or no loop: neither `Pass.iteration` nor an in-place update of a leaf between passes).
 * {points: [{iteration, pass, step, loss}], series: [{name, norms: [number|null per point]}]}
 */
export function curves(trace) {
  const nodes = new Map(trace.nodes.map((n) => [n.id, n]));
  const passes = (trace.passes || []).filter((p) => !p.error && p.root !== null && p.root !== undefined);
  const losses = passes.map((p) => scalarOf(nodes.get(p.root)?.value));
  const looped = passes.some((p) => p.iteration !== null && p.iteration !== undefined) || (trace.events || []).some((e) => e.kind === "update");
  if (passes.length < 2 || !looped || losses.some((l) => l === null)) return null;
  // One point per iteration (the last pass of it), or per pass where the trace has no iterations.
  const chosen = new Map();
  passes.forEach((p, i) => chosen.set(p.iteration ?? `pass ${p.index}`, i));
  const starts = new Map(passStarts(trace).map((s) => [s.pass, s.step]));
  const points = [...chosen.values()].map((i, k) => ({
    iteration: passes[i].iteration ?? k + 1,
    pass: passes[i].index,
    step: starts.get(passes[i].index) ?? 0,
    loss: losses[i],
  }));
  const byName = new Map();
  points.forEach((pt, k) => {
    const pass = passes.find((p) => p.index === pt.pass);
    for (const step of pass.steps) {
      const node = nodes.get(step.node);
      if (node?.kind !== "leaf") continue;
      const name = node.name ?? node.label;
      const s = byName.get(name) ?? byName.set(name, { name, norms: points.map(() => null) }).get(name);
      s.norms[k] = norm(stepGradient(trace, step));
    }
  });
  const biggest = (s) => Math.max(0, ...s.norms.filter((x) => x !== null && Number.isFinite(x)));
  const series = [...byName.values()].sort((a, b) => biggest(b) - biggest(a)).slice(0, MAX_SERIES);
  return { points, series: series.sort((a, b) => (a.name < b.name ? -1 : 1)) };
}

/** The point of the iteration the frame is in: its pass while one runs, else the last pass begun by then. */
export function currentPoint(c, f) {
  if (!c || !f) return -1;
  const pass = f.pass?.index;
  if (pass !== undefined) {
    const k = c.points.findIndex((p) => p.pass === pass);
    if (k >= 0) return k;
  }
  let at = -1;
  c.points.forEach((p, k) => {
    if (p.step <= f.step) at = k;
  });
  return at;
}
