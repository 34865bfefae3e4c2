// Which groups a graph opens with: the level that fits the pane at a readable size. Every group that
// is the only one of its level, or a container with no operations of its own (nn.Sequential,
// ModuleList), opens; so does the first iteration of each top-level loop (the others stay closed, so
// that a training loop reads as its steps). Then groups open in order,
// outermost first, while their boxes still fit the pane at zoom READABLE_ZOOM. A graph without
// groups (the seed's programs) is shown whole. Pure: an estimate by area, no layout.

import { groupModel } from "./groups.js";
import { READABLE_ZOOM, groupSize } from "./labels.js";
import { nodeIndex } from "./timeline.js";

const AVERAGE_BOX_PX2 = 130 * 58; // an op's box, as labels.js sizes the usual ones
const SPACING = 3.2; // laid-out area per px² of box (gaps, layers, edges), measured on the example models

/** The keys of the groups to open first, for a pane of {width, height} px at box scale `scale`. */
export function openLevel(trace, pane, scale = 1) {
  const model = groupModel(trace);
  const open = new Set();
  if (!model.any) return open;
  const nodes = nodeIndex(trace);
  const zoom = READABLE_ZOOM / scale;
  const budget = (pane.width * pane.height) / (zoom * zoom) / SPACING;
  // An estimate: a box of average size per operation (leaves and constants are drawn where they are used).
  const opArea = (id) => (nodes.get(id)?.kind === "op" ? AVERAGE_BOX_PX2 * scale * scale : 0);
  const boxArea = (key) => {
    const { w, h } = groupSize(model.groups.get(key), nodes, scale);
    return w * h;
  };
  const inside = (key) => {
    const g = model.groups.get(key);
    return g.nodes.reduce((s, id) => s + opArea(id), 0) + g.children.reduce((s, c) => s + boxArea(c), 0);
  };
  const rootNodes = (trace.nodes || []).filter((n) => model.innermost.get(n.id) == null);
  let area = rootNodes.reduce((s, n) => s + opArea(n.id), 0) + model.top.reduce((s, k) => s + boxArea(k), 0);
  // The first iteration of each loop, and the first chunk of each level split into chunks.
  const firstOf = new Map();
  for (const g of model.groups.values()) {
    const series = g.kind === "iteration" ? `it:${g.loop}` : g.kind === "chunk" ? `c:${g.parent}` : null;
    if (series && !(firstOf.get(series)?.first <= g.first)) firstOf.set(series, g);
  }
  const queue = [...model.top];
  const levelOf = (key) => (model.groups.get(key).parent === null ? model.top : model.groups.get(model.groups.get(key).parent).children);
  for (let qi = 0; qi < queue.length; qi++) {
    const key = queue[qi];
    const g = model.groups.get(key);
    const alone = levelOf(key).length === 1;
    const container = !g.nodes.some((id) => nodes.get(id)?.kind === "op") && g.children.length > 0;
    const first = [...firstOf.values()].includes(g);
    if ((g.kind === "iteration" || g.kind === "chunk") && !first) continue; // the first shows a step of the loop; the rest stay one box each
    const cost = inside(key) - boxArea(key);
    if (!(alone || container || first || area + cost <= budget)) continue;
    open.add(key);
    area += cost;
    queue.push(...g.children);
  }
  return open;
}
