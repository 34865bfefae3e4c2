// A layered (Sugiyama-style) layout of one level of a graph, pure and deterministic: the same input
// always gets the same positions. It knows boxes and links, not traces (layout.js turns a trace, or
// one open level of its modules, into those). Linear-time passes only. Steps, one function each:
//   layers    longest path from the inputs, then each box pulled down next to its first consumer
//             (a loop's `W @ x[t]` sits beside step t, not in the top row)
//   sources   leaves go right above their consumers; one used far apart is drawn once per use (copies)
//   dummies   a zero-size box per layer a long link crosses (for ordering and routing)
//   order     barycentre sweeps within layers
//   across    coordinates across the layers, each box pulled toward its neighbours
//   along     coordinates along the flow, layer by layer
//   fold      a graph much longer than the pane is cut into bands laid side by side (columns for
//             top-to-bottom, rows for left-to-right), so that it fills the pane's aspect ratio
//   route     each link's points, through the gap between two bands where it goes on to the next

const GAP_ACROSS = 28;
const GAP_ALONG = 46;
const BAND_GAP = 80; // between folded bands: room for the links that go on to the next band
const SWEEPS = 4;
const COPY_SPAN = 2; // a source whose consumers are more than this many layers apart is copied
const MARGIN = 16;
const OVERSHOOT = 10; // how far past its band's end a link goes before it turns into the gap (< MARGIN)
// A fold must make the drawing at least this much shorter: a level whose length is one tall box (an open
// model in a training step's iteration) gains nothing, and its links would climb back to the next band.
const FOLD_LEAST_GAIN = 0.25;

/**
 * layered(boxes, links, {direction, fold}) ->
 *   {boxes: [{key, box, id, copy, copies, layer, x, y, w, h}], links: [{index, from, to, points}], width, height, direction, folded}
 * boxes: [{key, w, h, source?, copyable?}] (source: placed right above its consumers; copyable: drawn
 * once per use when its uses are far apart); links: [{from, to, ...}] as indices into boxes; the
 * output's from/to are the keys of the drawn boxes. x, y are box centres; a link's points run from the
 * source box's far side to the target box's near side. `fold` ({width, height}: the pane, in layout px)
 * folds a graph longer than the pane into bands toward the pane's aspect ratio; without it nothing is folded.
 */
export function layered(boxes, links, options = {}) {
  const direction = options.direction === "LR" ? "LR" : "TB";
  const G = graphOf(boxes, links);
  const layer = assignLayers(G);
  const P = placeSources(G, layer, direction);
  const chains = addDummies(P, links);
  const layers = orderLayers(P);
  const across = (it) => it.a; // an item's size across the layers and along the flow (placeSources)
  const along = (it) => it.b;
  const A = placeAcross(P, layers, across);
  const { B, thick, length } = placeAlong(P, layers, along);
  const pane = options.fold; // {width, height}: fold when longer than this, toward its aspect ratio
  const paneAlong = pane ? (direction === "TB" ? pane.height : pane.width) : Infinity;
  const ratio = pane ? (direction === "TB" ? pane.width / pane.height : pane.height / pane.width) : 0;
  const bands = length > paneAlong ? fold(P, layers, A, B, thick, across, ratio) : null;
  return finish(P, chains, links, { A, B, bands, length, direction, across, along });
}

function graphOf(boxes, links) {
  const ins = boxes.map(() => []);
  const outs = boxes.map(() => []);
  links.forEach((l, li) => {
    if (l.from === l.to) return;
    ins[l.to].push(li);
    outs[l.from].push(li);
  });
  const source = boxes.map((b, i) => Boolean(b.source) && ins[i].length === 0);
  return { boxes, links, ins, outs, source };
}

