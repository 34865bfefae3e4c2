// Beside the inspector: Check (POST /api/check: each leaf's gradient by autograd and by nudging) and What
// if (a leaf's or constant's value edited, the program run again with it: POST /api/trace {overrides}),
// with what moved marked on the graph. checks.js and whatif.js hold the logic; this module the page's
// part of it. Everything from the trace goes in as text.

import { t } from "./i18n.js";
import { matrix } from "./inspector.js";
import { byNode, summary, verdict } from "./checks.js";
import { changes, editShape, editableName, readValue, sliderRange } from "./whatif.js";
import { flat, fmtNum, fmtValue } from "./values.js";

const h = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
};
const button = (cls, text, onClick) => {
  const b = h("button", cls, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
};
const precise = (x) => (typeof x === "number" ? x.toPrecision(10) : fmtNum(x)); // a nudged estimate shows its digits
const SLIDER_GAP_MS = 120; // a slider's runs start at most this often (one in flight at a time)
const CHANGES_SHOWN = 12;

async function post(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(data?.detail?.[0]?.msg || data?.message || res.statusText);
  return data;
}

export class Lab {
  /**
   * root: the panel (#lab); viewer: the Viewer; load(trace, {step, whatIf}): how the page shows a trace;
   * onError(message): where a failure is said (the output panel).
   */
  constructor(root, { viewer, load, onError }) {
    this.root = root;
    this.viewer = viewer;
    this.load = load;
    this.onError = onError || (() => {});
    this.base = null; // the program's own run
    this.overrides = {};
    this.diff = changes(null, null);
    this.check = null;
    this.checked = new Map();
    this.running = null; // the what-if request in flight
    this.editing = ""; // the node (and name) the editor is for
    this.editorBox = h("div", "whatif-edit");
    this.pending = false;
    this.dragging = false; // a slider is held by the pointer
    this.showing = false; // a run is being drawn
    this.lastSent = 0;
  }

  /** The program ran (Run, or a saved page): its own values; what-ifs and the check start over. */
  reset(trace) {
    this.base = trace;
    this.editing = "";
    this.overrides = {};
    this.diff = changes(null, null);
    this.check = null;
    this.checked = new Map();
    this.render();
  }

  /** The inspector's sections for a node (Inspector's `sections` option): its check, and what moved. */
  sections() {
    return [(trace, node) => this._checkSection(node), (trace, node) => (this._syncEditor(), this._deltaSection(node))];
  }

  /** Every frame: the graph's moved nodes marked (boxes come and go as the view moves), the editor following the inspector. */
  mark() {
    this._syncEditor();
    const moved = this.diff.moved;
    for (const g of this.viewer.$("graph").querySelectorAll("g.node[data-node-id]")) {
      const on = moved.has(Number(g.dataset.nodeId));
      if (on !== g.hasAttribute("data-moved")) g.toggleAttribute("data-moved", on);
    }
  }

  // --- check -------------------------------------------------------------------------------------

  async runCheck() {
    const trace = this.viewer.trace;
    if (!trace) return;
    const b = this.root.querySelector("#check");
    b.disabled = true;
    this.root.dataset.checking = "true";
    try {
      const result = await post("/api/check", { source: trace.source, overrides: this.overrides });
      if (this.viewer.trace !== trace) return; // another run replaced the graph meanwhile
      this.check = result.check;
      this.checked = byNode(trace, this.check);
      this.render();
      this._refreshInspector();
    } catch (err) {
      this.onError(t("check.failed", { message: err?.message || "" }));
    } finally {
      b.disabled = false;
      delete this.root.dataset.checking;
    }
  }

  _checkSection(node) {
    const entries = this.checked.get(node.id);
    if (!entries) return [];
    const out = [h("h4", null, t("check.heading"))];
    for (const { pass, leaf } of entries.slice(0, 4)) {
      const box = h("div", `check-entry ${verdict(leaf)}`);
      box.dataset.check = verdict(leaf);
      box.appendChild(h("div", "muted", t("check.pass", { n: pass.index + 1 })));
      const scalar = !Array.isArray(leaf.autograd);
      const row = (key, v) => {
        const r = h("div", "check-row");
        r.append(h("span", "check-key", t(key)), scalar ? h("span", `check-num ${key.split(".")[1]}`, key === "check.numeric" ? precise(v) : fmtNum(v)) : matrix(v, key.split(".")[1]));
        return r;
      };
      box.appendChild(row("check.autograd", leaf.autograd));
      if (leaf.numeric !== null) box.appendChild(row("check.numeric", leaf.numeric));
      box.appendChild(h("div", "check-verdict", this._verdictText(leaf)));
      out.push(box);
    }
    return out;
  }

  _verdictText(leaf) {
    if (leaf.ok === true) return t("check.agrees", { diff: fmtNum(leaf.max_rel_diff) });
    if (leaf.ok === false && leaf.worst?.length) return t("check.disagreesAt", { diff: fmtNum(leaf.max_rel_diff), at: `${leaf.name ?? ""}[${leaf.worst.join(", ")}]` });
    if (leaf.ok === false) return t("check.disagrees", { diff: fmtNum(leaf.max_rel_diff) });
    return t(`check.skipped.${leaf.skipped || "unseen"}`);
  }

  // --- what if ----------------------------------------------------------------------------------

  _deltaSection(node) {
    const mine = this.diff.changes.filter((c) => c.id === node.id);
    if (!mine.length) return [];
    const ul = h("ul", "whatif-deltas");
    for (const c of mine) ul.appendChild(this._delta(c, false));
    return [h("h4", null, t("whatif.changed")), ul];
  }

  /** The editor of the inspected node's value, when it can take one (rebuilt only when that node changes). */
  _syncEditor(force = false) {
    const id = this.viewer.inspector?.id ?? null;
    const node = id === null ? null : this.base?.nodes.find((n) => n.id === id);
    const name = editableName(node);
    const key = name ? `${id}:${name}` : "";
    const undo = this.editorBox.querySelector(".whatif-undo");
    if (undo) undo.hidden = !(name in this.overrides);
    if (this.dragging || (!force && (key === this.editing || this.showing))) return; // a new slider would drop the drag
    this.editing = key;
    this.editorBox.replaceChildren(...(name ? [h("h4", null, t("whatif.edit", { name })), this._editor(node, name)] : []));
  }

  _editor(node, name) {
    const shown = name in this.overrides ? this.overrides[name] : node.value;
    const shape = editShape(node);
    const wrap = h("div", "whatif-editor");
    wrap.dataset.name = name;
    const fields = flat(shown).map((x, i) => {
      const f = h("input", "whatif-field");
      f.type = "number";
      f.step = "any";
      f.value = String(x);
      f.setAttribute("aria-label", shape.length ? `${name}[${i}]` : name);
      f.addEventListener("keydown", (e) => {
        if (e.key === "Enter") (e.preventDefault(), submit());
      });
      return f;
    });
    const submit = () => {
      const value = readValue(fields.map((f) => f.value), shape);
      if (value === null) return this.onError(t("whatif.notNumber"));
      this.set(name, value);
    };
    if (!shape.length) {
      const range = sliderRange(this.base?.nodes.find((n) => n.id === node.id)?.value ?? shown);
      const slider = h("input", "whatif-slider");
      Object.assign(slider, { type: "range", min: String(range.min), max: String(range.max), step: String(range.step), value: String(shown) });
      slider.setAttribute("aria-label", t("whatif.slider", { name }));
      slider.addEventListener("input", () => {
        fields[0].value = slider.value;
        this.set(name, Number(slider.value), true);
      });
      slider.addEventListener("pointerdown", () => {
        this.dragging = true;
        const up = () => ((this.dragging = false), removeEventListener("pointerup", up), removeEventListener("pointercancel", up));
        addEventListener("pointerup", up);
        addEventListener("pointercancel", up);
      });
      wrap.append(fields[0], slider);
    } else {
      const cols = shape[shape.length - 1] || 1;
      const grid = h("div", "whatif-grid");
      // A vector wraps to the panel's width; a matrix keeps its rows (up to 10 a line) and scrolls in its own box.
      grid.style.gridTemplateColumns = `repeat(${shape.length === 1 ? "auto-fill" : Math.min(cols, 10)}, minmax(3.5em, 1fr))`;
      grid.append(...fields);
      wrap.append(grid, button("", t("whatif.apply"), submit));
    }
    const undo = button("link whatif-undo", t("whatif.undo", { name }), () => this.unset(name));
    undo.hidden = !(name in this.overrides);
    wrap.append(undo);
    return wrap;
  }

  /** Put `value` in place of `name` and run again (a slider's moves are throttled: one run at a time). */
  set(name, value, sliding = false) {
    this.overrides = { ...this.overrides, [name]: value };
    if (sliding && (this.running || performance.now() - this.lastSent < SLIDER_GAP_MS)) {
      this.pending = true;
      if (!this.running) setTimeout(() => this._flush(), SLIDER_GAP_MS);
      return;
    }
    this._send();
  }

  unset(name) {
    const { [name]: _, ...rest } = this.overrides;
    this.overrides = rest;
    if (Object.keys(rest).length) return this._send();
    this.diff = changes(null, null);
    this.check = null;
    this.checked = new Map();
    this._show(this.base).then(() => this._syncEditor(true));
  }

  /** Back to the program's own values. */
  resetAll() {
    this.overrides = {};
    this.unset("");
  }

  _flush() {
    if (this.pending && !this.running) this._send();
  }

  async _send() {
    const base = this.base;
    if (!base) return;
    this.pending = false;
    this.lastSent = performance.now();
    const asked = this.overrides;
    const request = (this.running = post("/api/trace", { source: base.source, overrides: asked }));
    this.root.dataset.running = "true";
    try {
      const trace = await request;
      if (this.base !== base || this.overrides !== asked) return; // a newer value is on its way
      this.diff = changes(base, trace);
      this.check = null;
      this.checked = new Map();
      await this._show(trace);
    } catch (err) {
      if (this.base === base) this.onError(t("whatif.failed", { message: err?.message || "" }));
    } finally {
      if (this.running === request) this.running = null;
      delete this.root.dataset.running;
      if (this.pending) setTimeout(() => this._flush(), Math.max(0, SLIDER_GAP_MS - (performance.now() - this.lastSent)));
    }
  }

  /** Show a run of the same program at the same step, the same node inspected. */
  async _show(trace) {
    const selected = this.viewer.inspector?.id ?? null;
    this.showing = true; // loading clears the inspector for a frame: the editor stays until it is back
    try {
      await this.load(trace, { step: this.viewer.step, whatIf: true });
    } finally {
      this.showing = false;
    }
    this.render();
    if (selected !== null && trace.nodes.some((n) => n.id === selected)) (this.viewer.graph.select(selected), this.viewer.inspect(selected));
    this._syncEditor(!this.running && !this.pending); // not while a slider is being moved: it would lose the pointer
    this.mark();
  }

  _refreshInspector() {
    const ins = this.viewer.inspector;
    if (ins?.id !== null && ins?.id !== undefined && this.viewer.frame) ins.update(this.viewer.frame, true);
  }

  // --- the panel ---------------------------------------------------------------------------------

  _delta(c, withName) {
    const li = h("li", "whatif-delta");
    const what = c.field === "grad" ? `${c.label}.grad` : c.label;
    const name = withName ? button("link", what, () => this.viewer.goTo(c.id)) : h("span", "whatif-what", c.field === "grad" ? ".grad" : t("whatif.value"));
    li.append(name, h("span", "whatif-from", fmtValue(c.from)), h("span", "whatif-arrow", "→"), h("span", "whatif-to", fmtValue(c.to)));
    return li;
  }

  render() {
    const root = this.root;
    root.hidden = !this.base;
    const check = button("primary", t("check.button"), () => this.runCheck());
    check.id = "check";
    check.title = t("check.title");
    const parts = [];
    const names = Object.keys(this.overrides);
    if (names.length) {
      const box = h("section", "whatif-summary");
      box.appendChild(h("h4", null, t("whatif.heading")));
      const asked = h("ul", "whatif-asked");
      for (const n of names) {
        const li = h("li", null, `${n} = ${fmtValue(this.overrides[n])}`);
        li.appendChild(button("link", t("whatif.remove"), () => this.unset(n)));
        asked.appendChild(li);
      }
      box.appendChild(asked);
      if (!this.diff.matched) box.appendChild(h("p", "muted", t("whatif.otherPath")));
      const named = this.diff.changes.filter((c) => c.named);
      const ul = h("ul", "whatif-deltas");
      for (const c of named.slice(0, CHANGES_SHOWN)) ul.appendChild(this._delta(c, true));
      box.appendChild(ul);
      const more = this.diff.moved.size - new Set(named.slice(0, CHANGES_SHOWN).map((c) => c.id)).size;
      if (more > 0) box.appendChild(h("p", "muted", t("whatif.more", { n: more })));
      box.appendChild(button("", t("whatif.reset"), () => this.resetAll()));
      parts.push(box);
    }
    if (this.check) parts.push(this._checkSummary());
    replaceAround(root, this.editorBox, [h("h3", null, t("lab.heading")), check], parts);
  }

  _checkSummary() {
    const box = h("section", "check-summary");
    const s = summary(this.check);
    box.appendChild(h("p", s.bad ? "check-verdict bad" : "check-verdict ok", t("check.summary", s)));
    if (this.check.notice) box.appendChild(h("p", "muted", this.check.notice));
    const ul = h("ul", "check-list");
    for (const [id, entries] of this.checked) {
      for (const { pass, leaf } of entries) {
        const li = h("li", `check-item ${verdict(leaf)}`);
        li.dataset.check = verdict(leaf);
        li.append(button("link", leaf.name ?? "?", () => this.viewer.goTo(id)), h("span", "muted", ` ${t("check.pass", { n: pass.index + 1 })} · `), h("span", null, this._verdictText(leaf)));
        ul.appendChild(li);
      }
    }
    for (const p of this.check.passes) if (p.skipped) ul.appendChild(h("li", "check-item skipped", `${t("check.pass", { n: p.index + 1 })}: ${t(`check.passSkipped.${p.skipped}`)}`));
    box.appendChild(ul);
    return box;
  }
}

/** `root`'s children made `before`, `keep`, `after`, with `keep` never leaving the document: a slider held
 * by the pointer inside it would drop the drag. */
function replaceAround(root, keep, before, after) {
  if (keep.parentNode !== root) return root.replaceChildren(...before, keep, ...after);
  while (root.firstChild !== keep) root.firstChild.remove();
  while (keep.nextSibling) keep.nextSibling.remove();
  keep.before(...before);
  keep.after(...after);
}
