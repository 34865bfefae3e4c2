// The one viewer of a trace: graph, player, caption, controls and keys, built into a pane by
// viewer_markup.js. Every page that plays a trace uses it: the app (/), /s/{id}, /embed/{id}
// (main.js), the offline HTML file and the notebook output (standalone.js). Those entries only
// configure it (which buttons, where the layout runs, what else follows the frame).

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { describe, passLabel } from "./caption.js";
import { foldCaption } from "./caption_fold.js";
import { Chart } from "./chart.js";
import { Player, afterPaint } from "./player.js";
import { Presentation } from "./present.js";
import { READABLE_ZOOM } from "./labels.js";
import { closestShape } from "./layout.js";
import { openLevel } from "./level.js";
import { GraphView } from "./render.js";
import { MARGIN } from "./svg_export.js";
import { SearchBox } from "./search.js";
import { passStarts, timeline } from "./timeline.js";
import { bindControls, bindKeys, nextBoxStep, storedDirection } from "./viewer_controls.js";
import { buildViewer } from "./viewer_markup.js";

/** The search box's placeholder: with its "/" key on a keyboard, its name alone on a touch screen (no "/" key to press). */
const searchPlaceholder = () => t(matchMedia("(hover: none)").matches ? "search.label" : "search.placeholder");

const PRESENT_ZOOM = 2.5; // presentation may zoom further in than the page's fit (1.25×)
const AUTO_DIRECTION_MAX_NODES = 300; // above this, one layout (top-to-bottom, folded to fill the pane), not two to compare

/**
 * new Viewer(pane, options). Options:
 *   layout(trace, {direction, scale}) -> Promise<layout>  (layout_client.js's worker, or layout.js directly)
 *   direction "auto" | "TB" | "LR", rememberDirection: the student's ⇅ choice is kept in localStorage
 *   aspect: a figure's width / height (an export): "auto" takes the direction whose shape is closest to it
 *   urlState: ?step=N follows the player; keys: the stepping keys work anywhere in the document
 *   exports: {svg(graph, name), png(graph, name), html({step, lang, direction}, name)}: the download buttons
 *   present: presentation mode (P, B, Esc); inspector: an Inspector to show selected nodes in
 *   onFrame(frame), onError(message): what else the page shows
 */
export class Viewer {
  constructor(pane, options = {}) {
    this.options = options;
    this.$ = buildViewer(pane, { exports: Object.keys(options.exports || {}), present: Boolean(options.present) });
    i18n.apply(pane);
    this.pane = pane;
    this.trace = null;
    this.frame = null;
    this.speedChosen = false;
    this.lastSource = null;
    this.direction = (options.rememberDirection && storedDirection()) || options.direction || "auto";
    this.inspector = options.inspector || null;
    this.open = new Set(); // the groups (module calls, loop iterations) shown open
    this.graph = new GraphView(this.$("graph"), { onSelect: (id) => this.inspect(id), onToggle: (key, open) => this.toggle(key, open) });
    this.player = new Player({ onFrame: (f) => this.showFrame(f), onState: (p) => this.showState(p), urlState: options.urlState !== false });
    this.presentation = options.present
      ? new Presentation({
          onChange: (on) => {
            if (on) this.$("graph").focus({ preventScroll: true });
            this.redraw();
          },
        })
      : null;
    this.chart = new Chart(this.$("curves"), { onJump: (step) => (this.player.pause(), this.player.seek(step)) });
    this.search = new SearchBox(this.$("search"), this.$("search-results"), { trace: () => this.trace, onChoose: (entry) => this.goToResult(entry) });
    this.$("search").placeholder = searchPlaceholder();
    this.stepMode = "op"; // "op": one operation at a time (opening the box it is in); "box": one drawn box at a time
    bindControls(this);
    if (options.keys !== false) bindKeys(this);
    const refit = () => this.graph.layout && !this.graph.userMoved && this.graph.fit(this.fitZoom());
    addEventListener("resize", refit);
    this.captionFold = foldCaption(this.$("caption"), { onToggle: refit }); // an embed's long sentence, opened on a tap
    // A pane that was hidden and is shown again (a phone's Graph tab, panes.js) is fitted again.
    let shown = true;
    new ResizeObserver(([e]) => {
      const now = e.contentRect.width > 0 && e.contentRect.height > 0;
      if (now && !shown) refit();
      shown = now;
    }).observe(this.$("graph"));
  }