/** Layers of the non-source boxes: longest path from the inputs (Kahn), then pulled down toward their consumers. */
function assignLayers({ boxes, links, ins, outs, source }) {
  const n = boxes.length;
  const layer = new Int32Array(n).fill(-1);
  const indeg = new Int32Array(n);
  const order = [];
  for (let i = 0; i < n; i++) {
    if (source[i]) continue;
    for (const li of ins[i]) if (!source[links[li].from]) indeg[i]++;
    if (indeg[i] === 0) order.push(i);
  }
  for (let qi = 0; qi < order.length; qi++) {
    const i = order[qi];
    let l = 1;
    for (const li of ins[i]) if (layer[links[li].from] >= 0) l = Math.max(l, layer[links[li].from] + 1);
    layer[i] = l;
    for (const li of outs[i]) {
      const t = links[li].to;
      if (!source[t] && --indeg[t] === 0) order.push(t);
    }
  }
  let max = 1;
  for (const i of order) max = Math.max(max, layer[i]);
  // Cycles cannot occur in autograd; if one does, a cut is still made safely.
  for (let i = 0; i < n; i++) {
    if (!source[i] && layer[i] < 0) {
      layer[i] = ++max;
      order.push(i);
    }
  }
  const asap = layer.slice();
  // Consumers first (reverse topological order): a box far above its first consumer moves down to it.
  for (let qi = order.length - 1; qi >= 0; qi--) {
    const i = order[qi];
    let want = Infinity;
    for (const li of outs[i]) {
      const t = links[li].to;
      if (!source[t] && layer[t] > layer[i]) want = Math.min(want, layer[t] - 1);
    }
    if (want !== Infinity && want - layer[i] > COPY_SPAN) layer[i] = want; // near consumers: as it was
  }
  keepSourcesTogether({ links, ins, outs, source }, layer, asap);
  return layer;
}

/**
 * A leaf most of whose uses stay together (the Jacobian's a, used by four selects in a row and one
 * moved down) stays one box: the few uses moved far from the rest go back up, with what feeds them.
 */
function keepSourcesTogether({ links, ins, outs, source }, layer, asap) {
  const lift = (start, to) => {
    const stack = [[start, to]];
    while (stack.length) {
      const [i, l] = stack.pop();
      if (layer[i] <= l) continue;
      layer[i] = Math.max(asap[i], l);
      for (const li of ins[i]) if (!source[links[li].from]) stack.push([links[li].from, layer[i] - 1]);
    }
  };
  outs.forEach((uses, s) => {
    if (!source[s] || uses.length < 2) return;
    const at = uses.map((li) => layer[links[li].to]);
    const lo = Math.min(...at);
    const near = at.filter((l) => l - lo <= COPY_SPAN).length;
    if (near === at.length || near * 2 < at.length) return;
    for (const li of uses) if (layer[links[li].to] - lo > COPY_SPAN) lift(links[li].to, asap[links[li].to]);
  });
}

/**
 * The boxes to place: every non-source box, and each source once right above its first consumer, or
 * once per use when its consumers are far apart (a weight shared by every step of a recurrence).
 * P: {items, up, down, firstOf, linkFrom}: items with their layer; linkFrom[li] the item a link leaves from.
 */
function placeSources({ boxes, links, outs, source }, layer, direction) {
  const items = [];
  const firstOf = new Int32Array(boxes.length);
  const linkFrom = new Int32Array(links.length).fill(-1);
  const tb = direction === "TB";
  const add = (b, i, l, copy) => {
    const key = copy ? `${b.key}:${copy}` : b.key;
    items.push({ key, box: i, id: b.id, copy, copies: 1, layer: l, w: b.w, h: b.h, a: tb ? b.w : b.h, b: tb ? b.h : b.w, x: 0, y: 0 });
    return items.length - 1;
  };
  boxes.forEach((b, i) => {
    if (!source[i]) {
      firstOf[i] = add(b, i, layer[i], 0);
      return;
    }
    const uses = outs[i];
    let lo = Infinity;
    let hi = -Infinity;
    for (const li of uses) {
      lo = Math.min(lo, layer[links[li].to]);
      hi = Math.max(hi, layer[links[li].to]);
    }
    if (!uses.length) lo = hi = 1;
    if (b.copyable && uses.length > 1 && hi - lo > COPY_SPAN) {
      const first = items.length;
      uses.forEach((li, k) => (linkFrom[li] = add(b, i, layer[links[li].to] - 1, k)));
      for (let k = first; k < items.length; k++) items[k].copies = uses.length;
      firstOf[i] = first;
    } else firstOf[i] = add(b, i, lo - 1, 0);
  });
  let min = Infinity;
  for (const it of items) min = Math.min(min, it.layer);
  for (const it of items) it.layer -= min;
  links.forEach((l, li) => {
    if (linkFrom[li] < 0) linkFrom[li] = firstOf[l.from];
  });
  return { items, firstOf, linkFrom, up: items.map(() => []), down: items.map(() => []), nReal: items.length };
}

