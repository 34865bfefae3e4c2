// Wires the page: editor, run, layout (in a worker), graph, player, inspector, output, language.
// The same module drives / (edit and run), /s/{id} (a saved program, read-only) and /embed/{id}.

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { GraphView } from "./render.js";
import { Player, afterPaint, bindButtons, stepKeys, ticker, urlStep } from "./player.js";
import { Inspector } from "./inspector.js";
import { OutputPanel, problems } from "./output.js";
import { describe } from "./caption.js";
import { layoutAsync } from "./layout_client.js";
import { passStarts, timeline } from "./timeline.js";
import * as theme from "./theme.js";
import { Presentation } from "./present.js";
import { ShareDialog } from "./sharing.js";
import { downloadHTML, downloadPNG, downloadSVG } from "./download.js";

const $ = (id) => document.getElementById(id);
const mode = document.body.dataset.mode || "app";
const readJSON = (id) => {
  const el = $(id);
  if (!el) return null;
  try {
    return JSON.parse(el.textContent);
  } catch {
    return null;
  }
};

theme.init({ onChange: () => labelTheme() });
i18n.setLang(document.documentElement.dataset.lang || "en");
i18n.apply();

function labelTheme() {
  const b = $("theme");
  if (!b) return;
  b.dataset.i18nAria = theme.current() === "dark" ? "theme.toLight" : "theme.toDark";
  b.setAttribute("aria-label", t(b.dataset.i18nAria));
  b.setAttribute("aria-pressed", String(theme.current() === "dark"));
}
labelTheme();

const state = { trace: null, frame: null, direction: storedDirection(), runId: 0, abort: null, lastSource: null };
// For tests and the benchmark: when the current trace's first complete frame was painted, and a way
// to play a trace given as JSON text (timed from the text, as if it had just arrived).
window.gradwalk = {
  ready: false,
  firstFrameMs: null,
  state,
  async play(text) {
    const t0 = performance.now();
    await load(JSON.parse(text), { t0 });
    return window.gradwalk.firstFrameMs;
  },
  seek: (n) => player.seek(n),
  get presenting() {
    return presentation.active;
  },
  view(x, y, k) {
    graph.view = { x, y, k };
    graph.userMoved = true;
    graph._apply();
  },
};

// The student's choice of direction, if they made one (else each graph gets the one that fits best).
function storedDirection() {
  try {
    const d = localStorage.getItem("gradwalk.direction");
    return d === "LR" || d === "TB" ? d : null;
  } catch {
    return null;
  }
}

/** Top-to-bottom unless left-to-right shows this graph bigger in this pane (wide embeds, long chains). */
async function layoutFor(trace) {
  // Boxes as large as app.css draws their text now (presentation mode: --node-scale 1.6).
  const scale = parseFloat(getComputedStyle($("graph")).getPropertyValue("--node-scale")) || 1;
  if (state.direction || trace.nodes.length > 1000) return layoutAsync(trace, { direction: state.direction || "TB", scale });
  const [tb, lr] = await Promise.all([layoutAsync(trace, { direction: "TB", scale }), layoutAsync(trace, { direction: "LR", scale })]);
  const r = $("graph").getBoundingClientRect();
  const fits = (L) => Math.min(r.width / L.width, r.height / L.height);
  return fits(lr) > fits(tb) * 1.15 ? lr : tb;
}

// --- graph, inspector, player ------------------------------------------------------------------

const graph = new GraphView($("graph"), { onSelect: (id) => inspect(id) });
const inspector = $("inspector")
  ? new Inspector($("inspector"), { onLine: (n) => editor?.mark({ line: n }), onNode: (id) => goTo(id) })
  : null;
const player = new Player({ onFrame: showFrame, onState: showState });
const output = new OutputPanel($("output"));
// Entering or leaving changes the pane's size and the boxes' (--node-scale): lay out and fit again.
const presentation = new Presentation({
  onChange: (on) => {
    if (on) $("graph").focus({ preventScroll: true });
    redraw();
  },
});
const PRESENT_ZOOM = 2.5; // presentation may zoom further in than the page's fit (1.25×)
const fitZoom = () => (presentation.active ? PRESENT_ZOOM : undefined);
addEventListener("resize", () => presentation.active && graph.layout && !graph.userMoved && graph.fit(PRESENT_ZOOM));

/** Select a node from elsewhere (the inspector's neighbours): bring it into view, focus and inspect it. */
function goTo(id) {
  graph.select(id);
  graph.reveal(id);
  inspect(id);
  requestAnimationFrame(() => $("graph").querySelector(`g.node[data-node-id="${id}"]`)?.focus({ preventScroll: true }));
}