  get step() {
    return this.player.step;
  }

  fitZoom() {
    return this.presentation?.active ? PRESENT_ZOOM : undefined;
  }

  /** Lay out, draw and show `trace` at `step`; resolves once the first frame is painted (false if a newer trace replaced it). */
  async load(trace, { step = 0, autoplay = false } = {}) {
    const sameProgram = this.lastSource !== null && this.lastSource === trace.source && this.graph.layout;
    this.trace = trace;
    this.lastSource = trace.source;
    this._showEmpty(trace);
    this.chart.load(trace); // before the layout: the curves take room from the graph
    const keepView = sameProgram ? { ...this.graph.view, moved: this.graph.userMoved } : null;
    this.open = sameProgram ? this.open : openLevel(trace, this._pane(), this._scale());
    const L = await this._layout(trace);
    if (this.trace !== trace) return false; // a newer run replaced it
    this.graph.draw(trace, L, this.open);
    this.$("step-by").closest("label").hidden = !this.graph.model.any; // stepping by box: only where there are boxes
    if (keepView) this.graph.setView(keepView, keepView.moved);
    else this.graph.fit(this.fitZoom());
    this._fillJump();
    this.inspector?.clear();
    this._autoSpeed(timeline(trace).length);
    this.player.load(trace, step);
    await afterPaint();
    if (this.trace !== trace) return false;
    if (autoplay) this.player.play();
    return true;
  }

  /** The same trace laid out and drawn again at the current step: another direction, or presentation's larger boxes. */
  async redraw() {
    const trace = this.trace;
    if (!trace) return;
    const L = await this._layout(trace);
    if (this.trace !== trace) return;
    this.graph.draw(trace, L, this.open);
    this.graph.fit(this.fitZoom());
    if (this.frame) this.graph.paint(this.frame);
  }

  /**
   * Open (or close) a group in place: laid out again with it open, the view moved so that the group's
   * corner stays where it was on screen, and everything else keeping its order around it.
   */
  async toggle(key, open = !this.open.has(key)) {
    const trace = this.trace;
    if (!trace || open === this.open.has(key)) return;
    const before = this.graph.boxOf(key);
    const onScreen = this.graph.positions();
    const view = { ...this.graph.view };
    const moved = this.graph.userMoved;
    // The box is redrawn as a frame (and back): a keyboard on it stays on it, not on the page's body.
    const focused = document.activeElement?.closest?.(`[data-group="${CSS.escape(key)}"]`) && this.$("graph").contains(document.activeElement);
    const next = new Set(this.open);
    if (open) next.add(key);
    else next.delete(key);
    this.open = next;
    const L = await this._layout(trace);
    if (this.trace !== trace || this.open !== next) return;
    this.graph.draw(trace, L, next, { reuse: true });
    const after = this.graph.boxOf(key);
    if (before && after) {
      const corner = (b) => [b.x - b.w / 2, b.y - b.h / 2];
      const [[bx, by], [ax, ay]] = [corner(before), corner(after)];
      this.graph.setView({ x: view.x + (bx - ax) * view.k, y: view.y + (by - ay) * view.k, k: view.k }, moved);
    } else this.graph.setView(view, moved);
    if (this.frame) this.graph.paint(this.frame);
    this.graph.settleFrom(onScreen);
    if (focused) this._focusGroup(key);
    this.options.onToggle?.(key, open);
  }

  /**
   * Fit: the whole drawing, as large as fits, never below a readable size (camera.js). When the boxes
   * opened since the graph was shown make it too big to read whole, they close again first (an animated
   * close, as a click would): Fit shows the level that reads, not a corner of the open one.
   */
  async fitAll() {
    const trace = this.trace;
    const graph = this.graph;
    if (trace && graph.layout && graph.camera.fitZoom() < graph.camera.readableZoom()) {
      const level = openLevel(trace, this._pane(), this._scale());
      const next = new Set([...this.open].filter((k) => level.has(k)));
      if (next.size < this.open.size) {
        const onScreen = graph.positions();
        this.open = next;
        const L = await this._layout(trace);
        if (this.trace !== trace || this.open !== next) return;
        graph.draw(trace, L, next, { reuse: true });
        if (this.frame) graph.paint(this.frame);
        graph.settleFrom(onScreen);
      }
    }
    graph.fit(this.fitZoom());
  }

