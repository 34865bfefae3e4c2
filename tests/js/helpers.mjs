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
