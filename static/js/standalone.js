// The entry of a self-contained document (app/export.py's offline HTML file, the notebook output): one
// trace played by the one Viewer (viewer.js), offline. The document holds
//   <script type="application/json" id="trace">  the trace (app/models.py's document)
//   <script type="application/json" id="options"> {"step": N|null, "lang": "en"|"zh", "direction": "auto"|"TB"|"LR",
//                                                 "aspect": width / height (optional: "auto" takes the closest shape),
//                                                 "inspector": false (optional: the graph alone, for SVG and PNG figures),
//                                                 "wait": true (optional: no trace yet; see the end of this file)}
//   optionally an element id="viewer" to fill (else a <main> is added to the body), and one
//   id="inspector" (else an <aside> is added after it): the node or module clicked, as on the page
// No worker, no fetch, no URL state: everything is in the file. Bundled by esbuild into
// static/dist/standalone.js (an IIFE, so it can be inlined as a classic script).

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { Inspector, h } from "./inspector.js";
import { layout } from "./layout.js";
import { afterPaint } from "./player.js";
import { toSVG } from "./svg_export.js";
import { timeline } from "./timeline.js";
import { Viewer } from "./viewer.js";

const readJSON = (id) => JSON.parse(document.getElementById(id)?.textContent ?? "null");

/** Python's indexing: null is the last step, -1 the last, -2 the one before; out of range throws. */
export function resolveStep(n, total) {
  if (n === null || n === undefined) return total - 1;
  const s = n < 0 ? total + n : n;
  if (!Number.isInteger(s) || s < 0 || s >= total) throw new RangeError(`step ${n} is out of range: the trace has ${total} steps (0 to ${total - 1})`);
  return s;
}

function pane() {
  const found = document.getElementById("viewer");
  if (found) return found;
  const main = document.createElement("main");
  main.id = "viewer";
  main.className = "graph-pane standalone";
  document.body.appendChild(main);
  return main;
}

/** The inspector beside the graph (inspector.js, its formulas in MathML offline): the page's markup, made here. */
function inspectorPane(onNode) {
  let aside = document.getElementById("inspector");
  if (!aside) {
    aside = h("aside", "inspector");
    aside.id = "inspector";
    aside.setAttribute("aria-labelledby", "inspector-heading");
    const heading = h("h2", null, t("inspector.heading"));
    heading.id = "inspector-heading";
    const empty = h("p", "muted", t("inspector.empty"));
    empty.id = "inspector-empty";
    const body = h("div");
    body.id = "inspector-body";
    body.hidden = true;
    aside.append(heading, empty, body);
    document.body.appendChild(aside);
  }
  return new Inspector(aside, { onNode });
}

async function start(trace, options) {
  i18n.setLang(options.lang || "en");
  document.documentElement.lang = i18n.lang() === "zh" ? "zh-Hans" : "en";
  const graphPane = pane();
  const inspector = options.inspector === false ? null : inspectorPane((id) => viewer.goTo(id)); // figures draw the graph alone
  const viewer = new Viewer(graphPane, {
    layout: async (t, o) => layout(t, o),
    direction: options.direction || "auto",
    aspect: options.aspect ?? null,
    urlState: false,
    inspector,
  });
  const total = timeline(trace).length;
  const step = options.step === null || options.step === undefined ? total - 1 : options.step < 0 ? total + options.step : options.step;
  await viewer.load(trace, { step: Math.max(0, Math.min(total - 1, step)) });
  const { player } = viewer;
  window.gradwalk = {
    ready: true,
    total,
    get step() {
      return player.step;
    },
    seek: (n) => (player.pause(), player.seek(n)),
    /** The graph at step n (null: the last; negative: from the end) as a standalone SVG document. */
    async svg(n = null) {
      player.pause();
      player.seek(resolveStep(n, total));
      await afterPaint();
      return toSVG(viewer.graph, { curves: viewer.$("curves") });
    },
  };
  document.body.dataset.ready = "true";
}

function failed(err) {
  document.body.dataset.ready = "error";
  document.body.textContent = String(err?.message || err);
}

// {"wait": true}: a page made ahead of its trace (app/export_service.py keeps one loaded), which
// gradwalk.load(trace, options) then plays as if both had been in the document.
const given = readJSON("options") || {};
if (given.wait) window.gradwalk = { load: (trace, options) => start(trace, options).catch(failed) };
else start(readJSON("trace"), given).catch(failed);