  /** Open every group in `keys` (the groups around something to show); the view stays where it was. */
  async openAll(keys) {
    const closed = keys.filter((k) => !this.open.has(k));
    if (!closed.length || !this.trace) return;
    const next = new Set([...this.open, ...closed]);
    this.open = next;
    const view = { ...this.graph.view };
    const moved = this.graph.userMoved;
    const L = await this._layout(this.trace);
    if (this.open !== next) return;
    this.graph.draw(this.trace, L, next, { reuse: true });
    this.graph.setView(view, moved);
    if (this.frame) this.graph.paint(this.frame);
  }

  /** A search result chosen: the groups around it opened, it centred, selected and inspected. */
  async goToResult(entry) {
    const model = this.graph.model;
    if (entry.kind === "node") {
      await this.goTo(entry.id);
      this.graph.centre(entry.id);
      return;
    }
    await this.openAll(model.chainOfKey(entry.group.parent));
    this.graph.centre(entry.key);
    this.graph.select(entry.key);
    this.inspect(entry.key);
    requestAnimationFrame(() => this._focusGroup(entry.key));
  }

  /** Focus a group's box (closed) or its frame's head (open). */
  _focusGroup(key) {
    this.$("graph").querySelector(`.node[data-group="${CSS.escape(key)}"], .group-head[data-group="${CSS.escape(key)}"]`)?.focus({ preventScroll: true });
  }

  /** Everything shown again in the language just chosen (the boxes' text too, so they are laid out again). */
  refresh() {
    this.$("search").placeholder = searchPlaceholder();
    if (!this.trace) return;
    this.redraw();
    this._fillJump();
    this.chart.load(this.trace);
    this.showFrame(this.frame);
    this.showState(this.player);
  }

  /** A speed chosen from outside (the embed's ?speed=S), offered in the menu even if it is not one of its own. */
  setSpeed(stepsPerSecond) {
    const sel = this.$("speed");
    this.speedChosen = true;
    this.player.setSpeed(stepsPerSecond);
    if (![...sel.options].some((o) => Number(o.value) === stepsPerSecond)) sel.add(new Option(`${stepsPerSecond}×`, String(stepsPerSecond)));
    sel.value = String(stepsPerSecond);
  }

  /** Select a node from elsewhere (the inspector's neighbours): bring it into view, focus and inspect it. */
  async goTo(id) {
    if (this.graph.model) await this.openAll(this.graph.model.chainOf(id));
    this.graph.select(id);
    this.graph.reveal(id);
    this.inspect(id);
    requestAnimationFrame(() => this.$("graph").querySelector(`g.node[data-node-id="${id}"]`)?.focus({ preventScroll: true }));
  }

  /**
   * A step back or forward by the student (keys, buttons): one moment of the program, opening the
   * groups around the operation it is about; or, stepping by box, on to the next moment that lights
   * another box (the steps inside a closed group pass at once).
   */
  async stepBy(d) {
    const p = this.player;
    p.pause();
    if (this.stepMode === "box" && this.graph.model?.any) return p.seek(nextBoxStep(this, d));
    p.seek(p.step + d);
    const id = this.frame?.current[0];
    if (id !== undefined && this.graph.model?.any) await this.openAll(this.graph.model.chainOf(id));
  }

  /** Show node `id` (a number) or group `key` (a string) in the inspector. */
  inspect(id) {
    if (!this.inspector || !this.trace) return;
    if (typeof id === "string") return this.inspector.showGroup?.(this.trace, this.frame, id);
    const copies = this.graph.layout?.items.filter((it) => it.id === id).length || 1;
    this.inspector.show(this.trace, this.frame, id, copies);
  }

  showFrame(f) {
    this.frame = f;
    document.body.dataset.step = String(f.step);
    document.body.dataset.stepType = f.entry.type;
    this.graph.paint(f);
    this.chart.show(f);
    this.inspector?.update(f);
    this.$("caption").textContent = describe(this.trace, f);
    this.captionFold.update();
    this._showPosition(f);
    this.options.onFrame?.(f);
  }

  showState(p) {
    const b = this.$("play");
    b.querySelector(".i-play").toggleAttribute("hidden", p.playing);
    b.querySelector(".i-pause").toggleAttribute("hidden", !p.playing);
    b.setAttribute("aria-pressed", String(p.playing));
    b.setAttribute("aria-label", t(p.playing ? "player.pause" : "player.play"));
  }