function inspect(id) {
  if (!inspector || !state.trace) return;
  const copies = graph.layout?.items.filter((it) => it.id === id).length || 1;
  inspector.show(state.trace, state.frame, id, copies);
}

function showFrame(f) {
  state.frame = f;
  document.body.dataset.step = String(f.step);
  document.body.dataset.stepType = f.entry.type;
  graph.paint(f);
  inspector?.update(f);
  output.show(state.trace, f);
  showCaption(f);
  if (editor) {
    editor.mark({
      line: f.line,
      lineKind: f.phase === "backward" ? "bwd" : "fwd",
      nodeLine: f.nodeLine,
      problems: problems(state.trace, f),
    });
  }
  const s = $("scrubber");
  s.max = String(f.total - 1);
  s.value = String(f.step);
  s.setAttribute("aria-valuetext", t("player.step", { n: f.step, total: f.total - 1 }));
  $("step-label").textContent = `${f.step} / ${f.total - 1}`;
  const pl = $("pass-label");
  if (f.pass) {
    pl.textContent = t("player.passN", { n: f.pass.number, of: f.pass.of });
    pl.className = "pass-label";
  } else {
    pl.textContent = f.phase === "forward" ? t("player.forwardPass") : "";
    pl.className = "pass-label forward";
  }
  const jump = $("jump");
  const starts = passStarts(state.trace);
  const idx = f.pass ? starts.findIndex((p) => p.pass === f.pass.index) : -1;
  const firstNode = timeline(state.trace).findIndex((e) => e.type === "node");
  jump.value = idx >= 0 ? String(starts[idx].step) : f.phase === "forward" && firstNode >= 0 ? String(firstNode) : "";
}

function showState(p) {
  const b = $("play");
  b.querySelector(".i-play").toggleAttribute("hidden", p.playing);
  b.querySelector(".i-pause").toggleAttribute("hidden", !p.playing);
  b.setAttribute("aria-pressed", String(p.playing));
  b.setAttribute("aria-label", t(p.playing ? "player.pause" : "player.play"));
}

function showCaption(f) {
  const c = $("caption");
  c.textContent = describe(state.trace, f);
}

// --- loading a trace -------------------------------------------------------------------------------

async function load(trace, { step = 0, autoplay = false, t0 = performance.now() } = {}) {
  window.gradwalk.ready = false;
  const sameProgram = state.lastSource !== null && state.lastSource === trace.source && graph.layout;
  state.trace = trace;
  state.lastSource = trace.source;
  $("graph-empty").hidden = trace.nodes.length > 0;
  if (!trace.nodes.length) {
    const key = trace.status === "ok" ? "graph.none" : "graph.error";
    $("graph-empty").dataset.i18n = key; // so that a language switch keeps this message
    $("graph-empty").textContent = t(key);
  }
  const keepView = sameProgram ? { ...graph.view, moved: graph.userMoved } : null;
  const L = await layoutFor(trace);
  if (state.trace !== trace) return; // a newer run replaced it
  graph.draw(trace, L);
  if (keepView) {
    graph.view = { x: keepView.x, y: keepView.y, k: keepView.k };
    graph.userMoved = keepView.moved;
    graph._apply();
  } else graph.fit(fitZoom());
  fillJump(trace);
  inspector?.clear();
  autoSpeed(timeline(trace).length);
  player.load(trace, step);
  await afterPaint();
  if (state.trace !== trace) return;
  window.gradwalk.firstFrameMs = performance.now() - t0;
  window.gradwalk.ready = true;
  document.body.dataset.ready = "true";
  if (autoplay) player.play();
}

// Until the student picks a speed, a whole run plays in about half a minute (at least 2 steps/s).
function autoSpeed(steps) {
  if (state.speedChosen) return;
  const sel = $("speed");
  const want = steps / 30;
  const options = [...sel.options].map((o) => Number(o.value)).sort((a, b) => a - b);
  const pick = options.find((v) => v >= want) ?? options[options.length - 1];
  sel.value = String(Math.max(2, pick));
  player.setSpeed(sel.value);
}

function fillJump(trace) {
  const jump = $("jump");
  const opts = [new Option(t("player.jumpNone"), "")];
  const firstNode = timeline(trace).findIndex((e) => e.type === "node");
  if (firstNode >= 0) opts.push(new Option(t("player.forwardPass"), String(firstNode)));
  for (const p of passStarts(trace)) {
    const pass = trace.passes.find((x) => x.index === p.pass);
    opts.push(new Option(t("player.passN", { n: trace.passes.indexOf(pass) + 1, of: trace.passes.length }), String(p.step)));
  }
  jump.replaceChildren(...opts);
}

// --- running ---------------------------------------------------------------------------------------

let editor = null;

