// The layout of a trace's graph at the level shown: every node whose groups (groups.js: loop iterations,
// module calls) are open is a box sized by its label; a closed group is one box; an open group is a
// frame around its own layout. Each level is laid out by layered.js, children first, so only what is
// shown is laid out. Pure and deterministic (the same trace and open groups always get the same
// positions); runs in layout_worker.js in the page, directly in the offline file, and under node --test.

import { closedAround, groupModel, paramPaths, sourceHome } from "./groups.js";
import { groupSize, nodeSize } from "./labels.js";
import { layered } from "./layered.js";
import { nodeIndex } from "./timeline.js";

const FRAME_PAD = 14; // px inside an open group's frame
const LEVELS_KEPT = 256; // laid-out levels remembered per trace and scale (opening a group reuses the others)
const caches = new WeakMap();

function levelCache(trace, scale) {
  const byScale = caches.get(trace) ?? caches.set(trace, new Map()).get(trace);
  return byScale.get(scale) ?? byScale.set(scale, new Map()).get(scale);
}
const FRAME_HEAD = 24; // px of its title line

/**
 * layout(trace, {direction: "TB"|"LR", scale: 1, open: [group keys] (default: all), fold: {width, height}}) ->
 * {items: [{key, id, copy, copies, x, y, w, h, layer, level}],
 *  groups: [{key, kind, path, open, x, y, w, h, depth}],
 *  edges: [{key, source, target, slot, parts, from, to, points}], width, height, direction, scale, folded}
 * x, y are box centres; an edge's points run from the source box to the target box, `parts` the trace
 * edges it draws ({source, target, slot}; several when it enters or leaves a closed group). `scale`
 * multiplies the boxes (presentation mode's larger text), not the gaps between them; `fold` (the pane in
 * layout px) folds a graph longer than the pane into bands side by side.
 */
export function layout(trace, options = {}) {
  const direction = options.direction === "LR" ? "LR" : "TB";
  const scale = Number(options.scale) > 0 ? Number(options.scale) : 1;
  // Without `open`, every group is open: the whole graph (the viewer passes the level it shows).
  const open = options.open ? new Set(options.open) : new Set(groupModel(trace).groups.keys());
  const ctx = levels(trace, open, scale);
  bucketLinks(ctx);
  const root = layLevel(ctx, null, direction, options.fold || null);
  const out = { direction, scale, folded: root.L.folded, items: [], groups: [], edges: [], width: root.L.width, height: root.L.height };
  const placed = new Map(); // drawn key -> {x, y, w, h} of its first copy
  const routes = new Map(); // level link key -> {from, to, points}
  compose(ctx, root, 0, 0, out, placed, routes);
  out.edges = drawnEdges(ctx, placed, routes, direction);
  const copies = new Map();
  for (const it of out.items) copies.set(it.id, (copies.get(it.id) || 0) + 1);
  for (const it of out.items) it.copies = copies.get(it.id);
  return out;
}

/**
 * What each level holds: ctx.members (level key or "" -> drawn keys), ctx.drawn (key -> {kind, id | group, level}),
 * and the trace edges between drawn boxes (ctx.links: {s, t, source, target, slot}).
 */
function levels(trace, open, scale) {
  const model = groupModel(trace);
  const ctx = { trace, model, nodes: nodeIndex(trace), open, scale, drawn: new Map(), members: new Map(), links: [], buckets: new Map(), cache: levelCache(trace, scale) };
  const plan = placements(trace);
  // The outermost closed group around each home (memoised: homes are few, placements many).
  const closedOf = new Map();
  const closedAround = (home) => {
    let c = closedOf.get(home);
    if (c === undefined) closedOf.set(home, (c = model.chainOfKey(home).find((k) => !open.has(k)) ?? null));
    return c;
  };
  const keyOf = new Array(plan.ids.length).fill(null);
  // The drawn key of placement p: the node's box, or the outermost closed group around it.
  const draw = (p) => {
    if (keyOf[p] !== null) return keyOf[p];
    const home = plan.homes[p];
    const closed = home === null ? null : closedAround(home);
    if (closed) keyOf[p] = member(ctx, plan.groupKey(closed), { kind: "group", group: closed, level: model.groups.get(closed).parent });
    else if (!ctx.drawn.has((keyOf[p] = plan.keys[p]))) member(ctx, keyOf[p], { kind: "node", id: plan.ids[p], level: home });
    return keyOf[p];
  };
  // In visit order, so that each level starts from the program's order.
  for (const p of plan.visits) draw(p);
  for (const e of plan.edges) {
    const s = draw(e.sp);
    const t = draw(e.tp);
    if (s !== t) ctx.links.push({ s, t, source: e.source, target: e.target, slot: e.slot });
  }
  return ctx;
}

const plans = new WeakMap();