  // --- what the frame shows besides the graph ----------------------------------------------------

  _showEmpty(trace) {
    const empty = this.$("graph-empty");
    empty.hidden = trace.nodes.length > 0;
    if (!trace.nodes.length) {
      const key = trace.status === "ok" ? "graph.none" : "graph.error";
      empty.dataset.i18n = key; // so that a language switch keeps this message
      empty.textContent = t(key);
    }
  }

  /** Scrubber, step label, pass label and the jump menu at frame f. */
  _showPosition(f) {
    const s = this.$("scrubber");
    s.max = String(f.total - 1);
    s.value = String(f.step);
    s.setAttribute("aria-valuetext", t("player.step", { n: f.step, total: f.total - 1 }));
    this.$("step-label").textContent = `${f.step} / ${f.total - 1}`;
    const pl = this.$("pass-label");
    pl.textContent = passLabel(f);
    pl.className = f.pass ? "pass-label" : "pass-label forward";
    const starts = passStarts(this.trace);
    const idx = f.pass ? starts.findIndex((p) => p.pass === f.pass.index) : -1;
    const firstNode = timeline(this.trace).findIndex((e) => e.type === "node");
    this.$("jump").value = idx >= 0 ? String(starts[idx].step) : f.phase === "forward" && firstNode >= 0 ? String(firstNode) : "";
  }

  _fillJump() {
    const trace = this.trace;
    // Where the player is not in a pass (before the program, at its end) the menu says what it does: on a
    // phone its label is for screen readers only. A prompt, not a place: it cannot be chosen.
    const prompt = new Option(t("player.jumpPrompt"), "");
    prompt.disabled = true;
    const opts = [prompt];
    const firstNode = timeline(trace).findIndex((e) => e.type === "node");
    if (firstNode >= 0) opts.push(new Option(t("player.forwardPass"), String(firstNode)));
    for (const p of passStarts(trace)) {
      const pass = trace.passes.find((x) => x.index === p.pass);
      opts.push(new Option(t("player.passN", { n: trace.passes.indexOf(pass) + 1, of: trace.passes.length }), String(p.step)));
    }
    this.$("jump").replaceChildren(...opts);
  }

  // Until the student picks a speed, a whole run plays in about half a minute (at least 2 steps/s).
  _autoSpeed(steps) {
    if (this.speedChosen) return;
    const sel = this.$("speed");
    const options = [...sel.options].map((o) => Number(o.value)).sort((a, b) => a - b);
    const pick = options.find((v) => v >= steps / 30) ?? options[options.length - 1];
    sel.value = String(Math.max(2, pick));
    this.player.setSpeed(sel.value);
  }

  _pane() {
    const r = this.$("graph").getBoundingClientRect();
    return { width: r.width || 800, height: r.height || 600 };
  }

  /** Boxes as large as app.css draws their text now (presentation mode: --node-scale 1.6). */
  _scale() {
    return parseFloat(getComputedStyle(this.$("graph")).getPropertyValue("--node-scale")) || 1;
  }

  /** Top-to-bottom unless left-to-right shows this graph bigger in this pane (wide embeds, long chains). */
  async _layout(trace) {
    const layout = this.options.layout;
    const scale = this._scale();
    const pane = this._pane();
    const zoom = READABLE_ZOOM / scale;
    // A graph longer than the pane at a readable size is folded into bands that fill it.
    const base = { scale, open: [...this.open], fold: { width: pane.width / zoom, height: pane.height / zoom } };
    if (this.direction !== "auto" || trace.nodes.length > AUTO_DIRECTION_MAX_NODES) {
      return layout(trace, { ...base, direction: this.direction === "LR" ? "LR" : "TB" });
    }
    const [tb, lr] = await Promise.all([layout(trace, { ...base, direction: "TB" }), layout(trace, { ...base, direction: "LR" })]);
    // A figure of a given shape (an export for a 16:9 slide) takes the direction closest to that shape.
    if (this.options.aspect) return closestShape([tb, lr], this.options.aspect, MARGIN);
    const fits = (L) => Math.min(pane.width / L.width, pane.height / L.height);
    return fits(lr) > fits(tb) * 1.15 ? lr : tb;
  }
}