async function run() {
  if (!editor) return;
  if (state.abort) state.abort.abort();
  const source = editor.getSource();
  const fromButton = document.activeElement === $("run") || document.activeElement === document.body;
  const abort = new AbortController();
  state.abort = abort;
  const id = ++state.runId;
  player.pause();
  $("run").disabled = true;
  $("cancel").hidden = false;
  $("progress").hidden = false;
  document.body.dataset.ready = "false";
  const stop = ticker((s) => ($("progress-text").textContent = t("run.running", { s: s.toFixed(1) })));
  try {
    const res = await fetch("/api/trace", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ source }),
      signal: abort.signal,
    });
    const body = await res.json().catch(() => null);
    if (id !== state.runId) return;
    if (!res.ok) {
      const retry = res.headers.get("retry-after");
      const msg = res.status === 429 && retry ? t("run.busy", { s: retry }) : t("run.failed", { message: body?.message || res.statusText });
      showServerProblem(msg);
      return;
    }
    const t0 = performance.now();
    // Started with the button: hand the keys to the player (Space would otherwise run it again).
    if (fromButton) $("graph").focus({ preventScroll: true });
    await load(body, { autoplay: true, t0 });
  } catch (err) {
    if (id !== state.runId) return;
    showServerProblem(err?.name === "AbortError" ? t("run.cancelled") : t("run.network"));
  } finally {
    if (id === state.runId) {
      stop();
      $("run").disabled = false;
      $("cancel").hidden = true;
      $("progress").hidden = true;
      state.abort = null;
    } else stop();
  }
}

/** The same trace laid out and drawn again at the current step: another direction, or presentation's larger boxes. */
async function redraw() {
  const trace = state.trace;
  if (!trace) return;
  const L = await layoutFor(trace);
  if (state.trace !== trace) return;
  graph.draw(trace, L);
  graph.fit(fitZoom());
  if (state.frame) graph.paint(state.frame);
}

function showServerProblem(message) {
  output.message(message);
}

// --- controls and keys -----------------------------------------------------------------------------

function bindControls() {
  bindButtons(player, $);
  $("speed").addEventListener("change", (e) => {
    state.speedChosen = true;
    player.setSpeed(e.target.value);
  });
  player.setSpeed($("speed").value);
  $("jump").addEventListener("change", (e) => {
    if (e.target.value !== "") {
      player.pause();
      player.seek(Number(e.target.value));
    }
  });
  $("fit").addEventListener("click", () => graph.fit(fitZoom()));
  $("zoom-in").addEventListener("click", () => graph.zoom(1.25));
  $("zoom-out").addEventListener("click", () => graph.zoom(0.8));
  $("direction").addEventListener("click", async () => {
    state.direction = (graph.layout?.direction ?? "TB") === "TB" ? "LR" : "TB";
    try {
      localStorage.setItem("gradwalk.direction", state.direction);
    } catch {
      /* not persisted */
    }
    await redraw();
  });
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const tag = e.target.tagName;
    if (e.target.closest?.(".cm-editor") || tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (tag === "BUTTON" && (e.key === " " || e.key === "Enter")) return;
    if (document.querySelector("dialog[open]")) return; // the Share dialog has the keys (Esc closes it)
    if (e.key === "Escape" && presentation.active) {
      e.preventDefault();
      presentation.leave();
      return;
    }
    if (!state.trace) return;
    const keys = {
      ...stepKeys(player),
      p: () => presentation.toggle(),
      P: () => presentation.toggle(),
      b: () => presentation.active && presentation.blackout(),
      B: () => presentation.active && presentation.blackout(),
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });
  const basename = () => `gradwalk-step-${player.step}`;
  $("export-svg").addEventListener("click", () => graph.layout && downloadSVG(graph, basename()));
  $("export-png").addEventListener("click", () => graph.layout && downloadPNG(graph, basename()));
  $("export-html").addEventListener("click", async (e) => {
    if (!state.trace) return;
    const button = e.currentTarget;
    button.disabled = true;
    const options = { shareId: readJSON("share")?.id, source: state.trace.source, step: player.step, lang: i18n.lang(), direction: graph.layout?.direction ?? "auto" };
    try {
      await downloadHTML(options, basename());
    } catch (err) {
      output.message(t("export.failed", { message: err?.message || "" }));
    } finally {
      button.disabled = false;
    }
  });
  $("present").addEventListener("click", () => state.trace && presentation.enter());
  $("present-leave").addEventListener("click", () => presentation.leave());
  $("blackout").addEventListener("click", () => presentation.blackout(false));
  $("theme")?.addEventListener("click", () => {
    theme.toggle();
    labelTheme();
  });
  const langBtn = $("lang");
  if (langBtn) {
    const label = () => (langBtn.textContent = i18n.lang() === "zh" ? "English" : "中文");
    label();
    langBtn.addEventListener("click", () => {
      i18n.setLang(i18n.lang() === "zh" ? "en" : "zh");
      i18n.persist();
      i18n.apply();
      label();
      onLangChange();
    });
  }
}