/** A zero-size item per layer crossed by a long link; up/down neighbours for ordering. Returns each link's chain of items. */
function addDummies(P, links) {
  const { items, up, down, firstOf, linkFrom } = P;
  return links.map((l, li) => {
    const s = linkFrom[li];
    const t = firstOf[l.to];
    const chain = [s];
    let prev = s;
    for (let k = items[s].layer + 1; k < items[t].layer; k++) {
      items.push({ key: `d${li}:${k}`, box: -1, id: null, copy: 0, copies: 1, layer: k, w: 0, h: 0, a: 0, b: 0, x: 0, y: 0, dummy: true });
      up.push([prev]);
      down.push([]);
      const d = items.length - 1;
      down[prev].push(d);
      chain.push(d);
      prev = d;
    }
    if (items[t].layer > items[prev].layer) {
      down[prev].push(t);
      up[t].push(prev);
    }
    chain.push(t);
    return chain;
  });
}

/** Items by layer, ordered: visit order first, then barycentre sweeps down and up. */
function orderLayers({ items, up, down }) {
  let n = 1;
  for (const it of items) n = Math.max(n, it.layer + 1);
  const layers = Array.from({ length: n }, () => []);
  items.forEach((it, i) => layers[it.layer].push(i));
  const pos = new Float64Array(items.length);
  layers.forEach((L) => L.forEach((i, k) => (pos[i] = k)));
  const key = new Float64Array(items.length);
  const sweep = (L, nb) => {
    for (const i of L) {
      const ns = nb[i];
      let s = 0;
      for (const j of ns) s += pos[j];
      key[i] = ns.length ? s / ns.length : pos[i];
    }
    L.sort((a, b) => key[a] - key[b] || pos[a] - pos[b]);
    L.forEach((i, k) => (pos[i] = k));
  };
  for (let it = 0; it < SWEEPS; it++) {
    for (let l = 1; l < n; l++) sweep(layers[l], up);
    for (let l = n - 2; l >= 0; l--) sweep(layers[l], down);
  }
  return layers;
}

/** Across the layers: packed, then each item pulled toward its neighbours' centre, keeping order and gaps. */
function placeAcross({ items, up, down }, layers, across) {
  const A = new Float64Array(items.length);
  let widest = 0;
  for (const L of layers) {
    let a = 0;
    for (const i of L) {
      A[i] = a + across(items[i]) / 2;
      a += across(items[i]) + GAP_ACROSS;
    }
    widest = Math.max(widest, L.length);
  }
  // Scratch space shared by every layer (a layer is placed many times; allocating per pass costs more than the work).
  const lo = new Float64Array(widest);
  const hi = new Float64Array(widest);
  const half = new Float64Array(widest);
  const place = (L) => {
    const n = L.length;
    for (let k = 0; k < n; k++) {
      const i = L[k];
      half[k] = across(items[i]) / 2;
      const ns = up[i].length + down[i].length;
      let want = A[i];
      if (ns) {
        let s = 0;
        for (const j of up[i]) s += A[j];
        for (const j of down[i]) s += A[j];
        want = s / ns;
      }
      lo[k] = want;
      hi[k] = want;
    }
    // Resolve overlaps: left to right, then right to left, meeting at the desired positions.
    for (let k = 1; k < n; k++) lo[k] = Math.max(lo[k], lo[k - 1] + half[k - 1] + half[k] + GAP_ACROSS);
    for (let k = n - 2; k >= 0; k--) hi[k] = Math.min(hi[k], hi[k + 1] - half[k + 1] - half[k] - GAP_ACROSS);
    for (let k = 0; k < n; k++) A[L[k]] = (lo[k] + hi[k]) / 2;
    for (let k = 1; k < n; k++) A[L[k]] = Math.max(A[L[k]], A[L[k - 1]] + half[k - 1] + half[k] + GAP_ACROSS);
  };
  for (let it = 0; it < 3; it++) {
    for (let l = 0; l < layers.length; l++) place(layers[l]);
    for (let l = layers.length - 1; l >= 0; l--) place(layers[l]);
  }
  return A;
}

/** Along the flow: each layer as thick as its thickest item; B is a layer's centre line. */
function placeAlong({ items }, layers, along) {
  const thick = layers.map((L) => L.reduce((m, i) => Math.max(m, along(items[i])), 0));
  const B = new Float64Array(layers.length);
  let b = 0;
  for (let l = 0; l < layers.length; l++) {
    B[l] = b + thick[l] / 2;
    b += thick[l] + (thick[l] ? GAP_ALONG : GAP_ALONG / 2);
  }
  return { B, thick, length: Math.max(0, b - GAP_ALONG) };
}

/**
 * Cut the layers into bands of about equal length, as many as make the whole about `ratio` times as
 * wide (across) as it is long, and move each band beside the previous one. Changes A and B in place;
 * returns [{start, end, shiftA, shiftB, lo, hi}] (layers [start, end), its extent along: lo..hi) or
 * null when one band fits.
 */