/**
 * Every place a node can be drawn (a placement: a node in a group), made once per trace: ids, homes and
 * keys by placement; visits, placements in the program's order; edges, each trace edge's two placements.
 * What depends on the open groups (levels) is then a walk over integers and strings made once.
 */
function placements(trace) {
  let plan = plans.get(trace);
  if (plan) return plan;
  const model = groupModel(trace);
  const nodes = nodeIndex(trace);
  const paramOf = paramPaths(model);
  const index = new Map();
  const groupKeys = new Map();
  plan = { ids: [], homes: [], keys: [], visits: [], edges: [] };
  plan.groupKey = (key) => groupKeys.get(key) ?? groupKeys.set(key, `g:${key}`).get(key);
  const at = (id, home, single) => {
    const key = single || home === null ? `${id}` : `${id}@${home}`;
    let p = index.get(key);
    if (p === undefined) {
      index.set(key, (p = plan.ids.length));
      plan.ids.push(id);
      plan.homes.push(home);
      plan.keys.push(key);
    }
    return p;
  };
  const edges = (trace.edges || []).filter((e) => nodes.has(e.source) && nodes.has(e.target) && e.source !== e.target);
  const uses = new Map();
  for (const e of edges) (uses.get(e.source) ?? uses.set(e.source, []).get(e.source)).push(e.target);
  const home = (id) => model.innermost.get(id) ?? null;
  // A source node (leaf, constant) is drawn where its consumer needs it (groups.js's sourceHome).
  const placeOf = (id, consumer) => {
    const op = nodes.get(id).kind === "op";
    return at(id, op || consumer === null ? home(id) : sourceHome(model, id, consumer, paramOf), op);
  };
  for (const n of trace.nodes || []) {
    if (n.kind === "op" || !uses.has(n.id)) plan.visits.push(placeOf(n.id, null));
    else for (const t of uses.get(n.id)) plan.visits.push(placeOf(n.id, t));
  }
  for (const e of edges) plan.edges.push({ sp: placeOf(e.source, e.target), tp: placeOf(e.target, null), source: e.source, target: e.target, slot: e.slot });
  plans.set(trace, plan);
  return plan;
}

function member(ctx, key, what) {
  if (ctx.drawn.has(key)) return key;
  ctx.drawn.set(key, what);
  const level = what.level ?? "";
  if (!ctx.members.has(level)) ctx.members.set(level, []);
  ctx.members.get(level).push(key);
  // An open group's frame is a box of its parent's level.
  if (what.level !== null && !ctx.drawn.has(`f:${what.level}`)) {
    member(ctx, `f:${what.level}`, { kind: "frame", group: what.level, level: ctx.model.groups.get(what.level).parent });
  }
  return key;
}

/** Lay out one level (children first): its boxes, and the links between them that the level's boxes stand for. */
function layLevel(ctx, level, direction, fold) {
  const keys = ctx.members.get(level ?? "") || [];
  const subs = new Map();
  const boxes = keys.map((key) => {
    const d = ctx.drawn.get(key);
    if (d.kind === "node") {
      const n = ctx.nodes.get(d.id);
      return { key, id: d.id, ...nodeSize(n, ctx.scale), source: n.kind !== "op", copyable: n.kind !== "op" };
    }
    const g = ctx.model.groups.get(d.group);
    if (d.kind === "group") return { key, group: d.group, ...groupSize(g, ctx.nodes, ctx.scale) };
    const sub = layLevel(ctx, d.group, direction, fold); // a long group folds inside its frame too
    subs.set(key, sub);
    return { key, group: d.group, frame: true, w: Math.round(sub.L.width + 2 * FRAME_PAD), h: Math.round(sub.L.height + FRAME_HEAD + FRAME_PAD) };
  });
  const index = new Map(keys.map((k, i) => [k, i]));
  const links = [];
  for (const l of ctx.buckets.get(level ?? "") || []) links.push({ from: index.get(l.a), to: index.get(l.b), key: l.key, slot: l.slot });
  // The same boxes and links lay out the same: a level that did not change when a group opened elsewhere is reused.
  const signature = `${direction}|${fold ? `${fold.width}x${fold.height}` : ""}|${boxes.map((b) => `${b.key}:${b.w}x${b.h}`).join(",")}|${links.map((l) => l.key).join(",")}`;
  let L = ctx.cache.get(signature);
  if (!L) {
    L = layered(boxes, links, { direction, fold });
    if (ctx.cache.size > LEVELS_KEPT) ctx.cache.clear();
    ctx.cache.set(signature, L);
  }
  return { level, keys, subs, links, L };
}

/**
 * Each trace edge as a link of the level where its two ends meet, between the boxes of that level that
 * hold them (the ends themselves, or the frames of the open groups around them); once per pair of
 * boxes when a group stands for an end. ctx.buckets: level key ("" for the top) -> [{a, b, key, slot}].
 */