let onLangChange = () => {};

// --- start -----------------------------------------------------------------------------------------

async function start() {
  bindControls();
  const shared = readJSON("share");
  const embedded = readJSON("trace");
  if (mode === "app") {
    const { createEditor } = await import("./editor.js");
    // The gallery comes with the page (the same list as GET /api/examples); ask the API if it did not.
    let examples = readJSON("examples-data") || [];
    if (!examples.length) {
      try {
        const res = await fetch("/api/examples", { headers: { accept: "application/json" } });
        if (res.ok) examples = await res.json();
      } catch {
        /* no gallery: the editor still works */
      }
    }
    const select = $("examples");
    let copied = null;
    try {
      copied = sessionStorage.getItem("gradwalk.copy");
      sessionStorage.removeItem("gradwalk.copy");
    } catch {
      /* no storage: start from the example */
    }
    const initial = copied === null ? examples.find((e) => e.id === "seed_5_chain") || examples[examples.length - 1] : null;
    // An example's program with its comments in the page's language (the seed notebook's own Chinese ones).
    const sourceOf = (ex, lang = i18n.lang()) => ex.sources?.[lang] ?? ex.source;
    const isExample = (ex, text) => text === ex.source || Object.values(ex.sources ?? {}).includes(text);
    editor = createEditor($("editor"), {
      doc: copied ?? (initial ? sourceOf(initial) : "import torch\n"),
      onRun: run,
      onChange: (text) => {
        const ex = examples.find((e) => e.id === select.value);
        if (ex && !isExample(ex, text)) {
          select.value = "";
          explain();
        }
      },
    });
    const fill = () => {
      const cur = select.value;
      select.replaceChildren(new Option(t("examples.custom"), ""), ...examples.map((e) => new Option(e.title[i18n.lang()] || e.id, e.id)));
      select.value = cur;
    };
    const explain = () => {
      const ex = examples.find((e) => e.id === select.value);
      $("explanation").textContent = ex ? ex.explanation[i18n.lang()] || "" : "";
    };
    fill();
    if (initial) select.value = initial.id;
    explain();
    select.addEventListener("change", () => {
      const ex = examples.find((e) => e.id === select.value);
      if (ex) editor.setSource(sourceOf(ex));
      explain();
    });
    $("run").addEventListener("click", run);
    const share = new ShareDialog($("share-dialog"));
    $("share-open").addEventListener("click", () => {
      const ex = examples.find((e) => e.id === select.value);
      share.open({ source: editor.getSource(), step: state.trace ? player.step : 0, title: ex ? ex.title[i18n.lang()] || ex.id : null });
    });
    $("cancel").addEventListener("click", () => state.abort?.abort());
    onLangChange = () => {
      fill();
      explain();
      const ex = examples.find((e) => e.id === select.value);
      if (ex && isExample(ex, editor.getSource()) && editor.getSource() !== sourceOf(ex)) editor.setSource(sourceOf(ex));
      if (state.trace) {
        fillJump(state.trace);
        output.refresh();
        showFrame(state.frame);
        showState(player);
      }
    };
    if (embedded) await load(embedded, { step: urlStep() ?? 0 });
  } else {
    // "Edit a copy": the program goes to / through this tab's session storage, never through the URL.
    $("edit-copy")?.addEventListener("click", () => {
      try {
        sessionStorage.setItem("gradwalk.copy", shared?.source ?? embedded?.source ?? "");
      } catch {
        /* opens the default example instead */
      }
    });
    if (mode === "share" && $("editor")) {
      const { createEditor } = await import("./editor.js");
      editor = createEditor($("editor"), { doc: shared?.source ?? embedded?.source ?? "", readOnly: true });
    }
    onLangChange = () => state.trace && (output.refresh(), fillJump(state.trace), showFrame(state.frame), showState(player));
    if (embedded) {
      const params = new URL(location.href).searchParams;
      const speed = Number(params.get("speed"));
      if (speed > 0) {
        state.speedChosen = true;
        player.setSpeed(speed);
        const sel = $("speed");
        if (![...sel.options].some((o) => Number(o.value) === speed)) sel.add(new Option(`${speed}×`, String(speed)));
        sel.value = String(speed);
      }
      // code=1: the program beside the graph (as text; read-only).
      const code = $("embed-code");
      if (code && params.get("code") === "1") {
        code.textContent = shared?.source ?? embedded.source ?? "";
        code.hidden = false;
        document.body.classList.add("with-code");
      }
      await load(embedded, { step: urlStep() ?? 0, autoplay: params.get("autoplay") === "1" });
    }
  }
}

start();