function fold({ items }, layers, A, B, thick, across, ratio) {
  let minA = Infinity;
  let maxA = -Infinity;
  items.forEach((it, i) => {
    minA = Math.min(minA, A[i] - across(it) / 2);
    maxA = Math.max(maxA, A[i] + across(it) / 2);
  });
  const width = Math.max(1, maxA - minA);
  const length = B.length ? B[B.length - 1] + thick[thick.length - 1] / 2 : 0;
  const count = Math.min(layers.length, Math.round(Math.sqrt((ratio * length) / (width + BAND_GAP))));
  if (count < 2) return null;
  const bands = [];
  const per = length / count;
  let start = 0;
  for (let l = 0; l < layers.length; l++) {
    const end = B[l] + thick[l] / 2;
    const last = l === layers.length - 1;
    if (last || (end - B[start] + thick[start] / 2 >= per && bands.length < count - 1)) {
      bands.push({ start, end: l + 1, lo: B[start] - thick[start] / 2, hi: end });
      start = l + 1;
    }
  }
  if (Math.max(...bands.map((band) => band.hi - band.lo)) > (1 - FOLD_LEAST_GAIN) * length) return null;
  const bandOf = new Int32Array(layers.length);
  bands.forEach((band, k) => {
    band.a0 = k * (width + BAND_GAP); // where the band starts across
    band.shiftA = band.a0 - minA;
    band.shiftB = -band.lo;
    for (let l = band.start; l < band.end; l++) {
      bandOf[l] = k;
      B[l] += band.shiftB;
    }
  });
  items.forEach((it, i) => (A[i] += bands[bandOf[it.layer]].shiftA));
  for (const band of bands) band.span = band.hi - band.lo;
  bands.bandOf = bandOf;
  bands.width = width;
  return bands;
}

/** Final coordinates, each link's route, and the extent; dummies dropped. */
function finish(P, chains, links, { A, B, bands, length, direction, across, along }) {
  const { items, nReal } = P;
  let minA = Infinity;
  let maxA = -Infinity;
  items.forEach((it, i) => {
    minA = Math.min(minA, A[i] - across(it) / 2);
    maxA = Math.max(maxA, A[i] + across(it) / 2);
  });
  if (!nReal) minA = maxA = 0;
  const maxB = bands ? Math.max(...bands.map((b) => b.span)) : length;
  const xy = (a, b) => (direction === "TB" ? [a - minA + MARGIN, b + MARGIN] : [b + MARGIN, a - minA + MARGIN]);
  items.forEach((it, i) => ([it.x, it.y] = xy(A[i], B[it.layer])));
  const out = links.map((l, li) => {
    const chain = chains[li];
    const s = items[chain[0]];
    const t = items[chain[chain.length - 1]];
    const ends = { s: along(s) / 2, t: along(t) / 2 };
    return { index: li, from: s.key, to: t.key, points: route(chain, items, A, B, bands, ends, xy) };
  });
  const extentA = maxA - minA + 2 * MARGIN;
  const extentB = maxB + 2 * MARGIN;
  return {
    boxes: items.slice(0, nReal),
    links: out,
    direction,
    folded: bands ? bands.length : 1,
    width: direction === "TB" ? extentA : extentB,
    height: direction === "TB" ? extentB : extentA,
  };
}

/**
 * The points of a link along its chain of items, from the source's far side to the target's near side.
 * Where it goes on to the next band it leaves its band at the far end, crosses in the gap beside it,
 * and comes in at the near end of the next band.
 */
function route(chain, items, A, B, bands, ends, xy) {
  const pts = [];
  const push = (a, b) => pts.push(xy(a, b));
  const first = chain[0];
  const last = chain[chain.length - 1];
  push(A[first], B[items[first].layer] + ends.s);
  for (let k = 1; k < chain.length; k++) {
    const [p, q] = [items[chain[k - 1]], items[chain[k]]];
    const [bp, bq] = bands ? [bands.bandOf[p.layer], bands.bandOf[q.layer]] : [0, 0];
    if (bq > bp) {
      const out = bands[bp].span + OVERSHOOT;
      const gap = bands[bp].a0 + bands.width + BAND_GAP / 2;
      push(A[chain[k - 1]], out);
      push(gap, out);
      push(gap, -OVERSHOOT);
      push(A[chain[k]], -OVERSHOOT);
    }
    if (chain[k] === last) push(A[last], B[q.layer] - ends.t);
    else if (items[chain[k]].dummy) push(A[chain[k]], B[q.layer]);
  }
  if (chain.length === 1) push(A[last], B[items[last].layer] - ends.t);
  return pts;
}