function bucketLinks(ctx) {
  const chainOf = (key) => ctx.model.chainOfKey(ctx.drawn.get(key).level ?? null);
  const seen = new Set();
  for (const l of ctx.links) {
    const cs = chainOf(l.s);
    const ct = chainOf(l.t);
    let p = 0;
    while (p < cs.length && p < ct.length && cs[p] === ct[p]) p++;
    const a = cs.length === p ? l.s : `f:${cs[p]}`;
    const b = ct.length === p ? l.t : `f:${ct[p]}`;
    if (a === b) continue;
    const direct = a === l.s && b === l.t && !a.startsWith("g:") && !b.startsWith("g:");
    const key = direct ? `${a}>${b}:${l.slot}` : `${a}>${b}`;
    l.level = key; // the level's link that this edge follows (drawnEdges: its route)
    if (seen.has(key)) continue;
    seen.add(key);
    const level = p ? cs[p - 1] : "";
    (ctx.buckets.get(level) ?? ctx.buckets.set(level, []).get(level)).push({ a, b, key, slot: l.slot });
  }
}

/** Absolute positions: boxes of this level at offset (ox, oy), open groups' contents inside their frames. */
function compose(ctx, level, ox, oy, out, placed, routes) {
  const { L, subs } = level;
  for (const b of L.boxes) {
    const [x, y] = [b.x + ox, b.y + oy];
    const base = level.keys[b.box];
    const d = ctx.drawn.get(base);
    if (d.kind === "node") {
      out.items.push({ key: b.key, id: b.id, copy: b.copy, copies: 1, layer: b.layer, x, y, w: b.w, h: b.h, level: d.level });
    } else {
      const g = ctx.model.groups.get(d.group);
      out.groups.push({ key: d.group, kind: g.kind, path: g.path, open: d.kind === "frame", x, y, w: b.w, h: b.h, depth: g.depth });
      if (d.kind === "frame") compose(ctx, subs.get(base), x - b.w / 2 + FRAME_PAD, y - b.h / 2 + FRAME_HEAD, out, placed, routes);
    }
    if (!placed.has(base)) placed.set(base, { x, y, w: b.w, h: b.h });
  }
  const links = level.links;
  for (const l of L.links) routes.set(links[l.index].key, { from: l.from, to: l.to, points: ox || oy ? l.points.map(([px, py]) => [px + ox, py + oy]) : l.points });
}

/** One drawn edge per trace edge between node boxes; one per pair of boxes where a closed group stands for its ends. */
function drawnEdges(ctx, placed, routes, direction) {
  const out = new Map();
  for (const l of ctx.links) {
    const nodeToNode = !l.s.startsWith("g:") && !l.t.startsWith("g:");
    const key = nodeToNode ? `${l.s}>${l.t}:${l.slot}` : `${l.s}>${l.t}`;
    const part = { source: l.source, target: l.target, slot: l.slot };
    if (out.has(key)) {
      out.get(key).parts.push(part);
      continue;
    }
    const route = routes.get(key);
    const points = route?.points ?? follow(routes.get(l.level), between(placed.get(l.s), placed.get(l.t), direction), direction);
    const edge = { key, ...part, parts: [part], from: route?.from ?? l.s, to: route?.to ?? l.t, points };
    if (edge.points) out.set(key, edge);
  }
  return [...out.values()];
}

/**
 * An edge between boxes of different levels, along the route of the level's link that stands for it
 * (between the open frames around its ends): it leaves its own box and comes into its own box, and in
 * between goes where that link goes, round the boxes it passes and through the gap to the next band of a
 * folded level (a straight line from a model's last box up to the loss at the top of the next band crossed
 * the whole drawing). A link that is straight anyway is left straight.
 */
function follow(route, ends, direction) {
  if (!ends || !route || route.points.length <= 2) return ends;
  const mid = route.points.slice(1, -1).map((p) => [...p]);
  // Straight out of its own box and straight into its target (the route's turns are at the frames' centres).
  const c = direction === "TB" ? 0 : 1;
  if (mid.length > 1) {
    mid[0][c] = ends[0][c];
    mid[mid.length - 1][c] = ends[1][c];
  }
  return [ends[0], ...mid, ends[1]];
}

/** A link between boxes of different levels: from the source's far side to the target's near side. */
function between(s, t, direction) {
  if (!s || !t) return null;
  return direction === "TB" ? [[s.x, s.y + s.h / 2], [t.x, t.y - t.h / 2]] : [[s.x + s.w / 2, s.y], [t.x - t.w / 2, t.y]];
}

/** Of some layouts, the one whose shape (width / height, with `margin` px around it as a figure has) is
 *  closest to `aspect`, as a slide sees it (ratio, not difference). */
export function closestShape(layouts, aspect, margin = 0) {
  const off = (L) => Math.abs(Math.log((Math.ceil(L.width) + 2 * margin) / (Math.ceil(L.height) + 2 * margin) / aspect));
  return layouts.reduce((best, L) => (off(L) < off(best) ? L : best));
}
