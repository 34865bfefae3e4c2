// The exported page (app/export.py): one trace, played offline from a single HTML file. It wires the
// page's own modules (layout, render, timeline, player, caption, i18n) to a minimal chrome: graph,
// caption and controls. No worker, no fetch, no URL state: everything is in the file.
// Bundled by esbuild into static/dist/standalone.js (an IIFE, so it can be inlined as a classic script).

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { describe } from "./caption.js";
import { layout } from "./layout.js";
import { Player, afterPaint, bindButtons, stepKeys } from "./player.js";
import { GraphView } from "./render.js";
import { toSVG } from "./svg_export.js";
import { timeline } from "./timeline.js";

// The exported file keeps no state in the URL (file:// history, shared copies of the file).
class StandalonePlayer extends Player {
  _syncUrl() {}
}

const readJSON = (id) => JSON.parse(document.getElementById(id).textContent);

/** Python's indexing: null is the last step, -1 the last, -2 the one before; out of range throws. */
export function resolveStep(n, total) {
  if (n === null || n === undefined) return total - 1;
  const s = n < 0 ? total + n : n;
  if (!Number.isInteger(s) || s < 0 || s >= total) throw new RangeError(`step ${n} is out of range: the trace has ${total} steps (0 to ${total - 1})`);
  return s;
}

/** TB or LR as asked; "auto" picks as the page does: left-to-right when it shows the graph clearly bigger in this pane. */
function chooseLayout(trace, direction, pane) {
  if (direction === "TB" || direction === "LR" || trace.nodes.length > 1000) return layout(trace, { direction: direction === "LR" ? "LR" : "TB" });
  const tb = layout(trace, { direction: "TB" });
  const lr = layout(trace, { direction: "LR" });
  const scale = (L) => Math.min(pane.width / L.width, pane.height / L.height);
  return scale(lr) > scale(tb) * 1.15 ? lr : tb;
}

function icon(d) {
  return `<svg viewBox="0 0 16 16" aria-hidden="true"><path d="${d}"/></svg>`;
}

/** The chrome, built once; every string goes in through t() and textContent/attributes. */
function chrome() {
  const pane = document.createElement("main");
  pane.className = "graph-pane standalone";
  pane.innerHTML = `
    <div class="graph-toolbar">
      <span id="pass-label" class="pass-label" aria-live="polite"></span>
      <span class="toolbar-spacer"></span>
      <button type="button" id="zoom-out" class="icon">−</button>
      <button type="button" id="zoom-in" class="icon">+</button>
      <button type="button" id="fit"></button>
    </div>
    <div id="graph" class="graph" tabindex="0"></div>
    <p id="caption" class="caption" aria-live="polite"></p>
    <div class="controls" role="group">
      <button type="button" id="first" class="icon">${icon("M1 2h2v12H1zM9 2v12L3 8zM15 2v12L9 8z")}</button>
      <button type="button" id="back" class="icon">${icon("M2 2h2v12H2zM13 2v12L5 8z")}</button>
      <button type="button" id="play" class="icon play">${icon("M4 2v12l10-6z").replace("<svg", '<svg class="i-play"')}${icon("M3 2h4v12H3zM9 2h4v12H9z").replace("<svg", '<svg class="i-pause" hidden')}</button>
      <button type="button" id="forward" class="icon">${icon("M3 2v12l8-6zM12 2h2v12h-2z")}</button>
      <button type="button" id="last" class="icon">${icon("M1 2v12l6-6zM7 2v12l6-6zM13 2h2v12h-2z")}</button>
      <input type="range" id="scrubber" min="0" max="0" value="0" step="1">
      <output id="step-label" class="step-label" for="scrubber">0 / 0</output>
      <label class="inline"><span id="speed-label"></span>
        <select id="speed">
          <option value="1">1×</option><option value="2">2×</option><option value="4">4×</option>
          <option value="8">8×</option><option value="30">30×</option><option value="120">120×</option>
        </select>
      </label>
    </div>`;
  document.body.appendChild(pane);
  const $ = (id) => document.getElementById(id);
  const aria = { "zoom-out": "graph.zoomOut", "zoom-in": "graph.zoomIn", graph: "graph.region", first: "player.first", back: "player.back", play: "player.play", forward: "player.forward", last: "player.last", scrubber: "player.scrubber" };
  for (const [id, key] of Object.entries(aria)) $(id).setAttribute("aria-label", t(key));
  pane.querySelector(".controls").setAttribute("aria-label", t("player.controls"));
  $("fit").textContent = t("graph.fit");
  $("speed-label").textContent = t("player.speed");
  return $;
}

async function start() {
  const trace = readJSON("trace");
  const options = readJSON("options");
  i18n.setLang(options.lang || "en");
  document.documentElement.lang = i18n.lang() === "zh" ? "zh-Hans" : "en";
  const $ = chrome();
  const graph = new GraphView($("graph"));
  const total = timeline(trace).length;

  const player = new StandalonePlayer({
    onFrame(f) {
      document.body.dataset.step = String(f.step);
      graph.paint(f);
      $("caption").textContent = describe(trace, f);
      $("scrubber").max = String(f.total - 1);
      $("scrubber").value = String(f.step);
      $("scrubber").setAttribute("aria-valuetext", t("player.step", { n: f.step, total: f.total - 1 }));
      $("step-label").textContent = `${f.step} / ${f.total - 1}`;
      const pl = $("pass-label");
      pl.textContent = f.pass ? t("player.passN", { n: f.pass.number, of: f.pass.of }) : f.phase === "forward" ? t("player.forwardPass") : "";
      pl.className = f.pass ? "pass-label" : "pass-label forward";
    },
    onState(p) {
      const b = $("play");
      b.querySelector(".i-play").toggleAttribute("hidden", p.playing);
      b.querySelector(".i-pause").toggleAttribute("hidden", !p.playing);
      b.setAttribute("aria-pressed", String(p.playing));
      b.setAttribute("aria-label", t(p.playing ? "player.pause" : "player.play"));
    },
  });

  bindButtons(player, $);
  $("speed").addEventListener("change", (e) => player.setSpeed(e.target.value));
  $("fit").addEventListener("click", () => graph.fit());
  $("zoom-in").addEventListener("click", () => graph.zoom(1.25));
  $("zoom-out").addEventListener("click", () => graph.zoom(0.8));
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const tag = e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || (tag === "BUTTON" && (e.key === " " || e.key === "Enter"))) return;
    const keys = stepKeys(player);
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });

  // As on the page: a whole run plays in about half a minute, at least 2 steps/s.
  const speeds = [...$("speed").options].map((o) => Number(o.value));
  $("speed").value = String(Math.max(2, speeds.find((v) => v >= total / 30) ?? speeds[speeds.length - 1]));
  player.setSpeed($("speed").value);

  const L = chooseLayout(trace, options.direction, $("graph").getBoundingClientRect());
  graph.draw(trace, L);
  graph.fit();
  // Full screen, a resized slide or iframe: fit again unless the viewer has panned or zoomed.
  window.addEventListener("resize", () => graph.userMoved || graph.fit());
  player.load(trace, Math.max(0, Math.min(total - 1, options.step === null ? total - 1 : options.step < 0 ? total + options.step : options.step)));
  await afterPaint();

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
      return toSVG(graph);
    },
  };
  document.body.dataset.ready = "true";
}

start().catch((err) => {
  document.body.dataset.ready = "error";
  document.body.textContent = String(err?.message || err);
});
