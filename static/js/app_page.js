// The app at /: the examples gallery, the editor, Run (POST /api/trace) with its progress and Cancel,
// and the Share dialog. The viewer (viewer.js) plays what a run returns.

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { ticker, urlStep } from "./player.js";
import { ShareDialog } from "./sharing.js";
import { timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);

/** The gallery comes with the page (the same list as GET /api/examples); ask the API if it did not. */
async function loadExamples(readJSON) {
  const examples = readJSON("examples-data") || [];
  if (examples.length) return examples; // at once: the menu is filled before anything else waits
  try {
    const res = await fetch("/api/examples", { headers: { accept: "application/json" } });
    if (res.ok) return await res.json();
  } catch {
    /* no gallery: the editor still works */
  }
  return [];
}

/** "Edit a copy" on a shared page left its program here for this tab (never in the URL). */
function takeCopy() {
  try {
    const copied = sessionStorage.getItem("gradwalk.copy");
    sessionStorage.removeItem("gradwalk.copy");
    return copied;
  } catch {
    return null; // no storage: start from the example
  }
}

/** The examples menu, its explanation, and the editor following it (in the page's language). */
function gallery(examples, page) {
  const select = $("examples");
  // An example's program with its comments in the page's language (the seed notebook's own Chinese ones).
  const sourceOf = (ex, lang = i18n.lang()) => ex.sources?.[lang] ?? ex.source;
  const isExample = (ex, text) => text === ex.source || Object.values(ex.sources ?? {}).includes(text);
  const chosen = () => examples.find((e) => e.id === select.value);
  const fill = () => {
    const cur = select.value;
    select.replaceChildren(new Option(t("examples.custom"), ""), ...examples.map((e) => new Option(e.title[i18n.lang()] || e.id, e.id)));
    select.value = cur;
  };
  const explain = () => ($("explanation").textContent = chosen() ? chosen().explanation[i18n.lang()] || "" : "");
  select.addEventListener("change", () => {
    if (chosen()) page.editor?.setSource(sourceOf(chosen()));
    explain();
  });
  return {
    select,
    sourceOf,
    chosen,
    fill,
    explain,
    /** The program was edited: it is no longer the example (nor the one ?example= names). */
    edited(text) {
      if (chosen() && !isExample(chosen(), text)) {
        select.value = "";
        explain();
        const url = new URL(location.href);
        if (url.searchParams.has("example")) {
          url.searchParams.delete("example");
          history.replaceState(null, "", url);
        }
      }
    },
    /** A language switch: the menu, the explanation and an untouched example's comments follow it. */
    relabel() {
      fill();
      explain();
      const ex = chosen();
      const text = page.editor.getSource();
      if (ex && isExample(ex, text) && text !== sourceOf(ex)) page.editor.setSource(sourceOf(ex));
    },
  };
}

/**
 * Run the editor's program on the server and play its trace (from `step`, when given, else from the
 * start); a newer run or Cancel aborts it. A run that the sandbox stopped (too long, too much memory)
 * opens at its end, where the page says so, instead of playing up to it.
 */
function runner({ page, viewer, output, load }) {
  const run = { id: 0, abort: null };
  const finish = (id, stop) => {
    stop();
    if (id !== run.id) return;
    $("run").disabled = false;
    $("cancel").hidden = true;
    $("progress").hidden = true;
    run.abort = null;
  };
  const limit = Number($("progress").dataset.timeoutS) || null;
  const start = async ({ step = null } = {}) => {
    run.abort?.abort();
    const source = page.editor.getSource();
    const fromButton = document.activeElement === $("run") || document.activeElement === document.body;
    const abort = (run.abort = new AbortController());
    const id = ++run.id;
    viewer.player.pause();
    $("run").disabled = true;
    $("cancel").hidden = false;
    $("progress").hidden = false;
    document.body.dataset.ready = "false";
    const stop = ticker((s) => ($("progress-text").textContent = t("run.running", { s: s.toFixed(1), limit: limit ?? "?" })));
    try {
      const res = await fetch("/api/trace", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ source }),
        signal: abort.signal,
      });
      const body = await res.json().catch(() => null);
      if (id !== run.id) return;
      if (!res.ok) {
        const retry = res.headers.get("retry-after");
        output.message(res.status === 429 && retry ? t("run.busy", { s: retry }) : t("run.failed", { message: body?.message || res.statusText }));
        return;
      }
      const t0 = performance.now();
      // Started with the button: hand the keys to the player (Space would otherwise run it again).
      if (fromButton) $("graph").focus({ preventScroll: true });
      const stopped = ["timeout", "memory", "killed"].includes(body.status);
      if (stopped || step !== null) await load(body, { step: stopped ? timeline(body).length - 1 : step, t0 });
      else await load(body, { autoplay: true, t0 });
    } catch (err) {
      if (id === run.id) output.message(err?.name === "AbortError" ? t("run.cancelled") : t("run.network"));
    } finally {
      finish(id, stop);
    }
  };
  return { start, cancel: () => run.abort?.abort() };
}

/** Wire the app page: gallery, editor, Run, Cancel and Share. */
export async function startApp({ page, viewer, output, load, readJSON }) {
  const editorModule = import("./editor.js");
  const examples = await loadExamples(readJSON);
  const copied = takeCopy();
  // /?example=ID (&step=N): that example, run at once and opened at step N.
  const asked = copied === null ? examples.find((e) => e.id === new URL(location.href).searchParams.get("example")) : null;
  const initial = copied === null ? asked || examples.find((e) => e.id === "seed_5_chain") || examples[examples.length - 1] : null;
  const g = gallery(examples, page);
  g.fill();
  if (initial) g.select.value = initial.id;
  g.explain();
  const run = runner({ page, viewer, output, load });
  const { createEditor } = await editorModule;
  page.editor = createEditor($("editor"), {
    doc: copied ?? (g.chosen() ? g.sourceOf(g.chosen()) : "import torch\n"), // the menu may have changed while the editor loaded
    onRun: run.start,
    onChange: (text) => g.edited(text),
  });
  $("run").addEventListener("click", run.start);
  $("cancel").addEventListener("click", run.cancel);
  const share = new ShareDialog($("share-dialog"));
  $("share-open").addEventListener("click", () => {
    const ex = g.chosen();
    share.open({ source: page.editor.getSource(), step: viewer.trace ? viewer.step : 0, title: ex ? ex.title[i18n.lang()] || ex.id : null });
  });
  page.onLangChange = () => g.relabel();
  if (asked) run.start({ step: urlStep() ?? 0 });
}
