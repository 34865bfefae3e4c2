// Shared by the JS tests: real fixture traces (tests/js/fixtures/make_fixtures.py) and a synthetic
// recurrence graph for the layout's scale tests.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { use } from "../../static/js/i18n.js";

const here = dirname(fileURLToPath(import.meta.url));

/** The interface's text, as the server puts it in a page (app/i18n/<lang>.json). */
export function strings(langs = ["en", "zh"]) {
  const tables = Object.fromEntries(langs.map((l) => [l, JSON.parse(readFileSync(join(here, "..", "..", "app", "i18n", `${l}.json`), "utf8"))]));
  return { tables, cookie: null };
}
use(strings()); // every test module imports this one, so captions and labels have their text

export function fixture(name) {
  return JSON.parse(readFileSync(join(here, "fixtures", `${name}.json`), "utf8"));
}

export function fixtureNames() {
  return readdirSync(join(here, "fixtures")).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
}

/** A graph shaped like `h = tanh(W @ h + 1.0)` repeated `steps` times (synthetic: layout input only). */
export function recurrenceGraph(steps) {
  const nodes = [];
  const edges = [];
  let id = 0;
  const W = id++;
  nodes.push({ id: W, kind: "leaf", op: "AccumulateGrad", name: "W", label: "W", shape: [2, 2], value: [[1, 2], [3, 4]] });
  let h = id++;
  nodes.push({ id: h, kind: "constant", name: "h", label: "h #1", shape: [2], value: [0, 0] });
  for (let t = 0; t < steps; t++) {
    const mv = id++;
    nodes.push({ id: mv, kind: "op", op: "MvBackward0", label: "MvBackward0", shape: [2], value: [0.1, 0.2] });
    edges.push({ source: W, target: mv, slot: 0 }, { source: h, target: mv, slot: 1 });
    const one = id++;
    nodes.push({ id: one, kind: "constant", label: "1.0", shape: [], value: 1 });
    const add = id++;
    nodes.push({ id: add, kind: "op", op: "AddBackward0", label: "AddBackward0", shape: [2], value: [1.1, 1.2] });
    edges.push({ source: mv, target: add, slot: 0 }, { source: one, target: add, slot: 1 });
    const th = id++;
    nodes.push({ id: th, kind: "op", op: "TanhBackward0", name: "h", label: `h #${t + 2}`, shape: [2], value: [0.8, 0.83] });
    edges.push({ source: add, target: th, slot: 0 });
    h = th;
  }
  return { nodes, edges, events: nodes.map((n) => ({ kind: "node", node: n.id, line: 1 })), passes: [] };
}

/**
 * A model shaped like nn.Sequential of `blocks` × (Linear, LayerNorm, GELU) applied to x, then a mean:
 * the document-v2 module fields (Trace.modules, Node.module / module_call) as the tracer writes them.
 * Synthetic: layout and group input only (the page's tests use the real tracer).
 */
export function modelGraph(blocks, { iterations = 0 } = {}) {
  const nodes = [];
  const edges = [];
  const modules = [];
  let id = 0;
  let call = 0;
  const node = (n) => (nodes.push({ id, shape: [4, 8], value: null, ...n }), id++);
  const params = [];
  for (let b = 0; b < blocks * 3; b++) {
    const kind = ["Linear", "LayerNorm", "GELU"][b % 3];
    params.push(kind === "GELU" ? [] : [node({ kind: "leaf", op: "AccumulateGrad", name: `model.${b}.weight`, label: `model.${b}.weight`, shape: [8, 8] })]);
  }
  const x = node({ kind: "constant", name: "x", label: "x" });
  for (let it = 1; it <= Math.max(1, iterations); it++) {
    const iteration = iterations ? { iteration: it, loop: 9 } : {};
    modules.push({ path: "model", class_name: "Sequential", parent: null, call: it - 1, params: [], inputs: [x], outputs: [] });
    let h = x;
    for (let b = 0; b < blocks * 3; b++) {
      const kind = ["Linear", "LayerNorm", "GELU"][b % 3];
      const op = { Linear: "AddmmBackward0", LayerNorm: "NativeLayerNormBackward0", GELU: "GeluBackward0" }[kind];
      const m = node({ kind: "op", op, label: op, module: `model.${b}`, module_call: it - 1, ...iteration });
      edges.push({ source: h, target: m, slot: 0 });
      if (params[b].length) edges.push({ source: params[b][0], target: m, slot: 1 });
      modules.push({ path: `model.${b}`, class_name: kind, parent: "model", call: it - 1, params: params[b], inputs: [h], outputs: [m] });
      h = m;
    }
    modules.find((mm) => mm.path === "model" && mm.call === it - 1).outputs = [h];
    const loss = node({ kind: "op", op: "MeanBackward0", name: "loss", label: "loss", shape: [], ...iteration });
    edges.push({ source: h, target: loss, slot: 0 });
  }
  void call;
  return { nodes, edges, modules, events: nodes.map((n) => ({ kind: "node", node: n.id, line: 1 })), passes: [] };
}
