// What the viewer's controls and keys do (viewer.js owns the viewer; viewer_markup.js builds the
// elements): transport, speed, jump, step by operation or by box, zoom and Fit, direction, the
// download buttons, presentation; and the keys every player page shares, / for search.

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { bindButtons, stepKeys } from "./player.js";
import { timeline } from "./timeline.js";

const DIRECTION_KEY = "gradwalk.direction";

/** The student's ⇅ choice, if they made one (else each graph gets the direction that fits best). */
export function storedDirection() {
  try {
    const d = localStorage.getItem(DIRECTION_KEY);
    return d === "LR" || d === "TB" ? d : null;
  } catch {
    return null;
  }
}

/** The player as the buttons and keys drive it: the student's single steps go through the viewer. */
function stepper(viewer) {
  const p = viewer.player;
  return {
    stepBy: (d) => viewer.stepBy(d),
    toggle: () => p.toggle(),
    pause: () => p.pause(),
    seek: (n) => p.seek(n),
  };
}

export function bindControls(viewer) {
  const { $, player, graph } = viewer;
  bindButtons(stepper(viewer), $);
  $("speed").addEventListener("change", (e) => {
    viewer.speedChosen = true;
    player.setSpeed(e.target.value);
  });
  player.setSpeed($("speed").value);
  $("jump").addEventListener("change", (e) => {
    if (e.target.value !== "") (player.pause(), player.seek(Number(e.target.value)));
  });
  $("step-by").addEventListener("change", (e) => (viewer.stepMode = e.target.value));
  $("fit").addEventListener("click", () => viewer.fitAll());
  $("zoom-in").addEventListener("click", () => graph.zoom(1.25));
  $("zoom-out").addEventListener("click", () => graph.zoom(0.8));
  $("direction").addEventListener("click", () => switchDirection(viewer));
  bindExports(viewer);
  if (viewer.presentation) {
    $("present").addEventListener("click", () => viewer.trace && viewer.presentation.enter());
    $("present-leave").addEventListener("click", () => viewer.presentation.leave());
    document.getElementById("blackout")?.addEventListener("click", () => viewer.presentation.blackout(false));
  }
}

async function switchDirection(viewer) {
  viewer.direction = (viewer.graph.layout?.direction ?? "TB") === "TB" ? "LR" : "TB";
  if (viewer.options.rememberDirection) {
    try {
      localStorage.setItem(DIRECTION_KEY, viewer.direction);
    } catch {
      /* not persisted */
    }
  }
  await viewer.redraw();
}

function bindExports(viewer) {
  const { $, graph, options } = viewer;
  const exports = options.exports || {};
  const basename = () => `gradwalk-step-${viewer.player.step}`;
  const chart = () => ({ curves: $("curves") }); // a training loop's curves go under the graph
  $("export-svg")?.addEventListener("click", () => graph.layout && exports.svg(graph, basename(), chart()));
  $("export-png")?.addEventListener("click", async () => {
    if (!graph.layout) return;
    try {
      const scale = await exports.png(graph, basename(), chart());
      // A big graph is drawn smaller than 2×: say so rather than pretend.
      if (scale < 2) options.onError?.(t("export.pngScaled", { scale: scale.toFixed(2) }));
    } catch (err) {
      options.onError?.(t("export.pngFailed", { message: err?.message || "" }));
    }
  });
  $("export-html")?.addEventListener("click", async (e) => {
    if (!viewer.trace) return;
    const button = e.currentTarget;
    button.disabled = true;
    try {
      await exports.html({ step: viewer.player.step, lang: i18n.lang(), direction: graph.layout?.direction ?? "auto" }, basename());
    } catch (err) {
      options.onError?.(t("export.failed", { message: err?.message || "" }));
    } finally {
      button.disabled = false;
    }
  });
}

export function bindKeys(viewer) {
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const tag = e.target.tagName;
    if (e.target.closest?.(".cm-editor") || tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (tag === "BUTTON" && (e.key === " " || e.key === "Enter")) return;
    if (document.querySelector("dialog[open]")) return; // the Share dialog has the keys (Esc closes it)
    const present = viewer.presentation;
    if (e.key === "Escape" && present?.active) {
      e.preventDefault();
      present.leave();
      return;
    }
    if (!viewer.trace) return;
    const keys = { ...stepKeys(stepper(viewer)), "/": () => viewer.$("search").focus() };
    if (present) {
      keys.p = keys.P = () => present.toggle();
      keys.b = keys.B = () => present.active && present.blackout();
    }
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });
}

/**
 * The step that stepping by box goes to from the current one, `d` = +1 or -1: past every moment that
 * lights the same drawn box (a closed group's inner steps, or a node's), to the first that lights another.
 */
export function nextBoxStep(viewer, d) {
  const entries = timeline(viewer.trace);
  const boxAt = (i) => {
    const id = entries[i]?.node;
    if (id === undefined) return `moment ${i}`; // a print, a pass's start...: a stop of its own
    const thing = viewer.graph.thingOf(id);
    return thing ? thing.it?.key ?? thing.gl.key : `node ${id}`;
  };
  const from = viewer.player.step;
  const here = boxAt(from);
  let i = from + d;
  while (i > 0 && i < entries.length - 1 && boxAt(i) === here) i += d;
  return Math.max(0, Math.min(entries.length - 1, i));
}
