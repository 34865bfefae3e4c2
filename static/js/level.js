// Which groups a graph opens with: the level that fits the pane at a readable size. Every group that
// is the only one of its level, or a container with no operations of its own (nn.Sequential,
// ModuleList), opens; so does the first iteration of each top-level loop (the others stay closed, so
// that a training loop reads as its steps). Then groups open in order,
// outermost first, while their boxes still fit the pane at zoom READABLE_ZOOM. A graph without
// groups (the seed's programs) is shown whole. Pure: an estimate by area, no layout.

import { groupModel } from "./groups.js";
import { READABLE_ZOOM, groupSize, nodeSize } from "./labels.js";
import { nodeIndex } from "./timeline.js";

const SPACING = 3.2; // laid-out area per px² of box (gaps, layers, edges), measured on the example models

/** The keys of the groups to open first, for a pane of {width, height} px at box scale `scale`. */
export function openLevel(trace, pane, scale = 1) {
  const model = groupModel(trace);
  const open = new Set();
  if (!model.any) return open;
  const nodes = nodeIndex(trace);
  const zoom = READABLE_ZOOM / scale;
  const budget = (pane.width * pane.height) / (zoom * zoom) / SPACING;
  const nodeArea = (id) => {
    const { w, h } = nodeSize(nodes.get(id), scale);
    return w * h;
  };
  const boxArea = (key) => {
    const { w, h } = groupSize(model.groups.get(key), nodes, scale);
    return w * h;
  };
  const inside = (key) => {
    const g = model.groups.get(key);
    return g.nodes.reduce((s, id) => s + nodeArea(id), 0) + g.children.reduce((s, c) => s + boxArea(c), 0);
  };
  const rootNodes = (trace.nodes || []).filter((n) => model.innermost.get(n.id) == null);
  let area = rootNodes.reduce((s, n) => s + nodeArea(n.id), 0) + model.top.reduce((s, k) => s + boxArea(k), 0);
  const firstIteration = new Map();
  for (const g of model.groups.values()) {
    if (g.kind === "iteration" && !(firstIteration.get(g.loop)?.iteration <= g.iteration)) firstIteration.set(g.loop, g);
  }
  const queue = [...model.top];
  const levelOf = (key) => (model.groups.get(key).parent === null ? model.top : model.groups.get(model.groups.get(key).parent).children);
  for (let qi = 0; qi < queue.length; qi++) {
    const key = queue[qi];
    const g = model.groups.get(key);
    const alone = levelOf(key).length === 1;
    const container = !g.nodes.some((id) => nodes.get(id)?.kind === "op") && g.children.length > 0;
    const first = firstIteration.get(g.loop) === g;
    if (g.kind === "iteration" && !first) continue; // the first one shows a step of the loop; the rest stay one box each
    const cost = inside(key) - boxArea(key);
    if (!(alone || container || first || area + cost <= budget)) continue;
    open.add(key);
    area += cost;
    queue.push(...g.children);
  }
  return open;
}
