// Layered (Sugiyama-style) layout of the autograd graph, pure and deterministic: the same trace
// always gets the same positions. Linear-time passes only, so 5,000 nodes lay out in well under a
// second; a leaf that feeds consumers far apart (a weight shared by every step of a recurrence) is
// drawn once per use as linked copies, which keeps edges short and the layering cheap.
// Runs in layout_worker.js in the page, and directly under node --test.

import { nodeSize } from "./labels.js";

const GAP_X = 28;
const GAP_Y = 46;
const SWEEPS = 4;
const COPY_SPAN = 2; // a shared leaf whose consumers are more than this many layers apart is copied

/**
 * layout(trace, {direction: "TB"|"LR", scale: 1}) ->
 * {items: [{key, id, copy, copies, x, y, w, h, layer}], edges: [{key, source, target, slot, from, to, points}],
 *  width, height, direction, scale}
 * x, y are box centres; points run from the source box to the target box. `scale` multiplies the boxes
 * (presentation mode's larger text), not the gaps between them.
 */
export function layout(trace, options = {}) {
  const direction = options.direction === "LR" ? "LR" : "TB";
  const scale = Number(options.scale) > 0 ? Number(options.scale) : 1;
  const nodes = trace.nodes || [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edges = (trace.edges || []).filter((e) => byId.has(e.source) && byId.has(e.target) && e.source !== e.target);

  const ins = new Map(nodes.map((n) => [n.id, []]));
  const outs = new Map(nodes.map((n) => [n.id, []]));
  const edgeIndex = new Map();
  edges.forEach((e, ei) => {
    ins.get(e.target).push(e);
    outs.get(e.source).push(e);
    edgeIndex.set(e, ei);
  });
  const isSource = (n) => ins.get(n.id).length === 0 && n.kind !== "op";

  // 1. Layers of the op nodes: longest path from the inputs (Kahn's order; cycles cannot occur in
  //    autograd, but a cut is still made safely if they do).
  const layerOf = new Map();
  const indeg = new Map();
  for (const n of nodes) if (!isSource(n)) indeg.set(n.id, ins.get(n.id).filter((e) => !isSource(byId.get(e.source))).length);
  const queue = [];
  for (const n of nodes) if (!isSource(n) && indeg.get(n.id) === 0) queue.push(n.id);
  for (let qi = 0; qi < queue.length; qi++) {
    const id = queue[qi];
    let l = 1;
    for (const e of ins.get(id)) if (layerOf.has(e.source)) l = Math.max(l, layerOf.get(e.source) + 1);
    layerOf.set(id, l);
    for (const e of outs.get(id)) {
      if (!indeg.has(e.target)) continue;
      const d = indeg.get(e.target) - 1;
      indeg.set(e.target, d);
      if (d === 0) queue.push(e.target);
    }
  }
  let maxLayer = 1;
  for (const l of layerOf.values()) maxLayer = Math.max(maxLayer, l);
  for (const n of nodes) if (!isSource(n) && !layerOf.has(n.id)) layerOf.set(n.id, ++maxLayer);

  // 2. Items: one per op node, one per source node, or one per use when its uses are far apart.
  const items = [];
  const itemOf = new Map(); // node id -> item index (first copy)
  const edgeSourceItem = new Array(edges.length);
  const addItem = (n, layer, copy) => {
    const { w, h } = nodeSize(n, scale);
    items.push({ key: copy ? `${n.id}:${copy}` : `${n.id}`, id: n.id, copy, copies: 1, layer, w, h, x: 0, y: 0 });
    return items.length - 1;
  };
  for (const n of nodes) {
    if (!isSource(n)) {
      itemOf.set(n.id, addItem(n, layerOf.get(n.id), 0));
      continue;
    }
    const uses = outs.get(n.id);
    let lo = Infinity;
    let hi = -Infinity;
    for (const e of uses) {
      lo = Math.min(lo, layerOf.get(e.target));
      hi = Math.max(hi, layerOf.get(e.target));
    }
    if (!uses.length) lo = hi = 1;
    if (uses.length > 1 && hi - lo > COPY_SPAN) {
      const first = items.length;
      uses.forEach((e, k) => {
        const idx = addItem(n, layerOf.get(e.target) - 1, k);
        edgeSourceItem[edgeIndex.get(e)] = idx;
      });
      for (let i = first; i < items.length; i++) items[i].copies = uses.length;
      itemOf.set(n.id, first);
    } else {
      itemOf.set(n.id, addItem(n, lo - 1, 0));
    }
  }
  // Shift so the top layer is 0.
  let minLayer = Infinity;
  for (const it of items) minLayer = Math.min(minLayer, it.layer);
  for (const it of items) it.layer -= minLayer;
  const nLayers = items.reduce((m, it) => Math.max(m, it.layer + 1), 1);

  // 3. Long edges get a dummy item per layer they cross (zero-size, for ordering and routing).
  const chains = []; // per edge: item indices from source to target
  const up = items.map(() => []); // neighbours in the layer above
  const down = items.map(() => []);
  edges.forEach((e, ei) => {
    const s = edgeSourceItem[ei] ?? itemOf.get(e.source);
    const t = itemOf.get(e.target);
    const chain = [s];
    let prev = s;
    for (let l = items[s].layer + 1; l < items[t].layer; l++) {
      items.push({ key: `d${ei}:${l}`, id: null, dummy: true, layer: l, w: 0, h: 0, x: 0, y: 0 });
      up.push([]);
      down.push([]);
      const d = items.length - 1;
      down[prev].push(d);
      up[d].push(prev);
      chain.push(d);
      prev = d;
    }
    if (items[t].layer > items[prev].layer) {
      down[prev].push(t);
      up[t].push(prev);
    }
    chain.push(t);
    chains.push(chain);
  });

  // 4. Order within layers: start from visit order, then barycentre sweeps down and up.
  const layers = Array.from({ length: nLayers }, () => []);
  items.forEach((it, i) => layers[it.layer].push(i));
  const pos = new Float64Array(items.length);
  const setPos = () => layers.forEach((L) => L.forEach((i, k) => (pos[i] = k)));
  setPos();
  const key = new Float64Array(items.length);
  const sweep = (L, nb) => {
    for (const i of L) {
      const ns = nb[i];
      if (ns.length) {
        let s = 0;
        for (const j of ns) s += pos[j];
        key[i] = s / ns.length;
      } else key[i] = pos[i];
    }
    L.sort((a, b) => key[a] - key[b] || pos[a] - pos[b]);
    L.forEach((i, k) => (pos[i] = k));
  };
  for (let it = 0; it < SWEEPS; it++) {
    for (let l = 1; l < nLayers; l++) sweep(layers[l], up);
    for (let l = nLayers - 2; l >= 0; l--) sweep(layers[l], down);
  }

  // 5. Coordinates across the layer: pack, then pull each item toward its neighbours' centre while
  //    keeping order and gaps (a few alternating passes, each linear in the graph).
  const X = new Float64Array(items.length);
  const across = (it) => (direction === "TB" ? it.w : it.h);
  for (const L of layers) {
    let x = 0;
    for (const i of L) {
      X[i] = x + across(items[i]) / 2;
      x += across(items[i]) + GAP_X;
    }
  }
  const place = (L) => {
    const want = L.map((i) => {
      const ns = up[i].concat(down[i]);
      if (!ns.length) return X[i];
      let s = 0;
      for (const j of ns) s += X[j];
      return s / ns.length;
    });
    // Resolve overlaps: left to right, then right to left, meeting at the desired positions.
    const n = L.length;
    const xs = want.slice();
    const half = (k) => across(items[L[k]]) / 2;
    for (let k = 1; k < n; k++) xs[k] = Math.max(xs[k], xs[k - 1] + half(k - 1) + half(k) + GAP_X);
    const ys = want.slice();
    for (let k = n - 2; k >= 0; k--) ys[k] = Math.min(ys[k], ys[k + 1] - half(k + 1) - half(k) - GAP_X);
    for (let k = 0; k < n; k++) X[L[k]] = (xs[k] + ys[k]) / 2;
    for (let k = 1; k < n; k++) X[L[k]] = Math.max(X[L[k]], X[L[k - 1]] + half(k - 1) + half(k) + GAP_X);
  };
  for (let it = 0; it < 3; it++) {
    for (let l = 0; l < nLayers; l++) place(layers[l]);
    for (let l = nLayers - 1; l >= 0; l--) place(layers[l]);
  }

  // 6. Layer positions along the flow; normalise to start at a margin.
  const thick = layers.map((L) => L.reduce((m, i) => Math.max(m, direction === "TB" ? items[i].h : items[i].w), 0));
  const Y = new Float64Array(nLayers);
  let y = 0;
  for (let l = 0; l < nLayers; l++) {
    Y[l] = y + thick[l] / 2;
    y += thick[l] + (thick[l] ? GAP_Y : GAP_Y / 2);
  }
  let minX = Infinity;
  let maxX = -Infinity;
  items.forEach((it, i) => {
    minX = Math.min(minX, X[i] - across(it) / 2);
    maxX = Math.max(maxX, X[i] + across(it) / 2);
  });
  if (!items.length) minX = maxX = 0;
  const M = 16;
  items.forEach((it, i) => {
    const a = X[i] - minX + M;
    const b = Y[it.layer] + M;
    if (direction === "TB") {
      it.x = a;
      it.y = b;
    } else {
      it.x = b;
      it.y = a;
    }
  });
  const extentA = maxX - minX + 2 * M;
  const extentB = y - GAP_Y + 2 * M;

  const outEdges = edges.map((e, ei) => {
    const chain = chains[ei];
    const s = items[chain[0]];
    const t = items[chain[chain.length - 1]];
    const points = chain.map((i) => [items[i].x, items[i].y]);
    // From the source box's far side to the target box's near side.
    if (direction === "TB") {
      points[0] = [s.x, s.y + s.h / 2];
      points[points.length - 1] = [t.x, t.y - t.h / 2];
    } else {
      points[0] = [s.x + s.w / 2, s.y];
      points[points.length - 1] = [t.x - t.w / 2, t.y];
    }
    return { key: `${s.key}>${t.key}:${e.slot}`, source: e.source, target: e.target, slot: e.slot, from: s.key, to: t.key, points };
  });
  const real = items.filter((it) => !it.dummy);
  return {
    direction,
    scale,
    items: real,
    edges: outEdges,
    width: direction === "TB" ? extentA : extentB,
    height: direction === "TB" ? extentB : extentA,
  };
}
