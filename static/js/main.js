// The entry of the served pages: / (edit and run, app_page.js), /s/{id} (a saved program, read-only)
// and /embed/{id} (graph and controls only). Each configures the one Viewer (viewer.js) and adds what
// is its own: the editor, the output panel, the inspector, the theme and language toggles.

import * as i18n from "./i18n.js";
import { startApp } from "./app_page.js";
import { t } from "./i18n.js";
import { downloadHTML, downloadPNG, downloadSVG } from "./download.js";
import { bindEmbedLab } from "./embed_lab.js";
import { Inspector } from "./inspector.js";
import { Lab } from "./lab.js";
import { layoutAsync } from "./layout_client.js";
import { OutputPanel, problems } from "./output.js";
import { Panes } from "./panes.js";
import { urlStep } from "./player.js";
import * as theme from "./theme.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const mode = document.body.dataset.mode || "app";
const readJSON = (id) => {
  try {
    return JSON.parse($(id)?.textContent ?? "null");
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

// What the page shows beside the viewer: the program (editor), its output and the inspector.
const page = { editor: null, onLangChange: () => {} };
const shared = readJSON("share");
const output = new OutputPanel($("output"));
// A narrow screen's tabs (panes.js): a shared program opens on its graph, the app on its program.
const panes = $("tab-graph") ? new Panes(document.querySelector("main.app"), mode === "app" ? "code" : "graph") : null;
const inspector = $("inspector")
  ? new Inspector($("inspector"), {
      onLine: (n) => (panes?.narrow && panes.show("code"), page.editor?.mark({ line: n })),
      onNode: (id) => (panes?.narrow && panes.show("graph"), viewer.goTo(id)),
    })
  : null;

const viewer = new Viewer($("viewer"), {
  layout: layoutAsync,
  inspector,
  exports: {
    svg: downloadSVG,
    png: downloadPNG,
    html: (options, basename) => downloadHTML({ shareId: shared?.id, source: viewer.trace.source, ...options }, basename),
  },
  present: true,
  rememberDirection: true,
  onError: (message) => output.message(message),
  onFrame(f) {
    lab?.mark();
    output.show(viewer.trace, f);
    page.editor?.mark({ line: f.line, lineKind: f.phase === "backward" ? "bwd" : "fwd", nodeLine: f.nodeLine, problems: problems(viewer.trace, f) });
  },
});

// Check and What if, beside the inspector (lab.js), where the page has one.
const lab = $("lab") && inspector ? new Lab($("lab"), { viewer, load, onError: (message) => output.message(message) }) : null;
if (lab) inspector.sections.push(...lab.sections());
if (lab && mode === "embed") bindEmbedLab({ viewer, lab, aside: $("inspector") });

/** Show a trace: the viewer's first frame, timed from `t0` (the trace's arrival) for tests and the benchmark.
 * `whatIf`: a run of the same program with values put in place (lab.js), compared with the program's own. */
async function load(trace, { step = 0, autoplay = false, t0 = performance.now(), whatIf = false } = {}) {
  window.gradwalk.ready = false;
  if (!whatIf) panes?.show("graph"); // a run's result, on a phone: its graph (laid out in its own pane's size)
  if (!(await viewer.load(trace, { step, autoplay: false }))) return;
  if (!whatIf) lab?.reset(trace);
  window.gradwalk.firstFrameMs = performance.now() - t0;
  window.gradwalk.ready = true;
  document.body.dataset.ready = "true";
  if (autoplay) viewer.player.play();
}

// For tests and the benchmark: when the current trace's first complete frame was painted, and a way
// to play a trace given as JSON text (timed from the text, as if it had just arrived).
window.gradwalk = {
  ready: false,
  firstFrameMs: null,
  state: viewer,
  async play(text) {
    const t0 = performance.now();
    await load(JSON.parse(text), { t0 });
    return window.gradwalk.firstFrameMs;
  },
  seek: (n) => viewer.player.seek(n),
  get presenting() {
    return Boolean(viewer.presentation?.active);
  },
  view: (x, y, k) => viewer.graph.setView({ x, y, k }),
};

function bindToggles() {
  $("theme")?.addEventListener("click", () => {
    theme.toggle();
    labelTheme();
  });
  const langBtn = $("lang");
  if (!langBtn) return;
  const label = () => (langBtn.textContent = i18n.lang() === "zh" ? "English" : "中文");
  label();
  langBtn.addEventListener("click", () => {
    i18n.setLang(i18n.lang() === "zh" ? "en" : "zh");
    i18n.persist();
    i18n.apply();
    label();
    page.onLangChange();
    if (viewer.trace) output.refresh();
    viewer.refresh();
  });
}

/** /s/{id} and /embed/{id}: the saved program, played; "Edit a copy" takes it to / through session storage. */
async function startSaved(embedded) {
  $("edit-copy")?.addEventListener("click", () => {
    try {
      sessionStorage.setItem("gradwalk.copy", shared?.source ?? embedded?.source ?? "");
    } catch {
      /* opens the default example instead */
    }
  });
  if (mode === "share" && $("editor")) {
    const { createEditor } = await import("./editor.js");
    page.editor = createEditor($("editor"), { doc: shared?.source ?? embedded?.source ?? "", readOnly: true });
  }
  if (!embedded) return;
  const params = new URL(location.href).searchParams;
  const speed = Number(params.get("speed"));
  if (speed > 0) viewer.setSpeed(speed);
  // code=1: the program beside the graph, read-only, its lines numbered and the running one lit as in the app.
  const code = $("embed-code");
  if (code && params.get("code") === "1") {
    code.hidden = false;
    document.body.classList.add("with-code");
    const { createEditor } = await import("./editor.js");
    page.editor = createEditor(code, { doc: shared?.source ?? embedded.source ?? "", readOnly: true });
  }
  await load(embedded, { step: urlStep() ?? 0, autoplay: params.get("autoplay") === "1" });
}

async function start() {
  bindToggles();
  const embedded = readJSON("trace");
  if (mode !== "app") return startSaved(embedded);
  await startApp({ page, viewer, output, load, readJSON });
  if (embedded) await load(embedded, { step: urlStep() ?? 0 });
}

start();
